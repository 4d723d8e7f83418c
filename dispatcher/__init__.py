"""pushinbox: push-mode dispatching of customer messages on Redis."""

from dispatcher.api import AsyncDispatcher, Dispatcher, InlineJobs, Jobs
from dispatcher.clock import FakeClock
from dispatcher.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    NotYoursError,
    PushinboxError,
    UnavailableError,
    ValidationError,
)
from dispatcher.hours import WorkingHours
from dispatcher.model import AdvisorStats, CheckReport, Message, Push, ReplyAndPush, Stock
from dispatcher.rules import PrioritySettings, TriageRule

__all__ = [
    "AdvisorStats",
    "AsyncDispatcher",
    "CheckReport",
    "ConflictError",
    "Dispatcher",
    "FakeClock",
    "ForbiddenError",
    "InlineJobs",
    "Jobs",
    "Message",
    "NotFoundError",
    "NotYoursError",
    "PrioritySettings",
    "Push",
    "PushinboxError",
    "ReplyAndPush",
    "Stock",
    "TriageRule",
    "UnavailableError",
    "ValidationError",
    "WorkingHours",
]
