"""Twilio webhooks through the app: signatures, forward-only status, inbound answers, voice TwiML."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from config.database import session_scope
from config.eventlog import Event
from config.runtime import Runtime
from responses.messaging import outbox
from responses.messaging.models import InboundMessage, MessageStatus, OutboxMessage
from responses.messaging.webhooks import InboundAnswer, set_answer_handler


@pytest.fixture
def wh(twilio_app: Any) -> tuple[TestClient, Runtime, list[InboundAnswer]]:
    c, rt, app = twilio_app
    answers: list[InboundAnswer] = []
    set_answer_handler(app, lambda _s, a: answers.append(a))
    return c, rt, answers


def _message(rt: Runtime, channel: str = "sms", to: str = "+8613800000001", provider_id: str | None = None) -> int:
    with session_scope(rt.session_factory) as s:
        m = outbox.enqueue(s, now=rt.now(), channel=channel, to=to, idempotency_key=f"{channel}-{to}",
                           subject_type="callout_attempt", subject_id=42,
                           body="【叫应】暴雨红色预警，收到请按1，需要支援请按2。")
        m.state, m.provider_id = "sent", provider_id
        return m.id


def _post(c: TestClient, tw: Any, path: str, params: dict[str, str], *, signed: bool = True,
          token: str | None = None) -> Any:
    headers = tw.sign(tw.public + path, params, token or tw.token) if signed else {}
    return c.post(path, data=params, headers=headers)


def _state(rt: Runtime, mid: int) -> str:
    with session_scope(rt.session_factory) as s:
        return s.get(OutboxMessage, mid).state  # type: ignore[union-attr]


def test_status_callbacks_only_move_forward(wh: Any, tw: Any) -> None:
    c, rt, _ = wh
    mid = _message(rt, provider_id="SM1")
    path = f"/twilio/status?m={mid}"

    def cb(status: str) -> int:
        return _post(c, tw, path, {"MessageSid": "SM1", "MessageStatus": status, "AccountSid": tw.sid}).status_code

    assert cb("delivered") == 204
    assert _state(rt, mid) == "delivered"
    assert cb("sent") == 204 and cb("queued") == 204 and cb("undelivered") == 204  # late, out of order
    assert _state(rt, mid) == "delivered"
    with session_scope(rt.session_factory) as s:
        hist = s.execute(select(MessageStatus.provider_status, MessageStatus.applied)
                         .where(MessageStatus.message_id == mid, MessageStatus.source == "callback")
                         .order_by(MessageStatus.id)).all()
        assert [tuple(h) for h in hist] == [("delivered", True), ("sent", False), ("queued", False),
                                            ("undelivered", False)]
        m = s.get(OutboxMessage, mid)
        assert m is not None and m.delivered_at is not None


def test_a_failed_call_is_terminal(wh: Any, tw: Any) -> None:
    c, rt, _ = wh
    mid = _message(rt, channel="voice", provider_id="CA1")
    for status in ("ringing", "no-answer", "completed"):
        _post(c, tw, f"/twilio/status?m={mid}", {"CallSid": "CA1", "CallStatus": status})
    with session_scope(rt.session_factory) as s:
        m = s.get(OutboxMessage, mid)
        assert m is not None and m.state == "failed" and "no-answer" in (m.last_error or "")


@pytest.mark.parametrize("how", ["unsigned", "bad_token", "tampered", "wrong_url"])
def test_bad_signature_is_refused_changes_nothing_and_is_logged(wh: Any, tw: Any, how: str) -> None:
    c, rt, answers = wh
    mid = _message(rt, provider_id="SM1")
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    path = f"/twilio/status?m={mid}"
    if how == "unsigned":
        r = c.post(path, data=params)
    elif how == "bad_token":
        r = _post(c, tw, path, params, token="not-the-token")
    elif how == "tampered":
        r = c.post(path, data={**params, "MessageStatus": "failed"}, headers=tw.sign(tw.public + path, params))
    else:
        r = c.post(path, data=params, headers=tw.sign("http://testserver" + path, params))
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_signature"
    for p, data in [("/twilio/sms/inbound", {"From": "+8613800000001", "Body": "1"}),
                    (f"/twilio/voice/gather?m={mid}", {"Digits": "1", "To": "+8613800000001"})]:
        assert c.post(p, data=data).status_code == 403
    assert _state(rt, mid) == "sent"
    assert not answers
    with session_scope(rt.session_factory) as s:
        assert s.scalar(select(func.count()).select_from(InboundMessage)) == 0
        assert s.scalar(select(func.count()).select_from(MessageStatus).where(MessageStatus.source == "callback")) == 0
        rejected = s.execute(select(Event).where(Event.action == "webhook.rejected")).scalars().all()
        assert len(rejected) == 3 and rejected[0].payload["url"].startswith(tw.public)


def test_inbound_sms_is_stored_and_handed_over(wh: Any, tw: Any) -> None:
    c, rt, answers = wh
    mid = _message(rt, to="+8613800000007")
    params = {"MessageSid": "SMin", "From": "+8613800000007", "To": tw.from_number, "Body": " 1 收到 "}
    r = _post(c, tw, "/twilio/sms/inbound", params)
    assert r.status_code == 200 and "<Response" in r.text
    assert len(answers) == 1
    a = answers[0]
    assert (a.kind, a.text, a.from_number, a.message_id, a.subject_type, a.subject_id) == \
        ("sms", "1 收到", "+8613800000007", mid, "callout_attempt", "42")
    with session_scope(rt.session_factory) as s:
        row = s.execute(select(InboundMessage)).scalar_one()
        assert row.handled and row.raw == params


def test_inbound_is_kept_when_the_handler_fails(wh: Any, tw: Any) -> None:
    c, rt, _ = wh

    def broken(_s: Any, _a: InboundAnswer) -> None:
        raise RuntimeError("callout layer bug")

    set_answer_handler(c.app, broken)
    r = _post(c, tw, "/twilio/sms/inbound", {"MessageSid": "SMx", "From": "+8613800000009", "Body": "2"})
    assert r.status_code == 200
    with session_scope(rt.session_factory) as s:
        row = s.execute(select(InboundMessage)).scalar_one()
        assert not row.handled and "callout layer bug" in (row.handler_error or "") and row.text == "2"


def test_voice_twiml_and_keypress(wh: Any, tw: Any) -> None:
    c, rt, answers = wh
    mid = _message(rt, channel="voice", to="+8613800000003", provider_id="CA9")
    r = _post(c, tw, f"/twilio/voice/twiml?m={mid}", {"CallSid": "CA9", "CallStatus": "in-progress"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert '<Gather action="http://jiaoying.test/twilio/voice/gather?m=' in r.text
    assert 'numDigits="1"' in r.text and '<Say language="zh-CN">【叫应】暴雨红色预警' in r.text
    r = _post(c, tw, f"/twilio/voice/gather?m={mid}",
              {"CallSid": "CA9", "Digits": "2", "To": "+8613800000003", "From": tw.from_number})
    assert r.status_code == 200 and "需要支援" in r.text and "<Hangup" in r.text
    assert [(a.kind, a.text, a.from_number, a.message_id) for a in answers] == \
        [("keypress", "2", "+8613800000003", mid)]
    # a digit that is no answer is stored, not handed over, and the question is asked again
    r = _post(c, tw, f"/twilio/voice/gather?m={mid}", {"CallSid": "CA9", "Digits": "7", "To": "+8613800000003"})
    assert "<Redirect" in r.text and len(answers) == 1
    with session_scope(rt.session_factory) as s:
        assert [(i.kind, i.text) for i in s.execute(select(InboundMessage).order_by(InboundMessage.id)).scalars()] \
            == [("keypress", "2"), ("keypress", "7")]
