"""Gauge thresholds and forest blocks kept in geo reach the parsers of a live feed."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.orm import Session

from geo.models import HazardSite
from warning.service import ingest_payload


def _gauge(db: Session, now: dt.datetime, key: str, **attrs: Any) -> None:
    db.add(HazardSite(key=key, name="丹河城区站", kind="gauge",
                      geometry={"type": "Point", "coordinates": [112.85, 35.50]}, area_code="140502001001",
                      attrs=attrs, updated_at=now))
    db.flush()


def _reading(station: str, z: float) -> bytes:
    return json.dumps({"stations": [{"stcd": station, "stnm": "丹河城区站", "lon": 112.85, "lat": 35.50,
                                     "readings": [{"tm": "2026-07-20T07:00:00+08:00", "z": z - 0.05},
                                                  {"tm": "2026-07-20T08:00:00+08:00", "z": z}]}]}).encode()


def test_a_gauge_judged_by_the_levels_set_on_its_site(db: Session, wh: Any) -> None:
    now = dt.datetime(2026, 7, 20, 1, 0, tzinfo=dt.UTC)
    feed = wh.make_feed(db, now, name="hydro-test", adapter="hydro")
    _gauge(db, now, "41401500", warning_level=652.5, guarantee_level=654.0)
    out = ingest_payload(db, feed=feed, body=_reading("41401500", 654.2), content_type="application/json",
                         now=now, targeter=wh.no_targets)
    db.commit()
    assert out.state == "processed", out
    assert [c.level for c in out.changes] == ["red"]  # over the guarantee level set on the site


def test_without_site_levels_the_station_is_reported_not_judged(db: Session, wh: Any) -> None:
    now = dt.datetime(2026, 7, 20, 1, 0, tzinfo=dt.UTC)
    feed = wh.make_feed(db, now, name="hydro-test", adapter="hydro")
    _gauge(db, now, "other-station", warning_level=652.5, guarantee_level=654.0)
    out = ingest_payload(db, feed=feed, body=_reading("41401500", 654.2), content_type="application/json",
                         now=now, targeter=wh.no_targets)
    db.commit()
    assert out.changes == []
    assert any("1 without configured levels" in s["reason"] for s in out.skipped), out.skipped
