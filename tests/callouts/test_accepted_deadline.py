"""The answer window runs from the moment the person's first try is accepted by the provider.

A run's callouts are all created at once, but a provider rate limit (or an outage) calls the last
person long after the first: their deadline must not have run down in the meantime. Only a
callout still waiting on its first try moves; retries, answers and escalations keep their timing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import session_scope
from config.eventlog import Event
from config.runtime import Runtime
from jiaoying.scheduler import job_specs
from responses.callouts import answers
from responses.callouts import service as svc
from responses.callouts.core import AnswerChannel, AnswerKind
from responses.callouts.models import Callout
from responses.messaging import outbox
from responses.messaging.models import OutboxMessage
from responses.messaging.notifiers.base import TransientError
from responses.messaging.notifiers.fake import FakeNotifier
from responses.messaging.sender import Sender, SenderConfig, send_due
from responses.runs.models import ResponseRun

MIN = dt.timedelta(minutes=1)
CALLS = {"answer_minutes": 10, "retries": {"count": 1, "interval_minutes": 3}, "channels": ["sms", "voice"],
         "tiers": {"village": ["village_head"]}, "escalation": ["village", "township", "leader_on_duty"]}


def start(factory: sessionmaker[Session], now: dt.datetime, run_id: int) -> list[int]:
    with session_scope(factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        svc.create_run_callouts(s, run, now=now)
    with session_scope(factory) as s:
        return list(s.execute(select(Callout.id).where(Callout.run_id == run_id).order_by(Callout.id)).scalars())


def timing(factory: sessionmaker[Session], ids: list[int]) -> dict[int, tuple[Any, ...]]:
    with session_scope(factory) as s:
        return {c.id: (c.started_at, c.deadline_at, c.next_action_at, c.state) for c in
                s.execute(select(Callout).where(Callout.id.in_(ids))).scalars()}


def accepted_events(factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    with session_scope(factory) as s:
        return [e.payload for e in s.execute(select(Event).where(Event.action == "callouts.call_accepted")
                                             .order_by(Event.seq)).scalars()]


def test_deadline_runs_from_acceptance_through_the_wiring(runtime: Runtime, clock: VirtualClock, kit: Any) -> None:
    """The scheduler's sender (built from the runtime) calls the hook the wiring registered."""
    factory = runtime.session_factory
    t0 = clock.now()
    d = kit.build_district(factory, t0, townships=1, per_township=3)
    run_id = kit.make_run(factory, t0, villages=d.villages, calls=CALLS)
    ids = start(factory, t0, run_id)
    assert len(ids) == 3
    before = timing(factory, ids)
    assert all(v[1] == t0 + 10 * MIN and v[2] == t0 + 10 * MIN for v in before.values())  # provisional
    # the first callee answers (e.g. a duty officer's phone confirmation) before the SMS goes out
    with session_scope(factory) as s:
        c = s.get(Callout, ids[0])
        assert c is not None
        answers.record_answer(s, c, now=t0 + 10 * dt.timedelta(seconds=1), channel=AnswerChannel.DUTY_OFFICER,
                          kind=AnswerKind.RECEIVED, entered_by="user:duty")
    job_specs(runtime)  # the wiring: registers the hook on the runtime's state
    runtime.state["messaging_notifiers"] = {"twilio": FakeNotifier()}
    accepted_at = t0 + dt.timedelta(seconds=40)  # the provider took the messages 40 s after the run started
    clock.set(accepted_at)
    try:
        stats = send_due(runtime)
    finally:
        runtime.state["messaging_sender"].close()
    assert stats is not None and stats.sent == 3
    after = timing(factory, ids)
    assert after[ids[0]] == before[ids[0]][:2] + (None, "answered")  # answered: nothing moves
    for cid in ids[1:]:
        assert after[cid] == (accepted_at, accepted_at + 10 * MIN, accepted_at + 10 * MIN, "calling")
    events = accepted_events(factory)
    assert len(events) == 1
    assert [row[0] for row in events[0]["callouts"]] == ids[1:]
    assert {row[1] for row in events[0]["callouts"]} == {accepted_at.isoformat()}
    # the sweep honours the new deadline: nothing at the provisional one, a retry at the new one
    assert svc.sweep(factory, now=t0 + 10 * MIN + dt.timedelta(seconds=5)).due == 0
    st = svc.sweep(factory, now=accepted_at + 10 * MIN)
    assert st.due == 2 and st.retries == 2


