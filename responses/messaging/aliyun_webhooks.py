"""Alibaba Cloud's HTTP pushes: delivery receipts, SMS replies, call records and IVR keypresses.

The provider does not sign its pushes, and its console takes nothing but a URL for each kind (no custom
header), so the shared secret travels in the URL path: ``/webhooks/aliyun/{push_token}/sms-report`` etc.
The token is compared in constant time with ``aliyun.push_token``; a wrong one gets 403, changes and
stores nothing (the refusal itself goes to the event log, without the token or the body). With no token
configured the endpoints do not exist for the provider (404 ``push_not_configured``): an unconfigured
deployment is never an open one. HTTPS in front keeps the token off the wire; the log masks it.

A push is a JSON array, possibly of many items. Every item is handled on its own, under a savepoint: good
items are applied, a bad one (not an object, a field missing or of the wrong type, a row the database
refuses) is kept for inspection — replies and keypresses as an ``InboundMessage`` with ``handler_error``,
receipts and call records in the event log (``webhook.bad_item``) — and the push is still acknowledged,
because pushing it again would not make it any better. The answer is ``{"code": 0, "msg": "接收成功"}``
with 200; only a failure of our own database answers 5xx, so the provider pushes again (after 1, 5, 10
minutes). Pushes repeat, so each item is idempotent: a receipt already in the message's history, a reply
(same ``sequence_id`` and text from the same number) or keypress (same call and digits) already stored, is
skipped.

They feed the same paths as the Twilio callbacks: receipts and call statuses move outbox messages through
``outbox.apply_provider_status`` (forward only; a stale report joins the history and moves nothing) and an
ended message goes to the status handler (the callout layer's failover); replies and keypresses are stored
verbatim and handed to the answer handler as an ``InboundAnswer``, exactly as the Twilio reply and gather.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, InternalError, OperationalError, PendingRollbackError
from sqlalchemy.orm import Session

from config.database import session_scope
from config.errors import ApiError, errors
from config.eventlog import record
from config.settings import Settings
from config.web import DB, ClockDep
from responses.messaging import aliyun_push as push
from responses.messaging import outbox
from responses.messaging.core import TERMINAL
from responses.messaging.models import InboundMessage, MessageStatus, OutboxMessage
from responses.messaging.webhooks import ANSWER_MEANING, StatusHandler, _hand_over

log = logging.getLogger("jiaoying.webhooks.aliyun")

PREFIX = "/webhooks/aliyun"
router = APIRouter(prefix=PREFIX, tags=["aliyun"])

# Carry their own token in the path, not behind a user login (the wiring lists them as public).
PUSH_PATHS = tuple(f"{PREFIX}/{{token}}/{kind}" for kind in push.KINDS)

MAX_BODY = 2 * 1024 * 1024  # a batch of receipts is a few hundred items of ~300 bytes

PushToken = Annotated[str, Path(min_length=1, max_length=200,
                                description="aliyun.push_token：推送令牌 / the configured push token")]


class PushAck(BaseModel):
    """What the provider takes as received: it checks only that ``code`` is a number."""

    code: int = 0
    msg: str = "接收成功"


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "阿里云 HTTP 批量推送的 JSON 数组 / the JSON array the provider pushes",
        "content": {"application/json": {"schema": {"type": "array", "items": {}}}},
    }
}


def _kind(request: Request) -> str:
    return request.url.path.rsplit("/", 1)[-1]


def _log_event(factory: Any, now: dt.datetime, action: str, kind: str, payload: dict[str, Any]) -> None:
    with session_scope(factory) as db:
        record(db, now=now, action=action, entity_type="webhook", entity_id=f"{PREFIX}/{kind}",
               actor="provider:aliyun", payload=payload)


async def _refuse(request: Request, action: str, kind: str, payload: dict[str, Any], error: ApiError) -> ApiError:
    payload = {**payload, "client": request.client.host if request.client else None}
    await run_in_threadpool(_log_event, request.app.state.session_factory, request.app.state.clock.now(),
                            action, kind, payload)
    log.warning("refused aliyun push to %s: %s", kind, error.code)
    return error


async def push_items(request: Request, token: PushToken) -> list[Any]:
    """The items of a push that carries the configured token; otherwise a clear refusal.

    Runs on the event loop (reading the body needs it); the database is touched only in a worker thread.
    """
    settings: Settings = request.app.state.settings
    kind = _kind(request)
    configured = settings.aliyun.push_token
    if configured is None:
        raise ApiError(404, "push_not_configured",
                       "未配置阿里云推送令牌（aliyun.push_token），推送接口未开放",
                       "Alibaba Cloud push endpoints are closed: aliyun.push_token is not configured")
    if not hmac.compare_digest(token.encode(), configured.get_secret_value().encode()):
        raise await _refuse(request, "webhook.rejected", kind, {"reason": "bad push token"},
                            ApiError(403, "bad_push_token", "推送令牌无效，请求被拒绝", "Invalid push token"))
    declared = request.headers.get("content-length")
    too_large = bool(declared and declared.isdigit() and int(declared) > MAX_BODY)
    body = b"" if too_large else await request.body()
    if too_large or len(body) > MAX_BODY:
        raise await _refuse(request, "webhook.bad_body", kind, {"reason": "too large"},
                            ApiError(413, "push_too_large", "推送内容过大", "Push body too large",
                                     details={"limit_bytes": MAX_BODY}))
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise await _refuse(
            request, "webhook.bad_body", kind,
            {"reason": "not JSON", "body": body[:2000].decode("utf-8", "replace")},
            ApiError(400, "bad_push_body", "推送内容不是合法的 JSON", "Push body is not valid JSON",
                     details={"error": str(exc)[:200]})) from None
    if not isinstance(items, list):
        raise await _refuse(
            request, "webhook.bad_body", kind, {"reason": "not a JSON array", "body": _clip(items)},
            ApiError(400, "bad_push_body", "推送内容应为 JSON 数组", "Push body must be a JSON array"))
    return items


PushItems = Annotated[list[Any], Depends(push_items)]


def _clip(value: Any, limit: int = 4000) -> Any:
    """A raw item as it can be stored: itself when small, else its text cut short."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return value if len(text) <= limit else text[:limit]


