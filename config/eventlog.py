"""The append-only, hash-chained event log every domain writes its state changes to.

Each row's hash covers its content and the previous row's hash, so altering, deleting or
re-ordering any row breaks the chain from there on; ``verify`` names the first broken row.
Appenders serialize on one lock (SQLite's write lock, a PostgreSQL advisory lock).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Index, String, event, func, select
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.util import find_tables

from config.bulk import append_rows
from config.database import Base, lock_for_append

GENESIS = "0" * 64
_LOCK_KEY = 0x4A59_0001


class Event(Base):
    __tablename__ = "event_log"
    __table_args__ = (Index("ix_event_log_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(unique=True)
    at: Mapped[dt.datetime]
    action: Mapped[str] = mapped_column(String(80), index=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def _canonical(payload: Any) -> Any:
    return json.loads(json.dumps(payload, default=str, ensure_ascii=False))


def compute_hash(
    seq: int, at: dt.datetime, action: str, entity_type: str, entity_id: str, actor: str, payload: Any, prev: str
) -> str:
    body = json.dumps(
        [seq, at.astimezone(dt.UTC).isoformat(), action, entity_type, entity_id, actor, payload, prev],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


_TAIL = "jiaoying.eventlog.tail"


def _cached_tail(session: Session) -> tuple[int, str] | None:
    """The chain's tail as this transaction last wrote it, while that is still certain.

    Holding the append lock for the whole transaction (BEGIN IMMEDIATE, or the advisory lock) means
    nobody else can append before we commit, so the tail need not be read back for every event; it is
    forgotten when the transaction ends or when a rolled-back savepoint took our last event with it.
    """
    cached = session.info.get(_TAIL)
    if cached is None:
        return None
    tx, seq, digest, last = cached
    if tx is not session.get_transaction() or last not in session:
        session.info.pop(_TAIL, None)
        return None
    return seq, digest


def record(
    session: Session,
    *,
    now: dt.datetime,
    action: str,
    entity_type: str,
    entity_id: object,
    actor: str,
    payload: dict[str, Any] | None = None,
) -> Event:
    """Append one event in the caller's transaction (it commits with the change it describes).

    The row joins the chain when the transaction commits (or earlier, when the transaction reads the log):
    its seq, hash and id are set then. Taking the append lock at the first ``record`` held it through
    everything the transaction did afterwards — a provider's status callback, a sender's batch, a sweep of
    escalations — and every appender in every process waited behind it: during a district's fan-out the chain
    let through a few dozen transactions a second. Now the lock is held from the tail's read to the commit."""
    if now.tzinfo is None:
        raise ValueError("naive datetime given to the event log; pass an aware datetime")
    fields = dict(at=now.astimezone(dt.UTC), action=action, entity_type=entity_type, entity_id=str(entity_id),
                  actor=actor, payload=_canonical(payload or {}))
    ev = Event(**fields)
    session.info.setdefault(_PENDING, []).append((ev, _current(session), fields))
    return ev


# ``record_many`` writes this many events or more at once, under the lock from then on (a fan-out's thousands);
# fewer wait for the commit like any event
BULK_FROM = 200

_PENDING = "jiaoying.eventlog.pending"  # recorded, not yet in the chain: (event, transaction recorded in, fields)
_JOINED = "jiaoying.eventlog.joined"  # put into the chain: (event, recorded in, fields, transaction joined in)


def _current(session: Session) -> Any:
    return session.get_nested_transaction() or session.get_transaction()


def _append_pending(session: Session) -> None:
    """Put the transaction's recorded events into the chain: the lock (unless this transaction holds it), the
    tail, then each event's seq and hash in the order recorded. Called before the commit and before any read of
    the log in the same transaction (so a transaction reads its own events, as before)."""
    pending: list[tuple[Event, Any, dict[str, Any]]] | None = session.info.get(_PENDING)
    if not pending:
        return
    session.info[_PENDING] = []  # first: the reads below come through the read hook again
    tail = _cached_tail(session)
    if tail is None:
        lock_for_append(session, _LOCK_KEY)
        last = session.execute(select(Event.seq, Event.hash).order_by(Event.seq.desc()).limit(1)).first()
        tail = (last[0], last[1]) if last else (0, GENESIS)
    seq, prev = tail
    ev: Event | None = None
    joined_in = _current(session)
    joined = session.info.setdefault(_JOINED, [])
    for ev, tx, fields in pending:
        seq += 1
        ev.seq, ev.prev_hash = seq, prev
        ev.hash = prev = compute_hash(seq, ev.at, ev.action, ev.entity_type, ev.entity_id, ev.actor, ev.payload, prev)
        session.add(ev)
        joined.append((ev, tx, fields, joined_in))
    session.flush()
    session.info[_TAIL] = (session.get_transaction(), seq, prev, ev)


