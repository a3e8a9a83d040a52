"""The outbox: messages are rows before they are requests.

``enqueue`` writes a row in the caller's transaction (so a callout and its message commit
together); ``claim`` hands due rows to exactly one sender (PostgreSQL ``FOR UPDATE SKIP LOCKED``;
SQLite an ``UPDATE … RETURNING`` inside the ``BEGIN IMMEDIATE`` every transaction opens with);
a claim is a lease, so the rows of a sender that died become claimable again when it runs out.
Every change only moves a message forward (see ``message_state``) and is written to its history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from config import bulk
from config.eventlog import record, record_many
from responses.messaging.core import TERMINAL, State, from_provider, moves_forward
from responses.messaging.models import MessageStatus, OutboxMessage

CHANNELS = ("sms", "voice")
DEFAULT_LEASE = dt.timedelta(seconds=30)


class OutboxError(ValueError):
    """A message that cannot be queued as given (unknown channel, malformed number)."""


def _e164(number: str) -> str:
    n = number.strip().replace(" ", "").replace("-", "")
    if not (n.startswith("+") and n[1:].isdigit() and 8 <= len(n) <= 16):
        raise OutboxError(f"号码不是 E.164 格式 / not an E.164 number: {number!r}")
    return n


def _history(session: Session, msg_id: int, now: dt.datetime, state: str, source: str, *,
             provider_status: str | None = None, applied: bool = True, detail: dict[str, Any] | None = None) -> None:
    session.add(MessageStatus(message_id=msg_id, at=now, state=state, provider_status=provider_status,
                              source=source, applied=applied, detail=detail or {}))


def enqueue(session: Session, *, now: dt.datetime, channel: str, to: str, body: str = "",
            idempotency_key: str, template: str | None = None, template_id: str | None = None,
            params: dict[str, Any] | None = None, provider: str = "twilio", from_number: str | None = None,
            validity_until: dt.datetime | None = None, not_before: dt.datetime | None = None,
            subject_type: str | None = None, subject_id: object = None, max_attempts: int = 10,
            actor: str = "system") -> OutboxMessage:
    """Queue one message; queuing the same idempotency key again returns the first row unchanged."""
    if channel not in CHANNELS:
        raise OutboxError(f"未知渠道 / unknown channel: {channel!r}")
    existing = session.execute(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    msg = OutboxMessage(
        idempotency_key=idempotency_key, channel=channel, to_number=_e164(to), from_number=from_number, body=body,
        template=template, template_id=template_id, params=params or {}, provider=provider,
        state=State.QUEUED.value, attempts=0, max_attempts=max_attempts, next_try_at=not_before or now,
        validity_until=validity_until, subject_type=subject_type,
        subject_id=None if subject_id is None else str(subject_id), created_at=now,
    )
    session.add(msg)
    session.flush()
    _history(session, msg.id, now, State.QUEUED.value, "enqueue")
    record(session, now=now, action="message.queued", entity_type="outbox_message", entity_id=msg.id, actor=actor,
           payload={"channel": channel, "to": msg.to_number, "subject": [subject_type, msg.subject_id],
                    "key": idempotency_key})
    return msg


@dataclass(frozen=True)
class NewMessage:
    """One message for ``enqueue_many``: the arguments ``enqueue`` takes for it."""

    channel: str
    to: str
    idempotency_key: str
    body: str = ""
    template: str | None = None
    template_id: str | None = None
    params: dict[str, Any] | None = None
    provider: str = "twilio"
    from_number: str | None = None
    validity_until: dt.datetime | None = None
    not_before: dt.datetime | None = None
    subject_type: str | None = None
    subject_id: object = None
    max_attempts: int = 10
    actor: str = "system"


_BATCH = 1000


def enqueue_many(session: Session, items: Sequence[NewMessage], *, now: dt.datetime) -> list[int]:
    """Queue many messages at once: the same rows, status history and event-log entries as ``enqueue`` for each
    in order, written by a few multi-row INSERTs (a district-wide run start queues tens of thousands). A key
    already queued keeps its first row (looked up with one ``IN`` per batch), and a key given twice in ``items``
    is queued once. Every item is checked before anything is written. Returns the message ids, in ``items``
    order."""
    for it in items:
        if it.channel not in CHANNELS:
            raise OutboxError(f"未知渠道 / unknown channel: {it.channel!r}")
    numbers = [_e164(it.to) for it in items]
    keys = [it.idempotency_key for it in items]
    existing: dict[str, int] = {}
    for i in range(0, len(keys), _BATCH):
        existing.update(session.execute(
            select(OutboxMessage.idempotency_key, OutboxMessage.id)
            .where(OutboxMessage.idempotency_key.in_(keys[i:i + _BATCH]))).tuples().all())
    rows: list[dict[str, Any]] = []
    fresh: list[int] = []  # index in items of each row to insert
    seen: set[str] = set(existing)
    for n, (it, to) in enumerate(zip(items, numbers, strict=True)):
        if it.idempotency_key in seen:
            continue
        seen.add(it.idempotency_key)
        fresh.append(n)
        rows.append(dict(
            idempotency_key=it.idempotency_key, channel=it.channel, to_number=to, from_number=it.from_number,
            body=it.body, template=it.template, template_id=it.template_id, params=it.params or {},
            provider=it.provider, state=State.QUEUED.value, attempts=0, max_attempts=it.max_attempts,
            next_try_at=it.not_before or now, claimed_by=None, claimed_at=None, claimed_until=None,
            provider_id=None, provider_status=None, error_code=None, last_error=None,
            validity_until=it.validity_until, subject_type=it.subject_type,
            subject_id=None if it.subject_id is None else str(it.subject_id), created_at=now, sent_at=None,
            delivered_at=None, finished_at=None))
    if rows:
        session.flush()  # ORM rows queued before these get their ids first, as one by one they would
    ids = bulk.insert_rows(session, OutboxMessage.__table__, rows)  # type: ignore[arg-type]
    id_of = {rows[k]["idempotency_key"]: mid for k, mid in enumerate(ids)}
    if rows:
        history = [dict(message_id=mid, at=now, state=State.QUEUED.value, provider_status=None, source="enqueue",
                        applied=True, detail={}) for mid in ids]
        bulk.append_rows(session, MessageStatus.__table__, history)  # type: ignore[arg-type]
        record_many(session, now=now, entries=[
            ("message.queued", "outbox_message", mid, items[n].actor,
             {"channel": items[n].channel, "to": rows[k]["to_number"],
              "subject": [items[n].subject_type, rows[k]["subject_id"]], "key": items[n].idempotency_key})
            for k, (n, mid) in enumerate(zip(fresh, ids, strict=True))])
    return [existing.get(k) or id_of[k] for k in keys]


def _due(now: dt.datetime, provider: str | None) -> Any:
    cond = or_(
        and_(OutboxMessage.state == State.QUEUED.value, OutboxMessage.next_try_at <= now),
        and_(OutboxMessage.state == State.CLAIMED.value, OutboxMessage.claimed_until < now),
    )
    cond = and_(cond, or_(OutboxMessage.validity_until.is_(None), OutboxMessage.validity_until > now))
    if provider is not None:
        cond = and_(cond, OutboxMessage.provider == provider)
    return cond


def expire_stale(session: Session, *, now: dt.datetime, limit: int = 1000) -> list[int]:
    """Messages whose validity ended before they were sent: never delivered late."""
    stale = or_(
        OutboxMessage.state == State.QUEUED.value,
        and_(OutboxMessage.state == State.CLAIMED.value, OutboxMessage.claimed_until < now),
    )
    q = (select(OutboxMessage.id)
         .where(stale, OutboxMessage.validity_until.is_not(None), OutboxMessage.validity_until <= now)
         .order_by(OutboxMessage.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    ids = list(session.execute(q).scalars())
    if not ids:
        return []
    session.execute(
        update(OutboxMessage).where(OutboxMessage.id.in_(ids), stale)
        .values(state=State.EXPIRED.value, finished_at=now, last_error="validity ended before sending",
                claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    for mid in ids:
        _history(session, mid, now, State.EXPIRED.value, "expiry")
        record(session, now=now, action="message.expired", entity_type="outbox_message", entity_id=mid,
               actor="system", payload={"reason": "validity_until passed before sending"})
    return ids


@dataclass(frozen=True)
class Claimed:
    """What a sender needs to send one message, detached from the session."""

    id: int
    channel: str
    to: str
    from_number: str | None
    body: str
    provider: str
    attempts: int
    max_attempts: int
    validity_until: dt.datetime | None
    params: dict[str, Any]
    template: str | None = None  # the kind of text: a templated provider sends its registered template for it


_COLUMNS = (OutboxMessage.id, OutboxMessage.channel, OutboxMessage.to_number, OutboxMessage.from_number,
            OutboxMessage.body, OutboxMessage.provider, OutboxMessage.attempts, OutboxMessage.max_attempts,
            OutboxMessage.validity_until, OutboxMessage.params, OutboxMessage.template)


def claim(session: Session, *, now: dt.datetime, worker: str, limit: int, lease: dt.timedelta = DEFAULT_LEASE,
          provider: str | None = None) -> list[Claimed]:
    """Take up to ``limit`` due messages for ``worker``; no other worker gets them until the lease
    ends. Commit right after, so the claim is visible and the locks are released."""
    values = dict(state=State.CLAIMED.value, claimed_by=worker, claimed_at=now, claimed_until=now + lease,
                  attempts=OutboxMessage.attempts + 1)
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.execute(
            select(OutboxMessage.id).where(_due(now, provider)).order_by(OutboxMessage.next_try_at, OutboxMessage.id)
            .limit(limit).with_for_update(skip_locked=True)
        ).scalars())
        if not ids:
            return []
        rows = session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**values).returning(*_COLUMNS)
            .execution_options(synchronize_session=False)
        ).all()
    else:
        # One statement under the write lock BEGIN IMMEDIATE took: nobody can claim between our select and update.
        sub = (select(OutboxMessage.id).where(_due(now, provider))
               .order_by(OutboxMessage.next_try_at, OutboxMessage.id).limit(limit).scalar_subquery())
        rows = session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(sub)).values(**values).returning(*_COLUMNS)
            .execution_options(synchronize_session=False)
        ).all()
    out = [Claimed(*r) for r in rows]
    out.sort(key=lambda c: c.id)
    return out


@dataclass(frozen=True)
class SendResult:
    """A sender's outcome for one claimed message."""

    message_id: int
    worker: str
    outcome: str  # sent | retry | failed | expired
    provider_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    next_try_at: dt.datetime | None = None
    provider: str | None = None  # the provider that carried it, when the sender chose it by channel


