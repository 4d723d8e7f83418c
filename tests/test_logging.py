"""The service's log lines: the access log's direct line (dispatcher.log.info_line) is the line
structlog's configured chain writes, and it defers to whatever configuration came after ours.
Each case runs in a process of its own: logging is configured once per process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROLOGUE = """
import logging, structlog
from dispatcher.log import REQUEST, configure, info_line
log = structlog.get_logger("pushinbox.access")
REQUEST.set({"request_id": "r-1", "team": "acme", "advisor": "ann"})
fields = dict(method="POST", path="/v1/teams/acme/advisors/ann/next", status=200, ms=1.25)
"""


def lines(script: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROLOGUE + textwrap.dedent(script)],
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout == ""  # logs go to stderr only
    return out.stderr.splitlines()


def test_the_direct_access_log_line_is_the_line_structlog_writes() -> None:
    got = lines("""
        configure(json=True)
        log.info("request", **fields)
        info_line(log, "request", **dict(fields))
        log.info("request", extra="x", **fields)   # the caller's own field wins over the bound
        info_line(log, "request", extra="x", **dict(fields))
        info_line(log, "request", team="other", **dict(fields))
        log.info("request", team="other", **fields)
    """)
    assert len(got) == 6
    parsed = [json.loads(x) for x in got]
    for a, b in ((0, 1), (2, 3), (4, 5)):
        assert list(parsed[a]) == list(parsed[b])  # the same keys in the same order
        for p in (parsed[a], parsed[b]):
            assert p["timestamp"].endswith("Z")
            p.pop("timestamp")
        assert parsed[a] == parsed[b]
        head = lambda line: line.split(',"timestamp"')[0]  # noqa: E731
        assert head(got[a]) == head(got[b])  # byte for byte up to the time
    assert parsed[0] == {"method": "POST", "path": "/v1/teams/acme/advisors/ann/next",
                         "status": 200, "ms": 1.25, "event": "request", "request_id": "r-1",
                         "team": "acme", "advisor": "ann", "level": "info"}
    assert parsed[4]["team"] == "other"


def test_the_direct_line_follows_a_configuration_made_after_ours() -> None:
    got = lines("""
        configure(json=True)
        structlog.configure(processors=[structlog.processors.KeyValueRenderer(
            key_order=["event", "status"])], logger_factory=structlog.PrintLoggerFactory(
            __import__("sys").stderr))
        info_line(log, "request", **dict(fields))
    """)
    assert len(got) == 1 and got[0].startswith("event='request' status=200"), got


def test_no_access_line_below_the_configured_level() -> None:
    assert lines("""
        configure(json=True, level=logging.WARNING)
        info_line(log, "request", **dict(fields))
        log.info("request", **fields)
    """) == []


def test_without_configure_the_direct_line_leaves_it_to_structlog_s_defaults() -> None:
    got = lines("""
        import sys
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
        info_line(log, "request", **dict(fields))
    """)
    assert len(got) == 1 and "request" in got[0] and not got[0].startswith("{")
