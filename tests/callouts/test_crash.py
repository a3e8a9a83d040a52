"""The process that sends is SIGKILLed mid fan-out and restarted.

The sender runs in its own OS process against the test's database (SQLite file, PostgreSQL
schema) and the fake Twilio server (a thread of the test process, holding each request a little
so the fan-out takes seconds). Evidence comes from the fake server's own records: which outbox
message each accepted request carried (the ``m=`` of its status callback URL), and how often.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import sessionmaker

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from responses.callouts import service as svc
from responses.callouts.models import Callout
from responses.messaging.fake_twilio.server import FakeTwilioServer
from responses.messaging.fake_twilio.state import FakeConfig
from responses.messaging.models import OutboxMessage
from responses.runs.models import ResponseRun

ROOT = Path(__file__).resolve().parents[2]
SID = "AC" + "7" * 32
TOKEN = "crash-test-token"
FROM = "+15005550006"
CONCURRENCY = 8
TOWNSHIPS, PER_TOWNSHIP = 10, 30  # 300 callees
MIN = dt.timedelta(minutes=1)
CALLS = {"answer_minutes": 5, "retries": {"count": 1, "interval_minutes": 2}, "channels": ["sms", "voice"],
         "tiers": {"village": ["village_head"]}, "escalation": ["village", "township", "leader_on_duty"]}

# The sending process: a Sender on the given database, looping like the scheduler's job would.
CHILD = r"""
import datetime as dt, sys, time
from sqlalchemy import create_engine
from config.clock import VirtualClock
from config.database import make_engine, make_session_factory
from responses.messaging.notifiers.twilio import TwilioNotifier
from responses.messaging.sender import Sender, SenderConfig

url, schema, api, sid, token, frm, now, conc, worker = sys.argv[1:10]
engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"}) if schema else make_engine(url)
notifier = TwilioNotifier(sid, token, frm, api_base_url=api, timeout=5.0)
sender = Sender(make_session_factory(engine), {"twilio": notifier},
                clock=VirtualClock(dt.datetime.fromisoformat(now)),
                config=SenderConfig(concurrency=int(conc), public_base_url="http://jiaoying.test"), worker_id=worker)
print("ready", flush=True)
while True:
    st = sender.run_once()
    if not st.claimed:
        time.sleep(0.05)
"""


@pytest.fixture
def slow_fake() -> Iterator[FakeTwilioServer]:
    server = FakeTwilioServer(FakeConfig(accounts={SID: TOKEN}, phone_number=FROM, callbacks=False,
                                         response_delay=0.04))
    server.start()
    yield server
    server.stop()


def _db_args(engine: Engine) -> tuple[str, str]:
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url, ""
    with engine.connect() as c:
        schema = str(c.execute(text("SHOW search_path")).scalar()).split(",")[0].strip().strip('"')
    return url, schema


def _start_sender(engine: Engine, fake: FakeTwilioServer, now: dt.datetime, worker: str) -> subprocess.Popen[str]:
    url, schema = _db_args(engine)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, schema, fake.url, SID, TOKEN, FROM, now.isoformat(), str(CONCURRENCY),
         worker],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"sender did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
    return proc


def _accepted(fake: FakeTwilioServer) -> Counter[int]:
    """Accepted API requests per outbox message id, from the fake provider's own records."""
    with fake.fake.lock:
        recs = list(fake.fake.requests)
    out: Counter[int] = Counter()
    for r in recs:
        if r.status == 201:
            out[int(parse_qs(urlsplit(r.params["StatusCallback"]).query)["m"][0])] += 1
    return out


