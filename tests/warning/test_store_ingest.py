"""Raw first, parse, place: the ingest pipeline on real samples and hostile payloads, on both databases."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warning import service, threads
from warning.draft import ParseResult
from warning.models import FeedItem, Warning
from warning.policy import IntakePolicy

POLICY = IntakePolicy(hold_timeout=dt.timedelta(minutes=30), max_bytes=200_000)


def _ingest(db: Session, feed, body: bytes, now: dt.datetime, wh, **kw):  # type: ignore[no-untyped-def]
    return service.ingest_payload(db, feed=feed, body=body, content_type="application/xml", now=now,
                                  targeter=wh.no_targets, policy=POLICY, **kw)


def _cap_samples(data_dir: Path) -> list[Path]:
    files = (data_dir / "samples" / "cap").rglob("*")
    return sorted(p for p in files if p.is_file() and p.suffix not in (".xsd", ".md"))


def test_every_cap_sample_is_stored_then_processed_and_recognized_again(
    db: Session, now: dt.datetime, wh, data_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    feed = wh.make_feed(db, now)
    for path in _cap_samples(data_dir):
        body = path.read_bytes()
        out = _ingest(db, feed, body, now, wh)
        item = db.get(FeedItem, out.item_id)
        assert item is not None and item.body == body and item.sha256 == hashlib.sha256(body).hexdigest()
        assert out.state == "processed", (path.name, out.reason, item.detail)
        assert item.warnings_count == len(out.created)
        again = _ingest(db, feed, body, now, wh)
        assert again.duplicate_payload and again.item_id == out.item_id and not again.created
    assert db.scalar(select(func.count(FeedItem.id))) == len(_cap_samples(data_dir))
    assert db.scalar(select(func.count(Warning.id))) > 20
    db.commit()


def _alert_from_update(update: bytes, identifier: str, sender: str, sent: str) -> bytes:
    """The Alert an Update refers to, rebuilt from the Update itself (the real Alert is not in the samples)."""
    text = update.decode()
    text = re.sub(r"<(\w+:)?identifier>[^<]*<", rf"<\g<1>identifier>{identifier}<", text, count=1)
    text = re.sub(r"<(\w+:)?sender>[^<]*<", rf"<\g<1>sender>{sender}<", text, count=1)
    text = re.sub(r"<(\w+:)?sent>[^<]*<", rf"<\g<1>sent>{sent}<", text, count=1)
    text = re.sub(r"<(\w+:)?msgType>Update<", r"<\g<1>msgType>Alert<", text, count=1)
    text = re.sub(r"<(\w+:)?references>[^<]*</(\w+:)?references>", "", text, count=1)
    return text.encode()


@pytest.mark.parametrize("name", ["eccc_thunderstorm_update_en-fr_2012.cap",
                                  "us-wcatwc_tsunami-warning_update_2011.cap"])
def test_sample_update_chain_resolves_in_either_order(
    db: Session, wh, data_dir: Path, name: str  # type: ignore[no-untyped-def]
) -> None:
    update = (data_dir / "samples" / "cap" / name).read_bytes()
    refs = re.search(rb"<(?:\w+:)?references>([^<]+)<", update).group(1).decode().split()  # type: ignore[union-attr]
    alerts = [_alert_from_update(update, r.split(",")[1], r.split(",")[0], r.split(",")[2]) for r in refs]
    sent = dt.datetime.fromisoformat(re.search(rb"<(?:\w+:)?sent>([^<]+)<", update).group(1).decode())  # type: ignore[union-attr]
    now = sent + dt.timedelta(minutes=1)
    feed = wh.make_feed(db, now)
    first = _ingest(db, feed, update, now, wh)  # the Update before its Alerts: held
    assert first.held and db.get(Warning, first.created[0]).state == "held"  # type: ignore[union-attr]
    for alert in alerts:
        _ingest(db, feed, alert, now, wh)
    upd = db.get(Warning, first.created[0])
    assert upd is not None and upd.state == "active" and upd.held_until is None
    thread = threads.thread_versions(db, upd.thread_id)  # type: ignore[arg-type]
    assert len(thread) == len(alerts) + 1
    assert [v.id for v in thread if v.state == "active"] == [upd.id]
    assert all(v.state == "superseded" for v in thread if v.id != upd.id)
    # Sent a second time, every message is recognized by its hash and changes nothing.
    assert all(_ingest(db, feed, body, now, wh).duplicate_payload for body in [update, *alerts])


def _billion_laughs() -> bytes:
    """Ten levels of ten-fold entity expansion: 10^9 'lol's if a parser ever expanded them."""
    decls = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (f'<?xml version="1.0"?><!DOCTYPE lolz [{"".join(decls)}]>'
            '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>').encode()


HOSTILE = {
    "xxe_file": b"""<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&x;</identifier></alert>""",
    "billion_laughs": _billion_laughs(),
    "external_dtd": b"""<?xml version="1.0"?><!DOCTYPE alert SYSTEM "http://attacker.invalid/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert>""",
    "parameter_entity": b"""<?xml version="1.0"?><!DOCTYPE a [<!ENTITY % p SYSTEM "file:///etc/hostname"> %p;]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>""",
}