def _raw(value: Any) -> dict[str, Any]:
    clipped = _clip(value)
    return clipped if isinstance(clipped, dict) else {"item": clipped}


def _ack() -> JSONResponse:
    return JSONResponse(push.ACK, status_code=200)


def _bad_item(db: Session, now: dt.datetime, kind: str, index: int, raw: Any, error: str) -> None:
    record(db, now=now, action="webhook.bad_item", entity_type="webhook", entity_id=f"{PREFIX}/{kind}",
           actor="provider:aliyun", payload={"index": index, "error": error[:1000], "item": _clip(raw)})
    log.warning("aliyun %s push: item %s kept for inspection: %s", kind, index, error[:200])


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors())
    return f"{type(exc).__name__}: {exc}"


# A database that cannot be reached or has lost its connection: nothing about the item.
DATABASE_DOWN = (OperationalError, InterfaceError, InternalError, PendingRollbackError)


def _each(db: Session, now: dt.datetime, kind: str, items: list[Any], model: type[BaseModel],
          apply: Callable[[Any, dict[str, Any]], None],
          keep_bad: Callable[[int, Any, str], None] | None = None) -> None:
    """Apply every item under its own savepoint; a bad one is kept and the others still count."""
    for index, raw in enumerate(items):
        try:
            item = model.model_validate(raw)
            with db.begin_nested():
                apply(item, raw)
        except DATABASE_DOWN:
            raise  # our fault, not the item's: 5xx, and the provider pushes the whole array again
        except Exception as exc:  # a bad item never sinks the batch
            error = _error_text(exc)
            if keep_bad is None:
                _bad_item(db, now, kind, index, raw, error)
            else:
                keep_bad(index, raw, error)
    db.flush()


