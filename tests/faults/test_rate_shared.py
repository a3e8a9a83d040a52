"""The provider's rate limit belongs to the account: three senders, each with its own engine, on one
PostgreSQL database, send one backlog to the fake Twilio server, and the fake's own count of requests in
any one-second window never goes above the configured limit. The same three senders each pacing only
themselves go well above it, which shows the fake would have caught a limit that is not shared.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from config.clock import VirtualClock
from config.database import make_engine, make_session_factory, session_scope
from jiaoying import migrate
from responses.messaging import outbox
from responses.messaging.fake_twilio.server import FakeTwilioServer
from responses.messaging.fake_twilio.state import FakeConfig
from responses.messaging.models import OutboxMessage
from responses.messaging.notifiers.twilio import TwilioNotifier
from responses.messaging.sender import Sender, SenderConfig, SendStats
from tests.faults.fresh_pg import fresh_database

pytestmark = pytest.mark.postgres

SID = "AC" + "7" * 32
TOKEN = "rate-shared-token"
FROM = "+15005550006"
LIMIT = 20.0
SENDERS = 3
T0 = dt.datetime(2026, 7, 20, 2, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_database("jy_rate") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


def _queue(engine: Engine, n: int, tag: str, clock: VirtualClock) -> None:
    with session_scope(make_session_factory(engine)) as s:
        for i in range(n):
            outbox.enqueue(s, now=clock.now(), channel="sms", to=f"+86139{i:08d}", body=f"【叫应】{tag}{i}",
                           idempotency_key=f"{tag}-{i}")


def _sent(engine: Engine, tag: str) -> int:
    with session_scope(make_session_factory(engine)) as s:
        return int(s.execute(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.idempotency_key.like(f"{tag}-%"), OutboxMessage.state == "sent")).scalar_one())


def _run_senders(url: str, fake_url: str, *, n: int, tag: str, shared: bool, timeout: float) -> list[SendStats]:
    """SENDERS sender loops in threads, each with its own engine, until ``n`` messages are sent."""
    clock = VirtualClock(T0)
    check = make_engine(url)
    _queue(check, n, tag, clock)
    stats = [SendStats() for _ in range(SENDERS)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop(k: int) -> None:
        engine = make_engine(url)
        notifier = TwilioNotifier(SID, TOKEN, FROM, api_base_url=fake_url, timeout=5.0)
        sender = Sender(make_session_factory(engine), {"twilio": notifier}, clock=clock, worker_id=f"s{k}",
                        config=SenderConfig(concurrency=4, rate_per_second=LIMIT, batch=6, shared_rate=shared))
        try:
            while not stop.is_set():
                got = sender.run_once(max_seconds=1.0)
                stats[k].sent += got.sent
                stats[k].claimed += got.claimed
                if not got.claimed:
                    time.sleep(0.05)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            sender.close()
            notifier.close()
            engine.dispose()

    threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(SENDERS)]
    for t in threads:
        t.start()
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end and _sent(check, tag) < n and not errors:
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
        check.dispose()
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return stats


def test_three_senders_together_stay_within_the_accounts_limit(pg_url: str) -> None:
    server = FakeTwilioServer(FakeConfig(accounts={SID: TOKEN}, phone_number=FROM, callbacks=False))
    server.start()
    try:
        n = 120
        t = time.monotonic()
        stats = _run_senders(pg_url, server.url, n=n, tag="shared", shared=True, timeout=60)
        elapsed = time.monotonic() - t
        seen = server.fake.stats()
    finally:
        server.stop()
    engine = make_engine(pg_url)
    try:
        assert _sent(engine, "shared") == n
    finally:
        engine.dispose()
    assert seen["requests"] == n  # every message went out once
    assert all(s.sent > 0 for s in stats), stats  # all three senders took part
    peak = seen["max_per_second"][SID]
    print(f"three shared senders: {n} messages in {elapsed:.1f} s, the fake's peak {peak} requests/s "
          f"(limit {LIMIT:.0f})")
    assert peak <= LIMIT, seen
    assert peak >= LIMIT * 0.6, seen  # the limit was approached, not avoided by sending slowly
    assert elapsed >= n / LIMIT  # so the backlog took at least as long as the limit makes it


def test_senders_pacing_only_themselves_would_exceed_it(pg_url: str) -> None:
    server = FakeTwilioServer(FakeConfig(accounts={SID: TOKEN}, phone_number=FROM, callbacks=False))
    server.start()
    try:
        _run_senders(pg_url, server.url, n=72, tag="alone", shared=False, timeout=60)
        seen = server.fake.stats()
    finally:
        server.stop()
    assert seen["requests"] == 72
    print(f"three senders pacing only themselves: the fake's peak {seen['max_per_second'][SID]} requests/s")
    assert seen["max_per_second"][SID] > LIMIT, seen
