"""The issue's fault acceptance for Alibaba Cloud: with 30 % of provider requests failing — the gateway's
throttling (``Throttling.User``, HTTP 429 with a retry-after), server errors (HTTP 503 and ``isp.SYSTEM_ERROR``)
and timeouts, drawn from a seeded generator — every message is eventually accepted, exactly once, and the
account's configured rate is never exceeded, as counted by the fake provider itself (every request it receives,
failed ones included, in any sliding one-second window). Everything goes through the sender the settings build
(``sender_for``: the rate booked in the database under the access key) and the official SDKs."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from config.runtime import Runtime
from responses.messaging import outbox
from responses.messaging.fake_aliyun.server import FakeAliyunServer
from responses.messaging.models import OutboxMessage
from responses.messaging.ratelimit import SharedRateLimiter
from responses.messaging.sender import sender_for

LIMIT = 10.0  # the account's messages per second, as configured
N = 60
PARAMS = {"kind": "callout", "warning": "红色暴雨预警", "areas": "城关镇、东关村", "minutes": "30"}
BUDGET = 50.0  # seconds of wall time the whole drain may take (the test stays under a minute)


def _stamped(fn: Any, into: list[float]) -> Any:
    lock = threading.Lock()

    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            into.append(time.monotonic())
        return fn(*args, **kwargs)
    return call


def _peak(times: list[float]) -> int:
    """The most of ``times`` in any one-second window, counted as the fake's meter does."""
    ts = sorted(times)
    return max((sum(1 for x in ts[i:] if x < t + 1.0) for i, t in enumerate(ts)), default=0)


def test_thirty_percent_failing_requests_drain_exactly_once_within_the_rate(
        engine: Engine, clock: VirtualClock, fake_aliyun: FakeAliyunServer, al: Any) -> None:
    fake = fake_aliyun.fake
    # the held request outlasts the client's timeout, so the client gives up first, as with a real hang
    fake.set_faults(rate_limited=0.1, server_error=0.1, timeout=0.1, timeout_seconds=4.0, retry_after_ms=300,
                    seed=11)
    settings = al.settings(fake_aliyun.endpoint, messages_per_second=LIMIT, request_timeout_seconds=2.0)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        for i in range(N):
            voice = i % 4 == 0
            outbox.enqueue(s, now=clock.now(), channel="voice" if voice else "sms", to=f"+86139{i:08d}",
                           body=f"测试{i}", template="callout_voice" if voice else "callout_sms", params=PARAMS,
                           idempotency_key=f"fault:{i}", max_attempts=50)
    rt = Runtime(settings, engine, factory, clock)
    sender = sender_for(rt)
    assert sender is not None and set(sender.notifiers) == {"aliyun"}
    departures: list[float] = []  # when the sender hands each request to the SDK (after its slot)
    arrivals: list[float] = []  # when the fake counts it
    notifier = sender.notifiers["aliyun"]
    for name in ("send_sms", "place_call"):
        setattr(notifier, name, _stamped(getattr(notifier, name), departures))
    fake.meter.hit = _stamped(fake.meter.hit, arrivals)  # type: ignore[method-assign]
    started = time.monotonic()
    rounds = 0
    try:
        while time.monotonic() - started < BUDGET:
            rounds += 1
            sender.run_once()
            with session_scope(factory) as s:
                if outbox.counts(s).get("sent", 0) == N:
                    break
            clock.advance(dt.timedelta(seconds=30))  # the backoffs (virtual time) fall due
    finally:
        sender.close()
    drained = time.monotonic() - started
    # requests the client gave up on are still held by the fake (its timeout fault): let them end and be recorded
    end = time.monotonic() + 10
    while (stats := fake.stats())["requests"] < stats["total_per_account"].get(al.access_key_id, 0):
        assert time.monotonic() < end, stats
        time.sleep(0.05)
    with session_scope(factory) as s:
        counts = outbox.counts(s)
        attempts = s.execute(select(func.sum(OutboxMessage.attempts))).scalar()
        rows = list(s.execute(select(OutboxMessage.id, OutboxMessage.provider, OutboxMessage.provider_id)))
    print(f"\naliyun faults: drained {N} messages in {drained:.1f} s over {rounds} rounds; {stats['requests']} "
          f"requests, {attempts - N} retries, faults {stats['faults']}; the fake's max per second "
          f"{stats['max_per_second']} against {LIMIT:g} configured (peak of departures {_peak(departures)}, "
          f"of arrivals {_peak(arrivals)})")

    # every message eventually accepted
    assert counts == {"sent": N}, (counts, stats)
    # ... exactly once: one accepted request per message, and it is the one the row records
    accepted = Counter(r.params.get("OutId") for r in fake.requests if r.code == "OK")
    assert accepted == {str(mid): 1 for mid, _p, _pid in rows}, accepted
    by_out = {r.params["OutId"]: r.provider_id for r in fake.requests if r.code == "OK"}
    assert all(p == "aliyun" and by_out[str(mid)] == pid for mid, p, pid in rows)
    assert len(fake.sms) == N - N // 4 and len(fake.calls) == N // 4
    # the faults really happened, of every kind asked for, at about the rate asked for, and were retried
    assert set(stats["faults"]) == {"rate_limited", "server_error", "timeout"}, stats
    failed = sum(stats["faults"].values())
    assert 0.18 <= failed / stats["requests"] <= 0.42, stats
    # every request the fake saw was one the sender let through its limiter: nothing retried underneath it
    # (the SDK's own retries are off) and nothing sent twice
    assert stats["requests"] == attempts == N + failed, (stats, attempts)
    # the provider's own count: never more than the configured rate in any one-second window
    assert stats["max_per_second"][al.access_key_id] <= LIMIT, stats
    assert stats["max_per_second"][al.access_key_id] >= LIMIT * 0.5, stats  # and the limit was approached
    assert drained < BUDGET


