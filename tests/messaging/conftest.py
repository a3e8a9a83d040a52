"""Messaging fixtures: the fake Twilio server in a thread, settings that point at it, signing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from twilio.request_validator import RequestValidator

from config.clock import VirtualClock
from config.database import make_session_factory
from config.runtime import Runtime
from config.settings import Settings
from jiaoying.app import create_app
from responses.messaging.fake_twilio.server import FakeTwilioServer
from responses.messaging.fake_twilio.state import FakeConfig
from responses.messaging.notifiers.twilio import TwilioNotifier

SID = "AC" + "1" * 32
TOKEN = "test-auth-token-123"
FROM = "+15005550006"
PUBLIC = "http://jiaoying.test"


def messaging_settings(public: str = PUBLIC, api_base_url: str | None = None, **over: Any) -> Settings:
    return Settings(
        env="test",
        database={"url": "sqlite://", "auto_upgrade": False},
        scheduler={"enabled": False},
        security={"secret_key": "test-secret-" + "x" * 40},
        public_base_url=public,
        twilio={"account_sid": SID, "auth_token": TOKEN, "from_number": FROM, "api_base_url": api_base_url,
                **over},
    )


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


@pytest.fixture
def fake_server() -> Iterator[FakeTwilioServer]:
    server = FakeTwilioServer(FakeConfig(accounts={SID: TOKEN}, phone_number=FROM))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def notifier(fake_server: FakeTwilioServer) -> Iterator[TwilioNotifier]:
    n = TwilioNotifier(SID, TOKEN, FROM, api_base_url=fake_server.url, timeout=2.0)
    yield n
    n.close()


@pytest.fixture
def msg_runtime(engine: Engine, clock: VirtualClock) -> Runtime:
    return Runtime(messaging_settings(), engine, make_session_factory(engine), clock)


def later(clock: VirtualClock, seconds: float) -> dt.datetime:
    return clock.advance(dt.timedelta(seconds=seconds))


class Creds:
    """The test account, and helpers bound to it (pytest's importlib mode keeps conftest unimportable)."""

    sid = SID
    token = TOKEN
    from_number = FROM
    public = PUBLIC

    @staticmethod
    def sign(url: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
        return sign(url, params, token)

    @staticmethod
    def settings(public: str = PUBLIC, api_base_url: str | None = None, **over: Any) -> Settings:
        return messaging_settings(public, api_base_url, **over)


@pytest.fixture
def tw() -> type[Creds]:
    return Creds


@pytest.fixture
def twilio_app(engine: Engine, clock: VirtualClock) -> Iterator[tuple[TestClient, Runtime, FastAPI]]:
    """The whole app on the test database, with the Twilio account configured; the test registers its handlers
    (after start-up, where the wiring sets its own)."""
    rt = Runtime(messaging_settings(), engine, make_session_factory(engine), clock)
    app = create_app(rt.settings, runtime=rt, scheduler=False)
    with TestClient(app) as c:
        yield c, rt, app


# --- Alibaba Cloud --------------------------------------------------------------------------------------------

ALIYUN_AK = "LTAItest0000000000000000"
ALIYUN_SECRET = "test-aliyun-secret-456"
ALIYUN_PUSH_TOKEN = "test-push-token-0123456789abcdef"
ALIYUN_SIGN = "某某区应急管理局"


def aliyun_settings(endpoint: str, public: str = PUBLIC, *, sms: str = "aliyun", voice: str = "aliyun",
                    twilio_base_url: str | None = None, **over: Any) -> Settings:
    """Settings whose Alibaba Cloud account is the fake at ``endpoint`` (host:port), every template registered;
    ``sms`` / ``voice`` choose the provider per channel (Twilio credentials are set too, at ``twilio_base_url``)."""
    from config.settings import ALIYUN_SMS_KINDS, ALIYUN_VOICE_KINDS

    base = messaging_settings(public, twilio_base_url)
    aliyun = {"access_key_id": ALIYUN_AK, "access_key_secret": ALIYUN_SECRET, "sms_endpoint": endpoint,
              "voice_endpoint": endpoint, "protocol": "http", "sign_name": ALIYUN_SIGN,
              "sms_templates": {k: f"SMS_{100 + i}" for i, k in enumerate(ALIYUN_SMS_KINDS)},
              "tts_templates": {k: f"TTS_{200 + i}" for i, k in enumerate(ALIYUN_VOICE_KINDS)},
              "ivr_start_code": "TTS_300", "ivr_ack_code": "TTS_301", "ivr_help_code": "TTS_302",
              "called_show_number": "03512345678", "push_token": ALIYUN_PUSH_TOKEN,
              "request_timeout_seconds": 2.0, **over}
    return base.model_copy(update={
        "aliyun": type(base.aliyun)(**aliyun),
        "messaging": type(base.messaging)(sms_provider=sms, voice_provider=voice),
    })


@pytest.fixture
def fake_aliyun() -> Iterator[Any]:
    """The fake Alibaba Cloud in a thread, knowing the test access key; it pushes nowhere until a test sets
    ``fake_aliyun.fake.config.push_base_url`` (e.g. to ``{app}/webhooks/aliyun/{ALIYUN_PUSH_TOKEN}``)."""
    from responses.messaging.fake_aliyun.server import FakeAliyunServer
    from responses.messaging.fake_aliyun.state import FakeConfig as AliyunFakeConfig

    server = FakeAliyunServer(AliyunFakeConfig(accounts={ALIYUN_AK: ALIYUN_SECRET}))
    server.start()
    yield server
    server.stop()


class AliyunCreds:
    """The test Alibaba Cloud account and helpers bound to it (use through the ``al`` fixture)."""

    access_key_id = ALIYUN_AK
    access_key_secret = ALIYUN_SECRET
    push_token = ALIYUN_PUSH_TOKEN
    sign_name = ALIYUN_SIGN
    public = PUBLIC

    @staticmethod
    def settings(endpoint: str, public: str = PUBLIC, **over: Any) -> Settings:
        return aliyun_settings(endpoint, public, **over)

    @staticmethod
    def push_base(public: str) -> str:
        """Where the fake should push for an app served at ``public``."""
        return f"{public.rstrip('/')}/webhooks/aliyun/{ALIYUN_PUSH_TOKEN}"

    @staticmethod
    def notifier(endpoint: str, **over: Any) -> Any:
        from responses.messaging.sender import notifiers_for

        return notifiers_for(aliyun_settings(endpoint, **over))["aliyun"]


@pytest.fixture
def al() -> type[AliyunCreds]:
    return AliyunCreds
