"""Supervisors' settings: priority groups, triage rules, working hours (YAML or JSON files)."""

from __future__ import annotations

from typing import Any

import click

from cli.base import (
    Ctx,
    cli,
    load_file,
    pass_ctx,
    team_arg,
)
from cli.output import emit
from dispatcher import ops


# --- settings -------------------------------------------------------------------------------
@cli.group()
def groups() -> None:
    """Priority groups: the order in which waiting messages are pushed."""


@groups.command("show")
@team_arg
@pass_ctx
def groups_show(c: Ctx, team_id: str) -> None:
    """Show the priority groups (the implicit last group is 'everything else')."""
    s = c.d.run(ops.groups(team_id))
    rows = [{"position": i + 1, "name": g["name"], "match": g["match"],
             "requires_skills": ",".join(g.get("requires_skills", [])) or "-"}
            for i, g in enumerate(s.groups)]
    rows.append({"position": len(rows) + 1, "name": "everything else", "match": {},
                 "requires_skills": "-"})
    emit(s.to_dict(), c.json, rows=rows, title=f"order inside groups: {s.order}")


@groups.command("set")
@team_arg
@click.argument("file")
@pass_ctx
def groups_set(c: Ctx, team_id: str, file: str) -> None:
    """Replace the priority groups from a YAML or JSON file ('-': stdin).

    \b
    Example file:
      order: oldest_conversation
      groups:
        - name: VIP
          match: {customer_tags_any: [VIP]}
        - name: Reassigned
          match: {reassigned: true}
    Conditions: customer_tags_any, customer_tags_all, channel_in, reassigned,
    message_tags_any, message_tags_all, language_in, attribute_equals, attribute_in.
    """
    res = c.d.run(ops.set_groups(team_id, load_file(file)))
    emit(res, c.json)


@cli.group()
def triage() -> None:
    """Triage rules: route arriving messages to a named advisor or to a skill."""


@triage.command("set")
@team_arg
@click.argument("file")
@pass_ctx
def triage_set(c: Ctx, team_id: str, file: str) -> None:
    """Replace triage rules from YAML/JSON: a list of {name, match, advisor or skill}.

    \b
    Example file:
      - name: Korean speakers
        match: {language_in: [ko]}
        advisor: minji              # assigned to minji while she is logged in
      - name: Refund disputes
        match: {message_tags_any: [dispute]}
        skill: refunds              # waits in its group for advisors with the skill
    """
    rules = c.d.run(ops.set_triage(team_id, load_file(file)))
    emit([r.to_dict() for r in rules], c.json, rows=[_rule_row(r.to_dict()) for r in rules])


def _rule_row(rule: dict[str, Any]) -> dict[str, Any]:
    return {"name": rule["name"], "match": rule["match"], "advisor": rule.get("advisor", "-"),
            "skill": rule.get("skill", "-")}


@triage.command("show")
@team_arg
@pass_ctx
def triage_show(c: Ctx, team_id: str) -> None:
    """Show triage rules."""
    rows = [r.to_dict() for r in c.d.run(ops.triage(team_id))]
    emit(rows, c.json, rows=[_rule_row(r) for r in rows])


@cli.group()
def hours() -> None:
    """Working hours: breaks end by themselves at the end of a range."""


@hours.command("set")
@team_arg
@click.argument("file")
@pass_ctx
def hours_set(c: Ctx, team_id: str, file: str) -> None:
    """Set working hours from YAML/JSON.

    \b
    Example file:
      timezone: Europe/Paris
      week:
        mon: ["09:00-12:30", "13:30-18:00"]
        sat: ["10:00-14:00"]
    """
    h = c.d.run(ops.set_hours(team_id, load_file(file)))
    emit(h.to_dict(), c.json)


@hours.command("show")
@team_arg
@pass_ctx
def hours_show(c: Ctx, team_id: str) -> None:
    """Show working hours."""
    h = c.d.run(ops.hours(team_id))
    emit(h.to_dict() if h else None, c.json)
