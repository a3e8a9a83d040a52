"""Outbox and sender against the real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from config.eventlog import Event, verify
from responses.messaging import outbox
from responses.messaging.models import MessageStatus, OutboxMessage
from responses.messaging.notifiers.base import PermanentError, TransientError
from responses.messaging.notifiers.fake import FakeNotifier
from responses.messaging.sender import Sender, SenderConfig


def _fill(factory: sessionmaker[Session], now: dt.datetime, n: int, **kw: object) -> list[int]:
    with session_scope(factory) as s:
        ids = [outbox.enqueue(s, now=now, channel="sms", to=f"+86138{i:08d}", body=f"第{i}条",
                              idempotency_key=f"k{i}", subject_type="test", subject_id=i, **kw).id  # type: ignore[arg-type]
               for i in range(n)]
    return ids


def test_enqueue_is_idempotent_and_validates(engine: Engine, clock: VirtualClock) -> None:
    f = make_session_factory(engine)
    now = clock.now()
    with session_scope(f) as s:
        a = outbox.enqueue(s, now=now, channel="sms", to="+86 138 0000 0001", body="x", idempotency_key="same")
        b = outbox.enqueue(s, now=now, channel="sms", to="+8613800000001", body="y", idempotency_key="same")
        assert a.id == b.id and a.to_number == "+8613800000001" and a.body == "x"
    for bad in [dict(channel="fax", to="+8613800000001"), dict(channel="sms", to="13800000001")]:
        with session_scope(f) as s:
            try:
                outbox.enqueue(s, now=now, body="x", idempotency_key="bad", **bad)  # type: ignore[arg-type]
            except outbox.OutboxError as exc:
                assert "E.164" in str(exc) or "channel" in str(exc)
            else:
                raise AssertionError("accepted a bad message")
    with session_scope(f) as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_claim_is_atomic_under_concurrent_claimers(engine: Engine, clock: VirtualClock) -> None:
    f = make_session_factory(engine)
    ids = _fill(f, clock.now(), 300)
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker(name: str) -> None:
        mine: list[int] = []
        barrier.wait()
        try:
            while True:
                with session_scope(f) as s:
                    batch = outbox.claim(s, now=clock.now(), worker=name, limit=7)
                if not batch:
                    break
                mine += [c.id for c in batch]
        except BaseException as exc:
            errors.append(exc)
        got[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    everything = [i for lst in got.values() for i in lst]
    assert sorted(everything) == sorted(ids)  # every message claimed, none twice
    assert sum(1 for lst in got.values() if lst) >= 2  # the claimers really competed
    with session_scope(f) as s:
        rows = s.execute(select(OutboxMessage.id, OutboxMessage.claimed_by, OutboxMessage.attempts)).all()
    owner = {i: w for w, lst in got.items() for i in lst}
    assert all(r.claimed_by == owner[r.id] and r.attempts == 1 for r in rows)


def test_two_senders_never_send_a_message_twice(engine: Engine, clock: VirtualClock) -> None:
    f = make_session_factory(engine)
    _fill(f, clock.now(), 200)
    notifier = FakeNotifier(name="twilio")
    senders = [Sender(f, {"twilio": notifier}, clock=clock, config=SenderConfig(concurrency=4, batch=16),
                      worker_id=f"s{i}") for i in range(2)]
    stats: list[object] = []
    threads = [threading.Thread(target=lambda s=s: stats.append(s.run_once())) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in senders:
        s.close()
    assert len(notifier.sent) == 200
    assert max(notifier.per_number.values()) == 1
    with session_scope(f) as s:
        assert outbox.counts(s) == {"sent": 200}
        pids = s.execute(select(OutboxMessage.provider_id)).scalars().all()
        assert len(set(pids)) == 200 and all(pids)
        assert verify(s).ok


def test_a_crashed_senders_claims_come_back_after_the_lease(engine: Engine, clock: VirtualClock) -> None:
    f = make_session_factory(engine)
    _fill(f, clock.now(), 5)
    with session_scope(f) as s:
        assert len(outbox.claim(s, now=clock.now(), worker="dead", limit=10, lease=dt.timedelta(seconds=60))) == 5
    notifier = FakeNotifier(name="twilio")
    sender = Sender(f, {"twilio": notifier}, clock=clock, worker_id="alive")
    assert sender.run_once().sent == 0  # still leased
    clock.advance(dt.timedelta(seconds=61))
    assert sender.run_once().sent == 5
    sender.close()
    with session_scope(f) as s:
        assert outbox.counts(s) == {"sent": 5}
        assert set(s.execute(select(OutboxMessage.attempts)).scalars()) == {2}


def test_stale_messages_expire_instead_of_being_sent(engine: Engine, clock: VirtualClock) -> None:
    f = make_session_factory(engine)
    now = clock.now()
    _fill(f, now, 3, validity_until=now + dt.timedelta(minutes=5))
    with session_scope(f) as s:
        outbox.enqueue(s, now=now, channel="voice", to="+8613900000000", body="x", idempotency_key="fresh",
                       validity_until=now + dt.timedelta(hours=1))
    clock.advance(dt.timedelta(minutes=6))
    notifier = FakeNotifier(name="twilio")
    sender = Sender(f, {"twilio": notifier}, clock=clock)
    stats = sender.run_once()
    sender.close()
    assert stats.expired == 3 and stats.sent == 1
    assert [x.to for x in notifier.sent] == ["+8613900000000"]
    with session_scope(f) as s:
        assert outbox.counts(s) == {"expired": 3, "sent": 1}
        assert s.scalar(select(func.count()).select_from(Event).where(Event.action == "message.expired")) == 3


def test_permanent_errors_fail_with_the_reason_and_transient_ones_back_off(engine: Engine,
                                                                          clock: VirtualClock) -> None:
    f = make_session_factory(engine)
    _fill(f, clock.now(), 3)

    def fail(kind: str, to: str) -> PermanentError | TransientError | None:
        if to.endswith("0"):
            return PermanentError("HTTP 400 code 21211: invalid", code="21211", status=400)
        if to.endswith("1"):
            return TransientError("HTTP 503", code="20500", status=503)
        return None

    notifier = FakeNotifier(name="twilio", fail=fail)
    sender = Sender(f, {"twilio": notifier}, clock=clock, config=SenderConfig(backoff_base=2.0), seed=1)
    st = sender.run_once()
    assert (st.sent, st.failed, st.retried) == (1, 1, 1)
    with session_scope(f) as s:
        rows = {m.to_number[-1]: m for m in s.execute(select(OutboxMessage)).scalars()}
        assert rows["0"].state == "failed" and rows["0"].error_code == "21211" and "invalid" in rows["0"].last_error
        assert rows["1"].state == "queued" and rows["1"].next_try_at > clock.now()
        assert rows["2"].state == "sent"
        hist = s.execute(select(MessageStatus.state).where(MessageStatus.message_id == rows["1"].id)
                         .order_by(MessageStatus.id)).scalars().all()
        assert hist == ["queued", "queued"]
    assert sender.run_once().claimed == 0  # not yet due
    notifier.fail = None
    clock.advance(dt.timedelta(seconds=3))
    assert sender.run_once().sent == 1
    sender.close()
