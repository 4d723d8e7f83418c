"""A clock the caller moves by hand, for ``Dispatcher(clock=...)`` in tests and simulations
(production uses the Redis clock: every process agrees)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["FakeClock"]


class FakeClock:
    """A clock the tests move by hand (milliseconds since the epoch), for ``Dispatcher(clock=)``."""

    def __init__(self, start: datetime | int) -> None:
        self.ms = int(start.timestamp() * 1000) if isinstance(start, datetime) else int(start)

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> int:
        self.ms += int(seconds * 1000)
        return self.ms

    def set(self, moment: datetime) -> int:
        self.ms = int(moment.timestamp() * 1000)
        return self.ms

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)
