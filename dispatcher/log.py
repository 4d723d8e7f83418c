"""structlog set-up: JSON lines in production, readable console output in a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

__all__ = ["REQUEST", "QuietLogger", "configure", "get_logger", "info_line"]

#: What every line a request logs carries (its request id, team and advisor): set once per
#: request by the service (httpapi.access_log), merged into each line by ``configure``'s
#: processors. One variable set per request, where structlog's contextvars set one per field
#: and copied the whole context for every line.
REQUEST: ContextVar[dict[str, Any] | None] = ContextVar("pushinbox_request", default=None)


def _merge_request(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    bound = REQUEST.get()
    if bound:
        for key, value in bound.items():
            event.setdefault(key, value)
    return event


_json = msgspec.json.Encoder(enc_hook=repr)  # a value JSON has no type for: its repr


def _dumps(event: dict[str, Any], **_: Any) -> bytes:
    return _json.encode(event)


def configure(json: bool | None = None, level: int = logging.INFO) -> None:
    """Configure structlog once per process; ``json`` defaults to "stderr is not a TTY".

    JSON lines are encoded by msgspec and written as bytes, one write per line: the service
    writes a line per request, which through the stdlib's json and print cost ~44 µs on this
    machine (docs/performance.md). Loggers are not cached on first use: the CLI configures
    twice (quiet for commands, then INFO for a service), and a cached logger would keep the
    first."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps) if json
        else structlog.dev.ConsoleRenderer()
    )
    out = getattr(sys.stderr, "buffer", None)
    factory: Any = structlog.PrintLoggerFactory(sys.stderr)
    if json and out is not None:
        factory = structlog.BytesLoggerFactory(out)
    elif json:  # a text-only stderr (an embedding app's): the same line as text
        renderer = structlog.processors.JSONRenderer(
            serializer=lambda event, **_: _json.encode(event).decode())
    global _direct
    processors: list[structlog.typing.Processor] = [
        _merge_request,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        renderer,
    ]
    _direct = (processors, out) if json and out is not None and level <= logging.INFO else None
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


#: configure()'s processors and byte stream while they are structlog's configuration and
#: write JSON lines at INFO: info_line may write their line itself.
_direct: tuple[list[Any], Any] | None = None


def info_line(logger: Any, event: str, **fields: Any) -> None:
    """``logger.info(event, **fields)``; written directly, the same bytes, while ``configure``
    set up JSON lines (the service's access log, a line per request: structlog's chain of
    processors and bound loggers took 23 µs a line in a micro-benchmark on this machine, this
    7.7; docs/performance.md). The keys in structlog's order: the fields, ``event``, the
    request's bound fields, ``level``, ``timestamp``."""
    direct = _direct
    if direct is None or structlog.get_config()["processors"] is not direct[0]:
        logger.info(event, **fields)  # not ours, or configured again since
        return
    fields["event"] = event
    bound = REQUEST.get()
    if bound:
        for key, value in bound.items():
            fields.setdefault(key, value)
    fields["level"] = "info"
    fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    direct[1].write(_json.encode(fields) + b"\n")
    direct[1].flush()


def _quiet(*_: Any, **__: Any) -> None:
    return None


class QuietLogger:
    """A library's logger: silent until the application configures structlog (``configure``
    above, or its own ``structlog.configure``); then structlog's logger of that name. A
    library stays quiet unless asked: the README's Python example prints nothing."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, level: str) -> Any:
        if not structlog.is_configured():
            return _quiet
        return getattr(structlog.get_logger(self._name), level)


def get_logger(name: str) -> Any:
    return QuietLogger(name)
