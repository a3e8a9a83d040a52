"""The real twilio client against the fake server, over HTTP on loopback."""

from __future__ import annotations

import time

import httpx
import pytest

from responses.messaging.fake_twilio.server import FakeTwilioServer
from responses.messaging.notifiers.base import PermanentError, TransientError
from responses.messaging.notifiers.twilio import BaseUrlHttpClient, TwilioNotifier

SID = "AC" + "1" * 32
TOKEN = "test-auth-token-123"
FROM = "+15005550006"


def test_base_url_rewrite_keeps_path_and_query() -> None:
    c = BaseUrlHttpClient("http://127.0.0.1:9/prefix/")
    try:
        assert c.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1") == \
            "http://127.0.0.1:9/prefix/2010-04-01/Accounts/AC1/Messages.json?x=1"
    finally:
        c.close()
    assert BaseUrlHttpClient(None).rewrite("https://api.twilio.com/a") == "https://api.twilio.com/a"


def test_sms_and_call_reach_the_fake_and_are_recorded(fake_server: FakeTwilioServer,
                                                      notifier: TwilioNotifier) -> None:
    sid = notifier.send_sms("+8613800000001", "【叫应】测试短信", "http://cb.test/twilio/status?m=1",
                            validity_seconds=600)
    call = notifier.place_call("+8613800000002", twiml_url="http://cb.test/twilio/voice/twiml?m=2")
    assert sid.startswith("SM") and len(sid) == 34
    assert call.startswith("CA")
    reqs = fake_server.fake.requests
    assert [r.path for r in reqs] == [f"/2010-04-01/Accounts/{SID}/Messages.json",
                                      f"/2010-04-01/Accounts/{SID}/Calls.json"]
    sms = reqs[0].params
    assert sms["To"] == "+8613800000001" and sms["From"] == FROM and sms["Body"] == "【叫应】测试短信"
    assert sms["StatusCallback"] == "http://cb.test/twilio/status?m=1" and sms["ValidityPeriod"] == "600"
    assert reqs[1].params["Url"] == "http://cb.test/twilio/voice/twiml?m=2"
    assert reqs[0].sid == sid and reqs[1].sid == call
    # the message resource can be fetched back through the client
    fetched = notifier.client.messages(sid).fetch()
    assert fetched.body == "【叫应】测试短信" and fetched.num_segments == "1"


def test_wrong_credentials_are_refused(fake_server: FakeTwilioServer) -> None:
    bad = TwilioNotifier(SID, "wrong", FROM, api_base_url=fake_server.url, timeout=2.0)
    try:
        with pytest.raises(TransientError) as err:
            bad.send_sms("+8613800000001", "x", None)
        assert err.value.status == 401
    finally:
        bad.close()
    assert fake_server.fake.requests[-1].fault == "auth"


def test_invalid_and_blocked_numbers_are_permanent(fake_server: FakeTwilioServer, notifier: TwilioNotifier) -> None:
    fake_server.fake.set_faults(invalid_numbers=["+8613800009999"], blocked_numbers=["+8613800008888"])
    with pytest.raises(PermanentError) as err:
        notifier.send_sms("+8613800009999", "x", None)
    assert err.value.code == "21211"
    with pytest.raises(PermanentError) as err:
        notifier.place_call("+8613800008888", twiml="<Response/>")
    assert err.value.code == "21610"


@pytest.mark.parametrize(("fault", "status"), [("server_error", 503), ("rate_limited", 429)])
def test_server_faults_are_transient(fake_server: FakeTwilioServer, notifier: TwilioNotifier, fault: str,
                                     status: int) -> None:
    fake_server.fake.set_faults(**{fault: 1.0})
    with pytest.raises(TransientError) as err:
        notifier.send_sms("+8613800000001", "x", None)
    assert err.value.status == status
    assert fake_server.fake.stats()["faults"] == {fault: 1}


def test_timeouts_are_transient(fake_server: FakeTwilioServer) -> None:
    fake_server.fake.set_faults(timeout=1.0, timeout_seconds=2.0)
    n = TwilioNotifier(SID, TOKEN, FROM, api_base_url=fake_server.url, timeout=0.3)
    try:
        t0 = time.monotonic()
        with pytest.raises(TransientError) as err:
            n.send_sms("+8613800000001", "x", None)
        assert err.value.code == "timeout" and time.monotonic() - t0 < 1.5
    finally:
        n.close()


def test_fake_counts_the_rate_per_account(fake_server: FakeTwilioServer, notifier: TwilioNotifier) -> None:
    for i in range(5):
        notifier.send_sms(f"+861380000000{i}", "x", None)
    stats = httpx.get(f"{fake_server.url}/_fake/stats").json()
    assert stats["max_per_second"] == {SID: 5} and stats["accepted"] == 5


def test_fault_injection_is_deterministic_for_a_seed(fake_server: FakeTwilioServer) -> None:
    def run() -> list[str | None]:
        fake_server.fake.reset()
        fake_server.fake.set_faults(server_error=0.1, rate_limited=0.1, timeout=0.1, seed=42)
        return [fake_server.fake.draw_fault() for _ in range(200)]

    first, second = run(), run()
    assert first == second
    share = sum(1 for f in first if f) / len(first)
    assert 0.2 <= share <= 0.4
