"""Each channel's waiting stock, its count and its oldest message's age (what every advisor's
screen and /metrics show), kept per second of arrival rather than per message: a busy
channel's index costs a few entries a second instead of a sorted-set entry per waiting
message (~105 bytes each, docs/performance.md). A deployment upgraded from the per-message
index works on it as it is, and `pushinbox migrate` moves it (and back with --down)."""

from __future__ import annotations

import redis
from conftest import TEAM, assert_clean, message
from test_migrate import pushinbox

from dispatcher import Dispatcher, keys
from dispatcher.servers import RedisServer
from dispatcher.testing import FakeClock

P = keys.prefix(TEAM)


def ages(d: Dispatcher) -> dict[str, tuple[int, float | None]]:
    return {c.channel: (c.waiting, c.oldest_age_s) for c in d.stock(TEAM).channels}


def test_the_stock_shows_each_channels_count_and_its_oldest_waiting_messages_age(
        online: Dispatcher, clock: FakeClock) -> None:
    clock.advance(0.25)
    online.ingest(TEAM, message(1, channel="email"))
    clock.advance(0.5)
    online.ingest(TEAM, message(5, channel="email"))  # the same second as m1
    clock.advance(0.75)
    online.ingest(TEAM, message(2, channel="webchat"))
    clock.advance(0.5)
    online.ingest_many(TEAM, [message(3, channel="email"), message(4, channel="email")])
    clock.advance(8.0)  # 10 s after the first arrival
    assert ages(online) == {"email": (4, 9.75), "webchat": (1, 8.5)}
    assert online.stock(TEAM).total == 5
    assert [m.id for m in online.next(TEAM, "ann").messages] == ["m1"]  # the oldest leaves
    # m5 still waits in m1's second: the age is the second's first arrival's (to a second)
    assert ages(online) == {"email": (3, 9.75), "webchat": (1, 8.5)}
    assert [m.id for m in online.next(TEAM, "bob").messages] == ["m5"]
    assert ages(online) == {"email": (2, 8.0), "webchat": (1, 8.5)}
    assert [m.id for m in online.next(TEAM, "cid").messages] == ["m2"]
    assert ages(online) == {"email": (2, 8.0)}
    assert_clean(online)


def test_a_busy_channels_stock_keeps_an_entry_per_second_not_per_message(
        online: Dispatcher, clock: FakeClock) -> None:
    for second in range(3):
        online.ingest_many(TEAM, [message(f"{second}-{i}", channel="email")
                                  for i in range(50)])
        clock.advance(1)
    r = online.redis
    assert r.zcard(keys.channel_seconds(TEAM, "email")) == 3
    counts = r.hgetall(keys.channel_counts(TEAM, "email"))
    assert sorted(int(v) for k, v in counts.items() if k != b"n") == [50, 50, 50]
    assert counts[b"n"] == b"150"
    assert not r.exists(keys.channel_waiting(TEAM, "email"))  # no entry per message
    assert ages(online) == {"email": (150, 3.0)}
    for adv in ("ann", "bob", "cid") * 17:
        for m in online.next(TEAM, adv).messages:
            online.reply(TEAM, adv, m.id)
    assert ages(online) == {"email": (99, 2.0)}  # the first second is gone from the index
    assert r.zcard(keys.channel_seconds(TEAM, "email")) == 2
    assert_clean(online)


def test_a_requeued_message_counts_in_the_second_it_first_arrived(
        online: Dispatcher, clock: FakeClock) -> None:
    online.ingest(TEAM, message(1, channel="email"))
    clock.advance(5)
    online.ingest(TEAM, message(2, channel="email"))
    assert [m.id for m in online.next(TEAM, "ann").messages] == ["m1"]
    clock.advance(5)
    assert ages(online) == {"email": (1, 5.0)}
    online.logout(TEAM, "ann")  # ann's messages go back to the team
    assert ages(online) == {"email": (2, 10.0)}
    assert_clean(online)


def per_message_layout(r: redis.Redis, team: str = TEAM) -> int:
    """What the version before this one wrote: every waiting message in its channel's sorted
    set `ch:<channel>`, scored by its arrival; no counts per second; no `chb` in the team's
    settings."""
    p = keys.prefix(team)
    n = 0
    for k in r.scan_iter(match=f"{p}m:*"):
        st, ch, ts, order = r.hmget(k, "st", "ch", "ts", "ord")
        if st == b"w":  # (the arrival is the millisecond of `ord` when no `ts` is kept)
            at = int(ts) if ts else int(order) // 1000
            r.zadd(f"{p}ch:{ch.decode()}", {k.decode().rsplit(":", 1)[1]: at})
            n += 1
    for k in [*r.scan_iter(match=f"{p}cn:*"), *r.scan_iter(match=f"{p}cb:*")]:
        r.delete(k)
    r.hdel(keys.cfg(team), "chb", "gen")  # (nor had it a settings generation: keys.lua)
    return n


