"""The leader instance dies (SIGKILL to the server and its sending child, as a machine death) while a red
warning for the whole district is going out from three ``jiaoying serve`` on one PostgreSQL database.

Another instance leads within 10 s; every callee's first message reaches the provider, exactly once
except for the few that were in flight at the kill (at most the sender's concurrency); no callout is
escalated twice; and deadlines that fell due around the kill are acted on no later than one tick plus
the failover time.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from config.database import make_engine, make_session_factory, session_scope
from config.eventlog import Event
from responses.callouts.models import Attempt, Callout
from responses.messaging.models import OutboxMessage
from tests.faults.cluster import (
    accepted_by_message,
    fake_gateway,
    prepare,
    push_red,
    requests_per_second,
    start_nodes,
    stop_nodes,
    the_leader,
)
from tests.faults.fresh_pg import fresh_database
from tests.live import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.faults]

TAKEOVER_LIMIT = 10.0
TICK = 1.0
CONCURRENCY = 4
RATE = 20.0
DUE_SOON = 20  # callouts whose answer deadline is moved to fall during the failover
JITTER = 2.0  # a job's start on a busy two-core machine
LEASE = 120.0  # the sender's claim lease: claims of the dead sender are taken again after it


def _first_messages(session: object) -> dict[int, int]:
    """callout id -> outbox message id of its first try, for the plan's callees (not escalations)."""
    rows = session.execute(  # type: ignore[attr-defined]
        select(Attempt.callout_id, Attempt.message_id).join(Callout, Callout.id == Attempt.callout_id)
        .where(Attempt.seq == 1, Callout.reason == "plan"))
    return {cid: mid for cid, mid in rows if mid is not None}


def test_leader_killed_mid_fanout(tmp_path: Path) -> None:
    with fresh_database("jy_fault_kill") as url:
        prepare(url)
        server = fake_gateway()
        engine = make_engine(url)
        factory = make_session_factory(engine)
        nodes = start_nodes(tmp_path, url, server.url, 3, JIAOYING_TWILIO__SENDER_CONCURRENCY=str(CONCURRENCY),
                            JIAOYING_TWILIO__MESSAGES_PER_SECOND=str(RATE))
        try:
            leader = the_leader(nodes)
            others = [x for x in nodes if x is not leader]
            push_red(others[0], "fault-kill")

            def callees() -> int:
                with session_scope(factory) as s:
                    return int(s.execute(select(func.count()).select_from(Callout)
                                         .where(Callout.reason == "plan")).scalar_one())

            total = wait_for("the run's callouts", callees, timeout=60)
            wait_for("the fan-out under way", lambda: len(accepted_by_message(server)) >= 60, timeout=60)

            # Deadlines falling during the failover: some callees already called get a deadline a second
            # from now and no retries, so their escalation falls due just as the leader dies.
            now = dt.datetime.now(dt.UTC)
            due_at = now + dt.timedelta(seconds=1)
            with session_scope(factory) as s:
                sent = list(s.execute(
                    select(Callout.id).join(Attempt, Attempt.callout_id == Callout.id)
                    .join(OutboxMessage, OutboxMessage.id == Attempt.message_id)
                    .where(Callout.reason == "plan", Callout.state == "calling", Attempt.seq == 1,
                           OutboxMessage.state.in_(("sent", "delivered"))).order_by(Callout.id).limit(DUE_SOON))
                    .scalars())
                s.execute(update(Callout).where(Callout.id.in_(sent))
                          .values(deadline_at=due_at, next_action_at=due_at, retries_total=0))
            assert len(sent) == DUE_SOON

            in_flight_before = len(accepted_by_message(server))
            killed_at = time.monotonic()
            leader.kill()
            new = None
            while time.monotonic() - killed_at < TAKEOVER_LIMIT + 10 and new is None:
                new = next((x for x in others if x.leader()), None)
                if new is None:
                    time.sleep(0.1)
            failover = time.monotonic() - killed_at
            print(f"\nfault: {total} callees; leader killed after {in_flight_before} first messages accepted; "
                  f"new leader after {failover:.2f} s")
            assert new is not None, "no instance took over the leadership"
            assert failover <= TAKEOVER_LIMIT
            assert sum(x.leader() for x in others) == 1

            def all_first_sent() -> bool:
                with session_scope(factory) as s:
                    firsts = _first_messages(s)
                    pending = s.execute(select(func.count()).select_from(OutboxMessage).where(
                        OutboxMessage.id.in_(list(firsts.values())),
                        OutboxMessage.state.in_(("queued", "claimed")))).scalar_one()
                    return len(firsts) == total and pending == 0

            t = time.monotonic()
            wait_for("every first message sent (the dead sender's claims after their lease)", all_first_sent,
                     timeout=LEASE + 90)
            drained = time.monotonic() - t
            wait_for("the due callouts escalated", lambda: _escalated(factory, sent) == DUE_SOON, timeout=30)

            with session_scope(factory) as s:
                firsts = _first_messages(s)
                states = dict(s.execute(select(OutboxMessage.id, OutboxMessage.state)
                                        .where(OutboxMessage.id.in_(list(firsts.values())))).all())
                escalations = list(s.execute(select(Event.entity_id, Event.payload["step"].as_string())
                                             .where(Event.action == "callout.escalated")).all())
                lags = [(esc - dl).total_seconds() for esc, dl in s.execute(
                    select(Callout.escalated_at, Callout.deadline_at).where(Callout.id.in_(sent))).all()]
            seen = accepted_by_message(server)
            first_ids = set(firsts.values())
            missing = [m for m in first_ids if seen[m] == 0]
            twice = {m: n for m, n in seen.items() if m in first_ids and n > 1}
            peak = requests_per_second(server)
            per_step = {(cid, step) for cid, step in escalations}
            print(f"fault: every first message sent {drained:.1f} s after the failover; duplicates {len(twice)} "
                  f"(sender concurrency {CONCURRENCY}); provider peak {peak} requests/s (limit {RATE:.0f}); "
                  f"{len(escalations)} escalations, deadline lag max {max(lags):.2f} s "
                  f"(allowed tick {TICK:.0f} s + failover {failover:.2f} s + {JITTER:.0f} s jitter)")
            assert len(firsts) == total
            assert not missing, f"{len(missing)} callees never reached"
            assert set(states.values()) <= {"sent", "delivered"}, states
            assert len(twice) <= CONCURRENCY, twice
            assert all(n == 2 for n in twice.values()), twice
            assert len(per_step) == len(escalations), "a callout escalated twice to the same step"
            assert len({cid for cid, _ in escalations} & {str(c) for c in sent}) == DUE_SOON
            assert max(lags) <= TICK + failover + JITTER, lags
            assert min(lags) >= 0, lags
            assert peak <= RATE
        finally:
            stop_nodes(nodes)
            server.stop()
            engine.dispose()


def _escalated(factory: object, ids: list[int]) -> int:
    with session_scope(factory) as s:  # type: ignore[arg-type]
        return int(s.execute(select(func.count()).select_from(Callout).where(
            Callout.id.in_(ids), Callout.escalated_at.is_not(None))).scalar_one())
