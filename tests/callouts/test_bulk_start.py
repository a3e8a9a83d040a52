"""A run start writes its callouts in bulk: the same rows the per-row path writes (callouts, first attempts,
outbox messages, their status history, event-log entries, in the same order), idempotent, the event log's
hash chain intact; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import session_scope
from config.eventlog import Event, record, record_many, verify
from responses.callouts import core, escalation
from responses.callouts import service as svc
from responses.callouts.models import Attempt, Callout
from responses.contacts.models import Contact, Duty
from responses.contacts.service import reachable
from responses.messaging import outbox
from responses.messaging.models import MessageStatus, OutboxMessage
from responses.runs.models import ResponseRun

CALLS = {"answer_minutes": 7, "retries": {"count": 1, "interval_minutes": 2}, "channels": ["sms", "voice"],
         "tiers": {"village": ["village_head"], "township": ["township_chief"]},
         "escalation": ["village", "township", "leader_on_duty"]}


def per_row_start(s: Session, run: ResponseRun, now: dt.datetime, actor: str = "system") -> list[int]:
    """The run start as it was written one row at a time (ORM objects, ``_send`` per callout): the reference
    the bulk path must match row for row."""
    calls = svc._plan_calls(run)
    contacts: dict[int, Contact] = {}
    refs = []
    for d, c in s.execute(select(Duty, Contact).join(Contact, Duty.contact_id == Contact.id)).all():
        if reachable(c, d, now):
            contacts[c.id] = c
            refs.append(core.DutyRef(c.id, d.role, d.place))
    planned = core.plan_callouts(calls.get("tiers") or {}, run.areas or {}, refs)
    have = set(s.execute(select(Callout.contact_id).where(Callout.run_id == run.id,
                                                          Callout.reason == "plan")).scalars())
    ctx = svc._context(s)
    ctx.runs[run.id] = run
    created = []
    for p in planned:
        if p.contact_id in have:
            continue
        person = contacts[p.contact_id]
        c = svc._new_callout(run_id=run.id, key=f"run:{run.id}:contact:{person.id}", contact=person,
                             name=person.name, numbers=[n for n in (person.phone, person.backup_phone) if n],
                             role=p.role, tier=p.tier, areas=p.places, reason="plan", level=run.level, calls=calls,
                             now=now, drill=run.drill, names=ctx.names)
        s.add(c)
        created.append(c)
    s.flush()
    for c in created:
        d = escalation.start(svc.view_of(c), now)
        svc.apply_decision(c, d, now)
        if d.send:
            svc._send(s, c, d.send, "first", now, ctx)
    s.flush()
    if created:
        record(s, now=now, action="callouts.created", entity_type="response_run", entity_id=run.id, actor=actor,
               payload={"count": len(created), "level": run.level,
                        "callouts": [[c.id, c.contact_id, c.tier, c.areas] for c in created]})
    return [c.id for c in created]


def twin_run(factory: sessionmaker[Session], run_id: int) -> int:
    """A second run like the first (same plan, areas, times), under its own number."""
    with session_scope(factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        cols = [c.key for c in ResponseRun.__table__.columns
                if c.key not in ("id", "number", "thread_id", "open_thread_id")]
        twin = ResponseRun(number=run.number + "b", thread_id=run.thread_id + 1, open_thread_id=run.thread_id + 1,
                           **{k: getattr(run, k) for k in cols})
        s.add(twin)
        s.flush()
        return twin.id


def _row(obj: Any, drop: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in type(obj).__table__.columns if c.key not in drop}


def written(s: Session, run_id: int) -> dict[str, Any]:
    """Everything a run start wrote for this run, ids replaced by their rank (first callout 0, ...), so two
    runs' rows compare equal when they are the same rows in the same order."""
    cs = list(s.execute(select(Callout).where(Callout.run_id == run_id).order_by(Callout.id)).scalars())
    cmap = {c.id: i for i, c in enumerate(cs)}
    ats = list(s.execute(select(Attempt).where(Attempt.callout_id.in_(list(cmap))).order_by(Attempt.id)).scalars())
    amap = {a.id: i for i, a in enumerate(ats)}
    ms = list(s.execute(select(OutboxMessage).where(OutboxMessage.subject_id.in_([str(a) for a in amap]))
                        .order_by(OutboxMessage.id)).scalars())
    mmap = {m.id: i for i, m in enumerate(ms)}
    sts = list(s.execute(select(MessageStatus).where(MessageStatus.message_id.in_(list(mmap)))
                         .order_by(MessageStatus.id)).scalars())
    evs = list(s.execute(select(Event).where(
        ((Event.entity_type == "outbox_message") & Event.entity_id.in_([str(m) for m in mmap]))
        | ((Event.entity_type == "response_run") & (Event.entity_id == str(run_id)))).order_by(Event.seq)).scalars())
    out: dict[str, Any] = {"callouts": [], "attempts": [], "messages": [], "statuses": [], "events": []}
    for c in cs:
        r = _row(c)
        r["key"] = r["key"].replace(f"run:{run_id}:", "run:R:")
        r["run_id"] = "R"
        out["callouts"].append(r)
    for a in ats:
        r = _row(a)
        r["callout_id"], r["message_id"] = cmap[a.callout_id], mmap[a.message_id] if a.message_id else None
        out["attempts"].append(r)
    for m in ms:
        r = _row(m)
        cid = int(m.idempotency_key.split(":")[1])
        r["idempotency_key"] = m.idempotency_key.replace(f"callout:{cid}:", f"callout:{cmap[cid]}:")
        r["params"] = {**m.params, "callout_id": cmap[m.params["callout_id"]],
                       "attempt_id": amap[m.params["attempt_id"]]}
        r["subject_id"] = amap[int(m.subject_id or 0)]
        out["messages"].append(r)
    for st in sts:
        r = _row(st)
        r["message_id"] = mmap[st.message_id]
        out["statuses"].append(r)
    seqs = [e.seq for e in evs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a start's events are one unbroken stretch"
    for e in evs:
        r = _row(e, drop=("id", "seq", "prev_hash", "hash"))
        p = dict(e.payload)
        if e.entity_type == "outbox_message":
            r["entity_id"] = mmap[int(e.entity_id)]
            cid = int(p["key"].split(":")[1])
            p["key"] = p["key"].replace(f"callout:{cid}:", f"callout:{cmap[cid]}:")
            p["subject"] = [p["subject"][0], amap[int(p["subject"][1])]]
        else:
            r["entity_id"] = "R"
            p["callouts"] = [[cmap[x[0]], *x[1:]] for x in p["callouts"]]
        r["payload"] = p
        out["events"].append(r)
    return out


def test_bulk_start_writes_the_rows_of_the_per_row_path(session_factory: sessionmaker[Session],
                                                        clock: VirtualClock, kit: Any) -> None:
    t0 = clock.now()
    district = kit.build_district(session_factory, t0, townships=3, per_township=4)
    with session_scope(session_factory) as s:  # a backup number: the person has two routes
        kit.add_person(s, t0, "村长备", kit.phone(500), "village_head", district.villages[0], backup=kit.phone(501))
    run_a = kit.make_run(session_factory, t0, villages=district.villages, townships=district.townships, calls=CALLS)
    run_b = twin_run(session_factory, run_a)
    with session_scope(session_factory) as s:
        run = s.get(ResponseRun, run_a)
        assert run is not None
        ids_a = per_row_start(s, run, t0)
    with session_scope(session_factory) as s:
        run = s.get(ResponseRun, run_b)
        assert run is not None
        ids_b = svc.start_run_callouts(s, run, now=t0)
    assert len(ids_a) == len(ids_b) == 12 + 1 + 3  # heads, the extra head, chiefs
    assert ids_b == sorted(ids_b) and ids_b[0] > ids_a[-1]
    with session_scope(session_factory) as s:
        a, b = written(s, run_a), written(s, run_b)
        for table in a:
            assert b[table] == a[table], table
        assert len(b["messages"]) == len(b["attempts"]) == len(b["statuses"]) == 16
        assert len(b["events"]) == 16 + 1
        # the template values stored at enqueue are there, as the per-row path stores them
        assert {"kind", "warning", "areas", "minutes"} <= set(b["messages"][0]["params"])
        assert verify(s).ok


def test_start_is_idempotent_and_calls_only_newcomers(session_factory: sessionmaker[Session],
                                                      clock: VirtualClock, kit: Any) -> None:
    t0 = clock.now()
    district = kit.build_district(session_factory, t0, townships=2, per_township=5)
    run_id = kit.make_run(session_factory, t0, villages=district.villages[:4],
                          calls={**CALLS, "tiers": {"village": ["village_head"]}})

    def counts(s: Session) -> tuple[int, ...]:
        return tuple(int(s.execute(select(func.count()).select_from(m)).scalar() or 0)
                     for m in (Callout, Attempt, OutboxMessage, MessageStatus, Event))

    with session_scope(session_factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        first = svc.start_run_callouts(s, run, now=t0)
    assert len(first) == 4
    with session_scope(session_factory) as s:
        before = counts(s)
        run = s.get(ResponseRun, run_id)
        assert run is not None
        assert svc.start_run_callouts(s, run, now=t0 + dt.timedelta(seconds=3)) == []
        assert svc.create_run_callouts(s, run, now=t0 + dt.timedelta(seconds=3)) == []
    with session_scope(session_factory) as s:
        assert counts(s) == before  # nothing written twice, not even an event
        run = s.get(ResponseRun, run_id)
        assert run is not None
        run.areas = {**run.areas, "villages": district.villages}  # the run's areas grew
    with session_scope(session_factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        grown = svc.create_run_callouts(s, run, now=t0 + dt.timedelta(minutes=1))
        assert sorted(c.contact_id for c in grown) == sorted(district.heads[v] for v in district.villages[4:])
        assert all(len(c.attempts) == 1 and c.attempts[0].message_id for c in grown)
    with session_scope(session_factory) as s:
        n = counts(s)
        assert n[:4] == (10, 10, 10, 10)
        keys = s.execute(select(OutboxMessage.idempotency_key)).scalars().all()
        assert len(set(keys)) == 10
        assert verify(s).ok


def test_enqueue_many_keeps_the_first_row_of_a_key(session_factory: sessionmaker[Session],
                                                   clock: VirtualClock) -> None:
    now = clock.now()
    with session_scope(session_factory) as s:
        old = outbox.enqueue(s, now=now, channel="sms", to="+8613800000001", body="a", idempotency_key="k1")
        old_id = old.id
    with session_scope(session_factory) as s:
        ids = outbox.enqueue_many(s, [
            outbox.NewMessage(channel="sms", to="+8613800000001", body="changed", idempotency_key="k1"),
            outbox.NewMessage(channel="voice", to="+86 138-0000-0002", body="b", idempotency_key="k2"),
            outbox.NewMessage(channel="sms", to="+8613800000003", body="c", idempotency_key="k2"),
        ], now=now)
        assert ids[0] == old_id and ids[1] == ids[2] != old_id
    with session_scope(session_factory) as s:
        rows = {m.idempotency_key: m for m in s.execute(select(OutboxMessage)).scalars()}
        assert set(rows) == {"k1", "k2"}
        assert rows["k1"].body == "a" and rows["k2"].to_number == "+8613800000002"
        assert [e.action for e in s.execute(select(Event).order_by(Event.seq)).scalars()] == ["message.queued"] * 2
        assert s.execute(select(func.count()).select_from(MessageStatus)).scalar() == 2
        assert verify(s).ok


@pytest.mark.parametrize("bad", [dict(channel="fax", to="+8613800000001"), dict(channel="sms", to="12345")])
def test_enqueue_many_refuses_a_bad_item_before_writing(session_factory: sessionmaker[Session],
                                                        clock: VirtualClock, bad: dict[str, str]) -> None:
    now = clock.now()
    with session_scope(session_factory) as s:
        with pytest.raises(outbox.OutboxError):
            outbox.enqueue_many(s, [outbox.NewMessage(channel="sms", to="+8613800000009", idempotency_key="ok"),
                                    outbox.NewMessage(idempotency_key="bad", **bad)], now=now)
        assert s.execute(select(func.count()).select_from(OutboxMessage)).scalar() == 0


def test_record_many_continues_the_chain_and_survives_a_rolled_back_savepoint(
        session_factory: sessionmaker[Session], clock: VirtualClock) -> None:
    now = clock.now()
    with session_scope(session_factory) as s:
        record(s, now=now, action="a.one", entity_type="x", entity_id=1, actor="t")
        assert record_many(s, now=now, entries=[("a.many", "x", i, "t", {"i": i, "名": "村"}) for i in range(5)]) == 5
        record(s, now=now, action="a.after", entity_type="x", entity_id=9, actor="t")
        with pytest.raises(RuntimeError), s.begin_nested():
            record_many(s, now=now, entries=[("a.lost", "x", 0, "t", None)])
            raise RuntimeError("roll the savepoint back")
        record(s, now=now, action="a.last", entity_type="x", entity_id=10, actor="t")
    with session_scope(session_factory) as s:
        evs = list(s.execute(select(Event).order_by(Event.seq)).scalars())
        assert [e.action for e in evs] == ["a.one"] + ["a.many"] * 5 + ["a.after", "a.last"]
        assert [e.seq for e in evs] == list(range(1, 9))
        assert [e.id for e in evs] == sorted(e.id for e in evs)
        assert evs[3].payload == {"i": 2, "名": "村"}
        assert verify(s).ok


def test_queue_margin_counts_whole_minutes_of_sending() -> None:
    assert svc.queue_margin(0, 10.0) == dt.timedelta(0)
    assert svc.queue_margin(599, 10.0) == dt.timedelta(0)  # the first minute's worth keeps its deadline
    assert svc.queue_margin(600, 10.0) == dt.timedelta(minutes=1)
    assert svc.queue_margin(19_999, 10.0) == dt.timedelta(minutes=33)
    assert svc.queue_margin(19_999, None) == dt.timedelta(0)
    with pytest.raises(ValueError):
        svc.set_send_rate(0, create_engine("sqlite://"))


def test_a_slow_fan_out_does_not_expire_or_escalate_its_own_tail(session_factory: sessionmaker[Session],
                                                                 clock: VirtualClock, kit: Any) -> None:
    """At half a message a second, 30 first tries leave per minute: with 10 messages already waiting, callees
    1-20 are sent in the first minute, 21-50 in the second, 51-60 in the third. Their provisional deadline
    and their message's validity follow, so the sweep and the expiry at window + 30 s touch only the first
    20; a tail message accepted later gives its callee the whole window from then."""
    t0 = clock.now()
    district = kit.build_district(session_factory, t0, townships=3, per_township=20)
    calls = {**CALLS, "retries": {"count": 0, "interval_minutes": 1}, "tiers": {"village": ["village_head"]}}
    run_id = kit.make_run(session_factory, t0, villages=district.villages, calls=calls)
    window = dt.timedelta(minutes=CALLS["answer_minutes"])
    with session_scope(session_factory) as s:
        outbox.enqueue_many(s, [outbox.NewMessage(channel="sms", to=kit.phone(800 + i), idempotency_key=f"x{i}")
                                for i in range(10)], now=t0)
    with session_scope(session_factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        ids = svc.start_run_callouts(s, run, now=t0, send_rate=0.5)
    with session_scope(session_factory) as s:
        cs = list(s.execute(select(Callout).where(Callout.id.in_(ids)).order_by(Callout.id)).scalars())
        margins = [(c.deadline_at - t0 - window) // dt.timedelta(minutes=1) for c in cs]
        assert margins == [0] * 20 + [1] * 30 + [2] * 10
        assert all(c.next_action_at == c.deadline_at and c.started_at == t0 for c in cs)
        msgs = {m.subject_id: m for m in s.execute(
            select(OutboxMessage).where(OutboxMessage.subject_type == svc.SUBJECT)).scalars()}
        assert all(msgs[str(c.attempts[0].id)].validity_until == c.deadline_at for c in cs)
    later = t0 + window + dt.timedelta(seconds=30)
    with session_scope(session_factory) as s:
        expired = outbox.expire_stale(s, now=later)
        assert len(expired) == 20
    stats = svc.sweep(session_factory, now=later)
    assert stats.due == 20
    tail = cs[-1]
    accepted = t0 + window + dt.timedelta(seconds=150)
    with session_scope(session_factory) as s:
        att = s.execute(select(Attempt).where(Attempt.callout_id == tail.id)).scalar_one()
        moved = svc.on_attempts_accepted(s, [outbox.Accepted(att.message_id or 0, svc.SUBJECT, str(att.id),
                                                             accepted)], accepted)
        assert moved == 1
    with session_scope(session_factory) as s:
        c = s.get(Callout, tail.id)
        assert c is not None and c.state == "calling"
        assert c.deadline_at == c.next_action_at == accepted + window and c.started_at == accepted


def test_without_a_rate_limit_every_deadline_is_the_window(session_factory: sessionmaker[Session],
                                                           clock: VirtualClock, kit: Any) -> None:
    t0 = clock.now()
    district = kit.build_district(session_factory, t0, townships=2, per_township=10)
    run_id = kit.make_run(session_factory, t0, villages=district.villages,
                          calls={**CALLS, "tiers": {"village": ["village_head"]}})
    with session_scope(session_factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        made = svc.create_run_callouts(s, run, now=t0, send_rate=None)
        assert {c.deadline_at for c in made} == {t0 + dt.timedelta(minutes=CALLS["answer_minutes"])}


def test_the_configured_rate_is_kept_per_database(session_factory: sessionmaker[Session], clock: VirtualClock,
                                                  kit: Any) -> None:
    """The wiring's rate for this database is the one a start uses: at 0.5 a second the second half of 60
    callees waits a minute more; another database's setting changes nothing here."""
    t0 = clock.now()
    district = kit.build_district(session_factory, t0, townships=3, per_township=20)
    run_id = kit.make_run(session_factory, t0, villages=district.villages,
                          calls={**CALLS, "tiers": {"village": ["village_head"]}})
    engine = session_factory.kw["bind"]
    svc.set_send_rate(0.5, engine)
    svc.set_send_rate(None, create_engine("sqlite://"))
    try:
        with session_scope(session_factory) as s:
            run = s.get(ResponseRun, run_id)
            assert run is not None
            made = svc.create_run_callouts(s, run, now=t0)
    finally:
        svc._SEND_RATE.pop(str(engine.url), None)
    window = dt.timedelta(minutes=CALLS["answer_minutes"])
    assert [(c.deadline_at - t0 - window) // dt.timedelta(minutes=1) for c in made] == [0] * 30 + [1] * 30
