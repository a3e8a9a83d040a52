"""The provider answers 503 for a while: messages wait in the outbox instead of being lost; when it is
back, two senders on one PostgreSQL database drain the backlog within the account's rate limit, and the
messages whose validity ended during the outage expire instead of going out late.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from config.clock import SystemClock
from config.database import make_engine, make_session_factory, session_scope
from jiaoying import migrate
from responses.messaging import outbox
from responses.messaging.fake_twilio.server import FakeTwilioServer
from responses.messaging.fake_twilio.state import FakeConfig
from responses.messaging.models import OutboxMessage
from responses.messaging.notifiers.twilio import TwilioNotifier
from responses.messaging.sender import Sender, SenderConfig
from tests.faults.fresh_pg import fresh_database
from tests.live import wait_for

pytestmark = pytest.mark.postgres

SID = "AC" + "3" * 32
TOKEN = "provider-down-token"
FROM = "+15005550006"
RATE = 10.0
SENDERS = 2
FRESH, STALE = 60, 20  # messages valid for long; messages valid only a few seconds
OUTAGE = 6.0
STALE_AFTER = 3.0


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database("jy_fault_provider") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


def _states(engine: object, prefix: str) -> dict[str, str]:
    with session_scope(make_session_factory(engine)) as s:  # type: ignore[arg-type]
        return dict(s.execute(select(OutboxMessage.idempotency_key, OutboxMessage.state)
                              .where(OutboxMessage.idempotency_key.like(f"{prefix}-%"))).all())


def test_provider_down_then_back(pg_url: str) -> None:
    server = FakeTwilioServer(FakeConfig(accounts={SID: TOKEN}, phone_number=FROM, callbacks=False))
    server.start()
    engine = make_engine(pg_url)
    clock = SystemClock()
    stop = threading.Event()
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []
    try:
        down = httpx.post(f"{server.url}/_fake/faults", json={"server_error": 1.0}, timeout=5)
        assert down.status_code == 200 and down.json()["server_error"] == 1.0
        now = clock.now()
        with session_scope(make_session_factory(engine)) as s:
            for i in range(FRESH):
                outbox.enqueue(s, now=now, channel="sms", to=f"+86139{i:08d}", body=f"【叫应】fresh {i}",
                               idempotency_key=f"fresh-{i}", validity_until=now + dt.timedelta(minutes=10))
            for i in range(STALE):
                outbox.enqueue(s, now=now, channel="sms", to=f"+86138{i:08d}", body=f"【叫应】stale {i}",
                               idempotency_key=f"stale-{i}",
                               validity_until=now + dt.timedelta(seconds=STALE_AFTER))

        def loop(k: int) -> None:
            eng = make_engine(pg_url)
            notifier = TwilioNotifier(SID, TOKEN, FROM, api_base_url=server.url, timeout=5.0)
            sender = Sender(make_session_factory(eng), {"twilio": notifier}, clock=clock, worker_id=f"s{k}",
                            config=SenderConfig(concurrency=4, rate_per_second=RATE, batch=8,
                                                backoff_base=0.5, backoff_cap=2.0))
            try:
                while not stop.is_set():
                    if not sender.run_once(max_seconds=1.0).claimed:
                        time.sleep(0.1)
            except BaseException as exc:  # reported by the test, not lost in the thread
                errors.append(exc)
            finally:
                sender.close()
                notifier.close()
                eng.dispose()

        threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(SENDERS)]
        for t in threads:
            t.start()
        time.sleep(OUTAGE)
        refused = server.fake.stats()
        during = _states(engine, "fresh")
        assert refused["accepted"] == 0 and refused["faults"].get("server_error", 0) > 0, refused
        assert set(during.values()) <= {"queued", "claimed"}, during  # waiting, none given up

        back = httpx.post(f"{server.url}/_fake/faults", json={"server_error": 0.0}, timeout=5)
        assert back.status_code == 200
        t_back = time.monotonic()
        wait_for("the backlog drained",
                 lambda: set(_states(engine, "fresh").values()) == {"sent"}, timeout=FRESH / RATE * 3 + 20)
        drain = time.monotonic() - t_back
        stop.set()
        for t in threads:
            t.join(timeout=15)
        assert not errors, errors
        stale = _states(engine, "stale")
        seen = server.fake.stats()
        with server.fake.lock:
            accepted = [r.params.get("To", "") for r in server.fake.requests if r.status == 201]
        peak = seen["max_per_second"][SID]
        print(f"\nprovider down {OUTAGE:.0f} s ({refused['faults']['server_error']} requests refused with 503): "
              f"{FRESH} queued messages drained in {drain:.1f} s after it was back; provider peak {peak} "
              f"requests/s (limit {RATE:.0f}); {sum(v == 'expired' for v in stale.values())}/{STALE} stale "
              "messages expired")
        assert sorted(accepted) == sorted(f"+86139{i:08d}" for i in range(FRESH))  # each fresh one once
        assert not any(to.startswith("+86138") for to in accepted)  # no stale message went out late
        assert set(stale.values()) == {"expired"}, stale
        assert peak <= RATE, seen
        assert drain <= FRESH / (RATE * 0.8) + 2.0 + 5.0  # the pace of the limit, plus one backoff cap and slack
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
        server.stop()
        engine.dispose()
