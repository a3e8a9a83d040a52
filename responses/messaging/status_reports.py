"""Provider status callbacks: stored as they come, applied many at a time.

During a district-wide fan-out the provider calls back about a hundred times a second (sent, then
delivered or failed, for every message). Applied one request at a time, each callback was a transaction
of its own — a row lock on the message, a history row, an event — and every one of them queued on the
event log's append lock, with the sweep's escalations behind them. Stored, a callback costs one insert;
whoever applies takes all the reports waiting, in one transaction.

Who applies: the request that stored a report tries to at once, so a lone callback is applied before its
answer goes back, as before. While another applier is at work (an advisory lock on PostgreSQL, a process
lock on SQLite) the request leaves its report to that one, which looks again after each commit: a report
stored while a batch was being applied is never left behind. ``apply_pending`` also runs on a tick on
every instance, for a report whose request died between storing and applying.

A report that cannot be applied (the status handler fails on it) stays in the table with its error and is
written to the event log; a database error rolls the whole batch back for the next try.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from config.database import session_scope
from config.eventlog import record
from responses.messaging import outbox
from responses.messaging.core import TERMINAL
from responses.messaging.models import OutboxMessage, ProviderReport

log = logging.getLogger("jiaoying.messaging.reports")

StatusHandler = Callable[[Session, OutboxMessage], None]

BATCH = 500  # reports applied in one transaction
# The appliers' lock, one per schema: two deployments in two schemas of one database apply independently.
LOCK_KEY_SQL = "hashtextextended('jiaoying.provider_report:' || coalesce(current_schema(), ''), 0)"
_LOCAL: dict[str, threading.Lock] = {}  # SQLite (one process by design): a lock per database
_LOCAL_GUARD = threading.Lock()

WEBHOOK_PATHS = {"twilio": "/twilio/status"}


def store(session: Session, *, now: dt.datetime, provider: str, status: str, message_id: int | None,
          provider_id: str | None, error_code: str | None, raw: dict[str, Any]) -> ProviderReport:
    """Keep a report as it came; the caller commits, then calls ``apply_pending``."""
    report = ProviderReport(provider=provider, status=status[:30], message_id=message_id,
                            provider_id=(provider_id or None) and provider_id[:64],
                            error_code=(error_code or None) and error_code[:30], raw=raw, received_at=now)
    session.add(report)
    return report


def waiting(session: Session) -> int:
    """Reports stored and not yet applied (failed ones not counted)."""
    return int(session.execute(
        select(func.count()).select_from(ProviderReport).where(ProviderReport.failed_at.is_(None))).scalar_one())


@contextmanager
def _turn(factory: Any) -> Iterator[Session | None]:
    """A transaction holding the appliers' lock, or None while another applier holds it."""
    probe = factory()
    try:
        bind = probe.get_bind()
    finally:
        probe.close()
    if bind.dialect.name == "postgresql":
        with session_scope(factory) as session:
            got = session.execute(text(f"SELECT pg_try_advisory_xact_lock({LOCK_KEY_SQL})")).scalar()
            yield session if got else None
        return
    with _LOCAL_GUARD:
        local = _LOCAL.setdefault(str(bind.engine.url), threading.Lock())
    if not local.acquire(blocking=False):
        yield None
        return
    try:
        with session_scope(factory) as session:
            yield session
    finally:
        local.release()


def apply_pending(factory: Any, *, now: dt.datetime, handler: StatusHandler | None,
                  limit: int = BATCH, max_rounds: int = 100) -> int:
    """Apply the waiting reports, a batch per transaction, until none wait or another applier has the turn.
    Returns how many were applied (or kept as failed)."""
    done = 0
    for _ in range(max_rounds):
        with _turn(factory) as session:
            if session is None:
                return done  # the applier at work looks again after its commit
            rows = list(session.execute(
                select(ProviderReport).where(ProviderReport.failed_at.is_(None))
                .order_by(ProviderReport.id).limit(limit)).scalars())
            if not rows:
                return done
            _apply(session, rows, now=now, handler=handler)
            done += len(rows)
    return done


def _apply(session: Session, rows: list[ProviderReport], *, now: dt.datetime, handler: StatusHandler | None) -> None:
    # The batch's messages are loaded and locked in one query, in id order, so two transactions that lock
    # several of them (another applier's, a sender's) never wait on each other in a circle.
    ids = sorted({r.message_id for r in rows if r.message_id is not None})
    messages = {m.id: m for m in session.execute(
        select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id).with_for_update()
    ).scalars()} if ids else {}
    try:  # the whole batch at once, flushed once
        with session.begin_nested():
            for r in rows:
                _apply_one(session, r, handler, messages)
        applied = [r.id for r in rows]
    except DBAPIError:
        raise  # the database's trouble, not a report's: the batch is tried again
    except Exception:  # some report cannot be applied: one at a time, to keep that one and apply the rest
        applied = _one_by_one(session, rows, now=now, handler=handler)
    if applied:
        session.execute(delete(ProviderReport).where(ProviderReport.id.in_(applied))
                        .execution_options(synchronize_session=False))


def _one_by_one(session: Session, rows: list[ProviderReport], *, now: dt.datetime,
                handler: StatusHandler | None) -> list[int]:
    applied: list[int] = []
    for r in rows:
        try:
            with session.begin_nested():
                _apply_one(session, r, handler, {})
            applied.append(r.id)
        except DBAPIError:
            raise
        except Exception as exc:  # kept with its error, for inspection; the rest of the batch goes on
            log.exception("provider report %s could not be applied", r.id)
            r.failed_at = now
            r.error = f"{type(exc).__name__}: {exc}"[:2000]
            record(session, now=now, action="webhook.report_failed", entity_type="provider_report", entity_id=r.id,
                   actor="system", payload={"message_id": r.message_id, "status": r.status, "error": r.error})
    return applied


def _apply_one(session: Session, r: ProviderReport, handler: StatusHandler | None,
               messages: dict[int, OutboxMessage]) -> None:
    msg = messages.get(r.message_id) if r.message_id is not None else None
    if msg is not None:
        changed = outbox.apply_status_to(session, msg, now=r.received_at, status=r.status,
                                         provider_id=r.provider_id, error_code=r.error_code, raw=r.raw)
    else:  # by the provider's id alone, or not loaded (one report at a time)
        msg, changed = outbox.apply_provider_status(
            session, now=r.received_at, status=r.status, message_id=r.message_id, provider_id=r.provider_id,
            error_code=r.error_code, raw=r.raw)
    if msg is None:
        record(session, now=r.received_at, action="webhook.unknown_message", entity_type="webhook",
               entity_id=WEBHOOK_PATHS.get(r.provider, r.provider), actor=f"provider:{r.provider}", payload=r.raw)
    elif changed and msg.state in TERMINAL and handler is not None:
        handler(session, msg)
