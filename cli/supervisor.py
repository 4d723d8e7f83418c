"""Supervisors: hand assignment, requeues, the stock, figures, the ordered list, help
requests, quarantine, events, webhooks."""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime, timedelta
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
from cli.output import emit
from dispatcher import ops
from dispatcher.errors import ValidationError
from dispatcher.webhooks import EVENTS as HOOK_EVENTS


# --- supervisors -------------------------------------------------------------------------------
@cli.command()
@team_arg
@advisor_arg
@message_arg
@pass_ctx
def assign(c: Ctx, team_id: str, advisor_id: str, message_id: str) -> None:
    """Assign a message by hand (from the stock, help requests, quarantine or an advisor)."""
    rows = [msg_row(m) for m in c.d.run(ops.assign(team_id, advisor_id, message_id, by="cli"))]
    emit(rows, c.json, rows=rows)


@cli.command()
@team_arg
@click.argument("advisor_id", required=False)
@click.option("--message", "message_id", help="Send this message back to the stock instead.")
@pass_ctx
def requeue(c: Ctx, team_id: str, advisor_id: str | None, message_id: str | None) -> None:
    """Hand messages back to the team's stock, marked reassigned.

    \b
    Examples:
      pushinbox requeue demo bob              # a logged-out advisor's messages, now
      pushinbox requeue demo --message m42    # one message (and its conversation)
    """
    if message_id:
        status = c.d.run(ops.send_to_stock(team_id, message_id))
        emit({"message": message_id, "status": status}, c.json)
        return
    if not advisor_id:
        raise ValidationError("give an advisor, or --message", field="advisor")
    with contextlib.ExitStack() as stack:
        bars: list[Any] = []

        def progress(done: int, left: int) -> None:  # a bar once there is something to show
            if not bars and done + left == 0:
                return
            if not bars:
                bars.append(stack.enter_context(click.progressbar(
                    length=max(1, done + left), label="requeueing", file=sys.stderr,
                    hidden=c.json)))
            bars[0].update(done - bars[0].pos)

        moved = c.d.run(ops.requeue_now(team_id, advisor_id, c.d.batch_size, progress))
    emit({"advisor": advisor_id, "requeued": moved}, c.json)


@cli.command()
@team_arg
@pass_ctx
def stock(c: Ctx, team_id: str) -> None:
    """The team's waiting messages, total and per channel, with the oldest one's age."""
    s = c.d.run(ops.team_stock(team_id))
    rows: list[dict[str, Any]] = [{"channel": ch.channel, "waiting": ch.waiting,
                                   "oldest_age_s": ch.oldest_age_s} for ch in s.channels]
    rows.append({"channel": "TOTAL", "waiting": s.total, "oldest_age_s": None})
    emit(s.to_dict(), c.json, rows=rows)


@cli.command()
@team_arg
@advisor_arg
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), help="UTC day (default today).")
@pass_ctx
def stats(c: Ctx, team_id: str, advisor_id: str, day: datetime | None) -> None:
    """An advisor's figures for the UTC day: responses, archives, breaks, assigned, stock."""
    s = c.d.run(ops.advisor_stats(team_id, advisor_id, day.date() if day else None))
    emit(s.to_dict(), c.json)


@cli.command()
@team_arg
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]),
              help="First UTC day (default: 6 days ago).")
@click.option("--days", default=7, show_default=True)
@pass_ctx
def breaks(c: Ctx, team_id: str, start: datetime | None, days: int) -> None:
    """Break time per advisor and for the team, per UTC day.

    \b
    Examples:
      pushinbox breaks demo                       # the last 7 days
      pushinbox breaks demo --start 2026-11-01 --days 30
    """
    first = start.date() if start else datetime.fromtimestamp(
        c.d.now_ms() / 1000, UTC).date() - timedelta(days=days - 1)
    out = c.d.run(ops.breaks(team_id, first, days))
    rows = [{"day": d["day"], "advisor": a, "break_s": s}
            for d in out["days"] for a, s in d["advisors"].items()]
    rows += [{"day": d["day"], "advisor": "TEAM", "break_s": d["team_seconds"]}
             for d in out["days"]]
    emit(out, c.json, rows=sorted(rows, key=lambda r: (r["day"], r["advisor"])))


@cli.command()
@team_arg
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), help="The day (default: today).")
@click.option("--tz", help="Read the day in this time zone (default: UTC), e.g. Europe/Paris; "
              "'team': the time zone of the team's working hours.")
@click.option("--csv", "as_csv", is_flag=True, help="Both tables as one CSV.")
@pass_ctx
def report(c: Ctx, team_id: str, day: datetime | None, tz: str | None, as_csv: bool) -> None:
    """A day's report: per advisor (pushed, responses, archives, help requests, reassigned
    away, break time, handle time p50/p90) and per group (arrivals, pushes, waiting time
    p50/p90/max, share within target_wait). Times are read to fixed buckets (10 s, 30 s,
    1 min, 2, 5, 10, 15, 30 min, 1 h, 2, 4, 8, 24 h); the longest wait is exact.

    \b
    Examples:
      pushinbox report demo
      pushinbox report demo --day 2026-11-25 --tz Europe/Paris
      pushinbox report demo --tz team           # the working hours' time zone
      pushinbox report demo --csv > day.csv
    """
    from dispatcher import reports

    when = day.date() if day else datetime.fromtimestamp(c.d.now_ms() / 1000, UTC).date()
    out = c.d.run(ops.daily_report(team_id, when, tz))
    if as_csv:
        click.echo(reports.to_csv(out), nl=False)
        return
    if c.json:
        emit(out, True)
        return
    emit(out["advisors"], False, rows=out["advisors"],
         title=f"{team_id} on {out['day']} ({out['tz']}): advisors")
    click.echo()
    emit(out["groups"], False, rows=out["groups"], title="groups")


