"""Twilio webhooks: message/call status callbacks, inbound SMS, the voice TwiML and its keypress.

Status callbacks are stored as they come and applied with any others waiting, in one transaction
(``status_reports``): a fan-out's hundred callbacks a second are a few transactions, not a hundred.

These are not behind a user login: the provider signs them. Each request is checked with
``RequestValidator`` against the configured public URL (what the provider was told to call, not
what the proxy in front of us forwarded); an unsigned or badly signed request gets 403, changes
nothing, and is written to the event log. Inbound replies and keypresses are stored verbatim
before anything else, then handed to the answer handler the wiring registers (the measure layer's,
which answers callouts through the callout layer and acknowledges measure orders), so an answer is
evidence even when no handler is there or the handler fails. The handler is told which of our
messages the answer points at: a keypress, the call it was pressed in; an SMS reply, the latest SMS
sent to that number.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from config.database import session_scope
from config.errors import ApiError
from config.eventlog import record
from config.settings import Settings
from config.web import DB, ClockDep, SettingsDep
from responses.messaging import status_reports
from responses.messaging.models import InboundMessage, OutboxMessage

log = logging.getLogger("jiaoying.webhooks")

router = APIRouter(prefix="/twilio", tags=["twilio"])

# Signed by the provider, not behind a login (the wiring lists them as public).
WEBHOOK_PATHS = ("/twilio/status", "/twilio/sms/inbound", "/twilio/voice/twiml", "/twilio/voice/gather")

ANSWER_MEANING = {"1": "received", "2": "need_support"}
ANSWER_ZH = {"1": "收到", "2": "需要支援"}


@dataclass(frozen=True)
class InboundAnswer:
    """An answer as it came in; the layers above decide what it means for whom."""

    kind: str  # sms | keypress
    text: str  # digits pressed or the reply text
    from_number: str
    to_number: str | None
    inbound_id: int
    message_id: int | None
    subject_type: str | None
    subject_id: str | None
    received_at: dt.datetime


AnswerHandler = Callable[[Session, InboundAnswer], None]
StatusHandler = status_reports.StatusHandler


def set_answer_handler(app: Any, handler: AnswerHandler | None) -> None:
    """Register who receives answers (callouts and measure orders); called from the wiring."""
    app.state.messaging_answer_handler = handler


def set_status_handler(app: Any, handler: StatusHandler | None) -> None:
    """Register who hears that a message ended (delivered / failed) by a provider callback."""
    app.state.messaging_status_handler = handler


def twiml(body: VoiceResponse | MessagingResponse | str) -> Response:
    return Response(str(body), media_type="application/xml")


def _public_url(settings: Settings, request: Request) -> str:
    query = request.url.query
    return settings.public_base_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")


async def signed_params(request: Request) -> dict[str, str]:
    """The form parameters of a correctly signed request; otherwise log it and refuse with 403.

    Runs on the event loop (reading the body needs it) but touches the database only in a worker
    thread: waiting for SQLite's write lock on the loop would stall every other request.
    """
    form = await request.form()
    params = {k: str(v) for k, v in form.multi_items()}
    settings: Settings = request.app.state.settings
    signature = request.headers.get("X-Twilio-Signature", "")
    token = settings.twilio.auth_token.get_secret_value() if settings.twilio.auth_token else None
    url = _public_url(settings, request)
    reason = None
    if token is None:
        reason = "no auth token configured"
    elif not signature:
        reason = "unsigned"
    elif not RequestValidator(token).validate(url, params, signature):
        reason = "bad signature"
    if reason is None:
        return params
    payload = {"reason": reason, "url": url, "client": request.client.host if request.client else None,
               "params": {k: v[:200] for k, v in list(params.items())[:40]}}
    await run_in_threadpool(_log_rejection, request.app.state.session_factory, request.app.state.clock.now(),
                            request.url.path, payload)
    log.warning("rejected webhook %s: %s", request.url.path, reason)
    raise ApiError(403, "bad_signature", "签名无效，请求被拒绝", "Invalid or missing provider signature",
                   details={"reason": reason})


def _log_rejection(factory: Any, now: dt.datetime, path: str, payload: dict[str, Any]) -> None:
    with session_scope(factory) as db:
        record(db, now=now, action="webhook.rejected", entity_type="webhook", entity_id=path,
               actor="provider:unverified", payload=payload)


SignedParams = Annotated[dict[str, str], Depends(signed_params)]


def _message_id(request: Request) -> int | None:
    raw = request.query_params.get("m")
    return int(raw) if raw and raw.isdigit() else None


def _hand_over(request: Request, db: Session, inbound: InboundMessage, msg: OutboxMessage | None) -> None:
    handler: AnswerHandler | None = getattr(request.app.state, "messaging_answer_handler", None)
    if handler is None:
        return
    answer = InboundAnswer(inbound.kind, inbound.text, inbound.from_number, inbound.to_number, inbound.id,
                           msg.id if msg else None, msg.subject_type if msg else None,
                           msg.subject_id if msg else None, inbound.received_at)
    try:
        with db.begin_nested():
            handler(db, answer)
        inbound.handled = True
    except Exception as exc:  # the answer stays stored with the error, for the duty officer
        log.exception("answer handler failed for inbound %s", inbound.id)
        inbound.handler_error = f"{type(exc).__name__}: {exc}"[:2000]


def _store_inbound(db: Session, *, now: dt.datetime, kind: str, params: dict[str, str], text: str,
                   provider_id: str | None, from_number: str, to_number: str | None,
                   msg: OutboxMessage | None) -> InboundMessage:
    inbound = InboundMessage(kind=kind, provider="twilio", provider_id=provider_id, from_number=from_number,
                             to_number=to_number, text=text, message_id=msg.id if msg else None, received_at=now,
                             raw=params)
    db.add(inbound)
    db.flush()
    record(db, now=now, action=f"inbound.{kind}", entity_type="inbound_message", entity_id=inbound.id,
           actor=f"phone:{from_number}",
           payload={"text": text[:500], "message_id": inbound.message_id, "provider_id": provider_id})
    return inbound


@router.post("/status", include_in_schema=True)
def twilio_status_callback(request: Request, params: SignedParams, db: DB, clock: ClockDep) -> Response:
    """Message or call status from the provider: stored, then applied (forward only, never back) with any
    others waiting, in one transaction (``status_reports``)."""
    now = clock.now()
    status_reports.store(
        db, now=now, provider="twilio", status=params.get("MessageStatus") or params.get("CallStatus") or "",
        message_id=_message_id(request), provider_id=params.get("MessageSid") or params.get("CallSid"),
        error_code=params.get("ErrorCode"), raw=params)
    db.commit()
    handler: StatusHandler | None = getattr(request.app.state, "messaging_status_handler", None)
    try:
        status_reports.apply_pending(request.app.state.session_factory, now=now, handler=handler)
    except Exception:  # stored: the next applier, or the tick, applies it
        log.exception("provider reports not applied now; kept for the next try")
    return Response(status_code=204)


@router.post("/sms/inbound")
def twilio_inbound_sms(request: Request, params: SignedParams, db: DB, clock: ClockDep) -> Response:
    """An SMS reply (where the number supports two-way SMS): stored, then handed to the answer handler."""
    now = clock.now()
    sender = params.get("From", "")
    # The reply answers the latest message we sent to that number.
    msg = db.execute(
        select(OutboxMessage).where(OutboxMessage.to_number == sender, OutboxMessage.channel == "sms")
        .order_by(OutboxMessage.id.desc()).limit(1)
    ).scalar_one_or_none()
    inbound = _store_inbound(db, now=now, kind="sms", params=params, text=params.get("Body", "").strip(),
                             provider_id=params.get("MessageSid"), from_number=sender,
                             to_number=params.get("To"), msg=msg)
    _hand_over(request, db, inbound, msg)
    db.commit()
    return twiml(MessagingResponse())


def _gather_url(settings: Settings, msg_id: int) -> str:
    return f"{settings.public_base_url.rstrip('/')}/twilio/voice/gather?m={msg_id}"


def _voice_prompt(settings: Settings, msg: OutboxMessage, repeat: int) -> VoiceResponse:
    vr = VoiceResponse()
    gather = vr.gather(num_digits=1, action=_gather_url(settings, msg.id), method="POST", timeout=10)
    gather.say(msg.body or "这里是应急值班室。收到请按1，需要支援请按2。", language="zh-CN")
    if repeat < 1:
        vr.redirect(f"{settings.public_base_url.rstrip('/')}/twilio/voice/twiml?m={msg.id}&r={repeat + 1}",
                    method="POST")
    else:
        vr.say("未收到按键，值班室将再次联系您。", language="zh-CN")
        vr.hangup()
    return vr


@router.post("/voice/twiml")
def twilio_voice_twiml(request: Request, _params: SignedParams, db: DB, settings: SettingsDep) -> Response:
    """What the call says when answered: the message, then a one-digit ``<Gather>`` (1 收到, 2 需要支援)."""
    mid = _message_id(request)
    msg = db.get(OutboxMessage, mid) if mid else None
    db.rollback()  # read only: release the transaction before the answer is written out
    if msg is None:
        vr = VoiceResponse()
        vr.say("这里是应急值班室，请回电确认。", language="zh-CN")
        vr.hangup()
        return twiml(vr)
    raw_r = request.query_params.get("r", "0")
    return twiml(_voice_prompt(settings, msg, int(raw_r) if raw_r.isdigit() else 0))


@router.post("/voice/gather")
def twilio_voice_gather(request: Request, params: SignedParams, db: DB, clock: ClockDep,
                        settings: SettingsDep) -> Response:
    """The digit pressed: stored as evidence, handed to the answer handler, confirmed by voice."""
    now = clock.now()
    mid = _message_id(request)
    msg = db.get(OutboxMessage, mid) if mid else None
    digits = params.get("Digits", "").strip()
    inbound = _store_inbound(db, now=now, kind="keypress", params=params, text=digits,
                             provider_id=params.get("CallSid"), from_number=params.get("To", ""),
                             to_number=params.get("From"), msg=msg)
    vr = VoiceResponse()
    if digits[:1] in ANSWER_MEANING:
        _hand_over(request, db, inbound, msg)
        if digits[:1] == "1":
            vr.say("已确认收到，谢谢。", language="zh-CN")
        else:
            vr.say("已记录您需要支援，值班室将尽快联系您。", language="zh-CN")
        vr.hangup()
    else:
        inbound.handler_error = "not an answer digit"
        if msg is not None:
            vr.say("输入无效。", language="zh-CN")
            vr.redirect(f"{settings.public_base_url.rstrip('/')}/twilio/voice/twiml?m={msg.id}&r=1", method="POST")
        else:
            vr.hangup()
    db.commit()
    return twiml(vr)
