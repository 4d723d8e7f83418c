"""The one module that owns Redis key names.

Every key of a team starts with ``pi:{team}:``: the braces make the team a cluster hash tag, so
all of one team's keys share a slot and each Lua script touches a single slot. The Lua include
``includes/core.lua`` builds the same names from the prefix; keep the two in step.
"""

from __future__ import annotations

import re

from dispatcher.defaults import KEY_PREFIX, MAX_SKILL_LEN, MAX_SKILLS
from dispatcher.errors import ValidationError

__all__ = ["ID_PATTERN", "TEAMS", "TEAM_ID_PATTERN", "TOKENS", "advisor", "advisors", "cfg",
           "channel_counts", "channel_seconds", "channel_waiting", "channels", "check_id",
           "check_skill", "check_skills", "check_team",
           "conversation",
           "conversation_held", "conversation_waiting", "current", "customer",
           "customer_conversations", "day", "done", "escalation", "events", "glob_escape",
           "help_requests",
           "hook_jobs", "hooks", "message", "on_hold", "online", "prefix", "pushed",
           "pushed_conversations", "quarantine", "queue", "recent_minute", "report_hour",
           "report_max",
           "restricted_queue", "restricted_skills",
           "role", "roles"]

#: Ids (advisors, messages, conversations, customers, roles, hooks): 1-200 printable ASCII
#: characters without spaces, braces (cluster hash tags) or / ? # % (ids appear in URL paths).
#: ``(?![\s\S])`` ends the pattern instead of ``$``, which also matches before a final newline
#: (here and in the JSON schema the service publishes, where ``\Z`` does not exist).
ID_PATTERN = r"^(?:(?![#%/?])[!-z|~]){1,200}(?![\s\S])"
_ID_RE = re.compile(ID_PATTERN)

#: Team ids are stricter: a team id is the hash tag of every key of the team and the prefix of
#: the SCAN patterns that check, repair and delete use, so it has no glob characters
#: (``* ? [ ] \``), braces, spaces or control characters: letters, digits and ``. _ - ~ : @ + =``,
#: starting with a letter or digit, at most 64 characters.
TEAM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~:@+=-]{0,63}(?![\s\S])"
_TEAM_RE = re.compile(TEAM_ID_PATTERN)

#: The registry of teams; the one key outside any team slot (never touched by a script).
TEAMS = f"{KEY_PREFIX}:teams"

#: API tokens (hash: token id -> msgpack record with the token's SHA-256, never the token).
TOKENS = f"{KEY_PREFIX}:tokens"


def check_id(value: object, field: str) -> str:
    """Return ``value`` if it is a usable id, else raise a ValidationError naming ``field``."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise ValidationError(
            f"{field} must be 1-200 printable ASCII characters without spaces, braces or / ? # %, "
            f"got {value!r}",
            field=field,
        )
    return value


_SKILL_RE = re.compile(rf"[A-Za-z0-9._:+-]{{1,{MAX_SKILL_LEN}}}")


def check_skills(value: object, field: str) -> list[str]:
    """A list of skill names (letters, digits and . _ : + -, at most MAX_SKILLS of at most
    MAX_SKILL_LEN characters), sorted and without repeats; else a ValidationError naming
    ``field`` or the bad entry (``field[i]``)."""
    if not isinstance(value, list | tuple):
        raise ValidationError(f"{field} must be a list of skill names", field=field)
    if len(set(value)) > MAX_SKILLS:
        raise ValidationError(f"{field} has {len(set(value))} skills; at most "
                              f"{MAX_SKILLS} are allowed", field=field)
    for i, s in enumerate(value):
        check_skill(s, f"{field}[{i}]")
    return sorted(set(value))


def check_skill(value: object, field: str) -> str:
    """One skill name, else a ValidationError naming ``field``."""
    if not isinstance(value, str) or not _SKILL_RE.fullmatch(value):
        raise ValidationError(f"{field} must be 1-{MAX_SKILL_LEN} letters, digits or . _ : + -, "
                              f"got {value!r}", field=field)
    return value


def check_team(value: object) -> str:
    """Return ``value`` if it is a usable team id, else raise a ValidationError naming "team"."""
    if not isinstance(value, str) or not _TEAM_RE.fullmatch(value):
        raise ValidationError(
            "team must be 1-64 characters: letters, digits and . _ - ~ : @ + =, starting with a "
            f"letter or digit, got {value!r}",
            field="team",
        )
    return value


def glob_escape(text: str) -> str:
    """``text`` as a literal inside a Redis glob (SCAN MATCH, KEYS): defence in depth."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def prefix(team: str) -> str:
    """The prefix of every key of ``team``; scripts receive it as ARGV[1]."""
    return f"{KEY_PREFIX}:{{{team}}}:"


def cfg(team: str) -> str:
    """Team settings hash; its existence is the team's existence. KEYS[1] of every script."""
    return prefix(team) + "cfg"


def queue(team: str, version: int, index: int) -> str:
    """Waiting conversations of one priority group, score = order in the group: the name the
    scripts give the queue, and an earlier version's sorted set of it (scripts/lua/includes/
    queue.lua keeps it in buckets under ``queue_index``)."""
    return f"{prefix(team)}q:{version}:{index}"


def queue_index(queue_key: str) -> str:
    """The index of a queue's buckets (sorted set: bucket -> its lower bound) from the queue's
    key (``queue``, ``restricted_queue``)."""
    team_prefix, _, rest = queue_key.partition("}:q:")
    return f"{team_prefix}}}:qx:{rest}"


