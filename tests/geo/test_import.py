from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import session_scope
from config.eventlog import Event
from geo.crs import wgs84_to_gcj02
from geo.matching import RegionIndex
from geo.models import Area, HazardSite
from geo.region import region_index, run_import, seed_default_region
from geo.service import current_version
from geo.targets import MatchTarget

from .conftest import feature, square  # noqa: TID252


def _snapshot(s: Session) -> list[tuple]:  # type: ignore[type-arg]
    return [(a.code, a.name, json.dumps(a.geometry, sort_keys=True), a.approximate)
            for a in s.execute(select(Area).order_by(Area.code)).scalars()]


def test_seed_is_idempotent_and_matches_default(seeded: sessionmaker[Session], clock: VirtualClock,
                                                default_index: RegionIndex) -> None:
    with session_scope(seeded) as s:
        n = s.execute(select(func.count(Area.id))).scalar_one()
        version = current_version(s)
        assert seed_default_region(s, clock.now()) == 0
        assert current_version(s) == version and version[0] == 1
        assert s.execute(select(func.count(HazardSite.id)).where(HazardSite.demo.is_(True))).scalar_one() == 7
        idx = region_index(s)
    assert n == len(default_index.areas())
    t = MatchTarget(geocodes=("140502",))
    assert {h.code for h in idx.match(t).villages} == {h.code for h in default_index.match(t).villages}
    lon, lat = default_index.area("140502007201").representative_point()  # type: ignore[misc,union-attr]
    c = MatchTarget(circles=((lat, lon, 1.0),))
    assert idx.match(c).to_dict()["villages"] == default_index.match(c).to_dict()["villages"]


def test_bad_file_reports_all_three_and_changes_nothing(seeded: sessionmaker[Session], clock: VirtualClock,
                                                         bad_areas_geojson: bytes) -> None:
    with session_scope(seeded) as s:
        before, version = _snapshot(s), current_version(s)
        report = run_import(s, "areas", "geojson", bad_areas_geojson, now=clock.now(), actor="test", source="t")
        assert not report.applied
        by_code = {p["code"]: p for p in report.problems}
        assert by_code["invalid_geometry"]["index"] == 2 and by_code["invalid_geometry"]["ref"] == "140502001902"
        assert by_code["swapped_coordinates"]["index"] == 3
        assert by_code["unknown_parent"]["index"] == 4 and "140502099000" in by_code["unknown_parent"]["zh"]
        assert all(p["zh"] and p["en"] for p in report.problems)
        assert report.total == 5 and report.valid == 2
    with session_scope(seeded) as s:
        assert _snapshot(s) == before and current_version(s) == version


def test_skip_invalid_imports_the_rest_idempotently(seeded: sessionmaker[Session], clock: VirtualClock,
                                                    bad_areas_geojson: bytes) -> None:
    with session_scope(seeded) as s:
        v0 = current_version(s)[0]
        report = run_import(s, "areas", "geojson", bad_areas_geojson, now=clock.now(), actor="test", source="t",
                            skip_invalid=True)
        assert report.applied and report.created == 2 and report.version == v0 + 1
    with session_scope(seeded) as s:
        codes = set(s.execute(select(Area.code)).scalars())
        assert {"140502001901", "140502001904"} <= codes
        assert not {"140502001902", "140502001903", "140502099001"} & codes
        snap, events = _snapshot(s), s.execute(select(func.count(Event.id))).scalar_one()
        again = run_import(s, "areas", "geojson", bad_areas_geojson, now=clock.now(), actor="test", source="t",
                           skip_invalid=True)
        assert again.applied and again.created == 0 and again.updated == 0 and again.unchanged == 2
        assert again.version == v0 + 1 and _snapshot(s) == snap
        assert s.execute(select(func.count(Event.id))).scalar_one() == events
        # Grids cover only part of their village, so the village stays matchable as a whole.
        idx = region_index(s)
        assert idx.version == v0 + 1 and idx.area("140502001901") is not None
        r = idx.match(MatchTarget(geocodes=("140502001001",)))
        assert {h.code for h in r.grids} == {"140502001901", "140502001904"}


