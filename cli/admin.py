"""Admins: teams, roles, advisors and tokens."""

from __future__ import annotations

import click

from cli.base import (
    Ctx,
    advisor_arg,
    cli,
    pass_ctx,
    team_arg,
)
from cli.output import emit
from dispatcher import defaults, ops
from dispatcher.errors import ValidationError


# --- teams, roles, advisors ---------------------------------------------------------------
@cli.group()
def team() -> None:
    """Create, list and configure teams."""


@team.command("create")
@team_arg
@click.option("--name", help="Display name.")
@pass_ctx
def team_create(c: Ctx, team_id: str, name: str | None) -> None:
    """Create a team.  Example: pushinbox team create acme --name "Acme care" """
    c.d.run(ops.create_team(team_id, name))
    emit({"team": team_id, "created": True}, c.json)


@team.command("delete")
@team_arg
@click.option("--yes", is_flag=True, help="Confirm: everything the team holds is removed.")
@pass_ctx
def team_delete(c: Ctx, team_id: str, yes: bool) -> None:
    """Delete a team and everything it holds (messages, advisors, figures, webhooks).

    Example: pushinbox team delete old-team --yes
    """
    if not yes:
        raise ValidationError(f"deleting team {team_id} removes all it holds; add --yes",
                              field="yes")
    deleted = c.d.run(ops.delete_team(team_id, defaults.DELETE_BATCH))
    emit({"team": team_id, "deleted_keys": deleted}, c.json)


@team.command("list")
@pass_ctx
def team_list(c: Ctx) -> None:
    """List teams."""
    teams = c.d.run(ops.teams())
    emit(teams, c.json, rows=[{"team": t} for t in teams])


@team.command("show")
@team_arg
@pass_ctx
def team_show(c: Ctx, team_id: str) -> None:
    """Show a team's settings."""
    emit(c.d.run(ops.team_settings(team_id)), c.json)


@team.command("live")
@team_arg
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.2),
              help="Seconds between refreshes (at least 0.2: each is a few round trips).")
@click.option("--count", type=click.IntRange(min=1),
              help="Stop after this many refreshes (default: Ctrl-C).")
@pass_ctx
def team_live(c: Ctx, team_id: str, interval: float, count: int | None) -> None:
    """The team now, refreshing like top: advisors (state and since when, what they hold,
    today's figures, skills) and groups (waiting, oldest wait, the last 15 minutes' arrivals
    and pushes, who may take them). --json prints one snapshot.

    \b
    Examples:
      pushinbox team live demo
      pushinbox --json team live demo | jq '.groups[] | select(.unserved)'
    """
    import time

    if c.json:
        emit(c.d.run(ops.team_live(team_id)), True)
        return
    shown = 0
    try:
        while count is None or shown < count:
            view = c.d.run(ops.team_live(team_id))
            if shown and count is None:
                click.clear()
            stamp = time.strftime("%H:%M:%S", time.gmtime(view["at"] / 1000))
            emit(None, False, rows=[{
                "advisor": a["advisor"], "state": a["state"],
                "for_s": a["seconds_in_state"], "holding": a["holding"],
                "oldest_held_s": a["oldest_held_s"], "responses": a["responses_today"],
                "archives": a["archives_today"], "skills": ",".join(a["skills"]) or "-",
            } for a in view["advisors"]], title=f"{team_id} at {stamp} UTC: advisors")
            click.echo()
            emit(None, False, rows=[{
                "group": g["group"], "waiting": g["waiting"], "oldest_wait_s": g["oldest_wait_s"],
                "arrived_15min": g["arrivals_15min"], "pushed_15min": g["pushes_15min"],
                "may_take": g["advisors_who_may_take"],
                "flag": "UNSERVED" if g["unserved"] else "",
            } for g in view["groups"]], title="groups")
            shown += 1
            if count is None or shown < count:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass


@team.command("set")
@team_arg
@click.option("--name")
@click.option("--presence-timeout", type=int, help="Seconds of silence before the reaper logs "
              "an advisor out.")
@click.option("--untouched-after", type=int,
              help="Seconds after which an untouched pushed message goes back (0: off).")
@click.option("--logout-at-end-of-hours/--no-logout-at-end-of-hours", default=None)
@click.option("--max-requeues", type=int, help="Requeues before a message is quarantined.")
@click.option("--retention", type=int, help="Seconds done messages are kept.")
@click.option("--max-messages", type=int,
              help="Messages the team may store: waiting, in hands, done within retention "
                   "(0: no bound; default 10,000,000). Protects the other teams' Redis.")
@click.option("--max-body-bytes", type=int,
              help="Bytes of message bodies the team may store, the same messages (0: no "
                   "bound; default 4 GiB).")
@click.option("--max-ingest-rate", type=int,
              help="New messages the team may take a second, all processes together (0: no "
                   "cap, the default).")
@pass_ctx
def team_set(c: Ctx, team_id: str, name: str | None, presence_timeout: int | None,
             untouched_after: int | None, logout_at_end_of_hours: bool | None,
             max_requeues: int | None, retention: int | None,
             max_messages: int | None, max_body_bytes: int | None,
             max_ingest_rate: int | None) -> None:
    """Change team options.  Example: pushinbox team set acme --untouched-after 600"""
    c.d.run(ops.configure(team_id, name=name, presence_timeout_s=presence_timeout,
                          untouched_after_s=untouched_after,
                          logout_at_end_of_hours=logout_at_end_of_hours,
                          max_requeues=max_requeues, retention_s=retention,
                          max_messages=max_messages, max_body_bytes=max_body_bytes,
                          max_ingest_rate=max_ingest_rate))
    emit(c.d.run(ops.team_settings(team_id)), c.json)


