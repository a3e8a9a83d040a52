"""150 callees on SQLite and PostgreSQL: 70 % answer in time (keypress or SMS reply), 20 % late,
10 % never → the never group escalates to their township chiefs, then to the leader on duty."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import session_scope
from responses.callouts import answers, board
from responses.callouts import service as svc
from responses.callouts.models import Answer, Attempt, Callout, Escalation
from responses.messaging.models import OutboxMessage
from responses.messaging.webhooks import InboundAnswer
from responses.runs.models import Notice, ResponseRun

MIN = dt.timedelta(minutes=1)
CALLS = {"answer_minutes": 5, "retries": {"count": 1, "interval_minutes": 2}, "channels": ["sms", "voice"],
         "tiers": {"village": ["village_head"]}, "escalation": ["village", "township", "leader_on_duty"]}


def inbound(s: Session, c: Callout, kind: str, text: str, now: dt.datetime, n: int) -> Any:
    att = c.attempts[-1]
    return answers.handle_inbound(s, InboundAnswer(
        kind=kind, text=text, from_number=att.number, to_number="+15005550006", inbound_id=n,
        message_id=att.message_id, subject_type="callout_attempt", subject_id=str(att.id), received_at=now))


def snapshot(s: Session) -> dict[str, Any]:
    """Everything a sweep could change, to prove a second sweep changes nothing."""
    return {
        "callouts": sorted((c.id, c.state, c.retries_done, c.next_action_at, c.attempts_made)
                           for c in s.execute(select(Callout)).scalars()),
        "attempts": s.execute(select(func.count(Attempt.id))).scalar(),
        "messages": s.execute(select(func.count(OutboxMessage.id))).scalar(),
        "escalations": s.execute(select(func.count(Escalation.id))).scalar(),
        "notices": s.execute(select(func.count(Notice.id))).scalar(),
    }


def sweep_twice(factory: sessionmaker[Session], now: dt.datetime) -> svc.SweepStats:
    first = svc.sweep(factory, now=now)
    with session_scope(factory) as s:
        before = snapshot(s)
    again = svc.sweep(factory, now=now)
    with session_scope(factory) as s:
        assert snapshot(s) == before, "a second sweep at the same moment changed something"
    assert again.retries == again.escalated == again.exhausted == again.new_callouts == 0
    return first


def test_150_callees_escalate_up_the_chain(session_factory: sessionmaker[Session], clock: VirtualClock,
                                          kit: Any) -> None:
    t0 = clock.now()
    district = kit.build_district(session_factory, t0, townships=5, per_township=30)
    run_id = kit.make_run(session_factory, t0, villages=district.villages, calls=CALLS)

    with session_scope(session_factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        created = svc.create_run_callouts(s, run, now=t0)
        assert len(created) == 150
    with session_scope(session_factory) as s:  # the run hook firing twice calls nobody twice
        run = s.get(ResponseRun, run_id)
        assert run is not None
        assert svc.create_run_callouts(s, run, now=t0) == []

    with session_scope(session_factory) as s:
        callouts = list(s.execute(select(Callout).order_by(Callout.id)).scalars())
        assert {c.contact_id for c in callouts} == set(district.heads.values())  # no callee missed
        firsts = s.execute(select(Attempt.callout_id).where(Attempt.seq == 1)).scalars().all()
        assert sorted(firsts) == sorted(c.id for c in callouts)  # exactly one first attempt each
        keys = s.execute(select(OutboxMessage.idempotency_key)).scalars().all()
        assert len(keys) == len(set(keys)) == 150
        assert all(c.attempts[0].channel == "sms" and c.deadline_at == t0 + 5 * MIN for c in callouts)
        ids = [c.id for c in callouts]
    # 70 % in time, 20 % late, 10 % never, spread over the townships
    in_time: list[int] = []
    late: list[int] = []
    never: list[int] = []
    for i, cid in enumerate(ids):
        bucket = i % 10
        (never if bucket == 9 else late if bucket in (7, 8) else in_time).append(cid)
    assert (len(in_time), len(late), len(never)) == (105, 30, 15)

    clock.advance(2 * MIN)
    with session_scope(session_factory) as s:
        for n, cid in enumerate(in_time):
            c = s.get(Callout, cid)
            assert c is not None
            if n % 2 == 0:
                assert inbound(s, c, "keypress", "1", clock.now(), n) is not None
            else:
                assert inbound(s, c, "sms", "收到，已转移12人" if n % 3 else "2 需要支援", clock.now(), n) is not None

    clock.set(t0 + 5 * MIN)  # the deadline: the 45 silent ones are retried, by voice
    st = sweep_twice(session_factory, clock.now())
    assert st.retries == 45 and st.escalated == 0
    with session_scope(session_factory) as s:
        for cid in late + never:
            c = s.get(Callout, cid)
            assert c is not None and c.state == "calling" and [a.channel for a in c.attempts] == ["sms", "voice"]
            assert c.next_action_at == t0 + 7 * MIN

    clock.advance(MIN)  # late answers, by keypress on the retry call
    with session_scope(session_factory) as s:
        for n, cid in enumerate(late):
            c = s.get(Callout, cid)
            assert c is not None
            inbound(s, c, "keypress", "1", clock.now(), 1000 + n)

    clock.set(t0 + 7 * MIN)  # retries used up: the never group escalates to their township chiefs
    st = sweep_twice(session_factory, clock.now())
    assert st.escalated == 15 and st.exhausted == 0
    with session_scope(session_factory) as s:
        esc = list(s.execute(select(Escalation).where(Escalation.from_callout_id.in_(never))).scalars())
        assert len(esc) == 15 and {e.step for e in esc} == {"township"}
        chief_callouts = {c.contact_id: c for c in s.execute(
            select(Callout).where(Callout.reason == "escalation", Callout.tier == "township")).scalars()}
        # one callout per chief, naming all of that township's silent villages
        assert set(chief_callouts) == set(district.chiefs.values())
        for c in chief_callouts.values():
            assert len(c.context["from_callouts"]) == 3 and len(c.areas) == 3
            assert c.attempts[0].seq == 1 and "未在时限内应答" in s.get(OutboxMessage, c.attempts[0].message_id).body
        for cid in never:
            c = s.get(Callout, cid)
            assert c is not None and c.state == "escalated" and c.escalated_at == clock.now()
            chief_id = district.chiefs[c.areas[0][:9] + "000"]
            assert c.id in chief_callouts[chief_id].context["from_callouts"]
        assert s.execute(select(func.count(Notice.id)).where(Notice.kind == "callout_escalated")).scalar() == 15

    clock.set(t0 + 14 * MIN)  # chiefs silent too: one retry at +12 skipped by a late tick, then the leader
    st = sweep_twice(session_factory, clock.now())
    assert st.escalated == 5 and st.skipped_retries == 5
    with session_scope(session_factory) as s:
        top = list(s.execute(select(Callout).where(Callout.tier == "leader_on_duty")).scalars())
        assert len(top) == 1 and top[0].numbers == [kit.LEADER_PHONE] and top[0].name == "带班领导乙"
        assert sorted(top[0].context["from_callouts"]) == sorted(
            c.id for c in s.execute(select(Callout).where(Callout.tier == "township")).scalars())
        assert len(top[0].areas) == 15

    clock.set(t0 + 30 * MIN)  # the leader on duty is silent as well: nobody above → duty officer
    sweep_twice(session_factory, clock.now())

    with session_scope(session_factory) as s:
        answers = list(s.execute(select(Answer)).scalars())
        by_callout = {a.callout_id: a for a in answers}
        assert len(answers) == 135 and not any(a.late for a in answers if a.callout_id in in_time)
        assert all(by_callout[cid].late for cid in late)
        assert Counter(a.channel for a in answers) == {"keypress": 53 + 30, "sms_reply": 52}
        assert any(a.kind == "need_support" for a in answers) and any(a.report.get("evacuated") == 12
                                                                      for a in answers)
        states = Counter(s.execute(select(Callout.state).where(Callout.reason == "plan")).scalars())
        assert states == {"answered": 135, "escalated": 15}
        top = s.execute(select(Callout).where(Callout.tier == "leader_on_duty")).scalar_one()
        assert top.state == "unanswered"
        assert s.execute(select(func.count(Notice.id)).where(Notice.kind == "callout_unanswered")).scalar() == 1
        # a late answer after the escalation is still taken, marked late
        first_never = s.get(Callout, never[0])
        assert first_never is not None
        inbound(s, first_never, "keypress", "1", clock.now(), 9999)
    with session_scope(session_factory) as s:
        c = s.get(Callout, never[0])
        assert c is not None and c.state == "answered" and c.answer_late is True
        b = board.board(s, run_id, now=clock.now())
        assert b["total"] == 150 + 5 + 1
        row = next(r for r in b["callouts"] if r["id"] == never[0])
        assert [e["step"] for e in row["escalations"]] == ["township"] and len(row["attempts"]) == 2