def test_accept_repaired_uses_make_valid(seeded: sessionmaker[Session], clock: VirtualClock,
                                         bad_areas_geojson: bytes) -> None:
    with session_scope(seeded) as s:
        report = run_import(s, "areas", "geojson", bad_areas_geojson, now=clock.now(), actor="test", source="t",
                            skip_invalid=True, accept_repaired=True)
        assert report.created == 3
        bow = s.execute(select(Area).where(Area.code == "140502001902")).scalar_one()
        assert bow.geometry["type"] == "MultiPolygon"
        assert any(p["code"] == "invalid_geometry" and p["severity"] == "warning" for p in report.problems)


def test_surveyed_gcj02_polygon_replaces_approximate_one(seeded: sessionmaker[Session], clock: VirtualClock,
                                                         default_index: RegionIndex) -> None:
    v = default_index.area("140502007201")
    assert v is not None and v.geometry is not None and v.approximate
    wgs = v.geometry.buffer(-0.0005)
    ring = [list(wgs84_to_gcj02(x, y)) for x, y in wgs.exterior.coords]
    data = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "GCJ02"}},
            "features": [feature({"code": "140502007201", "name": "道头村"}, [ring])]}
    with session_scope(seeded) as s:
        report = run_import(s, "areas", "geojson", json.dumps(data).encode(), now=clock.now(), actor="test",
                            source="survey")
        assert report.applied and report.updated == 1 and report.crs == "GCJ02"
    with session_scope(seeded) as s:
        row = s.execute(select(Area).where(Area.code == "140502007201")).scalar_one()
        assert row.approximate is False
        from shapely.geometry import shape

        assert shape(row.geometry).symmetric_difference(wgs).area / wgs.area < 1e-3  # converted back to WGS84
        ev = s.execute(select(Event).where(Event.action == "geo.areas_imported")).scalars().all()
        assert ev and ev[-1].payload["changed"] == ["140502007201"]


def test_csv_code_list_and_unknown_crs(seeded: sessionmaker[Session], clock: VirtualClock) -> None:
    csv_text = "code,name,population\n140502001001,建设路社区,5230\n140502001099,新社区,\n140502088001,孤村,\n"
    with session_scope(seeded) as s:
        report = run_import(s, "areas", "csv", csv_text.encode(), now=clock.now(), actor="test", source="c",
                            skip_invalid=True)
        assert [p["code"] for p in report.problems] == ["unknown_parent"]
        assert report.created == 1 and report.updated == 1
        row = s.execute(select(Area).where(Area.code == "140502001001")).scalar_one()
        assert row.population == 5230 and row.geometry is not None  # a code list keeps the polygon
        new = s.execute(select(Area).where(Area.code == "140502001099")).scalar_one()
        assert new.parent_code == "140502001000" and new.level == "village"
        bad = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "BD09"}},
               "features": [feature({"code": "140502001901", "name": "x", "level": "grid",
                                     "parent_code": "140502001001"}, square(112.85, 35.5))]}
        r = run_import(s, "areas", "geojson", json.dumps(bad).encode(), now=clock.now(), actor="t", source="b",
                       skip_invalid=True)
        assert not r.applied and r.problems[0]["code"] == "unknown_crs"


def test_site_import_locates_area(seeded: sessionmaker[Session], clock: VirtualClock,
                                  default_index: RegionIndex) -> None:
    lon, lat = default_index.area("140502006001").representative_point()  # type: ignore[misc,union-attr]
    data = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "gh-7", "properties": {"name": "隐患点7", "kind": "geohazard_point",
                                                         "residents": 12},
         "geometry": {"type": "Point", "coordinates": [lon, lat]}},
        {"type": "Feature", "properties": {"name": "怪", "kind": "ufo"},
         "geometry": {"type": "Point", "coordinates": [lon, lat]}},
    ]}
    with session_scope(seeded) as s:
        r = run_import(s, "sites", "geojson", json.dumps(data).encode(), now=clock.now(), actor="t", source="s")
        assert not r.applied and r.problems[0]["code"] == "unknown_kind"
        r = run_import(s, "sites", "geojson", json.dumps(data).encode(), now=clock.now(), actor="t", source="s",
                       skip_invalid=True)
        assert r.created == 1
        site = s.execute(select(HazardSite).where(HazardSite.key == "gh-7")).scalar_one()
        assert site.area_code == "140502006001" and site.residents == 12
        hit = region_index(s).match(MatchTarget(points=((lat, lon, 0.2),)))
        assert "gh-7" in {h.name for h in hit.sites} or "隐患点7" in {h.name for h in hit.sites}
