"""Cancels and Updates that carry no <info>, and Ack/Error messages, against the real database.

A real Cancel is often just the envelope and ``<references>`` (IPAWS sends them so): it must cancel what it
references, in any order of arrival, and the response that warning started must move to closing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.eventlog import Event, verify
from responses.runs import engine as response_engine
from responses.runs.models import ResponseRun
from warning import service, threads
from warning.changes import ChangeKind
from warning.models import FeedItem, Warning
from warning.policy import IntakePolicy

POLICY = IntakePolicy(hold_timeout=dt.timedelta(minutes=30))
SENDER = "sx-jc@example.cn"
SENT = "2026-07-20T01:00:00+08:00"


def envelope(identifier: str, msg_type: str, refs: str, *, sent: str = "2026-07-20T02:00:00+08:00",
             note: str = "") -> bytes:
    """A CAP message with no <info> at all, as IPAWS and others send Cancels."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>{SENDER}</sender><sent>{sent}</sent>
  <status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{note}
  <references>{refs}</references>
</alert>""".encode()


def one_village(_s: Session, _areas: Any) -> dict[str, list[Any]]:
    return {"villages": ["140502001001"], "townships": ["140502001000"], "sites": []}


def ingest(db: Session, feed: Any, body: bytes, now: dt.datetime, listeners: list[Any] | None = None,
           targeter: Any = one_village) -> service.IngestOutcome:
    return service.ingest_payload(db, feed=feed, body=body, content_type="application/xml", now=now,
                                  targeter=targeter, policy=POLICY, listeners=listeners or [])


def by_id(db: Session, identifier: str) -> Warning:
    return db.execute(select(Warning).where(Warning.identifier == identifier)).scalar_one()


def test_cancel_without_info_cancels_its_alert(db: Session, now: dt.datetime, wh, collected) -> None:  # type: ignore[no-untyped-def]
    got, listener = collected
    feed = wh.make_feed(db, now)
    ingest(db, feed, wh.cap_xml("A-1", sender=SENDER, sent=SENT, event="暴雨橙色预警"), now, [listener])
    out = ingest(db, feed, envelope("C-1", "Cancel", f"{SENDER},A-1,{SENT}"), now, [listener])
    assert out.state == "processed" and out.created and not out.held
    a, c = by_id(db, "A-1"), by_id(db, "C-1")
    assert (a.state, c.state) == ("cancelled", "cancelled") and c.thread_id == a.id and c.version == 2
    # What the Cancel cancels says what it was: hazard and level come from the Alert.
    assert (c.hazard, c.level, c.headline) == ("weather", "orange", a.headline) and c.infos == []
    assert [ch.kind for ch in got] == [ChangeKind.NEW, ChangeKind.CANCELLED]
    assert got[1].hazard == "weather" and got[1].thread_id == a.id
    actions = list(db.execute(select(Event.action).where(Event.entity_id == str(c.id))).scalars())
    assert "warning.hazard_from_reference" in actions and "warning.cancelled" in actions
    assert verify(db).ok
    db.commit()


def test_cancel_without_info_before_its_alert_is_held_then_resolved(  # type: ignore[no-untyped-def]
    db: Session, now: dt.datetime, wh, collected
) -> None:
    got, listener = collected
    feed = wh.make_feed(db, now)
    out = ingest(db, feed, envelope("C-2", "Cancel", f"{SENDER},A-2,{SENT}"), now, [listener])
    c = by_id(db, "C-2")
    assert out.held == [c.id] and c.state == "held" and c.hazard is None and c.level is None
    ingest(db, feed, wh.cap_xml("A-2", sender=SENDER, sent=SENT), now + dt.timedelta(minutes=5), [listener])
    a, c = by_id(db, "A-2"), by_id(db, "C-2")
    assert (a.state, c.state, c.hazard, c.thread_id) == ("cancelled", "cancelled", "weather", a.id)
    assert [ch.kind for ch in got] == [ChangeKind.NEW, ChangeKind.CANCELLED]
    db.commit()


def test_held_cancel_without_info_is_flagged_once_and_never_promoted(  # type: ignore[no-untyped-def]
    db: Session, now: dt.datetime, wh, collected
) -> None:
    got, listener = collected
    feed = wh.make_feed(db, now)
    ingest(db, feed, envelope("C-3", "Cancel", f"{SENDER},NEVER-CAME,{SENT}"), now)
    later = now + POLICY.hold_timeout + dt.timedelta(seconds=1)
    assert threads.flag_overdue_holds(db, now=later, listeners=[listener]) == [by_id(db, "C-3").id]
    assert threads.flag_overdue_holds(db, now=later + dt.timedelta(minutes=1), listeners=[listener]) == []
    c = by_id(db, "C-3")
    assert c.state == "held" and c.flag_reason == "reference_unresolved" and c.hazard is None and not got
    db.commit()


def test_update_without_info_carries_the_content_over_and_is_flagged(  # type: ignore[no-untyped-def]
    db: Session, now: dt.datetime, wh, collected
) -> None:
    got, listener = collected
    feed = wh.make_feed(db, now)
    ingest(db, feed, wh.cap_xml("A-4", sender=SENDER, sent=SENT, event="暴雨红色预警"), now, [listener])
    out = ingest(db, feed, envelope("U-4", "Update", f"{SENDER},A-4,{SENT}"), now, [listener])
    a, u = by_id(db, "A-4"), by_id(db, "U-4")
    assert out.created == [u.id] and (a.state, u.state) == ("superseded", "active")
    assert (u.hazard, u.level, u.headline, u.expires) == (a.hazard, "red", a.headline, a.expires)
    assert u.infos == a.infos and u.affected == a.affected and u.area_spec == a.area_spec
    assert u.flag_reason == "update_without_info" and u.flagged_at == now
    assert [ch.kind for ch in got] == [ChangeKind.NEW, ChangeKind.UPDATED] and got[1].level == "red"
    db.commit()


def test_update_without_info_and_no_alert_waits_flagged(db: Session, now: dt.datetime, wh) -> None:  # type: ignore[no-untyped-def]
    feed = wh.make_feed(db, now)
    ingest(db, feed, envelope("U-5", "Update", f"{SENDER},NOT-YET,{SENT}"), now)
    later = now + POLICY.hold_timeout + dt.timedelta(seconds=1)
    threads.flag_overdue_holds(db, now=later)
    u = by_id(db, "U-5")
    # It names no hazard, so it cannot stand as a warning of its own: kept, held and flagged, never dropped.
    assert u.state == "held" and u.flag_reason == "reference_unresolved" and u.hazard is None
    db.commit()


def test_ack_and_error_are_recorded_against_what_they_reference(db: Session, now: dt.datetime, wh) -> None:  # type: ignore[no-untyped-def]
    feed = wh.make_feed(db, now)
    ingest(db, feed, wh.cap_xml("A-6", sender=SENDER, sent=SENT), now)
    a = by_id(db, "A-6")
    ack = ingest(db, feed, envelope("K-6", "Ack", f"{SENDER},A-6,{SENT}", note="<note>已收到</note>"), now)
    err = ingest(db, feed, envelope("E-6", "Error", f"{SENDER},NOBODY,{SENT}"), now)
    assert not ack.created and not err.created
    events = db.execute(select(Event).where(Event.action.in_(
        ["warning.ack_received", "feed_item.error_unmatched"])).order_by(Event.seq)).scalars().all()
    assert [(e.action, e.entity_id) for e in events] == [("warning.ack_received", str(a.id)),
                                                        ("feed_item.error_unmatched", str(err.item_id))]
    assert events[0].payload["note"] == "已收到" and events[0].payload["identifier"] == "K-6"
    item = db.get(FeedItem, ack.item_id)
    assert item is not None and item.skipped[0]["msg_type"] == "ack"
    assert item.skipped[0]["references"][0]["identifier"] == "A-6"
    db.commit()


def test_a_real_ipaws_cancel_without_info_closes_the_run(  # type: ignore[no-untyped-def]
    db: Session, now: dt.datetime, wh, data_dir: Path
) -> None:
    """The Nevada DPS Cancel from IPAWS, against an Alert rebuilt from its reference: the red run closes."""
    body = (data_dir / "samples/cap/extra/us-ipaws-nv-dps_cancel-no-info_signed_2019.cap").read_bytes()
    from warning.feeds import ParserContext, get_parser

    (cancel,) = get_parser("cap")(body, ParserContext()).warnings
    assert cancel.msg_type == "cancel" and cancel.hazard is None and not cancel.infos
    ref = cancel.references[0]
    assert ref.sent is not None
    alert = wh.cap_xml(ref.identifier, sender=ref.sender, sent=ref.sent.isoformat(), event="山洪红色预警",
                       expires="2030-01-01T00:00:00+08:00")
    feed = wh.make_feed(db, now)
    listeners = [response_engine.on_warning_change]
    ingest(db, feed, alert, now, listeners)
    run = db.execute(select(ResponseRun)).scalar_one()
    assert run.state == "active" and run.hazard == "flood"
    out = ingest(db, feed, body, now + dt.timedelta(minutes=10), listeners)
    assert out.state == "processed" and out.created
    db.refresh(run)
    assert run.state == "closing"
    assert by_id(db, ref.identifier).state == "cancelled"
    db.commit()
