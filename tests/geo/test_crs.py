from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

from geo.crs import (
    distance_m,
    gcj02_to_wgs84,
    gcj02_to_wgs84_arrays,
    geometry_gcj02_to_wgs84,
    normalize_crs,
    wgs84_to_gcj02,
    wgs84_to_gcj02_arrays,
)


def test_round_trip_under_one_metre_over_china() -> None:
    rng = np.random.default_rng(20260720)
    lon = rng.uniform(73.5, 135.0, 1000)
    lat = rng.uniform(18.0, 53.5, 1000)
    glon, glat = wgs84_to_gcj02_arrays(lon, lat)
    assert float(np.median(distance_m(lon, lat, glon, glat))) > 50  # the offset is real …
    wlon, wlat = gcj02_to_wgs84_arrays(glon, glat)
    back_lon, back_lat = wgs84_to_gcj02_arrays(wlon, wlat)
    assert float(np.max(distance_m(glon, glat, back_lon, back_lat))) < 1.0  # GCJ → WGS → GCJ
    assert float(np.max(distance_m(lon, lat, wlon, wlat))) < 1.0  # and the inverse recovers WGS84


def test_offset_at_jincheng_is_about_550_m_east() -> None:
    lon, lat = 112.85, 35.50
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert 0.005 < glon - lon < 0.007 and -0.001 < glat - lat < 0.0
    assert 450 < float(distance_m(lon, lat, glon, glat)) < 650
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    assert float(distance_m(lon, lat, wlon, wlat)) < 0.01


def test_no_offset_outside_china() -> None:
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert gcj02_to_wgs84(-74.0, 40.7) == (-74.0, 40.7)


def test_crs_names() -> None:
    assert normalize_crs("epsg:4326") == "WGS84"
    assert normalize_crs("GCJ-02") == "GCJ02"
    assert normalize_crs("EPSG:4490") == "CGCS2000"
    assert normalize_crs("BD09") is None


def test_datav_gcj02_boundary_converted_matches_wgs84(data_dir: Path) -> None:
    geo = data_dir / "geo"
    gcj = json.loads((geo / "jincheng_140500_districts_gcj02_datav.geojson").read_text(encoding="utf-8"))
    wgs = json.loads((geo / "jincheng_140500_districts_wgs84.geojson").read_text(encoding="utf-8"))

    def pick(fc: dict, code: str) -> shapely.Geometry:  # type: ignore[type-arg]
        return next(shape(f["geometry"]) for f in fc["features"] if str(f["properties"]["adcode"]) == code)

    raw, truth = pick(gcj, "140502"), pick(wgs, "140502")
    conv = geometry_gcj02_to_wgs84(raw)

    def iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
        return float(a.intersection(b).area / a.union(b).area)

    assert iou(conv, truth) > iou(raw, truth) + 0.05
    assert iou(conv, truth) > 0.95
