"""A bounded soak: upstream ingesting while advisors press, reply, archive, ask for help, hold,
take breaks and log out at random, and a supervisor hands help requests back. It ends with
every message accounted for: ingested = replied + archived + waiting + assigned + help +
quarantine, and `check` clean. ``pushinbox soak`` runs it against any Redis (loopback only in
our tests and CI); ``tests/test_soak.py`` runs a short one in ``make test``."""

from __future__ import annotations

import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dispatcher import (
    ConflictError,
    Dispatcher,
    NotYoursError,
    PushinboxError,
    UnavailableError,
)
from dispatcher.connection import connect


@dataclass
class SoakReport:
    seconds: float
    operations: int = 0
    ingested: int = 0
    # The refusals the product allows here: a supervisor assigning a help request to an
    # advisor who has just logged out, and an advisor acting on a message whose conversation
    # a supervisor just assigned elsewhere. Anything else an advisor, upstream or the
    # supervisor meets is an error of the run (kept, never a silently dead thread).
    expected_refusals: int = 0
    errors: list[str] = field(default_factory=list)
    next_ms: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    check_ok: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def accounted(self) -> bool:
        c = self.counts
        held = c.get("waiting", 0) + c.get("assigned", 0) + c.get("help", 0) + c.get(
            "quarantine", 0) + c.get("done", 0)
        return held == self.ingested == c.get("messages", -1)

    def summary(self) -> dict[str, Any]:
        p = sorted(self.next_ms)
        return {
            "seconds": round(self.seconds, 1),
            "operations": self.operations,
            "ops_per_s": round(self.operations / self.seconds),
            "ingested": self.ingested,
            "expected_refusals": self.expected_refusals,
            "unexpected_errors": len(self.errors),
            "next_p50_ms": round(statistics.median(p), 2) if p else None,
            "next_p99_ms": round(p[int(len(p) * 0.99) - 1], 2) if p else None,
            "counts": self.counts,
            "accounted": self.accounted,
            "check_ok": self.check_ok,
        }


def run(url: str, team: str | None = None, seconds: float = 60, advisors: int = 20,
        upstreams: int = 4, seed: int = 7) -> SoakReport:
    """Run the soak on a new team (``soak-<time>`` unless named; it must not exist yet)."""
    team = team or f"soak-{int(time.time())}"
    setup = Dispatcher(connect(url, socket_timeout=600))  # check reads the whole team
    if team in setup.teams():
        raise PushinboxError(f"team {team} exists; the soak needs a new team")
    setup.create_team(team)
    setup.set_role(team, "agent", push=True, capacity=2)
    setup.set_groups(team, {"groups": [
        {"name": "VIP", "match": {"customer_tags_any": ["VIP"]}},
        {"name": "Automatically reassigned", "match": {"reassigned": True}}]})
    names = [f"adv{i}" for i in range(advisors)]
    for name in names:
        setup.set_advisor(team, name, "agent")
    report = SoakReport(seconds=seconds)
    lock = threading.Lock()
    stop = threading.Event()
    prefix = f"{int(time.time() * 1000):x}"

    def count(n: int = 1) -> None:
        with lock:
            report.operations += n

    def upstream(k: int) -> None:
        d, rng = Dispatcher(connect(url)), random.Random(seed * 100 + k)
        i = 0
        while not stop.is_set():
            batch = [{"id": f"{prefix}-{k}-{i + j}", "conversation": f"conv-{rng.randrange(3000)}",
                      "customer": f"cust-{rng.randrange(1000)}",
                      "channel": rng.choice(("whatsapp", "email", "webchat", "sms")),
                      "body": {"text": "hello"},
                      "customer_tags": ["VIP"] if rng.random() < 0.1 else []}
                     for j in range(rng.choice((1, 1, 5, 20)))]
            try:
                d.ingest_many(team, batch)
            except Exception as exc:
                with lock:
                    report.errors.append(f"ingest: {type(exc).__name__}: {exc}")
                continue
            with lock:
                report.ingested += len(batch)
                report.operations += 1
            i += len(batch)
            time.sleep(0.01)  # about what the advisors can process: the stock stays bounded

    def advisor(name: str, k: int) -> None:
        d, rng = Dispatcher(connect(url)), random.Random(seed * 1000 + k)
        d.login(team, name)
        while not stop.is_set():
            roll = rng.random()
            try:
                if roll < 0.03:
                    d.logout(team, name)
                    time.sleep(rng.random() * 0.05)
                    d.login(team, name)
                    count(2)
                    continue
                if roll < 0.06:
                    d.start_break(team, name)
                    time.sleep(rng.random() * 0.05)
                    d.end_break(team, name)
                    count(2)
                    continue
                started = time.perf_counter()
                push = d.next(team, name)
                with lock:
                    report.next_ms.append((time.perf_counter() - started) * 1000)
                    report.operations += 1
                if push.status == "empty":
                    time.sleep(0.01)
                    continue
                for m in push.messages:
                    action = rng.random()
                    if action < 0.6:
                        d.reply(team, name, m.id)
                    elif action < 0.85:
                        d.archive(team, name, m.id)
                    elif action < 0.93:
                        d.request_help(team, name, m.id, "soak")
                    else:
                        d.hold(team, name, m.id)
                        d.unhold(team, name, m.id)
                        d.reply(team, name, m.id)
                        count(2)
                    count()
            except UnavailableError as exc:
                with lock:
                    report.errors.append(f"{name}: {exc}")
                time.sleep(0.1)
            except NotYoursError:
                # The race the product allows: the supervisor assigned a help request of this
                # conversation elsewhere, and the whole conversation went with it.
                with lock:
                    report.expected_refusals += 1
            except Exception as exc:  # anything else an advisor meets is a defect
                with lock:
                    report.errors.append(f"{name}: {type(exc).__name__}: {exc}")

    def supervisor() -> None:
        d, rng = Dispatcher(connect(url)), random.Random(seed)
        while not stop.is_set():
            try:
                for m in d.help_requests(team)[:5]:
                    if rng.random() < 0.5:
                        d.send_to_stock(team, m.id)
                    else:
                        d.assign(team, rng.choice(names), m.id, by="soak-supervisor")
                    count()
                d.tick(team)
                count()
            except ConflictError as exc:
                with lock:
                    if exc.field == "advisor":  # the race the product allows: they just left
                        report.expected_refusals += 1
                    else:
                        report.errors.append(f"supervisor: {exc}")
            except Exception as exc:
                with lock:
                    report.errors.append(f"supervisor: {type(exc).__name__}: {exc}")
            time.sleep(0.2)

    threads = [threading.Thread(target=upstream, args=(k,)) for k in range(upstreams)]
    threads += [threading.Thread(target=advisor, args=(n, k)) for k, n in enumerate(names)]
    threads.append(threading.Thread(target=supervisor))
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    report.seconds = time.monotonic() - started
    for name in names:  # the end of the shift: everyone logs out, messages go back
        setup.logout(team, name)
    setup.tick(team)
    result = setup.check(team)
    report.counts, report.check_ok, report.problems = result.counts, result.ok, result.problems
    return report
