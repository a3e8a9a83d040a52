from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from geo import matching
from geo.matching import RegionIndex
from geo.region import REGION_DIR
from geo.targets import AreaRecord, MatchTarget, SiteRecord, circle_polygon


def _codes(path: Path) -> set[str]:
    with path.open(encoding="utf-8-sig") as f:
        return {r["code12"] for r in csv.DictReader(f)}


def test_geocode_district_gives_all_villages_and_attached_township(default_index: RegionIndex,
                                                                   data_dir: Path) -> None:
    official = _codes(data_dir / "geo" / "chengqu_140502_villages.csv")
    nancun = {c for c in _codes(data_dir / "geo" / "jincheng_140500_villages.csv") if c.startswith("140525100")}
    assert len(official) == 134 and len(nancun) == 36
    r = default_index.match(MatchTarget(geocodes=("140502",)))
    got = {h.code for h in r.villages}
    assert got == official | nancun
    assert all(h.share == 1.0 for h in r.villages)
    assert {h.code for h in r.townships} == {c[:9] + "000" for c in official} | {"140525100000"}
    assert [h.code for h in r.district] == ["140502000000"] and r.district[0].share == 1.0
    assert {s.kind for s in r.sites} >= {"reservoir", "geohazard_point", "school", "forest_block"}
    assert not r.unknown_geocodes and not r.empty


def test_geocode_levels_prefixes_and_unknown(default_index: RegionIndex) -> None:
    r = default_index.match(MatchTarget(geocodes=("140502001", "140525100", "999999", "abc")))
    assert {h.code[:9] for h in r.villages} == {"140502001", "140525100"}
    assert r.unknown_geocodes == ["999999", "abc"]
    # 泽州县 by code: its township directed by the district is reached, the county itself is context only.
    zz = default_index.match(MatchTarget(geocodes=("140525",)))
    assert {h.code[:9] for h in zz.villages} == {"140525100"}
    assert [h.code for h in zz.context] == ["140525000000"]


def test_one_km_circle_reaches_the_village_and_only_its_neighbours(default_index: RegionIndex) -> None:
    villages = [a for a in default_index.areas() if a.level == "village" and a.geometry is not None]
    assert len(villages) == 134
    for v in villages:
        lon, lat = v.representative_point()  # type: ignore[misc]
        r = default_index.match(MatchTarget(circles=((lat, lon, 1.0),)))
        hit = {h.code for h in r.villages}
        assert v.code in hit
        assert hit <= {v.code, *default_index.neighbours(v.code)}, v.code
        assert all(h.approximate for h in r.villages)


def test_polygon_outside_the_district_is_an_explicit_empty_result(default_index: RegionIndex) -> None:
    far = box(116.3, 39.9, 116.4, 40.0)  # Beijing
    r = default_index.match(MatchTarget(polygons=(far,)))
    assert r.empty and not r.villages and not r.townships and not r.district and not r.sites
    d = r.to_dict()
    assert d["empty"] is True and d["message"].startswith("无受影响区域") and d["message_en"]
    # Outside 城区 but inside 泽州县: still no managed area, the county is named as context.
    lon0, lat0, lon1, lat1 = default_index.area("140502000000").geometry.bounds  # type: ignore[union-attr]
    south = box(lon0, lat0 - 0.08, lon1, lat0 - 0.03)
    r2 = default_index.match(MatchTarget(polygons=(south,)))
    assert r2.empty and "140525000000" in {h.code for h in r2.context}


def test_shares_and_rollup(default_index: RegionIndex) -> None:
    v = default_index.area("140502007201")
    assert v is not None and v.geometry is not None
    lon, lat = v.representative_point()  # type: ignore[misc]
    half = v.geometry.intersection(box(v.geometry.bounds[0] - 1, lat - 1, lon, lat + 1))
    r = default_index.match(MatchTarget(polygons=(half,)))
    hit = {h.code: h for h in r.villages}
    assert set(hit) == {"140502007201"}
    expected = half.area / v.geometry.area
    assert hit["140502007201"].share == pytest.approx(expected, abs=1e-3)
    town = default_index.area("140502007000")
    assert r.townships[0].code == "140502007000"
    assert r.townships[0].share == pytest.approx(half.area / town.geometry.area, rel=0.02)  # type: ignore[union-attr]
    assert 0 < r.district[0].share < r.townships[0].share
    assert "demo-geohazard-1" in {s.id for s in r.sites} or not half.contains(
        next(s.geometry for s in default_index.sites() if s.id == "demo-geohazard-1"))


