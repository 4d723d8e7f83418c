"""The effect vocabulary: what an operation may ask its driver for, and nothing else.

An operation (``dispatcher.ops``, ``dispatcher.tokens``, ``dispatcher.webhooks``) is a
generator that yields these requests and receives their answers; ``Dispatcher`` and
``AsyncDispatcher`` (``dispatcher.api``) are the only code that turns them into I/O.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Cmd", "Commands", "Effect", "Job", "Now", "Op", "Script", "read"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Script:
    """Run one Lua script for a team; the answer is the script's unpacked result."""

    name: str
    team: str
    opts: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Cmd:
    """One read-only redis-py client method call (``name`` is the method)."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Commands:
    """Plain commands in one pipeline (one round trip); the answer is the list of results.

    Reads, and single-command writes outside the queue state (the team registry, tokens,
    webhook registrations): one command is atomic by itself.
    """

    cmds: list[Cmd]


@dataclass(frozen=True, slots=True)
class Now:
    """The dispatcher's clock in ms: a test clock, else Redis TIME (one clock for all)."""


@dataclass(frozen=True, slots=True)
class Job:
    """Hand long or delayed work to the jobs runner (``Jobs`` method ``kind``); answer: job id."""

    kind: str
    args: tuple[Any, ...]


Effect = Script | Commands | Now | Job
Op = Generator[Effect, Any, T]


def read(name: str, *args: Any, **kwargs: Any) -> Op[Any]:
    """One plain read on its own (one round trip)."""
    rows = yield Commands([Cmd(name, args, kwargs)])
    return rows[0]