@cli.command()
@team_arg
@click.option("-n", default=10, show_default=True, help="How many conversations.")
@click.option("--advisor", "advisor_id", help="What this advisor's next presses get "
              "(the groups whose required skills they have).")
@click.option("--groups", "by_group", is_flag=True,
              help="Per group: waiting conversations and the logged-in advisors who may take "
                   "them; UNSERVED where some wait and nobody logged in may.")
@pass_ctx
def preview(c: Ctx, team_id: str, n: int, advisor_id: str | None, by_group: bool) -> None:
    """The first N conversations of the ordered list: exactly what the next N presses get.

    \b
    Examples:
      pushinbox preview demo -n 5
      pushinbox preview demo --advisor kim      # only the groups kim has the skills for
      pushinbox preview demo --groups           # who may take each group
    """
    if by_group:
        groups = c.d.run(ops.group_stock(team_id))
        emit(groups, c.json, rows=[
            {"group": g["group"], "requires": ",".join(g["requires_skills"]) or "-",
             "waiting": g["waiting"], "may_take": g["advisors_who_may_take"],
             "flag": "UNSERVED" if g["unserved"] else ""} for g in groups])
        return
    rows = c.d.run(ops.preview(team_id, n, advisor_id))
    emit([{**r, "messages": [m.to_dict() for m in r["messages"]]} for r in rows], c.json,
         rows=[{"position": r["position"], "conversation": r["conversation"],
                "group": r["group"], "why": r["why"],
                "messages": ",".join(m.id for m in r["messages"])} for r in rows])


@cli.command("help-requests")
@team_arg
@pass_ctx
def help_requests(c: Ctx, team_id: str) -> None:
    """The team's help requests (assign one to an advisor with `pushinbox assign`)."""
    msgs = c.d.run(ops.place(team_id, "help"))
    emit([m.to_dict() for m in msgs], c.json, rows=[msg_row(m) for m in msgs])


@cli.command()
@team_arg
@pass_ctx
def quarantine(c: Ctx, team_id: str) -> None:
    """Messages set aside after too many requeues (`pushinbox requeue --message` releases)."""
    msgs = c.d.run(ops.place(team_id, "quarantine"))
    emit([m.to_dict() for m in msgs], c.json, rows=[msg_row(m) for m in msgs])


@cli.command()
@team_arg
@click.option("--since", default="-", help="Event id to read after.")
@click.option("--count", default=50, show_default=True)
@pass_ctx
def events(c: Ctx, team_id: str, since: str, count: int) -> None:
    """The team's audit trail (a capped Redis Stream): the newest first, or with --since
    the events after that id, oldest first.

    \b
    Examples:
      pushinbox events demo --count 20
      pushinbox events demo --since 1795631795236-0
    """
    rows = c.d.run(ops.events(team_id, since, count, newest_first=since in ("-", "")))
    table_rows = [{"id": r["id"], "at": int(r.get("t", 0)), "event": r.get("e"),
                   "message": r.get("m"), "advisor": r.get("a"), "why": r.get("why")}
                  for r in rows]
    emit(rows, c.json, rows=table_rows)


@cli.group()
def hook() -> None:
    """Webhooks: signed HTTP callbacks to upstream services on team events."""


@hook.command("add")
@team_arg
@click.argument("url")
@click.option("--event", "events", multiple=True, required=True,
              help="Event type (repeat): " + ", ".join(HOOK_EVENTS) + ".")
@pass_ctx
def hook_add(c: Ctx, team_id: str, url: str, events: tuple[str, ...]) -> None:
    """Register a webhook; prints its signing secret (shown once)."""
    from dispatcher import webhooks

    webhooks.check_events(list(events))
    webhooks.check_destination(url)
    made = c.d.run(webhooks.create_hook(team_id, url, list(events)))
    emit(made.to_dict(), c.json)


@hook.command("list")
@team_arg
@pass_ctx
def hook_list(c: Ctx, team_id: str) -> None:
    """The team's webhooks."""
    from dispatcher import webhooks

    rows = [h.to_dict() for h in c.d.run(webhooks.list_hooks(team_id))]
    emit(rows, c.json, rows=rows)


@hook.command("remove")
@team_arg
@click.argument("hook_id")
@pass_ctx
def hook_remove(c: Ctx, team_id: str, hook_id: str) -> None:
    """Remove a webhook."""
    from dispatcher import webhooks

    c.d.run(webhooks.delete_hook(team_id, hook_id))
    emit({"removed": hook_id}, c.json)