def test_a_thread_waking_too_late_for_its_slot_gives_it_up(sqlite_engine: Engine) -> None:
    """What let the fake count more than the limit on a busy machine: a thread that overslept its slot sent
    anyway, right among the next slots' requests. Now it takes a fresh slot instead."""
    mono = [100.0]
    overslept = [0.5]  # the second wait wakes half a second (five intervals) late

    def sleep(s: float) -> None:
        mono[0] += s + (overslept.pop() if overslept else 0.0)

    lim = SharedRateLimiter(make_session_factory(sqlite_engine), "aliyun:late", 10.0, monotonic=lambda: mono[0],
                            sleep=sleep)
    lim.acquire()
    assert (lim.bookings, lim.dropped) == (1, 0)
    lim.acquire()  # sleeps to its slot, wakes too late, gives it up and books another
    assert (lim.bookings, lim.dropped) == (3, 1)


def test_a_sender_keeps_a_slot_it_wakes_a_little_late_for_within_its_headroom(sqlite_engine: Engine) -> None:
    """On a loaded machine threads wake milliseconds late all the time: dropping those slots sent a district's
    fan-out at a fraction of the rate. The sender lets a request leave up to half its headroom late (0.125 s at
    80 %), which keeps any second under 90 % of the account's limit (ratelimit's docstring), and no later."""
    from responses.messaging.sender import Sender, SenderConfig

    class Acct:
        account_sid = "LTAI-late"

    sender = Sender(make_session_factory(sqlite_engine), {"aliyun": Acct()},  # type: ignore[dict-item]
                    clock=VirtualClock(dt.datetime(2026, 7, 1, tzinfo=dt.UTC)),
                    config=SenderConfig(rate_per_second=100.0))
    lim = sender.buckets["aliyun"]
    assert isinstance(lim, SharedRateLimiter) and lim.max_late == pytest.approx(0.125)
    mono = [100.0]
    overslept = [0.2, 0.1, 0.1]  # popped from the end: 0.1 s late twice (kept), then 0.2 s late (given up)

    def sleep(s: float) -> None:
        mono[0] += s + (overslept.pop() if overslept else 0.0)

    lim._mono, lim._sleep = (lambda: mono[0]), sleep
    for _ in range(3):
        lim.acquire()
    assert lim.dropped == 0, "0.1 s late is within the allowance"
    lim.acquire()
    assert lim.dropped == 1, "0.2 s late is not: that slot is given up and another taken"
    sender.close()
