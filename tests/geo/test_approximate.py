from __future__ import annotations

import json

import shapely
from shapely.geometry import shape

from geo.approximate import generate
from geo.matching import RegionIndex
from geo.region import REGION_DIR, _boundary, _groups, region_settings


def test_stored_polygons_are_what_the_generator_makes() -> None:
    cfg = region_settings()
    boundary = _boundary(REGION_DIR, cfg)
    _, _, groups = _groups(REGION_DIR, cfg)
    villages, townships, labels = generate(boundary, groups, seed=int(cfg["seed"]))
    stored = {f["properties"]["code"]: f for f in
              json.loads((REGION_DIR / cfg["approximate_polygons"]).read_text(encoding="utf-8"))["features"]}
    assert set(stored) == set(villages) | set(townships)
    for code, geom in {**villages, **townships}.items():
        s = shape(stored[code]["geometry"])
        assert geom.symmetric_difference(s).area / geom.area < 1e-3, code
        assert stored[code]["properties"]["approximate"] is True
    for code, (lon, lat) in labels.items():
        assert stored[code]["properties"]["label"] == [round(lon, 6), round(lat, 6)]


def test_villages_tile_the_district_and_townships_are_contiguous(default_index: RegionIndex) -> None:
    district = default_index.area("140502000000")
    assert district is not None and district.geometry is not None and not district.approximate
    villages = [a for a in default_index.villages_of("140502000000") if a.geometry is not None]
    assert len(villages) == 134
    union = shapely.union_all([v.geometry for v in villages])
    assert union.symmetric_difference(district.geometry).area / district.geometry.area < 1e-4
    assert sum(v.geometry.area for v in villages) == union.area or abs(
        sum(v.geometry.area for v in villages) - union.area) / union.area < 1e-4  # no overlaps
    for town in default_index.children("140502000000"):
        if town.geometry is None:
            assert town.code == "140525100000"  # 南村镇: by code only
            continue
        assert town.approximate and town.geometry.geom_type == "Polygon", town.code
        own = shapely.union_all([v.geometry for v in default_index.villages_of(town.code)])
        assert own.symmetric_difference(town.geometry).area / town.geometry.area < 1e-4
        sizes = [v.geometry.area for v in default_index.villages_of(town.code)]
        assert min(sizes) > 0
