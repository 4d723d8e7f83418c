"""Readable tables by default, JSON with --json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click


def emit(data: Any, as_json: bool, rows: Sequence[dict[str, Any]] | None = None,
         columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print ``data`` as JSON, or ``rows`` as a table (``data`` as key: value lines if none)."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
        return
    if title:
        click.echo(title)
    if rows is None:
        if isinstance(data, dict):
            width = max((len(str(k)) for k in data), default=0)
            for k, v in data.items():
                click.echo(f"{str(k).ljust(width)}  {_cell(v, str(k))}")
        else:
            click.echo(_cell(data))
        return
    table(rows, columns)


#: Fields that hold a moment in milliseconds since the epoch: shown as ISO 8601 UTC.
_TIME_KEYS = ("_at", "since", "until", "at")


def _is_time(key: str, v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool) and v > 10**11
            and str(key).endswith(_TIME_KEYS))


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _cell(v: Any, key: str = "") -> str:
    if _is_time(key, v):
        return iso(v)
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False, default=str)
    return str(v)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
    if not rows:
        click.echo("(none)")
        return
    cols = list(columns or rows[0].keys())
    cells = [[_cell(r.get(c), c) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