def _seen_in_history(db: Session, msg: OutboxMessage, raw: dict[str, Any]) -> bool:
    """This very report was applied (or recorded) before: a repeated push."""
    details = db.execute(select(MessageStatus.detail).where(
        MessageStatus.message_id == msg.id, MessageStatus.source == "callback")).scalars()
    return any(d == raw for d in details)


def _apply_status(request: Request, db: Session, now: dt.datetime, msg: OutboxMessage, *, status: str,
                  provider_id: str, error_code: str | None, raw: dict[str, Any]) -> None:
    if _seen_in_history(db, msg, raw):
        return
    _, changed = outbox.apply_provider_status(
        db, now=now, status=status, message_id=msg.id, provider_id=provider_id,
        error_code=error_code[:30] if error_code else None, raw=raw)
    if changed and msg.state in TERMINAL:
        handler: StatusHandler | None = getattr(request.app.state, "messaging_status_handler", None)
        if handler is not None:
            with db.begin_nested():
                handler(db, msg)


def _by_out_id(db: Session, out_id: str | None, *, channel: str, provider_id: str,
               to_number: str | None = None) -> OutboxMessage | None:
    """Our message id, sent as OutId: used when the provider's id is not recorded yet (a push can
    overtake the sender's own bookkeeping). Only a row that could be that request is taken."""
    if not out_id or not out_id.isdigit():
        return None
    msg = db.get(OutboxMessage, int(out_id))
    if msg is None or msg.channel != channel or msg.provider_id not in (None, provider_id):
        return None
    if to_number is not None and msg.to_number != to_number:
        return None
    return msg


def _voice_message(db: Session, call_id: str, out_id: str | None) -> OutboxMessage | None:
    msg = db.execute(select(OutboxMessage).where(OutboxMessage.provider_id == call_id,
                                                 OutboxMessage.channel == "voice")
                     .order_by(OutboxMessage.id.desc()).limit(1)).scalar_one_or_none()
    return msg or _by_out_id(db, out_id, channel="voice", provider_id=call_id)


def _unknown(db: Session, now: dt.datetime, kind: str, raw: dict[str, Any]) -> None:
    record(db, now=now, action="webhook.unknown_message", entity_type="webhook", entity_id=f"{PREFIX}/{kind}",
           actor="provider:aliyun", payload=raw)


# ----------------------------------------------------------------------------------- the endpoints

_RESPONSES = errors(400, 403, 404, 413)


@router.post("/{token}/sms-report", response_model=PushAck, responses=_RESPONSES, openapi_extra=_BODY_DOC)
def aliyun_sms_report(request: Request, items: PushItems, db: DB, clock: ClockDep) -> Any:
    """SmsReport (短信发送状态报告): each receipt marks its SMS delivered or failed.

    Matched on ``biz_id`` and the number together (a batch send shares one ``biz_id``), else on ``out_id``
    (our message id) while the ``biz_id`` is not recorded yet; a receipt for no message of ours is logged."""
    now = clock.now()

    def apply(item: push.SmsReportItem, raw: dict[str, Any]) -> None:
        number = push.to_e164(item.phone_number)
        msg = db.execute(select(OutboxMessage).where(
            OutboxMessage.provider_id == item.biz_id, OutboxMessage.to_number == number,
            OutboxMessage.channel == "sms").order_by(OutboxMessage.id.desc()).limit(1)).scalar_one_or_none()
        msg = msg or _by_out_id(db, item.out_id, channel="sms", provider_id=item.biz_id, to_number=number)
        if msg is None:
            _unknown(db, now, "sms-report", raw)
            return
        _apply_status(request, db, now, msg, status=push.sms_status(item), provider_id=item.biz_id,
                      error_code=None if item.success else (item.err_code or "UNDELIVERED"), raw=raw)

    _each(db, now, "sms-report", items, push.SmsReportItem, apply)
    db.commit()
    return _ack()


