"""Alibaba Cloud's HTTP pushes through the app: the token, receipts, replies, keypresses, call records,
duplicates, bad items and malformed bodies, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from config.eventlog import Event
from config.runtime import Runtime
from jiaoying.app import create_app
from responses.messaging import aliyun_push as push
from responses.messaging import outbox
from responses.messaging.models import InboundMessage, MessageStatus, OutboxMessage
from responses.messaging.webhooks import InboundAnswer, set_answer_handler, set_status_handler
from tests.conftest import test_settings as base_settings

PUSH_TOKEN = "push-token-" + "k" * 24
ACK = {"code": 0, "msg": "接收成功"}
NUMBER = "+8613800000001"


def _settings(push_token: str | None = PUSH_TOKEN) -> Any:
    aliyun: dict[str, Any] = {"push_token": push_token} if push_token else {}
    return base_settings(aliyun=aliyun)


@pytest.fixture
def ali(engine: Engine, clock: VirtualClock) -> Iterator[tuple[TestClient, Runtime, list[InboundAnswer], list[int]]]:
    rt = Runtime(_settings(), engine, make_session_factory(engine), clock)
    app = create_app(rt.settings, runtime=rt, scheduler=False)
    answers: list[InboundAnswer] = []
    ended: list[int] = []
    with TestClient(app) as c:
        set_answer_handler(app, lambda _s, a: answers.append(a))  # after startup: the wiring sets its own
        set_status_handler(app, lambda _s, m: ended.append(m.id))
        yield c, rt, answers, ended


def _message(rt: Runtime, channel: str = "sms", to: str = NUMBER, provider_id: str | None = None,
             key: str | None = None) -> int:
    with session_scope(rt.session_factory) as s:
        m = outbox.enqueue(s, now=rt.now(), channel=channel, to=to, idempotency_key=key or f"{channel}-{to}",
                           subject_type="callout_attempt", subject_id=42, body="【叫应】暴雨红色预警，收到请回复。")
        m.state, m.provider_id = "sent", provider_id
        return m.id


def _url(kind: str, token: str = PUSH_TOKEN) -> str:
    return f"/webhooks/aliyun/{token}/{kind}"


def _msg(rt: Runtime, mid: int) -> OutboxMessage:
    with session_scope(rt.session_factory) as s:
        m = s.get(OutboxMessage, mid)
        assert m is not None
        s.expunge(m)
        return m


def _count(rt: Runtime, what: Any, *where: Any) -> int:
    with session_scope(rt.session_factory) as s:
        return int(s.execute(select(func.count()).select_from(what).where(*where)).scalar_one())


def _events(rt: Runtime, action: str) -> list[Event]:
    with session_scope(rt.session_factory) as s:
        rows = list(s.execute(select(Event).where(Event.action == action).order_by(Event.id)).scalars())
        for r in rows:
            s.expunge(r)
        return rows


# ------------------------------------------------------------------------------------------ pure


def test_builders_make_the_documented_bodies_and_the_parsers_read_them() -> None:
    t = dt.datetime(2026, 7, 1, 1, 2, 3, tzinfo=dt.UTC)  # 09:02:03 in Shanxi
    [r] = push.sms_report(phone=NUMBER, biz_id="900^1", out_id="17", success=False, err_code="MK:0001",
                          send_time=t)
    assert set(r) == {"phone_number", "send_time", "report_time", "success", "err_code", "err_msg", "sms_size",
                      "biz_id", "out_id"}
    assert (r["phone_number"], r["send_time"], r["success"]) == ("13800000001", "2026-07-01 09:02:03", False)
    item = push.SmsReportItem.model_validate(r)
    assert push.sms_status(item) == "undelivered" and item.err_code == "MK:0001"

    [u] = push.sms_up(phone=NUMBER, content="收到", send_time=t, sequence_id=123)
    assert set(u) == {"phone_number", "content", "send_time", "dest_code", "sequence_id"}
    # sequence_id: a Number in one version of the docs, a String in the other: both read
    assert push.SmsUpItem.model_validate({**u, "sequence_id": 123}).sequence_id == "123"
    assert push.SmsUpItem.model_validate(u).sequence_id == "123"

    [k] = push.ivr_keypress(call_id="1^2", dtmf="1", time=t, out_id="5")
    assert k == {"status_code": "300000", "status_time": "2026-07-01 09:02:03", "out_id": "5", "call_id": "1^2",
                 "dtmf": "1"}
    [v] = push.voice_report(phone=NUMBER, call_id="1^2", status_code=push.NO_ANSWER, originate_time=t)
    parsed = push.VoiceReportItem.model_validate({**v, "duration": 0, "smart_status_code": "NO_ANSWER"})
    assert (parsed.duration, parsed.start_time, parsed.callee) == ("0", "", "13800000001")
    assert parsed.model_extra == {"voice_type": "voice", "toll_type": "UNKNOWN"}  # unknown fields kept
    assert push.parse_provider_time(v["originate_time"]) == t

    assert [push.voice_status(c) for c in ("200000", "200002", "200003", "200010", "200004", "999999")] == [
        "completed", "busy", "no-answer", "failed", "failed", "failed"]
    assert [push.to_e164(n) for n in ("13800000001", "8613800000001", "+8613800000001", "03517654321")] == [
        NUMBER, NUMBER, NUMBER, "+863517654321"]
    for bad in ("abc", "123", "+86" + "1" * 20):
        with pytest.raises(ValueError):
            push.to_e164(bad)
    with pytest.raises(ValueError):
        push.provider_time(dt.datetime(2026, 7, 1))  # naive: refused


# ------------------------------------------------------------------------------------------ the token


def test_wrong_token_is_refused_and_keeps_nothing(ali: Any) -> None:
    c, rt, answers, _ = ali
    mid = _message(rt, provider_id="B1")
    body = push.sms_report(phone=NUMBER, biz_id="B1", send_time=rt.now())
    for kind in push.KINDS:
        r = c.post(_url(kind, "wrong-token"), json=body)
        assert r.status_code == 403, kind
        assert r.json()["error"]["code"] == "bad_push_token"
    r = c.post(_url("sms-up", PUSH_TOKEN + "x"), json=push.sms_up(phone=NUMBER, content="收到",
                                                                    send_time=rt.now(), sequence_id=1))
    assert r.status_code == 403
    assert c.post("/webhooks/aliyun/sms-report", json=body).status_code == 404  # no token at all: no such URL
    assert _msg(rt, mid).state == "sent"
    assert _count(rt, InboundMessage) == 0 and answers == []
    rejected = _events(rt, "webhook.rejected")
    assert len(rejected) == 5
    assert all(PUSH_TOKEN not in str(e.payload) and "wrong-token" not in str(e.payload) for e in rejected)
    assert {e.entity_id for e in rejected} == {f"/webhooks/aliyun/{k}" for k in push.KINDS}


def test_without_a_configured_token_the_endpoints_are_closed(engine: Engine, clock: VirtualClock) -> None:
    rt = Runtime(_settings(None), engine, make_session_factory(engine), clock)
    with TestClient(create_app(rt.settings, runtime=rt, scheduler=False)) as c:
        r = c.post(_url("sms-up", "anything"), json=[])
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "push_not_configured"
        assert "push_token" in r.json()["error"]["message"]


# ------------------------------------------------------------------------------------------ receipts


def test_sms_receipts_move_states_forward_and_repeat_harmlessly(ali: Any) -> None:
    c, rt, _, ended = ali
    ok = _message(rt, provider_id="B1")
    bad = _message(rt, to="+8613800000002", provider_id="B2")
    t = rt.now()
    body = (push.sms_report(phone=NUMBER, biz_id="B1", send_time=t)
            + push.sms_report(phone="+8613800000002", biz_id="B2", success=False, err_code="MK:0001", send_time=t))
    r = c.post(_url("sms-report"), json=body)
    assert (r.status_code, r.json()) == (200, ACK)
    m1, m2 = _msg(rt, ok), _msg(rt, bad)
    assert (m1.state, m1.provider_status) == ("delivered", "delivered")
    assert (m2.state, m2.provider_status, m2.error_code) == ("failed", "undelivered", "MK:0001")
    assert sorted(ended) == sorted([ok, bad])  # the callout layer hears of both, as for Twilio

    # the provider pushes the same array again (it retries after 1, 5, 10 minutes): nothing new
    history = _count(rt, MessageStatus)
    assert c.post(_url("sms-report"), json=body).json() == ACK
    assert _count(rt, MessageStatus) == history and len(ended) == 2

    # a late failure receipt for the delivered one is recorded, changes nothing
    late = push.sms_report(phone=NUMBER, biz_id="B1", success=False, err_code="UNDELIV", send_time=t,
                           report_time=t + dt.timedelta(minutes=3))
    assert c.post(_url("sms-report"), json=late).json() == ACK
    assert _msg(rt, ok).state == "delivered"
    with session_scope(rt.session_factory) as s:
        last = s.execute(select(MessageStatus).where(MessageStatus.message_id == ok)
                         .order_by(MessageStatus.id.desc()).limit(1)).scalar_one()
        assert (last.applied, last.provider_status, last.detail["err_code"]) == (False, "undelivered", "UNDELIV")


def test_receipts_match_biz_id_and_number_and_fall_back_to_out_id(ali: Any) -> None:
    c, rt, _, _ = ali
    # a batch send shares one BizId: each number's receipt moves its own message only
    a = _message(rt, to="+8613800000011", provider_id="SHARED")
    b = _message(rt, to="+8613800000012", provider_id="SHARED")
    # the receipt overtook the sender's bookkeeping: no BizId recorded yet, out_id names the message
    early = _message(rt, to="+8613800000013")
    t = rt.now()
    body = (push.sms_report(phone="+8613800000012", biz_id="SHARED", send_time=t)
            + push.sms_report(phone="+8613800000013", biz_id="B9", out_id=str(early), send_time=t)
            + push.sms_report(phone="+8613800000099", biz_id="NOPE", out_id=str(a), send_time=t))
    assert c.post(_url("sms-report"), json=body).json() == ACK
    assert (_msg(rt, a).state, _msg(rt, b).state) == ("sent", "delivered")
    m = _msg(rt, early)
    assert (m.state, m.provider_id) == ("delivered", "B9")
    unknown = _events(rt, "webhook.unknown_message")
    assert [e.payload["biz_id"] for e in unknown] == ["NOPE"]  # an out_id of another number is not taken


def test_a_batch_with_bad_items_applies_the_good_ones_and_keeps_the_bad(ali: Any) -> None:
    c, rt, _, _ = ali
    one = _message(rt, provider_id="B1")
    two = _message(rt, to="+8613800000002", provider_id="B2")
    t = rt.now()
    body = [
        *push.sms_report(phone=NUMBER, biz_id="B1", send_time=t),
        {"phone_number": "13800000003", "biz_id": "B3"},  # no "success"
        7,  # not an object
        {**push.sms_report(phone="+8613800000002", biz_id="B2", send_time=t)[0], "success": "perhaps"},
        {**push.sms_report(phone="+8613800000002", biz_id="B2", send_time=t)[0], "phone_number": "请回电话号码"},
        *push.sms_report(phone="+8613800000002", biz_id="B2", send_time=t),
    ]
    r = c.post(_url("sms-report"), json=body)
    assert (r.status_code, r.json()) == (200, ACK)
    assert (_msg(rt, one).state, _msg(rt, two).state) == ("delivered", "delivered")
    bad = _events(rt, "webhook.bad_item")
    assert [e.payload["index"] for e in bad] == [1, 2, 3, 4]
    assert "success" in bad[0].payload["error"] and bad[1].payload["item"] == 7
    assert "not a phone number" in bad[3].payload["error"]


def test_malformed_bodies_get_a_clear_error_and_are_logged(ali: Any) -> None:
    c, rt, _, _ = ali
    r = c.post(_url("sms-report"), content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_push_body"
    r = c.post(_url("sms-up"), json={"phone_number": "13800000001", "content": "收到"})
    assert r.status_code == 400 and "数组" in r.json()["error"]["message"]
    r = c.post(_url("ivr"), content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = c.post(_url("voice-report"), content=b"[" + b" " * (3 * 1024 * 1024) + b"]")
    assert r.status_code == 413 and r.json()["error"]["code"] == "push_too_large"
    kept = _events(rt, "webhook.bad_body")
    assert [e.payload["reason"] for e in kept] == ["not JSON", "not a JSON array", "not JSON", "too large"]
    assert kept[0].payload["body"] == "{not json"
    assert c.post(_url("sms-report"), json=[]).json() == ACK  # an empty push is a push


def test_our_database_failing_answers_5xx_so_the_provider_retries(engine: Engine, clock: VirtualClock,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    rt = Runtime(_settings(), engine, make_session_factory(engine), clock)
    mid = _message(rt, provider_id="B1")

    def down(*_a: Any, **_k: Any) -> Any:
        raise OperationalError("UPDATE outbox_message", {}, Exception("server closed the connection"))

    monkeypatch.setattr(outbox, "apply_provider_status", down)
    with TestClient(create_app(rt.settings, runtime=rt, scheduler=False), raise_server_exceptions=False) as c:
        r = c.post(_url("sms-report"), json=push.sms_report(phone=NUMBER, biz_id="B1", send_time=rt.now()))
        assert r.status_code == 500
    assert _msg(rt, mid).state == "sent"
    assert _events(rt, "webhook.bad_item") == []  # not blamed on the item


# ------------------------------------------------------------------------------------------ replies


def test_sms_replies_are_stored_and_answered_once(ali: Any) -> None:
    c, rt, answers, _ = ali
    _message(rt, to=NUMBER, key="older")
    latest = _message(rt, to=NUMBER, key="latest")
    t = rt.now()
    body = push.sms_up(phone=NUMBER, content=" 收到 转移35人 ", send_time=t, sequence_id=987654321, dest_code="01")
    assert c.post(_url("sms-up"), json=body).json() == ACK
    assert c.post(_url("sms-up"), json=body).json() == ACK  # pushed again
    [a] = answers
    assert (a.kind, a.text, a.from_number, a.message_id) == ("sms", "收到 转移35人", NUMBER, latest)
    assert (a.subject_type, a.subject_id) == ("callout_attempt", "42")
    with session_scope(rt.session_factory) as s:
        [inb] = s.execute(select(InboundMessage)).scalars()
        assert (inb.provider, inb.provider_id, inb.handled, inb.raw["sequence_id"]) == (
            "aliyun", "987654321", True, "987654321")
    # the same words again later, with a new sequence id, are a new reply
    again = push.sms_up(phone=NUMBER, content="收到 转移35人", send_time=t, sequence_id=987654322)
    c.post(_url("sms-up"), json=again)
    assert len(answers) == 2


def test_a_bad_reply_is_kept_as_evidence_not_answered(ali: Any) -> None:
    c, rt, answers, _ = ali
    _message(rt)
    body = [{"phone_number": "13800000001", "send_time": "2026-07-01 09:00:00", "sequence_id": "5"},  # no content
            *push.sms_up(phone="+8613800000002", content="1", send_time=rt.now(), sequence_id=6)]
    assert c.post(_url("sms-up"), json=body).json() == ACK
    assert [a.from_number for a in answers] == ["+8613800000002"]
    with session_scope(rt.session_factory) as s:
        bad = s.execute(select(InboundMessage).where(InboundMessage.handler_error.is_not(None))).scalar_one()
        assert (bad.provider, bad.kind, bad.from_number, bad.handled) == ("aliyun", "sms", NUMBER, False)
        assert "content" in (bad.handler_error or "") and bad.raw["sequence_id"] == "5"


# ------------------------------------------------------------------------------------------ voice


def test_ivr_keypress_answers_the_call_it_was_pressed_in(ali: Any) -> None:
    c, rt, answers, ended = ali
    mid = _message(rt, channel="voice", provider_id="C1^1")
    t = rt.now()
    body = push.ivr_keypress(call_id="C1^1", dtmf="2", time=t, out_id=str(mid))
    assert c.post(_url("ivr"), json=body).json() == ACK
    assert c.post(_url("ivr"), json=body).json() == ACK  # pushed again
    [a] = answers
    assert (a.kind, a.text, a.from_number, a.message_id) == ("keypress", "2", NUMBER, mid)
    assert _msg(rt, mid).state == "delivered" and ended == [mid]  # answered: the person was reached
    # the call record repeating the same key does not answer twice, and ends the call as delivered
    rec = push.voice_report(phone=NUMBER, call_id="C1^1", out_id=str(mid), originate_time=t, start_time=t,
                            end_time=t + dt.timedelta(seconds=30), dtmf="2")
    assert c.post(_url("voice-report"), json=rec).json() == ACK
    assert len(answers) == 1 and _count(rt, InboundMessage) == 1

    # a key that is no answer, and a key in a call we do not know: stored, not handed over
    other = _message(rt, channel="voice", to="+8613800000002", provider_id="C2^1")
    body = (push.ivr_keypress(call_id="C2^1", dtmf="9", time=t)
            + push.ivr_keypress(call_id="C404^1", dtmf="1", time=t, out_id="999999"))
    assert c.post(_url("ivr"), json=body).json() == ACK
    assert len(answers) == 1
    with session_scope(rt.session_factory) as s:
        rows = {i.provider_id: i for i in s.execute(select(InboundMessage)).scalars()}
        assert rows["C2^1"].handler_error == "not an answer digit" and rows["C2^1"].message_id == other
        assert (rows["C404^1"].handler_error or "").startswith("unknown call")


def test_keypress_with_out_id_before_the_call_id_is_recorded(ali: Any) -> None:
    c, rt, answers, _ = ali
    mid = _message(rt, channel="voice")  # the CallId not recorded yet
    assert c.post(_url("ivr"), json=push.ivr_keypress(call_id="C7^1", dtmf="1", time=rt.now(),
                                                       out_id=str(mid))).json() == ACK
    [a] = answers
    assert a.message_id == mid and _msg(rt, mid).provider_id == "C7^1"


@pytest.mark.parametrize(("code", "provider_status"), [
    (push.NO_ANSWER, "no-answer"), (push.BUSY, "busy"), (push.POWERED_OFF, "failed"),
    (push.INVALID_NUMBER, "failed"), ("999999", "failed")])
def test_call_records_that_did_not_reach_the_person_fail_the_message(ali: Any, code: str,
                                                                       provider_status: str) -> None:
    c, rt, _, ended = ali
    mid = _message(rt, channel="voice", provider_id="C1^1")
    body = push.voice_report(phone=NUMBER, call_id="C1^1", out_id=str(mid), status_code=code,
                             originate_time=rt.now())
    assert c.post(_url("voice-report"), json=body).json() == ACK
    m = _msg(rt, mid)
    # "no-answer" / "busy" are what the callout layer leaves to its next retry slot (as with Twilio);
    # "failed" makes it fail over at once; the provider's own code is kept
    assert (m.state, m.provider_status, m.error_code) == ("failed", provider_status, code)
    assert ended == [mid]


def test_an_answered_call_record_delivers_and_unknown_calls_are_logged(ali: Any) -> None:
    c, rt, answers, _ = ali
    mid = _message(rt, channel="voice", provider_id="C1^1")
    t = rt.now()
    body = (push.voice_call_status(call_id="C1^1", status_code=push.RINGING, time=t)
            + push.voice_report(phone=NUMBER, call_id="C1^1", originate_time=t, start_time=t,
                                end_time=t + dt.timedelta(seconds=20))
            + push.voice_report(phone=NUMBER, call_id="GHOST^1", originate_time=t))
    assert c.post(_url("voice-report"), json=body[1:]).json() == ACK
    assert c.post(_url("ivr"), json=body[:1]).json() == ACK  # ringing after the end: history only
    m = _msg(rt, mid)
    assert (m.state, m.provider_status, m.error_code) == ("delivered", "completed", None)
    assert answers == []
    assert [e.payload["call_id"] for e in _events(rt, "webhook.unknown_message")] == ["GHOST^1"]
    with session_scope(rt.session_factory) as s:
        applied = [h.applied for h in s.execute(select(MessageStatus).where(
            MessageStatus.message_id == mid, MessageStatus.source == "callback").order_by(MessageStatus.id)).scalars()]
        assert applied == [True, False]


def test_the_push_token_never_reaches_a_log_line() -> None:
    import logging

    from config.logs import MaskPhones
    line = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/1.1" %d',
                             ("127.0.0.1:5000", "POST", _url("sms-up"), 200), None)
    assert MaskPhones().filter(line)
    assert PUSH_TOKEN not in line.getMessage()
    assert "/webhooks/aliyun/***/sms-up" in line.getMessage()
