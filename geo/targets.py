"""What spatial targeting speaks of: the region's records, a warning's target, and the result of a match.

Plain values shared by the matching index (``geo/matching.py``), the region loader and the warning side;
with them the few pure geometry helpers every caller needs (a circle as a polygon, the polygonal part of a
repaired geometry, the distance from a point to a site).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

KM_PER_DEG_LAT = 111.195  # mean Earth radius 6371 km
CIRCLE_SEGMENTS = 64
# A point target (an epicentre, a CAP circle of radius 0, a reported place) names a place, not an area: it
# targets the finest area containing it, and the hazard sites within this distance of it (a site drawn as a
# point is never exactly on a reported point; 0.5 km covers the precision of such reports).
POINT_SITE_KM = 0.5

NO_AREA_ZH = "无受影响区域：预警范围不在本辖区内"
NO_AREA_EN = "No area affected: the warning area lies outside the region"


@dataclass(frozen=True)
class AreaRecord:
    code: str
    name: str
    level: str  # 'district' | 'township' | 'village' | 'grid'
    parent_code: str | None
    geometry: BaseGeometry | None  # WGS84 lon/lat
    approximate: bool
    context: bool = False  # outside the managed region (a neighbouring county), reported apart
    population: int | None = None
    households: int | None = None
    label: tuple[float, float] | None = None  # (lon, lat) where the map puts the name; the generator's seed

    def representative_point(self) -> tuple[float, float] | None:
        """(lon, lat): the label point, else the point deepest inside (pole of inaccessibility); None if no geometry."""
        if self.label is not None:
            return self.label
        if self.geometry is None or self.geometry.is_empty:
            return None
        geom = self.geometry
        if geom.geom_type == "MultiPolygon":
            geom = max(geom.geoms, key=lambda g: g.area)
        if geom.geom_type == "Polygon":
            from shapely.ops import polylabel

            p = polylabel(geom, tolerance=1e-6)
        else:
            p = geom.representative_point()
        return (p.x, p.y)


@dataclass(frozen=True)
class SiteRecord:
    id: int | str
    name: str
    kind: str
    geometry: BaseGeometry
    area_code: str | None
    residents: int | None = None  # 避险转移人数
    demo: bool = False


@dataclass(frozen=True)
class MatchTarget:
    polygons: tuple[BaseGeometry, ...] = ()
    circles: tuple[tuple[float, float, float], ...] = ()  # (lat, lon, radius_km), CAP order
    points: tuple[tuple[float, float, float], ...] = ()  # (lat, lon, radius_km): epicentre, hotspot
    geocodes: tuple[str, ...] = ()  # admin codes at any level, 2/4/6/9/12 digits


class AreaHit(NamedTuple):
    """Immutable like the other records, but a tuple: a large target yields thousands of hits per call and a
    tuple is several times cheaper to create than a frozen dataclass."""

    code: str
    name: str
    level: str
    share: float  # 0..1 of the area covered
    approximate: bool
    estimated: bool = False  # share estimated from sample points rather than overlaid

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(frozen=True)
class SiteHit:
    id: int | str
    name: str
    kind: str
    area_code: str | None


@dataclass
class MatchResult:
    villages: list[AreaHit]
    townships: list[AreaHit]
    district: list[AreaHit]
    sites: list[SiteHit]
    unknown_geocodes: list[str]
    grids: list[AreaHit] = field(default_factory=list)
    context: list[AreaHit] = field(default_factory=list)  # neighbouring counties touched (not managed here)
    region_version: int = 0

    @property
    def empty(self) -> bool:
        return not (self.villages or self.townships or self.district or self.grids or self.sites)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "empty": self.empty,
            "villages": [h._asdict() for h in self.villages],
            "townships": [h._asdict() for h in self.townships],
            "district": [h._asdict() for h in self.district],
            "grids": [h._asdict() for h in self.grids],
            "sites": [asdict(s) for s in self.sites],
            "context": [h._asdict() for h in self.context],
            "unknown_geocodes": list(self.unknown_geocodes),
            "region_version": self.region_version,
        }
        if self.empty:
            out["message"], out["message_en"] = NO_AREA_ZH, NO_AREA_EN
        return out


def checked_point(lat: float, lon: float) -> Point:
    if not (-90.0 <= float(lat) <= 90.0 and -180.0 <= float(lon) <= 180.0):  # NaN fails too
        raise ValueError(f"point out of range: lat={lat}, lon={lon}")
    return Point(float(lon), float(lat))


def km_to(pt: Point, geom: BaseGeometry) -> float:
    """Great-circle km from a point to the nearest point of a geometry (small distances)."""
    if geom.geom_type != "Point":
        if geom.contains(pt):
            return 0.0
        geom = nearest_points(pt, geom)[1]
    dlat = math.radians(geom.y - pt.y)
    dlon = math.radians(geom.x - pt.x)
    a = (math.sin(dlat / 2) ** 2
         + math.cos(math.radians(pt.y)) * math.cos(math.radians(geom.y)) * math.sin(dlon / 2) ** 2)
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def circle_polygon(lat: float, lon: float, radius_km: float, segments: int = CIRCLE_SEGMENTS) -> Polygon:
    """A circle on the ground as a lon/lat polygon (local equirectangular scale; fine below ~200 km)."""
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"circle centre out of range: lat={lat}, lon={lon}")
    if not (radius_km > 0 and math.isfinite(radius_km)):
        raise ValueError(f"circle radius must be a positive number of km, got {radius_km}")
    ang = np.linspace(0.0, 2.0 * math.pi, segments, endpoint=False)
    dlat = radius_km / KM_PER_DEG_LAT
    dlon = radius_km / (KM_PER_DEG_LAT * max(math.cos(math.radians(lat)), 1e-6))
    return Polygon(np.column_stack([lon + dlon * np.cos(ang), lat + dlat * np.sin(ang)]))


def polygonal(geom: BaseGeometry) -> BaseGeometry | None:
    """The areal part of a geometry, repaired with ``make_valid`` (never ``buffer(0)``)."""
    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


