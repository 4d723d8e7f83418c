"""Domain types and the validation of what callers send in.

Validation happens here, before any script runs, so bad input is refused with an error naming
the field and nothing is written. The scripts re-check only what depends on Redis state.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import msgpack

from dispatcher import defaults
from dispatcher.errors import TooLargeError, ValidationError
from dispatcher.keys import check_id

__all__ = ["AdvisorStats", "ChannelStock", "CheckReport", "IncomingMessage", "Message", "Push",
           "ReplyAndPush", "Stock", "pack", "unpack", "unpack_field"]

_MESSAGE_FIELDS = {
    "id",
    "conversation",
    "customer",
    "channel",
    "body",
    "language",
    "tags",
    "attributes",
    "customer_tags",
}


def pack(value: Any) -> bytes:
    """msgpack as the scripts' cmsgpack reads it (strings as raw, no bin type)."""
    out: bytes = msgpack.packb(value, use_bin_type=False)
    return out


def unpack(data: bytes | str) -> Any:
    """Inverse of the scripts' cmsgpack.pack; binary fields survive as surrogate-escaped str."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return msgpack.unpackb(data, raw=False, unicode_errors="surrogateescape", strict_map_key=False)


def unpack_field(value: Any) -> Any:
    """A msgpack-encoded field nested inside a script's answer."""
    if value is None or value == "":
        return None
    return unpack(value)


def _tags(value: object, field: str) -> list[str]:
    if not isinstance(value, list):
        raise ValidationError(f"{field} must be a list of strings", field=field)
    if len(value) > defaults.MAX_TAGS:
        raise ValidationError(
            f"{field} has {len(value)} tags; at most {defaults.MAX_TAGS} are allowed", field=field
        )
    out: list[str] = []
    for i, tag in enumerate(value):
        if not isinstance(tag, str) or not tag or len(tag) > defaults.MAX_TAG_LEN:
            raise ValidationError(
                f"{field}[{i}] must be a non-empty string of at most {defaults.MAX_TAG_LEN} "
                "characters",
                field=f"{field}[{i}]",
            )
        if tag not in out:
            out.append(tag)
    return out


_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what msgpack (and so Redis) can store