def test_point_with_and_without_radius(default_index: RegionIndex) -> None:
    site = next(s for s in default_index.sites() if s.id == "demo-geohazard-1")
    lon, lat = site.geometry.x, site.geometry.y  # type: ignore[attr-defined]
    r = default_index.match(MatchTarget(points=((lat, lon, 0.0),)))
    assert [h.code for h in r.villages] == [site.area_code]
    assert [s.id for s in r.sites] == ["demo-geohazard-1"]
    r2 = default_index.match(MatchTarget(points=((lat, lon, 3.0),)))
    assert len(r2.villages) > 5 and "demo-geohazard-1" in {s.id for s in r2.sites}
    with pytest.raises(ValueError):
        default_index.match(MatchTarget(circles=((lat, lon, -1.0),)))


def test_invalid_target_polygon_is_repaired(default_index: RegionIndex) -> None:
    lon, lat = default_index.area("140502006001").representative_point()  # type: ignore[misc,union-attr]
    bowtie = Polygon([(lon - 0.01, lat - 0.01), (lon + 0.01, lat + 0.01), (lon + 0.01, lat - 0.01),
                      (lon - 0.01, lat + 0.01)])
    assert not bowtie.is_valid
    r = default_index.match(MatchTarget(polygons=(bowtie,)))
    assert r.villages and all(0 < h.share <= 1 for h in r.villages)


def _grid_region(n: int = 40) -> RegionIndex:
    areas = [AreaRecord("990100000000", "D", "district", None, box(0, 0, n, n), False)]
    for t in range(4):
        areas.append(AreaRecord(f"990100{t + 1:03d}000", f"T{t}", "township", "990100000000",
                                box((t % 2) * n / 2, (t // 2) * n / 2, (t % 2 + 1) * n / 2, (t // 2 + 1) * n / 2),
                                False))
    for i in range(n):
        for j in range(n):
            t = (i >= n / 2) + 2 * (j >= n / 2)
            code = f"990100{t + 1:03d}{(i % 20) * 20 + (j % 20) + 1:03d}"
            areas.append(AreaRecord(code, code, "village", f"990100{t + 1:03d}000", box(i, j, i + 1, j + 1), False))
    sites = [SiteRecord(1, "s", "school", shapely.Point(20.5, 26.5), None),
             SiteRecord(2, "far", "school", shapely.Point(1.5, 1.5), None)]
    return RegionIndex(areas, sites, version=3)


def test_large_polygon_path_agrees_with_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    idx = _grid_region()
    ang = np.linspace(0, 2 * np.pi, 3000, endpoint=False)
    rad = 11 * (1 + 0.15 * np.sin(7 * ang))
    outer = np.column_stack([20 + rad * np.cos(ang), 20 + rad * np.sin(ang)])
    hole = np.column_stack([20 + 3 * np.cos(ang[::10]), 20 + 3 * np.sin(ang[::10])])
    poly = Polygon(outer, [hole[::-1]])
    fast = idx.match(MatchTarget(polygons=(poly,)))
    assert any(h.estimated for h in fast.villages)  # the big target took the sampled path
    monkeypatch.setattr(matching, "SMALL_TARGET_VERTICES", 10**9)
    exact = idx.match(MatchTarget(polygons=(poly,)))
    assert not any(h.estimated for h in exact.villages)
    fs, es = {h.code: h.share for h in fast.villages}, {h.code: h.share for h in exact.villages}
    assert set(fs) == set(es)
    assert max(abs(fs[c] - es[c]) for c in es) < 0.2
    assert sum(fs.values()) == pytest.approx(sum(es.values()), rel=0.02)
    in_hole, on_ring = idx.locate(19.5, 19.5), idx.locate(20.5, 22.5)
    assert in_hole not in fs and on_ring in fs and 0 < fs[on_ring] < 1  # the hole is a hole
    assert fast.region_version == 3 and [s.id for s in fast.sites] == [1]


def test_match_is_thread_safe(default_index: RegionIndex) -> None:
    targets = [MatchTarget(circles=((35.5 + 0.01 * k, 112.85, 2.0),)) for k in range(-4, 5)]
    expected = [default_index.match(t).to_dict() for t in targets]
    errors: list[str] = []

    def work() -> None:
        for _ in range(4):
            for t, e in zip(targets, expected, strict=True):
                if default_index.match(t).to_dict() != e:
                    errors.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


def test_circle_polygon_radius() -> None:
    c = circle_polygon(35.5, 112.85, 1.0)
    from geo.crs import distance_m

    xy = shapely.get_coordinates(c)
    d = distance_m(112.85, 35.5, xy[:, 0], xy[:, 1])
    assert np.all(np.abs(d - 1000) < 10)


def test_default_files_small() -> None:
    for f in REGION_DIR.iterdir():
        assert f.stat().st_size < 2 * 1024 * 1024, f
