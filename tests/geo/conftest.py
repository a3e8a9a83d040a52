from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from config.clock import VirtualClock
from config.database import session_scope
from geo.matching import RegionIndex
from geo.region import default_region_index, seed_default_region


@pytest.fixture(scope="session")
def default_index() -> RegionIndex:
    return default_region_index()


@pytest.fixture
def seeded(session_factory: sessionmaker[Session], clock: VirtualClock) -> sessionmaker[Session]:
    with session_scope(session_factory) as s:
        seed_default_region(s, clock.now())
    return session_factory


def feature(props: dict[str, Any], coords: list[Any], kind: str = "Polygon") -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": {"type": kind, "coordinates": coords}}


def square(lon: float, lat: float, d: float = 0.004) -> list[Any]:
    return [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]]


@pytest.fixture
def bad_areas_geojson(default_index: RegionIndex) -> bytes:
    """Three problems (bow-tie, swapped lat/lon, unknown parent) among two good features."""
    lon, lat = default_index.area("140502001001").representative_point()  # type: ignore[misc]
    bowtie = [[[lon, lat], [lon + 0.004, lat + 0.004], [lon + 0.004, lat], [lon, lat + 0.004], [lon, lat]]]
    swapped = [[[y, x] for x, y in square(lon, lat)[0]]]
    feats = [
        feature({"code": "140502001901", "name": "好网格一", "level": "grid", "parent_code": "140502001001"},
                square(lon, lat, 0.001)),
        feature({"code": "140502001902", "name": "蝴蝶结", "level": "grid", "parent_code": "140502001001"}, bowtie),
        feature({"code": "140502001903", "name": "颠倒", "level": "grid", "parent_code": "140502001001"}, swapped),
        feature({"code": "140502099001", "name": "无上级"}, square(lon, lat, 0.001)),
        feature({"code": "140502001904", "name": "好网格二", "level": "grid", "parent_code": "140502001001"},
                square(lon + 0.001, lat, 0.001)),
    ]
    return json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False).encode()
