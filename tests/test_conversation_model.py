"""A model-based test of the conversation rules: random sequences of every transition against
the real scripts, compared after every step with a small model of what must hold.

The transitions: messages in, log-ins and log-outs (their requeue a batch at a time),
presses, the advisor's whole cycle in one call (reply-and-next), reply / archive / help /
hold, breaks, heartbeats, a supervisor's assign and send-to-stock, a classic advisor's pick
(push mode off) beside two push-mode advisors, capacity and triage rules changed mid-run,
customer tags, groups changed (re-bucketed a batch at a time) and the reconciler.

The model (below, a few dozen lines, not the production code) knows each message's
conversation and arrival, whether it is done (and by whom, how), and each advisor's session.
After every step the real state must agree: every message in exactly one place (`check`), the
done ones done as the model says, today's figures equal the model's replies and archives,
each conversation held by at most one advisor and never waiting while a logged-in advisor
holds it, every waiting list and every push in arrival order, a press pushes the waiting
conversation that started first, never answers "empty" while something waits and never
"assigned" with nothing waiting. Hypothesis shrinks a failure to a minimal sequence.

`make test` runs a bounded number of sequences; `make test-model` runs many more
(PUSHINBOX_MODEL_EXAMPLES, PUSHINBOX_MODEL_STEPS).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from conftest import LaterJobs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from dispatcher import Dispatcher, keys
from dispatcher.errors import ConflictError, ForbiddenError
from dispatcher.testing import FakeClock

T = "model"
ADVISORS = ("ann", "bob")  # push mode
CLASSIC = "cid"  # push mode off: picks waiting messages (take)
EVERYONE = (*ADVISORS, CLASSIC)
CONVS = ("c1", "c2")
EXAMPLES = int(os.environ.get("PUSHINBOX_MODEL_EXAMPLES", "40"))
STEPS = int(os.environ.get("PUSHINBOX_MODEL_STEPS", "50"))
# `make test` replays the same sequences every run (a red CI names a regression, not a new
# find of the search); `make test-model` explores new ones each time.
REPLAY: dict[str, Any] = ({} if "PUSHINBOX_MODEL_EXAMPLES" in os.environ
                          else {"derandomize": True, "database": None})


@dataclass
class Model:
    seq: int = 0
    conv_of: dict[str, str] = field(default_factory=dict)
    arrival: dict[str, int] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)  # conversation -> first arrival
    done: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (advisor, kind)
    online: set[str] = field(default_factory=set)

    def arrive(self, mid: str, conv: str) -> None:
        self.seq += 1
        self.conv_of[mid] = conv
        self.arrival[mid] = self.seq
        self.started.setdefault(conv, self.seq)


class Conversations(RuleBasedStateMachine):
    def __init__(self, client: redis.Redis) -> None:
        super().__init__()
        client.flushdb()
        self.clock = FakeClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
        self.d = Dispatcher(client, clock=self.clock, jobs=LaterJobs(), batch_size=1)
        self.d.create_team(T)
        self.d.set_role(T, "agent", push=True, capacity=1)
        self.d.configure(T, untouched_after_s=30, max_requeues=3)
        self.d.set_role(T, "classic", push=False, capacity=3)
        for a in ADVISORS:
            self.d.set_advisor(T, a, "agent")
        self.d.set_advisor(T, CLASSIC, "classic")
        self.m = Model()
        self.n = 0
        self.regrouped = False  # FIFO across the stock holds until groups change

    # --- the real state, read back ------------------------------------------------------------
    def place(self, mid: str) -> tuple[str, str]:
        (msg,) = self.d.messages(T, [mid])
        return msg.state, msg.advisor or ""

    def logged_in(self, adv: str) -> bool:
        return self.d.redis.hget(keys.advisor(T, adv), "st") != b"off"

    def held(self, adv: str) -> list[str]:
        return [m.id for m in self.d.current(T, adv)]

    # --- transitions ----------------------------------------------------------------------------
    @rule(conv=st.sampled_from(CONVS), count=st.integers(1, 3))
    def ingest(self, conv: str, count: int) -> None:
        batch = []
        for _ in range(count):
            self.n += 1
            mid = f"m{self.n}"
            self.m.arrive(mid, conv)
            batch.append({"id": mid, "conversation": conv, "customer": f"u-{conv}",
                          "channel": "webchat", "body": {"text": mid}})
        self.d.ingest_many(T, batch)

    @rule(adv=st.sampled_from(EVERYONE))
    def login(self, adv: str) -> None:
        self.d.login(T, adv)
        self.m.online.add(adv)

    @rule(adv=st.sampled_from(EVERYONE))
    def logout(self, adv: str) -> None:
        self.d.logout(T, adv)  # the requeue job waits for a `requeue` or `tick` rule
        self.m.online.discard(adv)

    @rule(adv=st.sampled_from(EVERYONE))
    def requeue_one_batch(self, adv: str) -> None:
        epoch = int(self.d.redis.hget(keys.advisor(T, adv), "ep") or 0)
        self.d.call("requeue_batch", T, adv=adv, epoch=epoch, n=1)

    @rule(adv=st.sampled_from(ADVISORS))
    def press(self, adv: str) -> None:
        if adv not in self.m.online:
            return
        waiting = {c for mid, c in self.m.conv_of.items() if self.place(mid)[0] == "waiting"}
        before = set(self.held(adv))
        push = self.d.next(T, adv)
        self.pushed(push.status, [m.id for m in push.messages], before, waiting)

    def pushed(self, status: str, ids: list[str], before: set[str], waiting: set[str]) -> None:
        """What a press answered: in arrival order; a push is one conversation, new to the
        advisor, the one that started first among those waiting (one group: FIFO)."""
        assert ids == sorted(ids, key=self.m.arrival.__getitem__), ids  # arrival order
        # never "nothing to do" while something waits (no skills here), nor a push of nothing
        # (at capacity, "pending" answers the pushes held, whatever waits)
        assert status != ("empty" if waiting else "assigned"), (status, waiting)
        if status == "assigned" and not self.regrouped:
            conv = self.m.conv_of[ids[0]]
            assert {self.m.conv_of[i] for i in ids} == {conv}
            new = set(ids) - before
            assert new, (status, ids)
            assert self.m.started[conv] == min(self.m.started[c] for c in waiting), (
                conv, waiting)

    @rule(adv=st.sampled_from(ADVISORS), pick=st.integers(0, 50))
    def reply_and_press(self, adv: str, pick: int) -> None:
        """The advisor's whole cycle in one call (the service's reply-and-next): the reply
        counts as one, and the press after it follows the same rules as a press alone."""
        held = self.held(adv)
        if not held or adv not in self.m.online:
            return
        mid = held[pick % len(held)]
        waiting = {c for i, c in self.m.conv_of.items() if self.place(i)[0] == "waiting"}
        out = self.d.reply_next(T, adv, mid)
        assert out.replied == "ok", out
        self.m.done[mid] = (adv, "reply")
        self.pushed(out.status, [m.id for m in out.messages], set(held) - {mid}, waiting)

    @rule(adv=st.sampled_from(ADVISORS))
    def take_a_break(self, adv: str) -> None:
        """A break keeps the advisor's messages and conversations; a press ends it."""
        if adv in self.m.online:
            self.d.start_break(T, adv)

    @rule(adv=st.sampled_from(ADVISORS))
    def back_from_break(self, adv: str) -> None:
        self.d.end_break(T, adv)

    @rule(capacity=st.integers(1, 3))
    def capacity_changes(self, capacity: int) -> None:
        """Supervisors change how many messages the role holds at once, mid-run."""
        self.d.set_role(T, "agent", push=True, capacity=capacity)

    @rule(adv=st.sampled_from(EVERYONE), pick=st.integers(0, 50),
          kind=st.sampled_from(["reply", "archive", "help", "hold", "unhold"]))
    def act(self, adv: str, pick: int, kind: str) -> None:
        held = self.held(adv)
        if not held:
            return
        mid = held[pick % len(held)]
        if kind == "help":
            self.d.request_help(T, adv, mid, "")
        elif kind in ("hold", "unhold"):
            getattr(self.d, kind)(T, adv, mid)
        else:
            getattr(self.d, kind)(T, adv, mid)
            self.m.done[mid] = (adv, kind)

    @rule(adv=st.sampled_from(ADVISORS), pick=st.integers(0, 200))
    def assign(self, adv: str, pick: int) -> None:
        open_ = [i for i in self.m.conv_of if i not in self.m.done]
        if not open_ or adv not in self.m.online:
            return
        self.d.assign(T, adv, open_[pick % len(open_)])

    @rule(pick=st.integers(0, 200))
    def send_to_stock(self, pick: int) -> None:
        open_ = [i for i in self.m.conv_of if i not in self.m.done]
        if open_:
            self.d.send_to_stock(T, open_[pick % len(open_)])

    @rule(adv=st.sampled_from(EVERYONE), pick=st.integers(0, 200))
    def take(self, adv: str, pick: int) -> None:
        """A classic advisor picks a waiting message (its conversation comes along); a pick
        is refused for push roles, and of a message that is not waiting: nothing changes."""
        open_ = [i for i in self.m.conv_of if i not in self.m.done]
        if not open_ or adv not in self.m.online:
            return
        mid = open_[pick % len(open_)]
        if adv != CLASSIC:
            with pytest.raises(ForbiddenError):
                self.d.take(T, adv, mid)
            return
        state, holder = self.place(mid)
        if state == "waiting":
            taken = [m.id for m in self.d.take(T, adv, mid)]
            assert mid in taken and {self.m.conv_of[i] for i in taken} == {self.m.conv_of[mid]}
        elif not (state == "assigned" and holder == adv):
            with pytest.raises(ConflictError):
                self.d.take(T, adv, mid)

    @rule(adv=st.sampled_from(EVERYONE))
    def heartbeat(self, adv: str) -> None:
        """Presence from the advisor's client; it never logs anyone in."""
        if adv in self.m.online:
            self.d.heartbeat(T, adv)
        else:
            with pytest.raises(ConflictError):
                self.d.heartbeat(T, adv)

    @rule(to=st.sampled_from([None, *EVERYONE]))
    def triage_changes(self, to: str | None) -> None:
        """A triage rule gives new conversations of the channel to one advisor (while they are
        logged in), or there is none."""
        rules = [] if to is None else [
            {"name": "web", "match": {"channel_in": ["webchat"]}, "advisor": to}]
        self.d.set_triage(T, rules)

    @rule(tags=st.lists(st.sampled_from(["VIP", "new"]), max_size=2),
          conv=st.sampled_from(CONVS))
    def customer_tags(self, tags: list[str], conv: str) -> None:
        self.d.set_customer_tags(T, f"u-{conv}", tags)

    @rule(vip_first=st.booleans())
    def change_groups(self, vip_first: bool) -> None:
        """Groups change mid-run; the re-bucketing then runs one batch at a time (tick)."""
        groups = [{"name": "VIP", "match": {"customer_tags_any": ["VIP"]}}] if vip_first else []
        self.d.set_groups(T, {"groups": groups})
        self.regrouped = True

    @rule(seconds=st.sampled_from([1, 10, 31, 700]))
    def time_passes_and_the_reconciler_runs(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.d.tick(T)
        self.m.online = {a for a in EVERYONE
                         if self.d.redis.hget(keys.advisor(T, a), "st") != b"off"}

    # --- what must hold after every step ----------------------------------------------------------
    @invariant()
    def the_rules_hold(self) -> None:
        # A logout's requeue waits for its job here: what a logged-out advisor still holds is
        # reported as stranded until a requeue rule or the reconciler runs; nothing else may be.
        report = self.d.check(T)
        problems = [p for p in report.problems if not p.endswith("(stranded)")]
        assert not problems, report.problems
        states = {mid: self.place(mid) for mid in self.m.conv_of}
        for mid in self.m.done:  # done stays done
            assert states[mid][0] == "done", (mid, states[mid])
        holders: dict[str, set[str]] = {}
        for mid, (state, adv) in states.items():
            if state == "assigned" and self.logged_in(adv):
                holders.setdefault(self.m.conv_of[mid], set()).add(adv)
        for conv, advs in holders.items():
            assert len(advs) == 1, (conv, advs)  # one conversation, one holder
        for conv in CONVS:
            waiting = self.d.redis.lrange(keys.conversation_waiting(T, conv), 0, -1)
            ids = [w.decode() for w in waiting]
            assert ids == sorted(ids, key=self.m.arrival.__getitem__), (conv, ids)
            assert not (ids and conv in holders), (conv, ids, holders[conv])
        stats = {a: self.d.advisor_stats(T, a) for a in EVERYONE}
        for a in EVERYONE:
            mine = [k for (who, k) in self.m.done.values() if who == a]
            assert stats[a].responses == mine.count("reply")
            assert stats[a].archives == mine.count("archive")


def test_random_sequences_of_every_transition_keep_the_conversation_rules(
        redis_client: redis.Redis) -> None:
    run_state_machine_as_test(
        lambda: Conversations(redis_client),
        settings=settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                          **REPLAY,
                          suppress_health_check=[HealthCheck.too_slow]))
