"""The HTTP service's request and response bodies (msgspec Structs): the OpenAPI document is
generated from these and the handlers' signatures. The domain still validates every value
(``dispatcher.model``, ``dispatcher.rules``, ``dispatcher.hours``), so the rules live once."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from dispatcher import defaults
from dispatcher.keys import ID_PATTERN, TEAM_ID_PATTERN
from dispatcher.model import Message

__all__ = ["ActionOut", "AdvisorIn", "AdvisorOut", "AssignIn", "BreakDay", "BreakEndOut",
           "BreakOut", "BreaksOut", "ChannelOut", "CustomerTagsIn", "CustomerTagsOut",
           "FiguresOut", "GroupIn", "GroupsChangedOut", "GroupsIn", "GroupsOut", "Health",
           "HelpIn", "HookIn", "HookOut", "HoursIn", "Id", "IngestResult", "MessageBatchIn",
           "MessageBatchOut", "MessageIn", "Order", "PreviewRow", "Problem", "RebucketingOut",
           "RoleIn", "Scalar", "ScreenOut", "SessionOut", "StockOut", "TeamIdField", "TeamIn",
           "TeamOut", "WhoAmI"]

Id = Annotated[str, Meta(pattern=ID_PATTERN,
                         description="1-200 printable ASCII characters, no space { } / ? # %")]
TeamIdField = Annotated[str, Meta(
    pattern=TEAM_ID_PATTERN,
    description="1-64 letters, digits and . _ - ~ : @ + =, starting with a letter or digit")]
Scalar = str | int | float | bool
Order = Literal["oldest_conversation", "newest_conversation", "oldest_message", "newest_message"]


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details: every error the service answers."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    code: str | None = None


class MessageIn(msgspec.Struct, forbid_unknown_fields=True):
    """A customer message from an upstream service; ``id`` makes ingest idempotent."""

    id: Id
    conversation: Id
    customer: Id
    channel: Id
    body: Any
    language: Annotated[str, Meta(max_length=35)] = ""
    tags: list[str] = msgspec.field(default_factory=list)
    attributes: dict[str, Scalar] = msgspec.field(default_factory=dict)
    customer_tags: list[str] | None = None


class MessageBatchIn(msgspec.Struct, forbid_unknown_fields=True):
    messages: list[MessageIn]


class IngestResult(msgspec.Struct):
    id: str
    result: Literal["queued", "assigned", "duplicate"]
    advisor: str | None = None


class MessageBatchOut(msgspec.Struct):
    results: list[IngestResult]


class CustomerTagsIn(msgspec.Struct, forbid_unknown_fields=True):
    tags: list[str]


class CustomerTagsOut(msgspec.Struct):
    customer: str
    conversations_moved: int


class SessionOut(msgspec.Struct):
    advisor: str
    state: Literal["online", "offline"]
    epoch: int | None = None
    requeue_job: str | None = None


class ActionOut(msgspec.Struct):
    message: str
    status: Literal["ok", "noop"]


class HelpIn(msgspec.Struct, forbid_unknown_fields=True):
    note: Annotated[str, Meta(max_length=500)] = ""


class BreakOut(msgspec.Struct):
    status: Literal["ok", "noop"]
    started_at: int
    ends_at: int | None
    end_job: str | None


class BreakEndOut(msgspec.Struct):
    ended: bool
    seconds: float


class ChannelOut(msgspec.Struct):
    channel: str
    waiting: int
    oldest_age_s: float | None


class StockOut(msgspec.Struct):
    total: int
    channels: list[ChannelOut]


class FiguresOut(msgspec.Struct):
    """An advisor's figures for the UTC day."""

    day: str
    responses: int
    archives: int
    break_seconds: float
    assigned: int
    stock: int


class ScreenOut(msgspec.Struct):
    """Everything an advisor's screen shows, in one call."""

    advisor: str
    state: Literal["online", "offline", "on break"]
    break_started_at: int | None
    today: FiguresOut
    stock: StockOut
    current: list[Message]


class AssignIn(msgspec.Struct, forbid_unknown_fields=True):
    advisor: Id


class PreviewRow(msgspec.Struct):
    position: int
    conversation: str
    group: str
    why: str
    waiting: int  # the conversation's waiting messages; `messages` holds the first 20
    messages: list[Message]


class GroupIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    match: dict[str, Any] = msgspec.field(default_factory=dict)
    #: only advisors with all of these skills are pushed this group's messages
    requires_skills: list[str] = msgspec.field(default_factory=list)
    #: reports: the share of this group's pushes that waited at most this long (seconds)
    target_wait: int | None = None


class GroupsIn(msgspec.Struct, forbid_unknown_fields=True):
    groups: Annotated[list[GroupIn], Meta(max_length=defaults.MAX_GROUPS)]
    order: Order = "oldest_conversation"


class GroupsOut(msgspec.Struct):
    order: str
    groups: list[GroupIn]


