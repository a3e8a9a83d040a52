"""Every normalized sample, stored and exported again as CAP 1.2, validates against the OASIS schema."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from warning import service
from warning.cap_export import CAP_NS, cap_time, validation_errors, warning_to_cap
from warning.feeds import FORMATS
from warning.models import Warning
from warning.policy import IntakePolicy

SAMPLE_DIRS = {"cap": "cap", "usgs": "usgs", "cenc": "cenc", "quakeml": "quakeml", "firms": "firms",
               "hydro": "hydrology", "geohazard": "geohazard", "nws": "nws"}


def test_cap_time_has_an_explicit_offset() -> None:
    t = dt.datetime(2026, 7, 20, 1, 2, 3, 456, tzinfo=dt.UTC)
    assert cap_time(t, dt.timezone(dt.timedelta(hours=8))) == "2026-07-20T09:02:03+08:00"
    assert cap_time(t, dt.UTC) == "2026-07-20T01:02:03-00:00"  # CAP writes UTC as -00:00, never Z


def test_export_of_every_normalized_sample_validates(db: Session, now: dt.datetime, wh, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    policy = IntakePolicy(max_bytes=5 * 1024 * 1024)
    for fmt in FORMATS:
        folder = data_dir / "samples" / SAMPLE_DIRS[fmt]
        if not folder.is_dir():
            continue
        feed = wh.make_feed(db, now, name=f"t-{fmt}", adapter=fmt)
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix in (".xsd", ".md"):
                continue
            service.ingest_payload(db, feed=feed, body=path.read_bytes(), content_type=None, now=now,
                                   targeter=wh.no_targets, policy=policy)
    rows = db.execute(select(Warning)).scalars().all()
    assert len(rows) > 20 and {"cap"} <= {r.source_format for r in rows}
    for w in rows:
        doc = warning_to_cap(w)
        assert validation_errors(doc) == [], (w.source_format, w.identifier, validation_errors(doc)[:3])
        root = etree.fromstring(doc)
        assert root.findtext(f"{{{CAP_NS}}}identifier") == w.identifier
        came_without_info = bool((w.extra or {}).get("no_info")) and not w.infos
        assert len(root.findall(f"{{{CAP_NS}}}info")) == (0 if came_without_info else max(len(w.infos), 1))
    db.rollback()


def test_export_keeps_polygons_circles_references_and_level() -> None:
    sent = dt.datetime(2026, 7, 20, 1, 0, tzinfo=dt.UTC)
    w = SimpleNamespace(
        identifier="JY-1", sender="sx@example.cn", sent=sent, status="exercise", msg_type="update",
        entered_by="duty1", references=[{"sender": "sx@example.cn", "identifier": "JY-0", "sent": sent.isoformat()}],
        infos=[{"language": "zh-CN", "event": "暴雨", "headline": "暴雨橙色预警", "description": "控\x01制字符",
                "web": "not a uri"}],
        hazard="weather", event="暴雨", level="orange", urgency="IMMEDIATE", severity="severe", certainty=None,
        effective=None, onset=None, expires=sent + dt.timedelta(hours=6), headline="暴雨橙色预警",
        parameters={"warning_code": ["11B03"]}, area_description="城区",
        area_spec={"polygons": [[[112.8, 35.5], [112.9, 35.5], [112.9, 35.6]]], "circles": [[35.5, 112.85, 5.0]],
                   "points": [], "geocodes": []},
        geocodes=[{"name": "GB", "value": "140502000000"}],
    )
    doc = warning_to_cap(w)
    assert validation_errors(doc) == []
    text = doc.decode()
    assert "<msgType>Update</msgType>" in text and "<status>Exercise</status>" in text
    assert "sx@example.cn,JY-0,2026-07-20T09:00:00+08:00" in text
    assert "35.5,112.8 35.5,112.9 35.6,112.9 35.5,112.8" in text  # lat,lon and closed
    assert "<circle>35.5,112.85 5</circle>" in text and "<value>orange</value>" in text
    assert "<urgency>Immediate</urgency>" in text and "<certainty>Unknown</certainty>" in text
