"""The alternative teams build instead of pushinbox: a PostgreSQL dispatcher, measured in the
same run as ours with the same client count and the same waiting stock.

    assign:  UPDATE … WHERE id = (SELECT id … WHERE state = 'w' ORDER BY grp, score LIMIT 1
             FOR UPDATE SKIP LOCKED) RETURNING id
    reply:   UPDATE … SET state = 'd' WHERE id = …

and, like-for-like with pushinbox's reply-and-next, both in one statement (a data-modifying
WITH: the reply to the previous assign, then the next assign).

It uses the machine's PostgreSQL (PUSHINBOX_BENCH_PG, default
postgresql://postgres@127.0.0.1/postgres) and a table of its own; where there is none, the case
is skipped with the reason printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cli.bench import GROUPS, p99, run_threads

DSN = os.environ.get("PUSHINBOX_BENCH_PG", "postgresql://postgres@127.0.0.1/postgres")


def available() -> str | None:
    """None when PostgreSQL can be used, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[bench]')"
    try:
        with psycopg.connect(DSN, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:  # any failure means: no PostgreSQL to compare with here
        return f"no PostgreSQL at {DSN}: {exc}".splitlines()[0]
    return None


def seed(waiting: int) -> None:
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS pi_bench_messages")
        conn.execute("CREATE UNLOGGED TABLE pi_bench_messages (id bigint PRIMARY KEY, grp int, "
                     "score bigint, state char(1), advisor text)")
        with conn.cursor().copy("COPY pi_bench_messages (id, grp, score, state) FROM STDIN") as cp:
            for i in range(waiting):
                cp.write_row((i, i % GROUPS, i, "w"))
        conn.execute("CREATE INDEX pi_bench_waiting ON pi_bench_messages (grp, score) "
                     "WHERE state = 'w'")
        conn.execute("ANALYZE pi_bench_messages")


def case(advisors: int, seconds: float, one_statement: bool = False) -> dict[str, Any]:
    """Assign + reply cycles per second with ``advisors`` connections (one per thread);
    ``one_statement``: the reply to the previous assign and the next assign in one."""
    import psycopg

    conns = [psycopg.connect(DSN, autocommit=True) for _ in range(advisors)]
    assign = ("UPDATE pi_bench_messages SET state = 'a', advisor = %s WHERE id = ("
              "SELECT id FROM pi_bench_messages WHERE state = 'w' ORDER BY grp, score LIMIT 1 "
              "FOR UPDATE SKIP LOCKED) RETURNING id")
    reply = "UPDATE pi_bench_messages SET state = 'd' WHERE id = %s"
    both = ("WITH done AS (UPDATE pi_bench_messages SET state = 'd' WHERE id = %s), "
            "next AS (SELECT id FROM pi_bench_messages WHERE state = 'w' ORDER BY grp, score "
            "LIMIT 1 FOR UPDATE SKIP LOCKED) "
            "UPDATE pi_bench_messages m SET state = 'a', advisor = %s FROM next "
            "WHERE m.id = next.id RETURNING m.id")

    deadlocks = [0]

    def work(i: int) -> Callable[[], bool]:
        conn = conns[i]
        last = [-1]

        def one() -> bool:
            while True:
                try:
                    row = conn.execute(both, (last[0], f"a{i}")).fetchone()
                    break
                except psycopg.errors.DeadlockDetected:
                    # this form's row locks can deadlock (PostgreSQL rolls one statement
                    # back): made again, as an application would, its wait in this
                    # cycle's latency; a thread that died here would leave fewer
                    # connections working and read PostgreSQL lower than it is
                    deadlocks[0] += 1
            if row is None:
                return False
            last[0] = row[0]
            return True

        def cycle() -> bool:
            row = conn.execute(assign, (f"a{i}",)).fetchone()
            if row is None:
                return False
            conn.execute(reply, (row[0],))
            return True
        return one if one_statement else cycle

    try:
        calls, lat, elapsed = run_threads(advisors, seconds, work)
    finally:
        for c in conns:
            c.close()
    out: dict[str, Any] = {"per_s": calls / elapsed, "p99_ms": p99(lat)}
    if one_statement:
        out["deadlocks"] = deadlocks[0]
    return out