class GroupsChangedOut(msgspec.Struct):
    version: int
    rebucketing: bool
    job: str | None


class RebucketingOut(msgspec.Struct):
    version: int
    done: bool
    conversations_left: int


class HoursIn(msgspec.Struct, forbid_unknown_fields=True):
    timezone: str
    week: dict[str, list[str]] = msgspec.field(default_factory=dict)


class BreakDay(msgspec.Struct):
    day: str
    team_seconds: float
    advisors: dict[str, float]


class BreaksOut(msgspec.Struct):
    team: str
    days: list[BreakDay]


class AdvisorOut(msgspec.Struct):
    advisor: str
    name: str
    role: str
    state: str
    assigned: int
    skills: list[str]


class SkillsIn(msgspec.Struct, forbid_unknown_fields=True):
    """Replace an advisor's skills (``skills``), then add and remove some, in one step."""
    skills: list[str] | None = None
    add: list[str] = msgspec.field(default_factory=list)
    remove: list[str] = msgspec.field(default_factory=list)


class SkillsOut(msgspec.Struct):
    advisor: str
    skills: list[str]


class GroupStockRow(msgspec.Struct):
    group: str
    requires_skills: list[str]
    waiting: int  # conversations
    restricted: dict[str, int]  # of those, restricted by triage to a skill: per skill
    advisors_who_may_take: int  # logged in (on a break or not) with every required skill
    unserved: bool  # some wait and nobody logged in may take them


class TeamOut(msgspec.Struct):
    team: str
    name: str
    version: int
    rebucketing: bool
    presence_timeout_s: int
    untouched_after_s: int
    logout_at_end_of_hours: bool
    max_requeues: int
    retention_s: int
    max_messages: int  # the messages it may store (0: no bound); the operators' setting
    max_body_bytes: int  # the bytes of their bodies it may store (0: no bound); theirs too
    max_ingest_rate: int  # new messages it may take a second (0: no cap); theirs too
    stored_messages: int | None  # None: not counted yet (a team an earlier version created)
    stored_body_bytes: int | None
    hours: HoursIn | None


class TeamIn(msgspec.Struct, forbid_unknown_fields=True):
    team: TeamIdField
    name: str | None = None


class RoleIn(msgspec.Struct, forbid_unknown_fields=True):
    push: bool = True
    capacity: Annotated[int, Meta(ge=1, le=100)] = 1


class AdvisorIn(msgspec.Struct, forbid_unknown_fields=True):
    role: Id
    name: str | None = None
    skills: list[str] | None = None  # replaces the advisor's skills when given


class HookIn(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, Meta(max_length=2000)]
    events: list[str]


class HookOut(msgspec.Struct, omit_defaults=True):
    id: str
    url: str
    events: list[str]
    created_at: int
    secret: str | None = None


class Health(msgspec.Struct):
    status: str


class WhoAmI(msgspec.Struct):
    token_id: str
    scope: str
    team: str | None
    advisor: str | None
    teams: list[str] | None


class ReportAdvisor(msgspec.Struct):
    advisor: str
    pushed: int
    responses: int
    archives: int
    help_requests: int
    reassigned_away: int  # handed back from them: logout, reaper, untouched pushes
    break_s: float
    handle_p50_s: float | None  # push to done, read to the bucket's upper bound
    handle_p90_s: float | None


class ReportGroup(msgspec.Struct):
    group: str
    arrivals: int
    pushes: int
    wait_p50_s: float | None  # arrival to push, read to the bucket's upper bound
    wait_p90_s: float | None
    wait_max_s: float | None  # exact
    wait_avg_s: float | None
    target_wait_s: int | None
    within_target: float | None  # share of pushes that waited at most target_wait_s


class ReportHour(msgspec.Struct):
    hour: str  # its start, in the report's time zone
    pushes: int
    avg_wait_s: float | None
    max_wait_s: float | None


class ReportOut(msgspec.Struct):
    team: str
    day: str
    tz: str
    advisors: list[ReportAdvisor]
    groups: list[ReportGroup]
    hours: list[ReportHour]


class TeamViewAdvisor(msgspec.Struct):
    advisor: str
    name: str
    state: str  # offline, available, handling N, on break
    since: int | None  # ms since the epoch: when that state began (see ops.team_live)
    seconds_in_state: float | None
    holding: int
    oldest_held_s: float | None  # the age of the oldest message in their hands
    responses_today: int
    archives_today: int
    skills: list[str]


class TeamViewGroup(msgspec.Struct):
    group: str
    requires_skills: list[str]
    waiting: int  # conversations
    restricted: dict[str, int]
    advisors_who_may_take: int
    unserved: bool
    oldest_wait_s: float | None
    arrivals_15min: int
    pushes_15min: int


class TeamViewOut(msgspec.Struct):
    team: str
    at: int  # ms since the epoch: the moment of the snapshot
    advisors: list[TeamViewAdvisor]
    groups: list[TeamViewGroup]