def _ints_fit(value: object, depth: int = 0) -> bool:
    """Every integer inside ``value`` fits msgpack's 64 bits (JSON allows any size)."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return _INT_MIN <= value <= _INT_MAX
    if depth > 64:
        return False
    if isinstance(value, list):
        return all(_ints_fit(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(_ints_fit(v, depth + 1) for v in value.values())
    return True


def _scalar_ok(value: object) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return _INT_MIN <= value <= _INT_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= defaults.MAX_ATTR_VALUE_LEN


@dataclass(frozen=True)
class IncomingMessage:
    """A customer message as an upstream service sends it, validated."""

    id: str
    conversation: str
    customer: str
    channel: str
    body: Any
    language: str = ""
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    customer_tags: list[str] | None = None

    @classmethod
    def parse(cls, data: object) -> IncomingMessage:
        """Validate a message dict; raises ValidationError naming the first bad field."""
        if not isinstance(data, dict):
            raise ValidationError("a message must be an object", field="message")
        unknown = sorted(set(data) - _MESSAGE_FIELDS)
        if unknown:
            raise ValidationError(f"unknown message field {unknown[0]!r}", field=unknown[0])
        for name in ("id", "conversation", "customer", "channel"):
            if name not in data:
                raise ValidationError(f"message field {name!r} is required", field=name)
            check_id(data[name], name)
        if "body" not in data:
            raise ValidationError("message field 'body' is required", field="body")
        try:
            body_json = json.dumps(data["body"], ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"body must be JSON data: {exc}", field="body") from exc
        if len(body_json.encode("utf-8", "surrogatepass")) > defaults.MAX_BODY_BYTES:
            raise TooLargeError(
                f"body is larger than {defaults.MAX_BODY_BYTES} bytes", field="body"
            )
        if not _ints_fit(data["body"]):
            raise ValidationError(
                "body holds an integer beyond 64 bits (or nests deeper than 64 levels)",
                field="body")
        language = data.get("language", "")
        if not isinstance(language, str) or len(language) > 35:
            raise ValidationError("language must be a language tag such as 'en'", field="language")
        attrs = data.get("attributes", {})
        if not isinstance(attrs, dict) or len(attrs) > defaults.MAX_ATTRS:
            raise ValidationError(
                f"attributes must be an object of at most {defaults.MAX_ATTRS} entries",
                field="attributes",
            )
        for key, value in attrs.items():
            if not isinstance(key, str) or not key or len(key) > defaults.MAX_TAG_LEN:
                raise ValidationError(f"attribute name {key!r} is not valid", field="attributes")
            if not _scalar_ok(value):
                raise ValidationError(
                    f"attributes.{key} must be a string (at most "
                    f"{defaults.MAX_ATTR_VALUE_LEN} characters), number or boolean",
                    field=f"attributes.{key}",
                )
        ctags = data.get("customer_tags")
        return cls(
            id=data["id"],
            conversation=data["conversation"],
            customer=data["customer"],
            channel=data["channel"],
            body=data["body"],
            language=language,
            tags=_tags(data.get("tags", []), "tags"),
            attributes=dict(attrs),
            customer_tags=None if ctags is None else _tags(ctags, "customer_tags"),
        )

    def checksum(self) -> bytes:
        """Identifies the content: the same id with another content is a conflict. Its 12
        bytes as they are (an earlier version stored 24 hex digits: ingest.lua reads both)."""
        canon = json.dumps(
            {
                "conversation": self.conversation,
                "customer": self.customer,
                "channel": self.channel,
                "body": self.body,
                "language": self.language,
                "tags": self.tags,
                "attributes": self.attributes,
                "customer_tags": self.customer_tags,
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.blake2b(canon.encode("utf-8", "surrogatepass"), digest_size=12).digest()

    def to_script(self) -> list[Any]:
        """The ten values scripts/lua/ingest.lua reads for a message, in its order (a batch
        sends them in a row: no map a message to encode and decode)."""
        return [self.id, self.conversation, self.customer, self.channel, self.language,
                pack(self.tags), pack(self.attributes), pack(self.body), self.checksum(),
                b"" if self.customer_tags is None else pack(sorted(self.customer_tags))]


@dataclass(frozen=True)
class Message:
    """A message as advisors and supervisors see it."""

    id: str
    conversation: str
    customer: str
    channel: str
    body: Any
    received_at: int
    state: str
    advisor: str | None
    via: str | None
    group: str | None
    why: str | None
    reassigned: bool
    requeues: int
    on_hold: bool
    language: str
    tags: list[str]
    attributes: dict[str, Any]
    done: str | None

    STATES = {
        "w": "waiting",
        "a": "assigned",
        "h": "help",
        "q": "quarantine",
        "d": "done",
        "n": "new",
    }

    @classmethod
    def from_script(cls, view: list[Any]) -> Message:
        """A message as the scripts answer it (scripts/lua/includes/views.lua, ``as_view``):
        its id, its record's fields in VIEW_FIELDS' order (False where it has none) and
        whether it is on hold. Named here rather than in Lua: a map of twenty names built
        and packed per message cost a press ~3 us of Redis's time."""
        mid, f, hold = view
        (conv, cust, channel, ts, state, advisor, via, group, why, reassigned, requeues, body,
         language, tags, attrs, done, order) = f
        return cls(
            id=mid,
            conversation=conv or "",
            customer=cust or "",
            channel=channel or "",
            body=unpack_field(body or None),
            # the arrival: `ts` when a burst borrowed a later millisecond, else its order's
            received_at=int(ts) if ts else (int(order) // 1000 if order else 0),
            state=cls.STATES.get(state or "", "unknown"),
            advisor=advisor or None,
            via=via or None,
            group=group or None,
            why=why or None,
            reassigned=reassigned == "1",
            requeues=int(requeues or 0),
            on_hold=bool(hold),
            language=language or "",
            tags=unpack_field(tags or None) or [],
            attributes=unpack_field(attrs or None) or {},
            done=done or None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation": self.conversation,
            "customer": self.customer,
            "channel": self.channel,
            "body": self.body,
            "received_at": self.received_at,
            "state": self.state,
            "advisor": self.advisor,
            "via": self.via,
            "group": self.group,
            "why": self.why,
            "reassigned": self.reassigned,
            "requeues": self.requeues,
            "on_hold": self.on_hold,
            "language": self.language,
            "tags": self.tags,
            "attributes": self.attributes,
            "done": self.done,
        }


@dataclass(frozen=True)
class Push:
    """The answer to *process a new message*."""

    status: str  # "assigned" (a new conversation), "pending" (still to process), "empty"
    messages: list[Message]

    @property
    def message(self) -> Message | None:
        return self.messages[0] if self.messages else None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "messages": [m.to_dict() for m in self.messages]}


@dataclass(frozen=True)
class ReplyAndPush:
    """The answer to *reply and process a new message*: the reply's status, then the press's
    answer as *process a new message* gives it."""

    replied: str  # "ok", or "noop" when the message was replied already (a retry)
    status: str  # as Push's
    messages: list[Message]

    @property
    def message(self) -> Message | None:
        return self.messages[0] if self.messages else None

    def to_dict(self) -> dict[str, Any]:
        return {"replied": self.replied, "status": self.status,
                "messages": [m.to_dict() for m in self.messages]}


@dataclass(frozen=True)
class ChannelStock:
    channel: str
    waiting: int
    oldest_age_s: float | None


@dataclass(frozen=True)
class Stock:
    total: int
    channels: list[ChannelStock]

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "channels": {
                c.channel: {"waiting": c.waiting, "oldest_age_s": c.oldest_age_s}
                for c in self.channels
            },
        }


@dataclass(frozen=True)
class AdvisorStats:
    """An advisor's screen figures for one UTC day."""

    advisor: str
    day: str
    state: str
    responses: int
    archives: int
    break_seconds: float
    assigned: int
    stock: int
    break_started_at: int | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    problems: list[str]
    problem_count: int
    counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "problem_count": self.problem_count,
            "counts": self.counts,
        }
