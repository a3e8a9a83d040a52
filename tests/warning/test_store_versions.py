"""Versions against the real database: dedup, Update/Cancel chains, out-of-order delivery, holds, expiry."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.eventlog import Event, verify
from warning import threads
from warning.changes import ChangeKind
from warning.models import Warning
from warning.policy import IntakePolicy

H = dt.timedelta(hours=1)


def no_targets(_s: Session, _a: object) -> dict[str, list[str]]:
    return {"villages": [], "townships": [], "sites": []}


@pytest.fixture
def draft(wh):  # type: ignore[no-untyped-def]
    return wh.draft
POLICY = IntakePolicy(hold_timeout=dt.timedelta(minutes=30))


def _apply(db: Session, d, now, listener=None):  # type: ignore[no-untyped-def]
    return threads.apply_draft(db, d, feed=None, item=None, now=now, targeter=no_targets, policy=POLICY,
                               listeners=[listener] if listener else [])


def _w(db: Session, identifier: str) -> Warning:
    return db.execute(select(Warning).where(Warning.identifier == identifier)).scalar_one()


def test_alert_update_cancel_in_order(db: Session, now: dt.datetime, draft, collected) -> None:  # type: ignore[no-untyped-def]
    got, listener = collected
    _apply(db, draft("A1", sent=now - 3 * H), now, listener)
    _apply(db, draft("U1", "update", sent=now - 2 * H, refs=("A1",)), now, listener)
    _apply(db, draft("C1", "cancel", sent=now - H, refs=("A1", "U1")), now, listener)
    a, u, c = _w(db, "A1"), _w(db, "U1"), _w(db, "C1")
    assert a.thread_id == u.thread_id == c.thread_id == a.id
    assert (a.state, u.state, c.state) == ("superseded", "cancelled", "cancelled")
    assert (a.version, u.version, c.version) == (1, 2, 3)
    assert a.superseded_by_id == u.id and u.supersedes_id == a.id and u.superseded_by_id == c.id
    assert [ch.kind for ch in got] == [ChangeKind.NEW, ChangeKind.UPDATED, ChangeKind.CANCELLED]
    assert got[1].previous_id == a.id and got[2].thread_id == a.id
    actions = [e.action for e in db.execute(select(Event).order_by(Event.seq)).scalars()]
    assert actions.count("warning.received") == 3 and "warning.cancelled" in actions
    assert verify(db).ok


def test_same_message_twice_is_a_recorded_duplicate(db: Session, now: dt.datetime, draft) -> None:
    first = _apply(db, draft("A1", sent=now - H), now)
    again = _apply(db, draft("A1", sent=now - H), now)
    assert first.created and not again.created and again.duplicates == first.created
    assert db.execute(select(Event).where(Event.action == "warning.duplicate_received")).scalars().all()
    assert len(db.execute(select(Warning)).scalars().all()) == 1


def test_cancel_before_alert_is_held_then_applied(db: Session, now: dt.datetime, draft, collected) -> None:  # type: ignore[no-untyped-def]
    got, listener = collected
    out = _apply(db, draft("C1", "cancel", sent=now - H, refs=("A1", "U1")), now, listener)
    assert out.held and _w(db, "C1").state == "held" and not got
    _apply(db, draft("U1", "update", sent=now - 2 * H, refs=("A1",)), now, listener)
    assert _w(db, "U1").state == "held"
    _apply(db, draft("A1", sent=now - 3 * H), now, listener)
    a, u, c = _w(db, "A1"), _w(db, "U1"), _w(db, "C1")
    assert a.thread_id == u.thread_id == c.thread_id == a.id
    assert (a.state, u.state, c.state) == ("superseded", "cancelled", "cancelled")
    assert c.held_until is None and c.held_since is not None
    assert [ch.kind for ch in got] == [ChangeKind.NEW, ChangeKind.UPDATED, ChangeKind.CANCELLED]
    assert db.execute(select(Event).where(Event.action == "warning.held_resolved")).scalars().all()


def test_late_older_update_does_not_replace_newer(db: Session, now: dt.datetime, draft) -> None:
    _apply(db, draft("A1", sent=now - 3 * H), now)
    _apply(db, draft("U2", "update", sent=now - H, refs=("A1",)), now)
    _apply(db, draft("U1", "update", sent=now - 2 * H, refs=("A1",)), now)
    assert _w(db, "U2").state == "active"
    assert _w(db, "U1").state == "superseded" and _w(db, "U1").superseded_by_id == _w(db, "U2").id


def test_hold_timeout_flags_and_promotes_orphan_update(db: Session, now: dt.datetime, draft, collected) -> None:  # type: ignore[no-untyped-def]
    got, listener = collected
    _apply(db, draft("C9", "cancel", sent=now - H, refs=("GONE",)), now)
    _apply(db, draft("U9", "update", sent=now - H, refs=("GONE2",)), now)
    assert threads.flag_overdue_holds(db, now=now + dt.timedelta(minutes=29), listeners=[listener]) == []
    flagged = threads.flag_overdue_holds(db, now=now + dt.timedelta(minutes=31), listeners=[listener])
    c, u = _w(db, "C9"), _w(db, "U9")
    assert set(flagged) == {c.id, u.id}
    assert c.state == "held" and c.flag_reason == "reference_unresolved"
    assert u.state == "active" and u.flagged_at is not None
    assert [ch.kind for ch in got] == [ChangeKind.NEW] and got[0].warning_id == u.id
    # Running the sweep again changes nothing (idempotent).
    assert threads.flag_overdue_holds(db, now=now + 2 * H, listeners=[listener]) == []
    # The Alert finally arrives: the flagged Cancel is applied to it.
    _apply(db, draft("GONE", sent=now - 2 * H), now + 2 * H)
    assert _w(db, "GONE").state == "cancelled" and _w(db, "C9").thread_id == _w(db, "GONE").id


def test_expiry_sweep(db: Session, now: dt.datetime, draft, collected) -> None:  # type: ignore[no-untyped-def]
    got, listener = collected
    _apply(db, draft("A1", sent=now - H, expires=now + H), now)
    _apply(db, draft("A2", sent=now - H, expires=now + 5 * H), now)
    assert threads.expire_due(db, now=now + 2 * H, listeners=[listener])
    assert _w(db, "A1").state == "expired" and _w(db, "A2").state == "active"
    assert [c.kind for c in got] == [ChangeKind.EXPIRED]
    assert threads.expire_due(db, now=now + 2 * H, listeners=[listener]) == []


def test_failing_listener_does_not_lose_the_warning(db: Session, now: dt.datetime, draft) -> None:
    def broken(session: Session, change, at) -> None:  # type: ignore[no-untyped-def]
        session.add(Warning(sender="x", identifier="partial", msg_type="alert", status="actual", hazard="weather",
                            sent=at, received_at=at, updated_at=at))
        session.flush()
        raise RuntimeError("response engine bug")

    _apply(db, draft("A1", sent=now - H), now, broken)
    assert _w(db, "A1").state == "active"
    assert db.execute(select(Warning).where(Warning.identifier == "partial")).scalar_one_or_none() is None
    assert db.execute(select(Event).where(Event.action == "warning.listener_failed")).scalars().all()
    db.commit()


def test_drill_flag_from_exercise(db: Session, now: dt.datetime, draft) -> None:
    from warning.draft import Status

    _apply(db, draft("X1", sent=now, status=Status.EXERCISE), now)
    assert _w(db, "X1").drill is True
