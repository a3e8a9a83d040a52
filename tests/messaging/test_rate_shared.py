"""The account's rate limit booked in the database (SQLite and PostgreSQL): slots never overlap between
limiters, they start from the database's now after a pause, accounts are independent, a slot that went
by unused is dropped, and a sender that cannot book a slot retries the message instead of sending it."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from responses.messaging import outbox
from responses.messaging.ratelimit import SendSlot, SharedRateLimiter, book
from responses.messaging.sender import Sender, SenderConfig, TokenBucket, rate_account


def test_bookings_follow_each_other_at_the_interval(engine: Engine) -> None:
    f = make_session_factory(engine)
    with session_scope(f) as s:
        first, now1 = book(s, "twilio:AC1", 3, 50_000)
    with session_scope(f) as s:
        second, _ = book(s, "twilio:AC1", 2, 50_000)
        other, now3 = book(s, "twilio:AC2", 1, 50_000)
    assert abs(first[0] - now1) < 5_000  # an idle account's first slot is now
    assert [b - a for a, b in zip(first, first[1:], strict=False)] == [50_000, 50_000]
    assert second == [first[-1] + 50_000, first[-1] + 100_000]  # the next booking starts where it ended
    assert abs(other[0] - now3) < 5_000  # another account has its own schedule
    with session_scope(f) as s:
        rows = dict(s.execute(select(SendSlot.account, SendSlot.next_slot_us)).tuples().all())
    assert rows == {"twilio:AC1": second[-1] + 50_000, "twilio:AC2": other[0] + 50_000}


def test_after_a_pause_booking_starts_from_now_not_from_the_past(engine: Engine) -> None:
    f = make_session_factory(engine)
    with session_scope(f) as s:
        book(s, "acct", 1, 1_000)
    time.sleep(0.05)
    with session_scope(f) as s:
        (slot,), now = book(s, "acct", 1, 1_000)
    assert slot == now or abs(slot - now) < 5_000


def test_book_refuses_nonsense(engine: Engine) -> None:
    with session_scope(make_session_factory(engine)) as s, pytest.raises(ValueError):
        book(s, "acct", 0, 1_000)
    with pytest.raises(ValueError):
        SharedRateLimiter(make_session_factory(engine), "acct", 0)


def test_two_limiters_on_one_account_share_its_rate(engine: Engine) -> None:
    """Two limiters (two processes, as far as the account is concerned), three threads each: the
    requests they let through, taken together, are spaced by the account's interval."""
    f = make_session_factory(engine)
    rate = 40.0
    limiters = [SharedRateLimiter(f, "twilio:shared", rate), SharedRateLimiter(f, "twilio:shared", rate)]
    starts: list[float] = []
    lock = threading.Lock()

    def worker(lim: SharedRateLimiter) -> None:
        for _ in range(8):
            lim.acquire()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=worker, args=(lim,)) for lim in limiters for _ in range(3)]
    for lim in limiters:  # the three threads of each arrive together (on a busy machine they may not by chance)
        lim._lock.acquire()
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while any(lim._waiting < 3 for lim in limiters) and time.monotonic() < deadline:
        time.sleep(0.005)
    for lim in limiters:
        lim._lock.release()
    for t in threads:
        t.join(timeout=30)
    assert len(starts) == 48
    starts.sort()
    span = starts[-1] - starts[0]
    assert span >= 47 / rate * 0.9  # 48 requests cannot leave faster than the one account's rate
    for s in starts:  # and no second holds more than the rate (plus the one on its edge)
        assert sum(1 for x in starts if s <= x < s + 1.0) <= rate + 1
    assert all(lim.bookings >= 1 for lim in limiters)
    assert sum(lim.bookings for lim in limiters) < 48  # threads waiting together share a booking


def test_a_slot_gone_by_is_dropped_not_used_late(engine: Engine) -> None:
    f = make_session_factory(engine)
    lim = SharedRateLimiter(f, "acct-late", 10.0)
    lim._book(2)  # two slots 0.1 s apart, as a busy sender would hold them
    time.sleep(0.3)  # both went by while its threads were busy
    lim.acquire()
    assert lim.dropped == 2 and lim.bookings == 2


def test_sender_books_in_the_database_by_default_and_per_account(engine: Engine, clock: VirtualClock) -> None:
    class Fake:
        def __init__(self, sid: str) -> None:
            self.account_sid = sid

    f = make_session_factory(engine)
    shared = Sender(f, {"twilio": Fake("AC9")}, clock=clock,  # type: ignore[dict-item]
                    config=SenderConfig(rate_per_second=10))
    alone = Sender(f, {"twilio": Fake("AC9")}, clock=clock,  # type: ignore[dict-item]
                   config=SenderConfig(rate_per_second=10, shared_rate=False))
    try:
        lim = shared.buckets["twilio"]
        assert isinstance(lim, SharedRateLimiter) and lim.account == "twilio:AC9"
        assert lim.rate == pytest.approx(8.0)  # the headroom applies as before
        assert isinstance(alone.buckets["twilio"], TokenBucket)
        assert rate_account("other", object()) == "other"  # type: ignore[arg-type]
    finally:
        shared.close()
        alone.close()


def test_no_slot_no_send(engine: Engine, clock: VirtualClock) -> None:
    """The database cannot book a slot: the message is retried later, the provider never called."""
    calls: list[str] = []

    class Notifier:
        def send_sms(self, *a: object, **k: object) -> str:
            calls.append("sms")
            return "SM1"

    f = make_session_factory(engine)
    with session_scope(f) as s:
        outbox.enqueue(s, now=clock.now(), channel="sms", to="+8613900000001", body="测试", idempotency_key="k1")

    def broken() -> Session:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    sender = Sender(f, {"twilio": Notifier()}, clock=clock,  # type: ignore[dict-item]
                    config=SenderConfig(rate_per_second=10))
    sender.buckets["twilio"] = SharedRateLimiter(sessionmaker_like(broken), "twilio", 10)
    try:
        stats = sender.run_once()
    finally:
        sender.close()
    assert calls == [] and stats.retried == 1 and stats.errors == {"rate_store": 1}
    with session_scope(f) as s:
        assert outbox.counts(s) == {"queued": 1}


def sessionmaker_like(fn: object) -> sessionmaker[Session]:
    return fn  # type: ignore[return-value]