def _store(db: Session, now: dt.datetime, *, kind: str, raw: dict[str, Any], text: str, provider_id: str | None,
           from_number: str, to_number: str | None, msg: OutboxMessage | None) -> InboundMessage:
    inbound = InboundMessage(kind=kind, provider="aliyun", provider_id=provider_id, from_number=from_number,
                             to_number=to_number, text=text, message_id=msg.id if msg else None, received_at=now,
                             raw=raw)
    db.add(inbound)
    db.flush()
    record(db, now=now, action=f"inbound.{kind}", entity_type="inbound_message", entity_id=inbound.id,
           actor=f"phone:{from_number}" if from_number else "provider:aliyun",
           payload={"text": text[:500], "message_id": inbound.message_id, "provider_id": provider_id})
    return inbound


def _keep_bad_inbound(db: Session, now: dt.datetime, kind: str, number_field: str) -> Callable[[int, Any, str], None]:
    """A reply or keypress that cannot be read is still evidence that someone answered: stored, not applied."""

    def keep(index: int, raw: Any, error: str) -> None:
        fields = raw if isinstance(raw, dict) else {}
        number = str(fields.get(number_field) or "")
        try:
            number = push.to_e164(number)[:20] if number else ""
        except Exception:  # whatever it is, it is kept in raw
            number = ""
        text = fields.get("content" if kind == "sms" else "dtmf")
        inbound = InboundMessage(kind=kind, provider="aliyun", provider_id=None, from_number=number,
                                 text=str(text)[:2000] if text is not None else "", received_at=now,
                                 raw=_raw(raw), handler_error=f"bad item {index}: {error}"[:2000])
        db.add(inbound)
        db.flush()
        log.warning("aliyun %s push: item %s kept as inbound %s: %s", kind, index, inbound.id, error[:200])

    return keep


@router.post("/{token}/sms-up", response_model=PushAck, responses=_RESPONSES, openapi_extra=_BODY_DOC)
def aliyun_sms_up(request: Request, items: PushItems, db: DB, clock: ClockDep) -> Any:
    """SmsUp (上行短信): a reply, stored verbatim, then handed to the answer handler like a Twilio reply.

    The reply names no message: it answers the latest SMS sent to that number. A repeated push (same
    ``sequence_id`` and text from the same number) is not stored or answered twice."""
    now = clock.now()

    def apply(item: push.SmsUpItem, raw: dict[str, Any]) -> None:
        sender = push.to_e164(item.phone_number)
        text = item.content.strip()
        seen = db.execute(select(InboundMessage.id).where(
            InboundMessage.provider == "aliyun", InboundMessage.kind == "sms", InboundMessage.from_number == sender,
            InboundMessage.provider_id == item.sequence_id, InboundMessage.text == text).limit(1)).first()
        if seen is not None and (item.sequence_id or _same_time(db, seen[0], item.send_time)):
            return
        msg = db.execute(select(OutboxMessage).where(OutboxMessage.to_number == sender,
                                                     OutboxMessage.channel == "sms")
                         .order_by(OutboxMessage.id.desc()).limit(1)).scalar_one_or_none()
        inbound = _store(db, now, kind="sms", raw=_raw(raw), text=text, provider_id=item.sequence_id,
                         from_number=sender, to_number=(item.dest_code or "")[:20] or None, msg=msg)
        _hand_over(request, db, inbound, msg)

    _each(db, now, "sms-up", items, push.SmsUpItem, apply, _keep_bad_inbound(db, now, "sms", "phone_number"))
    db.commit()
    return _ack()


def _same_time(db: Session, inbound_id: int, send_time: str | None) -> bool:
    """Without a sequence id, a reply is the same one when its send time is too."""
    stored = db.get(InboundMessage, inbound_id)
    return stored is not None and stored.raw.get("send_time") == send_time


