"""The same system on a real 3-master Redis Cluster: teams spread over shards, every script
in its team's slot (a cross-slot access would fail), RQ on a separate single Redis."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from conftest import PRODUCT_GROUPS, message

from dispatcher import Dispatcher, tokens
from dispatcher.testing import RedisClusterServers, RedisServer, ServiceProcess
from workers.scheduling import RQJobs, queue


def shard_of(d: Dispatcher, team: str) -> Any:
    node = d.redis.get_node_from_key(f"pi:{{{team}}}:cfg")
    return node.name


@pytest.fixture
def teams(redis_cluster: RedisClusterServers) -> tuple[Dispatcher, list[str]]:
    d = Dispatcher.from_url(redis_cluster.url)
    names: list[str] = []
    shards: set[str] = set()
    while len(shards) < 3 or len(names) < 3:
        name = f"t{uuid.uuid4().hex[:8]}"
        if shard_of(d, name) in shards and len(shards) < 3:
            continue
        shards.add(shard_of(d, name))
        names.append(name)
    for t in names:
        d.create_team(t)
        d.set_role(t, "agent", push=True)
        for adv in ("ann", "bob"):
            d.set_advisor(t, adv, "agent")
            d.login(t, adv)
    return d, names


def test_teams_on_three_shards_push_in_order_requeue_and_rebucket(
        teams: tuple[Dispatcher, list[str]]) -> None:
    d, names = teams
    assert len({shard_of(d, t) for t in names}) == 3
    for t in names:
        d.ingest_many(t, [message(1), message(2, customer_tags=["VIP"]), message(3)])
        d.set_groups(t, PRODUCT_GROUPS)  # re-buckets the waiting stock inline
        first = d.next(t, "ann")
        assert [m.id for m in first.messages] == ["m2"]
        assert first.messages[0].why == "customer tag VIP"
        d.reply(t, "ann", "m2")
        assert d.next(t, "ann").messages[0].id == "m1"
        d.logout(t, "ann")  # m1 goes back, marked reassigned, ahead of m3
        got = d.next(t, "bob").messages[0]
        assert got.id == "m1" and got.reassigned and got.group == "Automatically reassigned"
        d.archive(t, "bob", "m1")
        stats = d.advisor_stats(t, "ann")
        assert (stats.responses, stats.assigned, stats.stock) == (1, 0, 1)
        assert d.stock(t).total == 1
        report = d.check(t)
        assert report.ok, report.problems
    assert set(names) <= set(d.teams())


def test_rq_jobs_run_against_the_cluster_with_queues_on_a_single_redis(
        teams: tuple[Dispatcher, list[str]], redis_cluster: RedisClusterServers,
        redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from rq import SimpleWorker

    d, names = teams
    monkeypatch.setenv("REDIS_URL", redis_cluster.url)
    monkeypatch.setenv("RQ_REDIS_URL", redis_server.url)
    redis_server.client().flushall()
    d.jobs = RQJobs(queue())
    team = names[0]
    d.ingest_many(team, [message(i, conv="c") for i in range(50)])
    d.next(team, "ann")
    job = d.logout(team, "ann")
    assert job is not None
    q = queue()
    SimpleWorker([q], connection=q.connection).work(burst=True)
    assert d.current(team, "ann") == []
    assert d.stock(team).total == 50
    assert d.check(team).ok


def test_the_http_service_and_live_updates_run_on_the_cluster(
        teams: tuple[Dispatcher, list[str]], redis_cluster: RedisClusterServers) -> None:
    d, names = teams
    team = names[1]
    token = d.run(tokens.create_token("advisor", team=team, advisor="ann")).token
    svc = ServiceProcess(redis_cluster.url).start()
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=svc.url, timeout=30, headers=headers) as http:
            assert http.get("/readyz").status_code == 200
            with http.stream("GET", f"/v1/teams/{team}/advisors/ann/live") as live:
                lines = live.iter_lines()
                first = [next(lines) for _ in range(3)]
                assert first[1] == "event: stock"
                d.ingest(team, message(7, channel="email"))
                for line in lines:
                    if line.startswith("data: ") and '"email"' in line:
                        assert json.loads(line[6:])["total"] == 1
                        break
            pushed = http.post(f"/v1/teams/{team}/advisors/ann/next")
            assert pushed.status_code == 200
            assert pushed.json()["messages"][0]["id"] == "m7"
    finally:
        svc.stop()
    assert d.check(team).ok


def test_a_worker_on_a_cluster_without_rq_redis_url_says_what_to_set(
        redis_cluster: RedisClusterServers, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    monkeypatch.delenv("RQ_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = CliRunner().invoke(cli, ["--redis-url", redis_cluster.url, "worker", "--burst"])
    assert result.exit_code == 1
    assert "set RQ_REDIS_URL" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_team_is_deleted_and_a_deployment_benchmarked_on_the_cluster(
        teams: tuple[Dispatcher, list[str]], redis_cluster: RedisClusterServers) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    d, names = teams
    gone, kept = names[0], names[1]
    for t in (gone, kept):
        d.ingest_many(t, [message(i) for i in range(1, 40)])
        d.next(t, "ann")
    assert d.delete_team(gone) > 40
    assert not d.redis.keys(f"pi:{{{gone}}}:*") and gone not in d.teams()
    assert d.check(kept).ok and d.stock(kept).total == 38
    result = CliRunner().invoke(cli, ["--redis-url", redis_cluster.url, "--json", "bench",
                                      "--waiting", "2000", "--advisors", "3", "--seconds", "0.3",
                                      "--reps", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {r["case"]: r for r in json.loads(result.stdout)["table"]}
    assert rows["assign+reply cycles/s (3 advisors)"]["min"] > 0
    # commandstats come from the node holding the scratch team, so the figures are its own
    assert rows["Redis µs per assign+reply cycle"]["min"] > 0
    assert rows["Redis µs per ceiling assign"]["min"] > 0
    assert not [t for t in d.teams() if t.startswith("bench-")]


def test_the_function_library_is_refused_on_a_cluster_naming_the_setting(
        redis_cluster: RedisClusterServers) -> None:
    from dispatcher import ValidationError

    with pytest.raises(ValidationError) as exc:
        Dispatcher.from_url(redis_cluster.url, functions=True)
    assert exc.value.field == "PUSHINBOX_FUNCTIONS"


def test_migrate_moves_each_teams_waiting_layout_on_its_own_shard(
        teams: tuple[Dispatcher, list[str]], redis_cluster: RedisClusterServers,
        redis_server: RedisServer) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    d, names = teams
    env = {**os.environ, "RQ_REDIS_URL": redis_server.url}  # as a cluster deployment sets it
    for t in names:
        d.ingest_many(t, [message(i, conv=f"c{i}") for i in range(1, 21)])
    exe = str(Path(sys.executable).parent / "pushinbox")
    down = subprocess.run([exe, "--redis-url", redis_cluster.url, "migrate", "--down"],
                          capture_output=True, text=True, timeout=120, check=False, env=env)
    assert down.returncode == 0, down.stderr
    for t in names:
        assert f"{t}: 20 conversations unfolded into lists" in down.stdout
        assert d.redis.llen(f"pi:{{{t}}}:cw:c7") == 1
        assert d.check(t).ok
    up = subprocess.run([exe, "--redis-url", redis_cluster.url, "migrate", *names],
                        capture_output=True, text=True, timeout=120, check=False, env=env)
    assert up.returncode == 0, up.stderr
    for t in names:
        assert f"{t}: 20 conversations folded into their records" in up.stdout
        assert not d.redis.exists(f"pi:{{{t}}}:cw:c7")
        assert [m.id for m in d.next(t, "ann").messages] == ["m1"]
        assert d.check(t).ok