def queue_bucket(queue_key: str, bucket: str) -> str:
    """One bucket of a queue (sorted set); the bucket '' is the queue's key itself (an earlier
    version's whole set, until migrate moves it)."""
    if bucket == "":
        return queue_key
    team_prefix, _, rest = queue_key.partition("}:q:")
    return f"{team_prefix}}}:qb:{rest}:{bucket}"


def restricted_queue(team: str, version: int, index: int, skill: str) -> str:
    """Waiting conversations of one priority group that a triage rule restricted to advisors
    with ``skill`` (sorted set, scored like the group's queue)."""
    return f"{queue(team, version, index)}~{skill}"


def restricted_skills(team: str, version: int) -> str:
    """The skills that have restricted queues in a settings version (set)."""
    return f"{prefix(team)}rsk:{version}"


def report_hour(team: str, hour: int) -> str:
    """Report figures of one UTC hour (hash; hour = ms since the epoch // 3,600,000)."""
    return f"{prefix(team)}rh:{hour}"


def report_max(team: str, hour: int) -> str:
    """The longest wait (ms) per group pushed in one UTC hour (sorted set)."""
    return f"{prefix(team)}rx:{hour}"


def recent_minute(team: str, minute: int) -> str:
    """Arrivals and pushes per group in one minute, for the live team view (hash, 20 min)."""
    return f"{prefix(team)}rm:{minute}"


def escalation(team: str, version: int, index: int) -> str:
    """Conversations that will match a group escalating by waiting time (sorted set, score =
    when their oldest matching waiting message crosses its threshold, ms)."""
    return f"{prefix(team)}esc:{version}:{index}"


def conversation(team: str, conv: str) -> str:
    return f"{prefix(team)}c:{conv}"


def conversation_waiting(team: str, conv: str) -> str:
    """The waiting message ids of a conversation (list)."""
    return f"{prefix(team)}cw:{conv}"


def conversation_held(team: str, conv: str) -> str:
    """The conversation's messages in advisors' hands (set): a requeue finds them together."""
    return f"{prefix(team)}hd:{conv}"


def message(team: str, msg: str) -> str:
    return f"{prefix(team)}m:{msg}"


def channel_waiting(team: str, channel: str) -> str:
    """An earlier version's index of one channel's waiting messages by arrival (sorted set);
    read until `pushinbox migrate` moves it into the counts per second below."""
    return f"{prefix(team)}ch:{channel}"


def channel_counts(team: str, channel: str) -> str:
    """One channel's waiting messages counted per second of arrival (hash: the second →
    count) and in all (field ``n``): the stock count (scripts/lua/includes/channels.lua)."""
    return f"{prefix(team)}cn:{channel}"


def channel_seconds(team: str, channel: str) -> str:
    """The seconds of arrival a channel has waiting messages of (sorted set, scored by the
    arrival in ms of the message that opened the second): the oldest one's age."""
    return f"{prefix(team)}cb:{channel}"


def channels(team: str) -> str:
    return prefix(team) + "channels"


def advisor(team: str, adv: str) -> str:
    return f"{prefix(team)}a:{adv}"


def advisors(team: str) -> str:
    return prefix(team) + "advisors"


def current(team: str, adv: str) -> str:
    """Messages in an advisor's hands (sorted set by assignment time)."""
    return f"{prefix(team)}cur:{adv}"


def pushed(team: str, adv: str) -> str:
    """Pushed messages the advisor has not processed yet (sorted set by push time)."""
    return f"{prefix(team)}push:{adv}"


def pushed_conversations(team: str, adv: str) -> str:
    """Conversation -> count of its unprocessed pushed messages; HLEN is the capacity used."""
    return f"{prefix(team)}pconv:{adv}"


def on_hold(team: str, adv: str) -> str:
    return f"{prefix(team)}hold:{adv}"


def online(team: str) -> str:
    """Logged-in advisors by last-seen time: what the presence reaper reads."""
    return prefix(team) + "online"


def help_requests(team: str) -> str:
    return prefix(team) + "help"


def quarantine(team: str) -> str:
    return prefix(team) + "quar"


def done(team: str) -> str:
    return prefix(team) + "done"


def role(team: str, name: str) -> str:
    return f"{prefix(team)}role:{name}"


def roles(team: str) -> str:
    return prefix(team) + "roles"


def day(team: str, day_number: int) -> str:
    """Figures of one UTC day (days since the epoch): team totals and per-advisor fields."""
    return f"{prefix(team)}d:{day_number}"


def events(team: str) -> str:
    return prefix(team) + "events"


def customer(team: str, cust: str) -> str:
    return f"{prefix(team)}cu:{cust}"


def customer_conversations(team: str, cust: str) -> str:
    """A customer's conversations (hash: conversation -> '', scripts/lua/includes/customers.lua)."""
    return f"{prefix(team)}cc:{cust}"


def customer_conversations_set(team: str, cust: str) -> str:
    """The same as an earlier version kept it (a set), read until ``pushinbox migrate``."""
    return f"{prefix(team)}cuv:{cust}"


def hooks(team: str) -> str:
    """The team's webhook registrations (hash: hook id -> msgpack record)."""
    return f"{prefix(team)}hooks"


def hook_jobs(team: str) -> str:
    """Each hook's delivery job in flight (hash: hook id -> RQ job id): one at a time."""
    return f"{prefix(team)}hookjobs"
