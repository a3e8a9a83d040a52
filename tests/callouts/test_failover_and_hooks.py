"""Permanent send failures fail over at once; the run hook calls and stops; downtime catch-up."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import session_scope
from responses.callouts import service as svc
from responses.callouts.models import Callout, Escalation
from responses.contacts.models import Contact
from responses.messaging import outbox
from responses.messaging.models import OutboxMessage
from responses.runs.models import ResponseRun

MIN = dt.timedelta(minutes=1)
CALLS = {"answer_minutes": 10, "retries": {"count": 2, "interval_minutes": 3}, "channels": ["sms", "voice"],
         "tiers": {"village": ["village_head"], "township": ["township_chief"]},
         "escalation": ["village", "township", "leader_on_duty"]}


def start(factory: sessionmaker[Session], now: dt.datetime, run_id: int) -> list[int]:
    with session_scope(factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        svc.on_run_event(s, run, "started", actor="test", now=now)
    with session_scope(factory) as s:
        return list(s.execute(select(Callout.id).where(Callout.run_id == run_id).order_by(Callout.id)).scalars())


def fail_message(factory: sessionmaker[Session], now: dt.datetime, msg_id: int, code: str = "21211") -> None:
    with session_scope(factory) as s:
        claimed = outbox.claim(s, now=now, worker="w1", limit=1000)
        assert msg_id in [c.id for c in claimed]
        results = [outbox.SendResult(c.id, "w1", "failed" if c.id == msg_id else "sent",
                                     provider_id=None if c.id == msg_id else f"SM{c.id}", error_code=code,
                                     error="invalid number") for c in claimed]
        outbox.apply_results(s, results, now=now)


def test_permanent_failure_moves_to_next_channel_then_backup_then_escalates(
        session_factory: sessionmaker[Session], clock: VirtualClock, kit: Any) -> None:
    t0 = clock.now()
    d = kit.build_district(session_factory, t0, townships=1, per_township=2)
    with session_scope(session_factory) as s:  # the first head has a backup number
        head = s.get(Contact, d.heads[d.villages[0]])
        head.backup_phone = "+8613700000001"
    run_id = kit.make_run(session_factory, t0, villages=d.villages[:1], calls=CALLS)
    ids = start(session_factory, t0, run_id)
    with session_scope(session_factory) as s:
        tiers = {s.get(Callout, i).tier: i for i in ids}  # type: ignore[union-attr]
        assert set(tiers) == {"village", "township"}
        head_callout = s.get(Callout, tiers["village"])
        assert head_callout is not None
        first_msg = head_callout.attempts[0].message_id
    clock.advance(dt.timedelta(seconds=20))
    fail_message(session_factory, clock.now(), first_msg)
    st = svc.sweep(session_factory, now=clock.now())
    assert st.failovers == 1 and st.retries == 0
    with session_scope(session_factory) as s:
        c = s.get(Callout, tiers["village"])
        assert c is not None and [(a.channel, a.reason) for a in c.attempts] == [("sms", "first"),
                                                                                  ("voice", "failover")]
        assert c.next_action_at == t0 + 10 * MIN  # the deadline stays
        assert c.attempts[0].status == "failed" and c.dead_routes == [f"sms|{c.numbers[0]}"]
        second = c.attempts[1].message_id
    assert svc.sweep(session_factory, now=clock.now()).failovers == 0  # handled once
    # a provider callback fails the voice call for good: the backup number, at once
    with session_scope(session_factory) as s:
        msg, changed = outbox.apply_provider_status(s, now=clock.now(), status="failed", message_id=second,
                                                    error_code="13224")
        assert msg is not None and changed
        svc.on_message_final(s, msg)
    with session_scope(session_factory) as s:
        c = s.get(Callout, tiers["village"])
        assert c is not None and c.attempts[-1].number == "+8613700000001" and c.attempts[-1].channel == "sms"
        backup_sms, backup_voice = c.attempts[-1].message_id, None
    fail_message(session_factory, clock.now(), backup_sms)
    svc.sweep(session_factory, now=clock.now())
    with session_scope(session_factory) as s:
        c = s.get(Callout, tiers["village"])
        assert c is not None and c.attempts[-1].channel == "voice" and c.attempts[-1].number == "+8613700000001"
        backup_voice = c.attempts[-1].message_id
    fail_message(session_factory, clock.now(), backup_voice)
    svc.sweep(session_factory, now=clock.now())  # no route left: escalates before the deadline
    with session_scope(session_factory) as s:
        c = s.get(Callout, tiers["village"])
        assert c is not None and c.state == "escalated" and c.escalated_at == clock.now() < c.deadline_at
        esc = s.execute(select(Escalation).where(Escalation.from_callout_id == c.id)).scalar_one()
        assert esc.reason == "unreachable" and esc.step == "township"


def test_busy_call_waits_for_the_retry_slot(session_factory: sessionmaker[Session], clock: VirtualClock,
                                           kit: Any) -> None:
    t0 = clock.now()
    d = kit.build_district(session_factory, t0, townships=1, per_township=1)
    run_id = kit.make_run(session_factory, t0, villages=d.villages, calls={**CALLS, "channels": ["voice"]})
    start(session_factory, t0, run_id)
    with session_scope(session_factory) as s:
        c = s.execute(select(Callout).where(Callout.tier == "village")).scalar_one()
        msg, _ = outbox.apply_provider_status(s, now=t0 + MIN, status="busy", message_id=c.attempts[0].message_id)
        assert msg is not None
        svc.on_message_final(s, msg)
    with session_scope(session_factory) as s:
        c = s.execute(select(Callout).where(Callout.tier == "village")).scalar_one()
        assert len(c.attempts) == 1 and c.dead_routes == [] and c.attempts[0].status == "failed"


def test_downtime_catch_up_and_run_close_stops_calling(session_factory: sessionmaker[Session],
                                                       clock: VirtualClock, kit: Any) -> None:
    t0 = clock.now()
    d = kit.build_district(session_factory, t0, townships=2, per_township=2)
    run_id = kit.make_run(session_factory, t0, villages=d.villages, calls={**CALLS, "tiers": {"village":
                                                                                             ["village_head"]}})
    ids = start(session_factory, t0, run_id)
    assert len(ids) == 4
    assert start(session_factory, t0, run_id) == ids  # the hook again (e.g. areas extended): nobody twice
    clock.set(t0 + 10 * MIN + 4 * MIN)  # the scheduler was down through the deadline and one retry slot
    st = svc.sweep(session_factory, now=clock.now())
    assert st.retries == 4 and st.skipped_retries == 4  # one try now, not a burst of the missed ones
    with session_scope(session_factory) as s:
        assert all(s.get(Callout, i).retries_done == 2 for i in ids)  # type: ignore[union-attr]
        run = s.get(ResponseRun, run_id)
        assert run is not None
        svc.on_run_event(s, run, "closed", actor="test", now=clock.now())
    with session_scope(session_factory) as s:
        assert {s.get(Callout, i).state for i in ids} == {"cancelled"}  # type: ignore[union-attr]
        n = s.execute(select(func.count(OutboxMessage.id))).scalar()
    clock.set(t0 + 60 * MIN)
    st = svc.sweep(session_factory, now=clock.now())
    assert st.due == 0
    with session_scope(session_factory) as s:
        assert s.execute(select(func.count(OutboxMessage.id))).scalar() == n