def _within(tx: Any, ended: Any) -> bool:
    while tx is not None:
        if tx is ended:
            return True
        tx = tx.parent
    return False


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.info.get(_PENDING) and session.get_nested_transaction() is None:
        _append_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    """Events recorded inside what was rolled back (a savepoint, or the whole transaction) are forgotten. Events
    recorded before a savepoint but put into the chain inside it (a read of the log there) went with its rollback
    and are recorded again, as new objects, ahead of what is still waiting: they still happened."""
    again: list[tuple[Event, Any, dict[str, Any]]] = []
    joined = session.info.get(_JOINED)
    if joined:
        kept = []
        for ev, tx, fields, joined_in in joined:
            if not _within(joined_in, previous_transaction):
                kept.append((ev, tx, fields, joined_in))
            elif not _within(tx, previous_transaction):
                again.append((Event(**fields), tx, fields))
        session.info[_JOINED] = kept
    pending = session.info.get(_PENDING)
    if pending or again:
        session.info[_PENDING] = again + [p for p in pending or [] if not _within(p[1], previous_transaction)]


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the whole transaction is over, committed or not
        for key in (_PENDING, _JOINED, _TAIL):
            session.info.pop(key, None)


@event.listens_for(Session, "do_orm_execute")
def _before_read(state: ORMExecuteState) -> None:
    """A statement of the transaction that reads the log sees the events it recorded (as when they were
    added to the session at once)."""
    session = state.session
    if session.info.get(_PENDING) and _reads_log(state.statement):
        _append_pending(session)


def _reads_log(statement: Any) -> bool:
    if isinstance(statement, TextClause):
        return "event_log" in statement.text
    try:
        # ORM statements hold annotated copies of the table: compare names
        return any(getattr(t, "name", None) == Event.__tablename__ for t in find_tables(statement, include_crud=True))
    except Exception:  # a statement find_tables cannot walk: assume it may read the log
        return True


def record_many(
    session: Session,
    *,
    now: dt.datetime,
    entries: Iterable[tuple[str, str, object, str, dict[str, Any] | None]],
) -> int:
    """Append many events at once (``(action, entity_type, entity_id, actor, payload)`` each, in order), in the
    caller's transaction. Fewer than ``BULK_FROM`` are recorded one by one (they join the chain at the commit);
    from ``BULK_FROM`` on they are written at once: the same rows, seqs and hash chain as calling ``record`` for
    each, in a few multi-row INSERTs instead of one ORM object per event — for a fan-out that logs one event per
    message.

    Pending ORM events are flushed first, so ids keep growing with seq. The rows bypass the session, so the
    cached tail is dropped: the next ``record`` reads the tail back (one query), which also stays right when a
    savepoint around this call is rolled back. Returns how many events were written."""
    if now.tzinfo is None:
        raise ValueError("naive datetime given to the event log; pass an aware datetime")
    items = list(entries)
    if not items:
        return 0
    if len(items) < BULK_FROM:  # a few join the chain at the commit like any event, the lock taken only then
        for action, entity_type, entity_id, actor, payload in items:
            record(session, now=now, action=action, entity_type=entity_type, entity_id=entity_id, actor=actor,
                   payload=payload)
        return len(items)
    _append_pending(session)  # events recorded before these come before them in the chain
    session.flush()
    lock_for_append(session, _LOCK_KEY)
    last = session.execute(select(Event.seq, Event.hash).order_by(Event.seq.desc()).limit(1)).first()
    seq, prev = (last[0], last[1]) if last else (0, GENESIS)
    at = now.astimezone(dt.UTC)
    rows: list[dict[str, Any]] = []
    for action, entity_type, entity_id, actor, payload in items:
        seq += 1
        body = _canonical(payload or {})
        digest = compute_hash(seq, at, action, entity_type, str(entity_id), actor, body, prev)
        rows.append(dict(seq=seq, at=at, action=action, entity_type=entity_type, entity_id=str(entity_id),
                         actor=actor, payload=body, prev_hash=prev, hash=digest))
        prev = digest
    append_rows(session, Event.__table__, rows)  # type: ignore[arg-type]
    session.info.pop(_TAIL, None)
    return len(rows)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    bad_id: int | None = None
    bad_seq: int | None = None
    reason: str | None = None