@dataclass(frozen=True)
class Accepted:
    """A message the provider accepted: when (the first acceptance, ``sent_at``) and what it is for."""

    message_id: int
    subject_type: str | None
    subject_id: str | None
    accepted_at: dt.datetime


# Called by ``apply_results`` in its transaction with the messages the provider accepted (a second
# acceptance of the same message — a send repeated after a lease ran out — carries the first time,
# so a hook that derives state from ``accepted_at`` is idempotent). The wiring registers them.
AcceptedHook = Callable[[Session, Sequence[Accepted], dt.datetime], None]
ACCEPTED_HOOKS_KEY = "messaging_accepted_hooks"


def accepted_hooks_of(state: MutableMapping[str, Any]) -> list[AcceptedHook]:
    """The runtime's acceptance hooks: one list, shared by reference, so a sender built before a
    hook is registered still calls it."""
    hooks: list[AcceptedHook] = state.setdefault(ACCEPTED_HOOKS_KEY, [])
    return hooks


def apply_results(session: Session, results: Sequence[SendResult], *, now: dt.datetime,
                  on_accepted: Sequence[AcceptedHook] = ()) -> None:
    """Record what the sender learned. Only a message still claimed moves; a provider id is kept
    even when a fast callback already moved the message further. ``on_accepted`` hooks hear of
    every accepted message in the same transaction."""
    if not results:
        return
    by_id = {r.message_id: r for r in results}
    rows = session.execute(select(OutboxMessage.id, OutboxMessage.state, OutboxMessage.attempts,
                                  OutboxMessage.sent_at, OutboxMessage.subject_type, OutboxMessage.subject_id)
                           .where(OutboxMessage.id.in_(list(by_id)))).all()
    # The common case — accepted, and no callback got there first — in two executemany statements
    # instead of an ORM load and flush per message: this is the fan-out's hot path.
    fast = [(mid, attempts) for mid, state, attempts, *_ in rows
            if by_id[mid].outcome == "sent" and state in (State.QUEUED.value, State.CLAIMED.value)]
    accepted = [Accepted(mid, stype, sid, sent_at or now) for mid, state, _a, sent_at, stype, sid in rows
                if by_id[mid].outcome == "sent" and state in (State.QUEUED.value, State.CLAIMED.value)]
    if fast:
        table = OutboxMessage.__table__
        conn = session.connection()
        conn.execute(
            table.update()
            .where(table.c.id == bindparam("b_id"),
                   or_(table.c.state == State.QUEUED.value, table.c.state == State.CLAIMED.value))
            .values(state=State.SENT.value, claimed_until=None,
                    provider=func.coalesce(bindparam("b_prov", type_=String), table.c.provider),
                    provider_id=func.coalesce(table.c.provider_id, bindparam("b_pid", type_=String)),
                    sent_at=func.coalesce(table.c.sent_at, bindparam("b_now", type_=table.c.sent_at.type))),
            [{"b_id": mid, "b_pid": by_id[mid].provider_id, "b_prov": by_id[mid].provider, "b_now": now}
             for mid, _ in fast],
        )
        routed = [{"b_id": mid, "b_pid": by_id[mid].provider_id, "b_prov": by_id[mid].provider}
                  for mid, _ in fast if by_id[mid].provider]
        if routed:
            # A receipt pushed between the read above and the update moved the row on, so the update left it
            # alone: it holds the provider's id (the receipt's) but still names the provider asked for at enqueue.
            conn.execute(table.update()
                         .where(table.c.id == bindparam("b_id"), table.c.provider_id == bindparam("b_pid"),
                                table.c.provider != bindparam("b_prov"))
                         .values(provider=bindparam("b_prov")), routed)
        conn.execute(MessageStatus.__table__.insert(), [
            {"message_id": mid, "at": now, "state": State.SENT.value, "provider_status": None, "source": "sender",
             "applied": True, "detail": {"provider_id": by_id[mid].provider_id, "worker": by_id[mid].worker,
                                         "attempt": attempts}}
            for mid, attempts in fast])
    done = {mid for mid, _ in fast}
    rest = [mid for mid in by_id if mid not in done]
    msgs = session.execute(select(OutboxMessage).where(OutboxMessage.id.in_(rest))).scalars().all() if rest else []
    for msg in msgs:
        r = by_id[msg.id]
        if r.outcome == "sent":
            if msg.provider_id is None:
                msg.provider_id = r.provider_id
            if r.provider and msg.provider_id == r.provider_id:
                # a receipt that overtook the sender recorded the provider's id but cannot know which provider
                # carried the message: the row still says what was asked for at enqueue
                msg.provider = r.provider
            msg.sent_at = msg.sent_at or now
            accepted.append(Accepted(msg.id, msg.subject_type, msg.subject_id, msg.sent_at))
            if moves_forward(msg.state, State.SENT.value):
                msg.state = State.SENT.value
                msg.claimed_until = None
            _history(session, msg.id, now, msg.state, "sender",
                     detail={"provider_id": r.provider_id, "worker": r.worker, "attempt": msg.attempts})
            continue
        if msg.state != State.CLAIMED.value or msg.claimed_by != r.worker:
            _history(session, msg.id, now, msg.state, "sender", applied=False,
                     detail={"outcome": r.outcome, "error": r.error, "worker": r.worker})
            continue
        msg.error_code, msg.last_error = r.error_code, r.error
        if r.outcome == "expired":
            msg.state = State.EXPIRED.value
            msg.finished_at = now
            msg.claimed_by = msg.claimed_until = None
            _history(session, msg.id, now, msg.state, "expiry", detail={"error": r.error})
            record(session, now=now, action="message.expired", entity_type="outbox_message", entity_id=msg.id,
                   actor="system", payload={"reason": r.error})
        elif r.outcome == "retry" and msg.attempts < msg.max_attempts and r.next_try_at is not None:
            msg.state = State.QUEUED.value
            msg.next_try_at = r.next_try_at
            msg.claimed_by = msg.claimed_until = None
            _history(session, msg.id, now, msg.state, "sender",
                     detail={"retry_at": r.next_try_at.isoformat(), "error": r.error, "code": r.error_code})
        else:
            reason = r.error if r.outcome == "failed" else f"gave up after {msg.attempts} tries: {r.error}"
            msg.state = State.FAILED.value
            msg.finished_at = now
            msg.claimed_until = None
            msg.last_error = reason
            _history(session, msg.id, now, msg.state, "sender", detail={"error": reason, "code": r.error_code})
            record(session, now=now, action="message.failed", entity_type="outbox_message", entity_id=msg.id,
                   actor="system", payload={"code": r.error_code, "reason": reason, "to": msg.to_number})
    session.flush()
    if accepted:
        for hook in on_accepted:
            hook(session, accepted, now)