def old_and_new(r: redis.Redis) -> tuple[set[str], set[str]]:
    found = {k.decode().split(":")[2] for k in r.scan_iter(match=f"{P}c[hnb]:*")}
    return {"ch"} & found, {"cn", "cb"} & found


def test_an_upgraded_deployment_works_on_its_per_message_index_and_migrate_moves_it(
        redis_server: RedisServer, online: Dispatcher, clock: FakeClock) -> None:
    online.create_team("other")
    online.ingest_many(TEAM, [message(i, channel="email") for i in range(1, 6)])
    clock.advance(2)
    online.ingest_many(TEAM, [message(i, channel="fax") for i in range(6, 9)])
    online.ingest_many("other", [message(i, channel="email") for i in range(1, 4)])
    clock.advance(1)
    assert per_message_layout(online.redis) == 8
    assert old_and_new(online.redis) == ({"ch"}, set())
    assert_clean(online)
    # the old index is read as it is, and drained as its messages leave
    assert ages(online) == {"email": (5, 3.0), "fax": (3, 1.0)}
    assert [m.id for m in online.next(TEAM, "ann").messages] == ["m1"]
    online.ingest(TEAM, message(9, channel="email"))  # counted per second from now on
    assert ages(online) == {"email": (5, 3.0), "fax": (3, 1.0)}
    assert_clean(online)
    other_before = {k: online.redis.dump(k) for k in online.redis.scan_iter(match="pi:{other}:*")
                    if not k.endswith(b":events")}

    out = pushinbox(redis_server.url, "migrate", TEAM)
    assert out.returncode == 0, out.stderr
    assert f"{TEAM}: 0 conversations folded" in out.stdout
    assert "7 waiting messages counted per second" in out.stdout
    assert old_and_new(online.redis) == (set(), {"cn", "cb"})
    assert online.redis.hget(keys.cfg(TEAM), "chb") == b"1"
    assert ages(online) == {"email": (5, 3.0), "fax": (3, 1.0)}
    assert_clean(online)
    assert {k: online.redis.dump(k) for k in online.redis.scan_iter(match="pi:{other}:*")
            if not k.endswith(b":events")} == other_before
    again = pushinbox(redis_server.url, "migrate", TEAM)
    assert "0 waiting messages counted per second" in again.stdout
    online.reply(TEAM, "ann", "m1")
    assert [m.id for adv in ("bob", "cid", "ann")
            for m in online.next(TEAM, adv).messages] == ["m2", "m3", "m4"]
    assert ages(online) == {"email": (2, 3.0), "fax": (3, 1.0)}  # m5 and m9
    assert_clean(online)

    down = pushinbox(redis_server.url, "migrate", "--down", TEAM)
    assert down.returncode == 0, down.stderr
    assert "5 waiting messages indexed one by one" in down.stdout
    assert old_and_new(online.redis) == ({"ch"}, set())
    assert online.redis.zcard(keys.channel_waiting(TEAM, "email")) == 2
    assert online.redis.hget(keys.cfg(TEAM), "chb") is None
    assert ages(online) == {"email": (2, 3.0), "fax": (3, 1.0)}
    assert_clean(online)
    assert pushinbox(redis_server.url, "migrate", TEAM).returncode == 0  # and up again
    assert old_and_new(online.redis) == (set(), {"cn", "cb"})
    assert_clean(online)
    assert_clean(online, "other")


def test_a_batch_of_arrivals_writes_each_channels_counts_once(
        online: Dispatcher, clock: FakeClock) -> None:
    r = online.redis
    online.ingest(TEAM, message(0, channel="email"))
    online.next(TEAM, "ann")  # ann holds c0: its next message follows it, out of the stock

    def counted(batch: list[dict[str, object]]) -> int:
        r.config_resetstat()
        online.ingest_many(TEAM, batch)
        return int(r.info("commandstats").get("cmdstat_hincrby", {}).get("calls", 0))

    chans = ("email", "fax", "sms", "webchat")
    small = counted([message(i, channel=chans[i % 4]) for i in range(1, 9)])
    large = counted([message(i, channel=chans[i % 4]) for i in range(9, 209)])
    assert large == small  # not one count per message: one per channel and second
    clock.advance(0.5)
    online.ingest_many(TEAM, [message(300, conv="c0", channel="email"),
                              message(301, channel="email")])
    assert ages(online) == {"email": (53, 0.5), "fax": (52, 0.5), "sms": (52, 0.5),
                            "webchat": (52, 0.5)}
    assert online.message(TEAM, "m300").advisor == "ann"
    assert_clean(online)