def verify_rows(rows: Iterable[Event]) -> VerifyResult:
    prev = GENESIS
    expected_seq = 1
    n = 0
    for ev in rows:
        n += 1
        if ev.seq != expected_seq:
            return VerifyResult(False, n, ev.id, ev.seq, f"sequence gap: expected {expected_seq}, found {ev.seq}")
        if ev.prev_hash != prev:
            return VerifyResult(False, n, ev.id, ev.seq, "previous-hash link broken")
        digest = compute_hash(ev.seq, ev.at, ev.action, ev.entity_type, ev.entity_id, ev.actor, ev.payload, prev)
        if digest != ev.hash:
            return VerifyResult(False, n, ev.id, ev.seq, "content does not match its hash")
        prev = ev.hash
        expected_seq += 1
    return VerifyResult(True, n)


def verify(session: Session) -> VerifyResult:
    return verify_rows(session.execute(select(Event).order_by(Event.seq)).scalars().yield_per(1000))


def events_for(session: Session, entity_type: str, entity_id: object) -> list[Event]:
    stmt = (
        select(Event)
        .where(Event.entity_type == entity_type, Event.entity_id == str(entity_id))
        .order_by(Event.seq)
    )
    return list(session.execute(stmt).scalars())


# --------------------------------------------------------------------------- readers for live views


@dataclass(frozen=True)
class Change:
    """What a live view may learn about one row: which thing changed and how, never who did it or the payload
    (an actor or a payload can name a person; a browser stream needs neither to know it must refresh)."""

    id: int
    action: str
    entity_type: str
    entity_id: str


def latest_id(session: Session) -> int:
    """The newest row's id (0 for an empty log): where a live view starts listening."""
    return int(session.execute(select(func.max(Event.id))).scalar() or 0)


def changes_after(session: Session, after_id: int, *, limit: int = 500, newest: bool = False) -> list[Change]:
    """Rows with an id above ``after_id``, oldest first: a range read on the primary key, cheap enough to poll
    several times a second while a fan-out is writing thousands of rows.

    Ids grow in commit order (appenders hold one lock until they commit), so a reader that remembers the last
    id it saw misses nothing, whichever process wrote the rows. ``newest`` keeps the ``limit`` most recent rows
    instead of the oldest ones, for a reader that was away too long to be told everything.
    """
    stmt = select(Event.id, Event.action, Event.entity_type, Event.entity_id).where(Event.id > after_id)
    stmt = stmt.order_by(Event.id.desc() if newest else Event.id).limit(limit)
    rows = [Change(int(i), a, t, e) for i, a, t, e in session.execute(stmt).all()]
    return sorted(rows, key=lambda c: c.id) if newest else rows


def recent_events(session: Session, actions: Iterable[str], *, since: dt.datetime, limit: int = 2000,
                  where: Any = None) -> list[Event]:
    """Rows of these actions recorded at or after ``since``, oldest first (the action column is indexed): for
    views that derive a state from a few kinds of events, such as the console's alarms and their
    acknowledgements. ``where``: a further condition (on the payload, say), so the newest ``limit`` rows are
    the ones that matter."""
    wanted = sorted(set(actions))
    if not wanted:
        return []
    stmt = select(Event).where(Event.action.in_(wanted), Event.at >= since.astimezone(dt.UTC))
    if where is not None:
        stmt = stmt.where(where)
    stmt = stmt.order_by(Event.id.desc()).limit(limit)
    return sorted(session.execute(stmt).scalars(), key=lambda e: e.id)