def _wait(cond: Any, timeout: float, what: str, proc: subprocess.Popen[str] | None = None) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"sender exited: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_sigkill_mid_fanout_then_restart(engine: Engine, clock: VirtualClock, slow_fake: FakeTwilioServer,
                                         kit: Any) -> None:
    factory: sessionmaker[Any] = make_session_factory(engine)
    t0 = clock.now()
    district = kit.build_district(factory, t0, townships=TOWNSHIPS, per_township=PER_TOWNSHIP)
    run_id = kit.make_run(factory, t0, villages=district.villages, calls=CALLS)
    with session_scope(factory) as s:
        run = s.get(ResponseRun, run_id)
        assert run is not None
        n = len(svc.create_run_callouts(s, run, now=t0))
    assert n == TOWNSHIPS * PER_TOWNSHIP
    with session_scope(factory) as s:
        first = dict(s.execute(select(Callout.id, Callout.attempts_made)).all())
        msg_of = {c.id: c.attempts[0].message_id for c in s.execute(select(Callout)).scalars()}
    assert set(first.values()) == {1}

    # 1. fan-out in a separate process, killed once the provider has taken some but not all
    proc = _start_sender(engine, slow_fake, t0 + dt.timedelta(seconds=1), "sender-1")
    try:
        _wait(lambda: sum(_accepted(slow_fake).values()) >= n // 3, 30, "a third of the fan-out", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.3)  # requests the dead sender left at the server finish there (the provider still takes them)
    seen_at_kill = _accepted(slow_fake)
    assert 0 < len(seen_at_kill) < n, "the kill must land mid fan-out"
    with session_scope(factory) as s:
        rows = s.execute(select(OutboxMessage.id, OutboxMessage.state, OutboxMessage.claimed_by)).all()
    unrecorded = {mid for mid, state, by in rows if state == "claimed" and by == "sender-1"}
    # sent by the provider but not recorded here: the messages in flight at the kill
    in_flight = set(seen_at_kill) & unrecorded
    assert len(in_flight) <= CONCURRENCY
    recorded_sent = {mid for mid, state, _ in rows if state == "sent"}
    assert recorded_sent <= set(seen_at_kill)  # nothing is recorded as sent that the provider did not take

    # 2. restart after the dead sender's lease ran out: the rest goes out, the in-flight ones again
    proc = _start_sender(engine, slow_fake, t0 + 3 * MIN, "sender-2")
    try:
        def all_sent() -> bool:
            with session_scope(factory) as s:
                states = Counter(s.execute(select(OutboxMessage.state)).scalars())
            return states.get("sent", 0) == n

        _wait(all_sent, 40, "every first attempt recorded as sent", proc)
    finally:
        proc.kill()
        proc.wait()

    accepted = _accepted(slow_fake)
    assert set(msg_of.values()) <= set(accepted), "a callee has no attempt accepted by the provider"
    duplicates = {mid for mid, k in accepted.items() if k > 1}
    assert duplicates <= in_flight, "a message went out twice that was not in flight at the kill"
    assert len(duplicates) <= CONCURRENCY and max(accepted.values()) <= 2
    with session_scope(factory) as s:
        msgs = {m.id: m for m in s.execute(select(OutboxMessage)).scalars()}
    provider_msgs = slow_fake.fake.messages
    for mid in msg_of.values():
        assert msgs[mid].state == "sent" and msgs[mid].provider_id in provider_msgs

    # 3. deadlines still fire: the silent are retried by voice, then escalate to their township chiefs
    clock.set(t0 + 5 * MIN)
    st = svc.sweep(factory, now=clock.now())
    assert st.retries == n and st.escalated == 0
    with session_scope(factory) as s:
        callouts = list(s.execute(select(Callout).where(Callout.reason == "plan")).scalars())
        assert all([a.channel for a in c.attempts] == ["sms", "voice"] for c in callouts)
    clock.set(t0 + 7 * MIN)
    st = svc.sweep(factory, now=clock.now())
    assert st.escalated == n
    with session_scope(factory) as s:
        chiefs = set(s.execute(select(Callout.contact_id).where(Callout.tier == "township")).scalars())
        assert chiefs == set(district.chiefs.values())
