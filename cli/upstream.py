"""Upstream: messages in (one, or a JSONL file in atomic batches), customers' tags."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

import click

from cli.base import (
    Ctx,
    cli,
    pass_ctx,
    team_arg,
)
from cli.output import emit
from dispatcher import ops
from dispatcher.errors import ValidationError
from dispatcher.model import IncomingMessage


# --- upstream -----------------------------------------------------------------------------
@cli.command()
@team_arg
@click.argument("file", required=False)
@click.option("--id", "msg_id", help="Message id (one message from options).")
@click.option("--conversation")
@click.option("--customer")
@click.option("--channel")
@click.option("--text", help="Message text.")
@click.option("--customer-tag", "customer_tags", multiple=True)
@click.option("--tag", "tags", multiple=True)
@click.option("--language")
@click.option("--batch", default=100, show_default=True, help="Messages per atomic call.")
@pass_ctx
def ingest(c: Ctx, team_id: str, file: str | None, msg_id: str | None,
           conversation: str | None, customer: str | None, channel: str | None,
           text: str | None, customer_tags: tuple[str, ...], tags: tuple[str, ...],
           language: str | None, batch: int) -> None:
    """Push customer messages in: one from options, or a JSONL file ('-': stdin).

    \b
    Examples:
      pushinbox ingest demo --id m1 --conversation c1 --customer u1 --channel webchat \\
          --text "Where is my order?" --customer-tag VIP
      pushinbox ingest demo messages.jsonl
    Each JSONL line: {"id", "conversation", "customer", "channel", "body",
    "language"?, "tags"?, "attributes"?, "customer_tags"?}. Ingest is idempotent by id.
    """
    if file is None:
        if not msg_id:
            raise ValidationError("give a JSONL file, or --id with the message options", "id")
        message: dict[str, Any] = {"id": msg_id, "conversation": conversation or msg_id,
                                   "customer": customer or "anonymous",
                                   "channel": channel or "webchat", "body": {"text": text or ""}}
        if customer_tags:
            message["customer_tags"] = list(customer_tags)
        if tags:
            message["tags"] = list(tags)
        if language:
            message["language"] = language
        status = c.d.run(ops.ingest_one(team_id, message))
        emit({"id": msg_id, "status": status}, c.json)
        return
    try:
        with (open(file, encoding="utf-8") if file != "-" else contextlib.nullcontext(
                sys.stdin)) as stream:
            numbered = [(n, ln) for n, ln in enumerate(stream.read().splitlines(), 1)
                        if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {file}: {exc}", field="file") from exc
    # The whole file is checked before anything is stored; errors name the file's line.
    msgs, line_of = [], []
    for n, line in numbered:
        try:
            msgs.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValidationError(f"line {n} is not JSON: {exc}", field=f"line {n}") from exc
        try:
            IncomingMessage.parse(msgs[-1])
        except ValidationError as exc:
            raise type(exc)(f"line {n}: {exc.message}", field=exc.field) from exc
        line_of.append(n)
    counts: dict[str, int] = {}
    with click.progressbar(length=len(msgs), label="ingesting", file=sys.stderr,
                           hidden=c.json) as bar:
        for start in range(0, len(msgs), batch):
            chunk = msgs[start:start + batch]
            try:
                results = c.d.run(ops.ingest_many(team_id, chunk))
            except ValidationError as exc:  # refused by Redis state (a conflict, a cap)
                stored = f"lines up to {line_of[start - 1]} were stored" if start else (
                    "nothing was stored")
                raise type(exc)(
                    f"lines {line_of[start]}-{line_of[start + len(chunk) - 1]} were refused "
                    f"({exc.message}); {stored}; ingest is idempotent by id: fix the file "
                    "and run it again", field=exc.field) from exc
            for s in results:
                key = s.split(":")[0]
                counts[key] = counts.get(key, 0) + 1
            bar.update(len(chunk))
    emit(counts, c.json)


@cli.command("customer-tags")
@team_arg
@click.argument("customer")
@click.argument("tags", nargs=-1)
@pass_ctx
def customer_tags(c: Ctx, team_id: str, customer: str, tags: tuple[str, ...]) -> None:
    """Set a customer's tags; their waiting messages move to the group they now match.

    Example: pushinbox customer-tags demo customer-3 VIP
    """
    moved = c.d.run(ops.set_customer_tags(team_id, customer, list(tags)))
    emit({"customer": customer, "tags": list(tags), "conversations_moved": moved}, c.json)
