"""The local fake SMS/voice gateway a server uses when no Twilio credentials are set.

The server then talks to the project's Twilio-compatible fake through the real ``twilio`` client, so
the whole path (outbox, sender, signed status callbacks, keypresses) works on a fresh machine and
nothing can reach a real phone.
"""

from __future__ import annotations

from pydantic import SecretStr

from config.settings import Settings, TwilioSettings
from responses.messaging.fake_twilio.server import FakeTwilioServer
from responses.messaging.fake_twilio.state import FakeConfig

FAKE_SID = "AC" + "0" * 32
FAKE_FROM = "+8612300000000"


def _token(settings: Settings) -> str:
    # derived from the secret, so the server and its sending process agree on it without passing it around
    return "local-fake-" + settings.security.secret_key.get_secret_value()[:16]


def local_gateway_settings(settings: Settings, url: str) -> Settings:
    """Settings for talking to the local fake gateway at ``url``, started here or by another process."""
    if settings.twilio.configured:
        return settings
    twilio = TwilioSettings(
        **{
            **settings.twilio.model_dump(),
            "account_sid": FAKE_SID,
            "auth_token": SecretStr(_token(settings)),
            "from_number": FAKE_FROM,
            "api_base_url": url,
        }
    )
    return settings.model_copy(update={"twilio": twilio})


def with_local_gateway(settings: Settings, port: int = 0) -> tuple[Settings, FakeTwilioServer | None]:
    """Settings pointing at a freshly started fake gateway, unless real Twilio credentials are configured."""
    if settings.twilio.configured:
        return settings, None
    base = settings.public_base_url.rstrip("/")
    server = FakeTwilioServer(
        FakeConfig(accounts={FAKE_SID: _token(settings)}, phone_number=FAKE_FROM,
                   sms_url=f"{base}/twilio/sms/inbound"),
        port=port,
    )
    server.start()
    return local_gateway_settings(settings, server.url), server