def test_hostile_and_broken_payloads_are_quarantined_and_the_feed_goes_on(
    db: Session, now: dt.datetime, wh  # type: ignore[no-untyped-def]
) -> None:
    feed = wh.make_feed(db, now)
    gbk = wh.cap_xml("GBK-1").decode().replace('encoding="UTF-8"', 'encoding="UTF-8"').encode("gbk")
    bad = {**HOSTILE, "wrong_encoding": gbk, "not_xml": b"<alert><unclosed></alert>"}
    tracemalloc.start()
    outcomes = {name: _ingest(db, feed, body, now, wh) for name, body in bad.items()}
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # nothing was expanded: memory stays flat
    for name, out in outcomes.items():
        item = db.get(FeedItem, out.item_id)
        assert item is not None and item.state == "quarantined" and item.reason, name
        assert item.body == bad[name]  # kept verbatim as evidence
        assert b"root:" not in (item.detail or "").encode()  # no local file was read into the record
    assert outcomes["xxe_file"].reason == "hostile_xml" and outcomes["billion_laughs"].reason == "hostile_xml"
    assert not db.execute(select(Warning)).scalars().all()
    assert {i.id for i in service.quarantined_items(db)} == {o.item_id for o in outcomes.values()}
    good = _ingest(db, feed, wh.cap_xml("OK-1"), now, wh)
    assert good.state == "processed" and good.created
    db.commit()


def test_a_bad_area_block_is_left_out_flagged_and_the_warning_kept(
    db: Session, now: dt.datetime, wh  # type: ignore[no-untyped-def]
) -> None:
    """Latitude 95 cannot be: that <area> is reported, the warning and its other areas go on."""
    feed = wh.make_feed(db, now)
    body = wh.cap_xml("GEO-1", polygon="95,112 96,113 97,112 95,112")
    out = _ingest(db, feed, body, now, wh)
    item = db.get(FeedItem, out.item_id)
    assert item is not None and item.state == "processed" and item.body == body
    (w,) = [db.get(Warning, i) for i in out.created]
    assert w is not None and w.state == "active" and w.flag_reason == "area_invalid" and w.flagged_at == now
    (problem,) = w.extra["area_problems"]
    assert "区域 1" in problem and "invalid_geometry" in problem
    # The broken block is out (the payload's only one, so no area is left); the warning, its texts and level are not.
    assert not w.area_spec["polygons"] and not w.geocodes and w.headline and w.level == "yellow"
    db.commit()


def test_oversize_body_is_refused_and_only_a_prefix_kept(db: Session, now: dt.datetime, wh) -> None:  # type: ignore[no-untyped-def]
    feed = wh.make_feed(db, now, max_bytes=1000)
    body = wh.cap_xml("BIG-1") + b"<!--" + b"x" * 5000 + b"-->"
    out = _ingest(db, feed, body, now, wh)
    item = db.get(FeedItem, out.item_id)
    assert item is not None and item.state == "quarantined" and item.reason == "oversize"
    assert item.size == len(body) and len(item.body) <= POLICY.evidence_prefix_bytes


def test_reprocess_after_adapter_fix_and_dismiss(db: Session, now: dt.datetime, wh) -> None:  # type: ignore[no-untyped-def]
    feed = wh.make_feed(db, now)

    def broken(_payload: bytes, _ctx: object) -> ParseResult:
        raise KeyError("adapter bug")

    out = _ingest(db, feed, wh.cap_xml("R-1"), now, wh, parser=broken)
    item = db.get(FeedItem, out.item_id)
    assert item is not None and item.state == "quarantined" and item.reason == "adapter_error"
    fixed = service.reprocess_item(db, item, now=now, actor="user:duty1", targeter=wh.no_targets, policy=POLICY)
    assert fixed.state == "processed" and fixed.created and item.attempts == 2
    other = _ingest(db, feed, b"garbage", now, wh)
    junk = db.get(FeedItem, other.item_id)
    assert junk is not None and junk.state == "quarantined"
    service.dismiss_item(db, junk, now=now, actor="user:duty1", note="测试数据")
    assert junk.state == "dismissed" and junk not in service.quarantined_items(db)
    db.commit()