@cli.group()
def role() -> None:
    """Roles: push mode on or off, and push capacity."""


@role.command("set")
@team_arg
@click.argument("role_name")
@click.option("--push/--no-push", default=True, show_default=True,
              help="Push mode: advisors are pushed messages and cannot pick.")
@click.option("--capacity", default=1, show_default=True,
              help="Pushed conversations an advisor may hold unprocessed.")
@pass_ctx
def role_set(c: Ctx, team_id: str, role_name: str, push: bool, capacity: int) -> None:
    """Create or change a role.  Example: pushinbox role set acme agent --push"""
    c.d.run(ops.set_role(team_id, role_name, push=push, capacity=capacity))
    emit(c.d.run(ops.roles(team_id)), c.json, rows=c.d.run(ops.roles(team_id)))


@role.command("list")
@team_arg
@pass_ctx
def role_list(c: Ctx, team_id: str) -> None:
    """List roles."""
    rows = c.d.run(ops.roles(team_id))
    emit(rows, c.json, rows=rows)


@cli.group()
def advisor() -> None:
    """Advisors of a team."""


@advisor.command("add")
@team_arg
@advisor_arg
@click.option("--role", "role_name", required=True)
@click.option("--name")
@click.option("--skill", "skills", multiple=True,
              help="A skill (repeat for several); replaces the advisor's skills when given.")
@pass_ctx
def advisor_add(c: Ctx, team_id: str, advisor_id: str, role_name: str, name: str | None,
                skills: tuple[str, ...]) -> None:
    """Create or change an advisor.

    \b
    Examples:
      pushinbox advisor add acme ann --role agent
      pushinbox advisor add acme kim --role agent --skill ko --skill refunds
    """
    c.d.run(ops.set_advisor(team_id, advisor_id, role_name, name,
                            list(skills) if skills else None))
    emit({"advisor": advisor_id, "role": role_name, **({"skills": sorted(set(skills))}
                                                       if skills else {})}, c.json)


@advisor.command("set")
@team_arg
@advisor_arg
@click.option("--skill", "add", multiple=True, help="Give a skill (repeatable).")
@click.option("--no-skill", "remove", multiple=True, help="Take a skill away (repeatable).")
@pass_ctx
def advisor_set(c: Ctx, team_id: str, advisor_id: str, add: tuple[str, ...],
                remove: tuple[str, ...]) -> None:
    """Give or take skills: groups that require skills are pushed only to advisors who have
    them all, from their next press.

    \b
    Example:
      pushinbox advisor set acme kim --skill ko --no-skill refunds
    """
    skills = c.d.run(ops.set_skills(team_id, advisor_id, add=list(add), remove=list(remove)))
    emit({"advisor": advisor_id, "skills": skills}, c.json)


@advisor.command("list")
@team_arg
@pass_ctx
def advisor_list(c: Ctx, team_id: str) -> None:
    """List advisors with their state, assigned messages and skills."""
    rows = c.d.run(ops.advisors(team_id))
    emit(rows, c.json, rows=[{**r, "skills": ",".join(r["skills"])} for r in rows])


# --- tokens and webhooks ----------------------------------------------------------------------
@cli.group()
def token() -> None:
    """API tokens for the HTTP service (stored hashed; shown once, at creation)."""


@token.command("create")
@click.argument("scope", type=click.Choice(["advisor", "supervisor", "ingest", "admin"]))
@click.option("--team", help="Team of an advisor or supervisor token.")
@click.option("--advisor", help="Advisor of an advisor token.")
@click.option("--teams", help="Comma-separated teams an ingest token acts for.")
@click.option("--all-teams", is_flag=True, help="An ingest token for every team (say so).")
@click.option("--name", default="", help="What the token is for.")
@pass_ctx
def token_create(c: Ctx, scope: str, team: str | None, advisor: str | None,
                 teams: str | None, all_teams: bool, name: str) -> None:
    """Create a token and print it (the only time it is shown).

    \b
    Examples:
      pushinbox token create admin --name ops
      pushinbox token create supervisor --team demo
      pushinbox token create advisor --team demo --advisor alice
      pushinbox token create ingest --teams demo,sales --name whatsapp-connector
      pushinbox token create ingest --all-teams --name shared-connector
    """
    from dispatcher import tokens

    limited = None if teams is None else [t.strip() for t in teams.split(",") if t.strip()]
    new = c.d.run(tokens.create_token(scope, team=team, advisor=advisor, teams=limited,
                                      all_teams=all_teams, name=name))
    if c.json:
        emit({"token": new.token, **new.info.to_dict()}, True)
    else:
        click.echo(new.token)
        click.echo(f"(id {new.info.id}; keep the token now: only its hash is stored)", err=True)


@token.command("list")
@pass_ctx
def token_list(c: Ctx) -> None:
    """List tokens (ids and scopes; never the tokens themselves)."""
    from dispatcher import tokens

    rows = [t.to_dict() for t in c.d.run(tokens.list_tokens())]
    emit(rows, c.json, rows=rows)


@token.command("revoke")
@click.argument("token_id")
@pass_ctx
def token_revoke(c: Ctx, token_id: str) -> None:
    """Revoke a token by id (services stop accepting it within a few seconds)."""
    from dispatcher import tokens

    c.d.run(tokens.revoke_token(token_id))
    emit({"revoked": token_id}, c.json)