def record_sent_batch(session: Session, results: Iterable[SendResult], *, now: dt.datetime) -> None:
    """One event-log entry per batch of accepted messages: the per-message history is in
    ``message_status``; the hash-chained log gets the batch, keeping fan-out fast."""
    sent = [[r.message_id, r.provider_id] for r in results if r.outcome == "sent"]
    if sent:
        record(session, now=now, action="message.sent", entity_type="outbox_batch", entity_id=sent[0][0],
               actor="system", payload={"messages": sent})


def apply_provider_status(session: Session, *, now: dt.datetime, status: str, message_id: int | None = None,
                          provider_id: str | None = None, error_code: str | None = None,
                          raw: dict[str, Any] | None = None) -> tuple[OutboxMessage | None, bool]:
    """A provider's status report: moves the message forward or, if stale, only joins its history.
    Returns the message (None when unknown) and whether its state changed."""
    q = select(OutboxMessage)
    if message_id is not None:
        q = q.where(OutboxMessage.id == message_id)
    elif provider_id:
        q = q.where(OutboxMessage.provider_id == provider_id)
    else:
        return None, False
    msg = session.execute(q.with_for_update()).scalar_one_or_none()
    if msg is None:
        return None, False
    changed = apply_status_to(session, msg, now=now, status=status, provider_id=provider_id,
                              error_code=error_code, raw=raw, by_id=message_id is not None)
    session.flush()
    return msg, changed


