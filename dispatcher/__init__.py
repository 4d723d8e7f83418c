"""pushinbox: push-mode dispatching of customer messages on Redis."""

from dispatcher.api import Dispatcher, InlineJobs, Jobs
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
from dispatcher.model import AdvisorStats, CheckReport, Message, Push, Stock
from dispatcher.rules import PrioritySettings, TriageRule

__all__ = [
    "AdvisorStats",
    "CheckReport",
    "ConflictError",
    "Dispatcher",
    "ForbiddenError",
    "InlineJobs",
    "Jobs",
    "Message",
    "NotFoundError",
    "NotYoursError",
    "PrioritySettings",
    "Push",
    "PushinboxError",
    "Stock",
    "TriageRule",
    "UnavailableError",
    "ValidationError",
    "WorkingHours",
]
