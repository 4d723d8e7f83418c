"""The registry of event types: every event a script writes on a team's stream, once.

The Lua scripts emit them (`event(cfg, '<name>', ...)`, each script's header lists its own);
the live feed reads the flags below to know what an event may have changed; webhooks offer
the `hook` ones; the CLI's help lists those. tests/test_scripts.py holds all four to this
registry, so a new event is added here or a test says where it is missing.

Stream fields: `e` the name, `t` the time (ms), then `m` message, `a` advisor, `c`
conversation, `ch` channel and the event's own fields.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EVENTS", "REGISTRY", "EventType", "names"]


@dataclass(frozen=True)
class EventType:
    name: str
    summary: str
    #: The team's waiting stock may have changed (live: a stock update).
    stock: bool = False
    #: An advisor's own screen or figures may have changed (live: their update).
    figures: bool = False
    #: Who may receive messages changed (live: team streams get `advisors`).
    presence: bool = False
    #: A webhook may subscribe to it.
    hook: bool = False


REGISTRY: tuple[EventType, ...] = (
    EventType("ingested", "a message arrived (m, c, ch)", stock=True),
    EventType("assigned", "a message reached an advisor (m, a, c, via, why)", stock=True,
              figures=True, hook=True),
    EventType("replied", "an advisor answered a message (m, a, c)", figures=True, hook=True),
    EventType("archived", "an advisor closed a message without an answer (m, a, c)",
              figures=True, hook=True),
    EventType("help_requested", "an advisor asked for help on a message (m, a, c, note)",
              stock=True, figures=True, hook=True),
    EventType("requeued", "a message went back to the stock, marked reassigned (m, c, why)",
              stock=True, figures=True, hook=True),
    EventType("quarantined", "a message was requeued too often (m, c, why, n)", stock=True),
    EventType("held", "an advisor put a message on hold (m, a, c)", figures=True),
    EventType("unheld", "an advisor took a message off hold (m, a, c)", figures=True),
    EventType("logged_in", "an advisor started a session (a)", figures=True, presence=True,
              hook=True),
    EventType("logged_out", "an advisor's session ended (a, why)", stock=True, figures=True,
              presence=True, hook=True),
    EventType("break_started", "an advisor went on a break (a)", figures=True,
              presence=True, hook=True),
    EventType("break_ended", "an advisor's break ended (a, ms, why)", figures=True,
              presence=True, hook=True),
    EventType("customer_tags", "a customer's tags changed (cust)", stock=True),
    EventType("advisor_set", "an advisor was created or changed (a, role)"),
    EventType("role_set", "a role was created or changed (role, push, cap)"),
    EventType("groups_changed", "the priority groups changed (ver)"),
    EventType("triage_changed", "the triage rules changed"),
    EventType("settings_changed", "team options changed (fields)"),
    EventType("hook_set", "a webhook was registered (hook)"),
    EventType("hook_deleted", "a webhook was removed (hook)"),
    EventType("team_created", "the team was created (name)"),
)

EVENTS: dict[str, EventType] = {e.name: e for e in REGISTRY}


def names(*, stock: bool = False, figures: bool = False, presence: bool = False,
          hook: bool = False) -> frozenset[str]:
    """The names of the event types with every flag asked for (none asked: all of them)."""
    return frozenset(e.name for e in REGISTRY
                     if (not stock or e.stock) and (not figures or e.figures)
                     and (not presence or e.presence) and (not hook or e.hook))