def apply_status_to(session: Session, msg: OutboxMessage, *, now: dt.datetime, status: str,
                    provider_id: str | None = None, error_code: str | None = None,
                    raw: dict[str, Any] | None = None, by_id: bool = True) -> bool:
    """``apply_provider_status`` on a message the caller has loaded and locked (a batch of reports loads
    theirs in one query); nothing is flushed. Returns whether its state changed."""
    if provider_id and by_id and msg.provider_id not in (None, provider_id):
        # A second provider request for the same row (a lease ran out mid-send); keep the first id.
        _history(session, msg.id, now, msg.state, "callback", provider_status=status, applied=False,
                 detail={"other_provider_id": provider_id, **(raw or {})})
        return False
    if provider_id and msg.provider_id is None:
        msg.provider_id = provider_id
    target = from_provider(status)
    changed = target is not None and moves_forward(msg.state, target.value)
    if changed and target is not None:
        msg.state = target.value
        msg.provider_status = status
        if target in (State.SENT, State.DELIVERED):
            msg.sent_at = msg.sent_at or now
        if target is State.DELIVERED:
            msg.delivered_at = now
        if target in TERMINAL:
            msg.finished_at = now
        if target is State.FAILED:
            msg.error_code = error_code
            msg.last_error = f"provider status {status}" + (f" (error {error_code})" if error_code else "")
        msg.claimed_until = None
        record(session, now=now, action=f"message.{target.value}", entity_type="outbox_message", entity_id=msg.id,
               actor=f"provider:{msg.provider}", payload={"status": status, "error_code": error_code})
    _history(session, msg.id, now, msg.state, "callback", provider_status=status, applied=changed,
             detail=raw or {})
    return changed


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(text("SELECT state, COUNT(*) FROM outbox_message GROUP BY state")).all()
    return {str(s): int(n) for s, n in rows}


def for_subject(session: Session, subject_type: str, subject_id: object) -> list[OutboxMessage]:
    return list(session.execute(
        select(OutboxMessage).where(OutboxMessage.subject_type == subject_type,
                                    OutboxMessage.subject_id == str(subject_id)).order_by(OutboxMessage.id)
    ).scalars())


def release(session: Session, ids: Sequence[int], *, worker: str, now: dt.datetime) -> None:
    """Give claimed-but-unsent messages back (a sender stopping at the end of its tick)."""
    if ids:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.state == State.CLAIMED.value,
                   OutboxMessage.claimed_by == worker)
            .values(state=State.QUEUED.value, claimed_by=None, claimed_until=None,
                    attempts=OutboxMessage.attempts - 1)
            .execution_options(synchronize_session=False)
        )
