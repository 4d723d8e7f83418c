"""Advisors: session, *Process a new message*, actions on a message, breaks, current messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from cli.base import (
    Ctx,
    advisor_arg,
    cli,
    message_arg,
    msg_row,
    pass_ctx,
    team_arg,
)
from cli.output import emit, table
from dispatcher import ops


# --- advisor actions --------------------------------------------------------------------------
@cli.command()
@team_arg
@advisor_arg
@pass_ctx
def login(c: Ctx, team_id: str, advisor_id: str) -> None:
    """Log an advisor in.  Example: pushinbox login demo alice"""
    emit({"advisor": advisor_id, "session": c.d.run(ops.login(team_id, advisor_id))}, c.json)


@cli.command()
@team_arg
@advisor_arg
@pass_ctx
def logout(c: Ctx, team_id: str, advisor_id: str) -> None:
    """Log an advisor out; their messages go back to the team, marked reassigned."""
    job = c.d.run(ops.logout(team_id, advisor_id))
    emit({"advisor": advisor_id, "logged_out": True, "requeue_job": job}, c.json)


@cli.command("next")
@team_arg
@advisor_arg
@click.option("--request-id", help="Client request id: a retry gets the same answer.")
@pass_ctx
def next_cmd(c: Ctx, team_id: str, advisor_id: str, request_id: str | None) -> None:
    """Process a new message: push the first message of the ordered list.

    Example: pushinbox next demo alice
    """
    p = c.d.run(ops.next_message(team_id, advisor_id, request_id))
    if c.json:
        emit(p.to_dict(), True)
        return
    _show_push(p.status, p.messages)


def _show_push(status: str, messages: list[Any]) -> None:
    if status == "empty":
        click.echo("The team's stock is empty: nothing to process.")
        return
    if status == "pending":
        click.echo("Process this message first:")
    table([msg_row(m) for m in messages])


def _action(name: str, action: str, doc: str, hidden: bool = False, **extra: Any) -> None:
    @cli.command(name, help=doc, hidden=hidden)
    @team_arg
    @advisor_arg
    @message_arg
    @pass_ctx
    def cmd(c: Ctx, team_id: str, advisor_id: str, message_id: str) -> None:
        status = c.d.run(ops.act(action, team_id, advisor_id, message_id, **extra))
        emit({"message": message_id, "action": name, "status": status}, c.json)


_action("reply", "reply", "Reply to a message (it is done and counts as a response).\n\n"
        "Example: pushinbox reply demo alice demo-msg-12")
_action("archive", "archive", "Archive a message (done; archiving twice is a no-op).\n\n"
        "Example: pushinbox archive demo alice demo-msg-12")
_action("request-help", "help",
        "Request help on a message: it goes to the team's help requests.\n\n"
        "Example: pushinbox request-help demo alice demo-msg-12")
_action("help", "help", "Old name of request-help.", hidden=True)
_action("hold", "hold", "Put a message on hold: it stays yours but no longer blocks pushes."
        "\n\nExample: pushinbox hold demo alice demo-msg-12")
_action("unhold", "hold", "Take a message off hold.\n\n"
        "Example: pushinbox unhold demo alice demo-msg-12", off=True)


@cli.command("reply-and-next")
@team_arg
@advisor_arg
@message_arg
@click.option("--request-id", help="Client request id for the press: a retry gets the same "
              "answer.")
@pass_ctx
def reply_and_next(c: Ctx, team_id: str, advisor_id: str, message_id: str,
                   request_id: str | None) -> None:
    """Reply to a message, then process a new message, in one call (nothing is done when
    either is refused).

    Example: pushinbox reply-and-next demo alice demo-msg-12
    """
    out = c.d.run(ops.reply_next(team_id, advisor_id, message_id, request_id))
    if c.json:
        emit(out.to_dict(), True)
        return
    click.echo(f"Replied to {message_id}." if out.replied == "ok"
               else f"{message_id} was replied already.")
    _show_push(out.status, out.messages)


@cli.command()
@team_arg
@advisor_arg
@message_arg
@pass_ctx
def take(c: Ctx, team_id: str, advisor_id: str, message_id: str) -> None:
    """Pick a waiting message (advisors whose role has push mode off)."""
    rows = [msg_row(m) for m in c.d.run(ops.take(team_id, advisor_id, message_id))]
    emit(rows, c.json, rows=rows)


@cli.group("break")
def break_group() -> None:
    """Breaks: end by the advisor, by processing a new message, or at the end of hours.

    \b
    Examples:
      pushinbox break start demo alice
      pushinbox break end demo alice
    """


@break_group.command("start")
@team_arg
@advisor_arg
@pass_ctx
def break_start(c: Ctx, team_id: str, advisor_id: str) -> None:
    """Start a break.  Example: pushinbox break start demo alice"""
    b = c.d.run(ops.start_break(team_id, advisor_id))
    until = datetime.fromtimestamp(b.until / 1000, UTC).isoformat() if b.until else None
    emit({"advisor": advisor_id, "status": b.status,
          "since": datetime.fromtimestamp(b.since / 1000, UTC).isoformat(),
          "ends_at_end_of_hours": until}, c.json)


@break_group.command("end")
@team_arg
@advisor_arg
@pass_ctx
def break_end(c: Ctx, team_id: str, advisor_id: str) -> None:
    """End a break."""
    ms = c.d.run(ops.end_break(team_id, advisor_id))
    emit({"advisor": advisor_id, "break_seconds": ms / 1000}, c.json)


@cli.command()
@team_arg
@advisor_arg
@pass_ctx
def current(c: Ctx, team_id: str, advisor_id: str) -> None:
    """Your current messages: pushed, triaged, assigned by hand, on hold."""
    msgs = c.d.run(ops.current(team_id, advisor_id))
    emit([m.to_dict() for m in msgs], c.json, rows=[msg_row(m) for m in msgs])
