"""Our app and the fake Twilio, both on loopback sockets: the sender sends through the real client,
the fake calls our webhooks back with signed requests, replies and keypresses come in."""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import Engine, select

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from config.runtime import Runtime
from jiaoying.app import create_app
from responses.messaging import outbox
from responses.messaging.fake_twilio.server import FakeTwilioServer, ThreadedServer
from responses.messaging.models import InboundMessage, OutboxMessage
from responses.messaging.notifiers.twilio import TwilioNotifier
from responses.messaging.sender import Sender, SenderConfig
from responses.messaging.webhooks import InboundAnswer, set_answer_handler


def _wait(pred: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_sms_and_call_round_trip(sqlite_engine: Engine, clock: VirtualClock, fake_server: FakeTwilioServer,
                                 tw: Any) -> None:
    rt = Runtime(tw.settings(), sqlite_engine, make_session_factory(sqlite_engine), clock)
    app = create_app(rt.settings, runtime=rt, scheduler=False)
    answers: list[InboundAnswer] = []
    with ThreadedServer(app) as ours:
        rt.settings.public_base_url = ours.url  # what the provider is told to call (and what signatures cover)
        set_answer_handler(app, lambda _s, a: answers.append(a))
        fake_server.fake.config.sms_url = f"{ours.url}/twilio/sms/inbound"
        with session_scope(rt.session_factory) as s:
            sms = outbox.enqueue(s, now=clock.now(), channel="sms", to="+8613800000001", body="【叫应】短信",
                                 idempotency_key="e2e-sms").id
            call = outbox.enqueue(s, now=clock.now(), channel="voice", to="+8613800000002",
                                  body="暴雨红色预警，收到请按1，需要支援请按2。", idempotency_key="e2e-call").id
        notifier = TwilioNotifier(tw.sid, tw.token, tw.from_number, api_base_url=fake_server.url, timeout=5)
        sender = Sender(rt.session_factory, {"twilio": notifier}, clock=clock,
                        config=SenderConfig(public_base_url=ours.url))
        try:
            assert sender.run_once().sent == 2
        finally:
            sender.close()
            notifier.close()

        def state(mid: int) -> str:
            with session_scope(rt.session_factory) as s:
                return s.get(OutboxMessage, mid).state  # type: ignore[union-attr]

        _wait(lambda: state(sms) == "delivered" and state(call) == "delivered")
        # the call fetched our TwiML and now waits for a digit
        _wait(lambda: bool(fake_server.fake.calls and next(iter(fake_server.fake.calls.values()))["gather_action"]))
        r = httpx.post(f"{fake_server.url}/_fake/keypress", json={"to": "+8613800000002", "digits": "1"})
        assert r.status_code == 200 and r.json()["status"] == 200 and "已确认收到" in r.json()["response"]
        r = httpx.post(f"{fake_server.url}/_fake/reply", json={"from": "+8613800000001", "body": "1"})
        assert r.status_code == 200 and r.json()["status"] == 200
        fake_server.drain()
    assert sorted((a.kind, a.text, a.message_id) for a in answers) == [("keypress", "1", call), ("sms", "1", sms)]
    callbacks = fake_server.fake.callbacks
    assert callbacks and all(c["status"] in (200, 204) for c in callbacks), callbacks
    kinds = {c["kind"] for c in callbacks}
    assert {"sms_status", "call_status", "voice_url", "gather", "inbound_sms"} <= kinds
    with session_scope(rt.session_factory) as s:
        assert len(s.execute(select(InboundMessage)).scalars().all()) == 2