def test_only_the_first_try_moves_the_deadline(session_factory: sessionmaker[Session], clock: VirtualClock,
                                               kit: Any) -> None:
    """Provider down: the provisional deadline still fires (a retry); accepting the retry, or the
    first try late, moves nothing; a repeated acceptance writes nothing either."""
    t0 = clock.now()
    d = kit.build_district(session_factory, t0, townships=1, per_township=2)
    run_id = kit.make_run(session_factory, t0, villages=d.villages, calls=CALLS)
    ids = start(session_factory, t0, run_id)
    state: dict[str, Any] = {}
    svc.install(state)
    svc.install(state)  # idempotent
    assert outbox.accepted_hooks_of(state) == [svc.on_attempts_accepted]
    down = FakeNotifier(fail=lambda kind, to: TransientError("503 from provider", code="503", status=503))
    sender = Sender(session_factory, {"twilio": down}, clock=clock, config=SenderConfig(concurrency=2),
                    on_accepted=outbox.accepted_hooks_of(state), seed=1)
    try:
        assert sender.run_once().retried == 2
    finally:
        sender.close()
    assert all(v[1] == t0 + 10 * MIN for v in timing(session_factory, ids).values())
    clock.set(t0 + 10 * MIN)
    st = svc.sweep(session_factory, now=clock.now())
    assert st.retries == 2  # never accepted: the provisional deadline fired as before
    retried = timing(session_factory, ids)
    assert all(v[1] == t0 + 10 * MIN and v[2] == t0 + 13 * MIN for v in retried.values())
    clock.set(t0 + 10 * MIN + dt.timedelta(seconds=30))
    up = FakeNotifier()
    sender = Sender(session_factory, {"twilio": up}, clock=clock, config=SenderConfig(concurrency=2),
                    on_accepted=outbox.accepted_hooks_of(state))
    try:
        assert sender.run_once().sent == 2  # the retries (the first tries' validity has ended)
    finally:
        sender.close()
    assert timing(session_factory, ids) == retried
    # the first try accepted late (after the retry went out) moves nothing either
    with session_scope(session_factory) as s:
        firsts = [c.attempts[0] for c in s.execute(select(Callout).where(Callout.id.in_(ids))).scalars()]
        late = [outbox.Accepted(a.message_id, svc.SUBJECT, str(a.id), clock.now()) for a in firsts]
        assert svc.on_attempts_accepted(s, late, clock.now()) == 0
    assert timing(session_factory, ids) == retried
    assert accepted_events(session_factory) == []


def test_repeated_acceptance_is_idempotent_and_other_subjects_are_ignored(
        session_factory: sessionmaker[Session], clock: VirtualClock, kit: Any) -> None:
    t0 = clock.now()
    d = kit.build_district(session_factory, t0, townships=1, per_township=1)
    run_id = kit.make_run(session_factory, t0, villages=d.villages, calls=CALLS)
    [cid] = start(session_factory, t0, run_id)
    at = t0 + dt.timedelta(seconds=75)
    with session_scope(session_factory) as s:
        c = s.get(Callout, cid)
        assert c is not None
        att = c.attempts[0]
        item = outbox.Accepted(att.message_id, svc.SUBJECT, str(att.id), at)
        assert svc.on_attempts_accepted(s, [outbox.Accepted(att.message_id, "notice", str(att.id), at)], at) == 0
        assert svc.on_attempts_accepted(s, [item], at) == 1
    with session_scope(session_factory) as s:
        assert svc.on_attempts_accepted(s, [item], at + MIN) == 0
    assert timing(session_factory, [cid])[cid] == (at, at + 10 * MIN, at + 10 * MIN, "calling")
    assert len(accepted_events(session_factory)) == 1
    # through the outbox: a message accepted twice (a lease ran out mid-send) keeps its first time
    with session_scope(session_factory) as s:
        msg = s.get(OutboxMessage, item.message_id)
        assert msg is not None and msg.state == "queued"
    seen: list[list[outbox.Accepted]] = []
    hooks = [lambda _s, items, _now: seen.append(list(items))]
    for when in (at, at + MIN):
        with session_scope(session_factory) as s:
            if when == at:
                outbox.claim(s, now=when, worker="w1", limit=10)
            outbox.apply_results(s, [outbox.SendResult(item.message_id, "w1", "sent", provider_id=f"SM{when.minute}")],
                                 now=when, on_accepted=hooks)
    assert [[(a.message_id, a.accepted_at) for a in batch] for batch in seen] == [[(item.message_id, at)]] * 2
