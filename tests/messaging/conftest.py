"""Messaging fixtures: the fake Twilio server in a thread, settings that point at it, signing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from twilio.request_validator import RequestValidator

from config.clock import VirtualClock
from config.database import make_session_factory
from config.runtime import Runtime
from config.settings import Settings
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
