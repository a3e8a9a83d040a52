"""The local fake SMS/voice gateways a server uses when a provider it is set to use has no credentials.

Without Twilio credentials the server talks to the project's Twilio-compatible fake through the real ``twilio``
client, as always. When a channel is set to Alibaba Cloud (``JIAOYING_MESSAGING__SMS_PROVIDER=aliyun``) without
its access key, the fake Alibaba Cloud is started too and the real Alibaba Cloud SDKs talk to it; it pushes
receipts, replies and keypresses back to this server's ``/webhooks/aliyun/{token}/…``. Either way the whole
path works on a fresh machine and nothing can reach a real phone. ``auto`` with no credentials at all keeps
exactly the old behaviour: only the fake Twilio.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import SecretStr

from config.settings import ALIYUN_SMS_KINDS, ALIYUN_VOICE_KINDS, AliyunSettings, Settings, TwilioSettings
from responses.messaging.fake_aliyun.server import FakeAliyunServer
from responses.messaging.fake_aliyun.state import FakeConfig as AliyunFakeConfig
from responses.messaging.fake_twilio.server import FakeTwilioServer
from responses.messaging.fake_twilio.state import FakeConfig

FAKE_SID = "AC" + "0" * 32
FAKE_FROM = "+8612300000000"
FAKE_ACCESS_KEY = "LTAIlocalfake00000000000"
FAKE_SIGN = "叫应演示"


def _token(settings: Settings) -> str:
    # derived from the secret, so the server and its sending process agree on it without passing it around
    return "local-fake-" + settings.security.secret_key.get_secret_value()[:16]


def _push_token(settings: Settings) -> str:
    secret = settings.security.secret_key.get_secret_value()
    return "push-" + hashlib.sha256(f"aliyun-push:{secret}".encode()).hexdigest()[:32]


def needs_fake_aliyun(settings: Settings) -> bool:
    """A channel is set to Alibaba Cloud but it has no access key: the local fake stands in."""
    return not settings.aliyun.configured and "aliyun" in {settings.provider_for(ch) for ch in ("sms", "voice")}


def _fake_aliyun_settings(settings: Settings, endpoint: str | None) -> AliyunSettings:
    al = settings.aliyun
    data: dict[str, Any] = {
        **al.model_dump(),
        "access_key_id": FAKE_ACCESS_KEY,
        "access_key_secret": SecretStr(_token(settings)),
        "sign_name": al.sign_name or FAKE_SIGN,
        "sms_templates": {k: f"SMS_LOCAL_{k.upper()}" for k in ALIYUN_SMS_KINDS} | al.sms_templates,
        "tts_templates": {k: f"TTS_LOCAL_{k.upper()}" for k in ALIYUN_VOICE_KINDS} | al.tts_templates,
        "ivr_start_code": al.ivr_start_code or "TTS_LOCAL_IVR_START",
        "ivr_ack_code": al.ivr_ack_code or "TTS_LOCAL_IVR_ACK",
        "ivr_help_code": al.ivr_help_code or "TTS_LOCAL_IVR_HELP",
        "push_token": al.push_token or SecretStr(_push_token(settings)),
    }
    if endpoint is not None:
        data.update(sms_endpoint=endpoint, voice_endpoint=endpoint, protocol="http")
    return AliyunSettings(**data)


def local_gateway_settings(settings: Settings, url: str, aliyun_endpoint: str | None = None) -> Settings:
    """Settings for talking to the local fake gateways: the fake Twilio at ``url`` (when Twilio has no
    credentials) and, when a channel is set to Alibaba Cloud without an access key, the fake Alibaba Cloud at
    ``aliyun_endpoint`` (host:port; None: elsewhere — only the push token and keys are set, as the web process
    of ``serve`` needs them to take the fake's pushes)."""
    update: dict[str, Any] = {}
    if not settings.twilio.configured:
        update["twilio"] = TwilioSettings(
            **{
                **settings.twilio.model_dump(),
                "account_sid": FAKE_SID,
                "auth_token": SecretStr(_token(settings)),
                "from_number": FAKE_FROM,
                "api_base_url": url,
            }
        )
    if needs_fake_aliyun(settings):
        update["aliyun"] = _fake_aliyun_settings(settings, aliyun_endpoint)
    return settings.model_copy(update=update) if update else settings


class LocalGateways:
    """The fake Twilio (what ``with_local_gateway`` always returned; its attributes are reachable here) and,
    when needed, the fake Alibaba Cloud beside it."""

    def __init__(self, twilio: FakeTwilioServer | None, aliyun: FakeAliyunServer | None) -> None:
        self.twilio, self.aliyun = twilio, aliyun

    @property
    def url(self) -> str:
        server = self.twilio or self.aliyun
        assert server is not None
        return server.url

    def __getattr__(self, name: str) -> Any:
        if self.twilio is None:
            raise AttributeError(name)
        return getattr(self.twilio, name)

    def stop(self) -> None:
        for server in (self.twilio, self.aliyun):
            if server is not None:
                server.stop()


def with_local_gateway(settings: Settings, port: int = 0) -> tuple[Settings, LocalGateways | None]:
    """Settings pointing at freshly started fake gateways for the providers that have no credentials."""
    want_aliyun = needs_fake_aliyun(settings)
    if settings.twilio.configured and not want_aliyun:
        return settings, None
    base = settings.public_base_url.rstrip("/")
    twilio = None
    if not settings.twilio.configured:
        twilio = FakeTwilioServer(
            FakeConfig(accounts={FAKE_SID: _token(settings)}, phone_number=FAKE_FROM,
                       sms_url=f"{base}/twilio/sms/inbound"),
            port=port,
        )
        twilio.start()
    aliyun = None
    if want_aliyun:
        push_token = (settings.aliyun.push_token.get_secret_value() if settings.aliyun.push_token
                      else _push_token(settings))
        aliyun = FakeAliyunServer(AliyunFakeConfig(accounts={FAKE_ACCESS_KEY: _token(settings)},
                                                   push_base_url=f"{base}/webhooks/aliyun/{push_token}"),
                                  port=port if twilio is None else 0)
        aliyun.start()
    url = twilio.url if twilio is not None else ""
    return (local_gateway_settings(settings, url, aliyun.endpoint if aliyun is not None else None),
            LocalGateways(twilio, aliyun))
