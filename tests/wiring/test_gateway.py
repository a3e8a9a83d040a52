"""Without Twilio credentials the server sends through the local fake gateway, never a real provider."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from config.clock import SystemClock
from config.database import make_session_factory, session_scope
from config.runtime import Runtime
from config.settings import Settings
from jiaoying.gateway import with_local_gateway
from responses.messaging import outbox
from responses.messaging.sender import send_due


def test_messages_reach_the_local_fake_gateway(sqlite_engine: Engine) -> None:
    base = Settings(env="test", scheduler={"enabled": False}, security={"secret_key": "k" * 40})
    assert not base.twilio.configured
    settings, gateway = with_local_gateway(base)
    assert gateway is not None
    try:
        assert settings.twilio.configured and settings.twilio.api_base_url == gateway.url
        rt = Runtime(settings, sqlite_engine, make_session_factory(sqlite_engine), SystemClock())
        now = rt.now()
        with session_scope(rt.session_factory) as s:
            outbox.enqueue(s, now=now, channel="sms", to="+8612300000001", body="叫应测试：请回复1确认",
                           idempotency_key="gw-1", subject_type="test", subject_id=1,
                           validity_until=now + dt.timedelta(minutes=10))
        stats = send_due(rt)
        assert stats is not None
        sent = [r for r in gateway.fake.requests if r.path.endswith("/Messages.json")]
        assert len(sent) == 1 and sent[0].params["To"] == "+8612300000001"
    finally:
        gateway.stop()


def test_real_credentials_start_no_fake() -> None:
    base = Settings(env="test", twilio={"account_sid": "AC" + "1" * 32, "auth_token": "t"})
    settings, gateway = with_local_gateway(base)
    assert gateway is None and settings is base
