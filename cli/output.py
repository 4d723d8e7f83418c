"""Readable tables by default, JSON with --json."""

from __future__ import annotations

import json
from collections.abc import Sequence
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
                click.echo(f"{str(k).ljust(width)}  {_cell(v)}")
        else:
            click.echo(_cell(data))
        return
    table(rows, columns)


def _cell(v: Any) -> str:
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
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
