"""structlog set-up: JSON lines in production, readable console output in a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["QuietLogger", "configure", "get_logger"]


def configure(json: bool | None = None, level: int = logging.INFO) -> None:
    """Configure structlog once per process; ``json`` defaults to "stderr is not a TTY"."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


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
