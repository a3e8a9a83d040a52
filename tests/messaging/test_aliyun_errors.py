"""The Alibaba Cloud error table: every class of code becomes the sender's TransientError (with retry_after when
throttled) or PermanentError — from the table itself, and through the real SDK from the fake's answers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from responses.messaging.notifiers.aliyun_errors import TABLE, Kind, classify, lookup
from responses.messaging.notifiers.base import PermanentError, TransientError
from responses.messaging.sender import Sender, SenderConfig

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize(("code", "wait"), [
    ("isv.BUSINESS_LIMIT_CONTROL", 60.0), ("Throttling.User", 1.0), ("Throttling.Api", 1.0), ("Throttling", 1.0),
])
def test_throttled_codes_retry_no_sooner_than_the_table_says(code: str, wait: float) -> None:
    err = classify(code, "slow down")
    assert isinstance(err, TransientError)
    assert err.retry_after == wait and err.code == code


def test_gateway_retry_after_header_wins_for_throttling() -> None:
    err = classify("Throttling.User", "", status=429, retry_after=0.2)
    assert isinstance(err, TransientError) and err.retry_after == 0.2


def test_the_hour_and_day_limits_fail_over_instead_of_waiting() -> None:
    assert isinstance(classify("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"), TransientError)
    for msg in ("触发小时级流控Permits:5", "触发天级流控Permits:10"):
        assert isinstance(classify("isv.BUSINESS_LIMIT_CONTROL", msg), PermanentError)


@pytest.mark.parametrize("code", ["isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "ServiceUnavailable", "InternalError",
                                  "isv.AMOUNT_NOT_ENOUGH", "isv.OUT_OF_SERVICE", "SignatureDoesNotMatch",
                                  "InvalidAccessKeyId.NotFound", "timeout", "transport"])
def test_provider_and_account_trouble_is_retried_with_backoff(code: str) -> None:
    err = classify(code, "")
    assert isinstance(err, TransientError) and err.retry_after is None


@pytest.mark.parametrize("code", ["isv.MOBILE_NUMBER_ILLEGAL", "isv.TEMPLATE_PARAMS_ILLEGAL",
                                  "isv.TEMPLATE_MISSING_PARAMETERS", "isv.PARAM_LENGTH_LIMIT",
                                  "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_TEMPLATE_ILLEGAL",
                                  "isv.BLACK_KEY_CONTROL_LIMIT", "isv.CALLED_NUMBER_ILLEGAL",
                                  "isv.BUSINESS_LIMIT_DAY"])
def test_bad_numbers_and_refused_content_fail_over(code: str) -> None:
    err = classify(code, "no")
    assert isinstance(err, PermanentError) and err.code == code
    assert code in err.reason


def test_unknown_codes_go_by_their_family_then_by_status() -> None:
    assert lookup("isp.SOMETHING_NEW").kind is Kind.TRANSIENT
    assert lookup("isv.SOMETHING_NEW").kind is Kind.PERMANENT
    assert lookup("Throttling.Something").kind is Kind.THROTTLED
    assert lookup(None, 502).kind is Kind.TRANSIENT
    assert lookup(None, 429).kind is Kind.THROTTLED
    assert lookup("Weird", 400).kind is Kind.PERMANENT
    assert lookup(None, None).kind is Kind.TRANSIENT  # never lose a message to an error nobody understood


def test_every_code_of_the_table_is_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [code for code in TABLE if f"`{code}`" not in text]
    assert not missing, f"README lacks {missing}"


def test_sender_waits_at_least_retry_after_and_fails_permanent_ones(engine: Any, clock: Any) -> None:
    """The sender's side of the table: a throttled try comes back no sooner than retry_after, a permanent one
    fails with the provider's reason."""
    from config.database import make_session_factory, session_scope
    from responses.messaging import outbox
    from responses.messaging.models import OutboxMessage
    from responses.messaging.notifiers.fake import FakeNotifier

    def fail(_kind: str, to: str) -> Any:
        return classify("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控") if to.endswith("1") else \
            classify("isv.MOBILE_NUMBER_ILLEGAL", "invalid")

    factory = make_session_factory(engine)
    now = clock.now()
    with session_scope(factory) as s:
        for i, to in enumerate(("+8613800000001", "+8613800000002")):
            outbox.enqueue(s, now=now, channel="sms", to=to, body="x", idempotency_key=f"k{i}", provider="aliyun")
    sender = Sender(factory, {"aliyun": FakeNotifier(name="aliyun", fail=fail)}, clock=clock,
                    config=SenderConfig(concurrency=1, backoff_base=0.1, backoff_cap=0.2))
    try:
        stats = sender.run_once()
    finally:
        sender.close()
    assert stats.retried == 1 and stats.failed == 1
    with session_scope(factory) as s:
        rows = {m.to_number: m for m in s.query(OutboxMessage)}
        throttled, bad = rows["+8613800000001"], rows["+8613800000002"]
        assert throttled.state == "queued"
        assert throttled.next_try_at.replace(tzinfo=dt.UTC) - now >= dt.timedelta(seconds=60)
        assert bad.state == "failed" and bad.error_code == "isv.MOBILE_NUMBER_ILLEGAL"