def _keypress(request: Request, db: Session, now: dt.datetime, *, call_id: str, digits: str,
              msg: OutboxMessage | None, raw: dict[str, Any]) -> None:
    """A key pressed in an IVR call: stored, and handed over when it is 1 (收到) or 2 (需要支援)."""
    seen = db.execute(select(InboundMessage.id).where(
        InboundMessage.provider == "aliyun", InboundMessage.kind == "keypress",
        InboundMessage.provider_id == call_id, InboundMessage.text == digits).limit(1)).first()
    if seen is not None:  # the same key in the same call: a repeated push, or the call record repeating it
        return
    inbound = _store(db, now, kind="keypress", raw=raw, text=digits, provider_id=call_id,
                     from_number=msg.to_number if msg else "", to_number=msg.from_number if msg else None, msg=msg)
    if msg is None:
        inbound.handler_error = "unknown call: no message with this call_id or out_id"
    elif digits[:1] in ANSWER_MEANING:
        _hand_over(request, db, inbound, msg)
    else:
        inbound.handler_error = "not an answer digit"


@router.post("/{token}/ivr", response_model=PushAck, responses=_RESPONSES, openapi_extra=_BODY_DOC)
def aliyun_voice_call_report(request: Request, items: PushItems, db: DB, clock: ClockDep) -> Any:
    """VoiceCallReport (呼叫中间状态): statuses during a call, and the IVR keypress (``status_code`` 300000,
    the key in ``dtmf``; our message id in ``out_id``), which answers like a Twilio ``<Gather>`` digit."""
    now = clock.now()

    def apply(item: push.VoiceCallReportItem, raw: dict[str, Any]) -> None:
        msg = _voice_message(db, item.call_id, item.out_id)
        if item.status_code == push.DTMF:
            _keypress(request, db, now, call_id=item.call_id, digits=(item.dtmf or "").strip(), msg=msg,
                      raw=_raw(raw))
        if msg is None:
            if item.status_code != push.DTMF:
                _unknown(db, now, "ivr", raw)
            return
        status = push.voice_status(item.status_code)
        _apply_status(request, db, now, msg, status=status, provider_id=item.call_id,
                      error_code=item.status_code if status in ("failed", "busy", "no-answer") else None, raw=raw)

    _each(db, now, "ivr", items, push.VoiceCallReportItem, apply,
          _keep_bad_inbound(db, now, "keypress", "callee"))
    db.commit()
    return _ack()


@router.post("/{token}/voice-report", response_model=PushAck, responses=_RESPONSES, openapi_extra=_BODY_DOC)
def aliyun_voice_report(request: Request, items: PushItems, db: DB, clock: ClockDep) -> Any:
    """VoiceReport (呼叫记录): how a call ended. Answered → delivered; busy / not answered → failed as
    "busy" / "no-answer" (the callout's next retry slot calls again, as with Twilio); an invalid, switched
    off, suspended or unreachable number → failed, and the callout fails over at once. The provider's status
    code is kept as the message's error code. A ``dtmf`` in the record counts as the call's keypress
    (once: the IVR push of the same key is not answered twice)."""
    now = clock.now()

    def apply(item: push.VoiceReportItem, raw: dict[str, Any]) -> None:
        msg = _voice_message(db, item.call_id, item.out_id)
        if msg is None:
            _unknown(db, now, "voice-report", raw)
            return
        if item.dtmf:
            _keypress(request, db, now, call_id=item.call_id, digits=item.dtmf.strip(), msg=msg, raw=_raw(raw))
        status = push.voice_status(item.status_code)
        _apply_status(request, db, now, msg, status=status, provider_id=item.call_id,
                      error_code=None if status in ("completed", "answered") else item.status_code, raw=raw)

    _each(db, now, "voice-report", items, push.VoiceReportItem, apply)
    db.commit()
    return _ack()
