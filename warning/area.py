"""A warning's area: checking the geometry a source sent, and turning it into GeoJSON (WGS84).

Polygons are repaired with ``make_valid`` (a self-touching ring from a source is still a real
area); what cannot be an area at all — coordinates outside the globe, NaN, rings of fewer than
three distinct points, negative or absurd radii — is *invalid*, and the payload is quarantined
rather than targeting the wrong villages. Circles become 64-sided polygons for display and
matching; the exact circle stays in ``to_dict`` for the CAP export.
"""

from __future__ import annotations

import math
from typing import Any

from shapely import make_valid
from shapely.geometry import GeometryCollection, Point, Polygon, mapping
from shapely.ops import unary_union

from warning.draft import AreaSpec

MAX_RADIUS_KM = 2000.0
_KM_PER_DEG = 111.32


def _bad_coord(lon: float, lat: float) -> bool:
    return not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90)


def problems(spec: AreaSpec) -> list[str]:
    """Why this area cannot be used, one line per problem (empty when it is fine)."""
    out: list[str] = []
    for i, ring in enumerate(spec.polygons):
        if any(_bad_coord(lon, lat) for lon, lat in ring):
            out.append(f"polygon {i}: coordinate outside WGS84 range")
            continue
        if len({(lon, lat) for lon, lat in ring}) < 3:
            out.append(f"polygon {i}: fewer than 3 distinct points")
            continue
        if Polygon(ring).area == 0:
            out.append(f"polygon {i}: zero area")
    for kind, items in (("circle", spec.circles), ("point", spec.points)):
        for i, (lat, lon, radius) in enumerate(items):
            if _bad_coord(lon, lat):
                out.append(f"{kind} {i}: centre outside WGS84 range")
            elif not math.isfinite(radius) or radius < 0 or radius > MAX_RADIUS_KM:
                out.append(f"{kind} {i}: radius {radius} km out of range")
    return out


def circle_polygon(lat: float, lon: float, radius_km: float, segments: int = 64) -> Polygon:
    dlat = radius_km / _KM_PER_DEG
    dlon = radius_km / (_KM_PER_DEG * max(math.cos(math.radians(lat)), 1e-6))
    ring = [
        (lon + dlon * math.sin(2 * math.pi * k / segments), lat + dlat * math.cos(2 * math.pi * k / segments))
        for k in range(segments)
    ]
    return Polygon(ring)


def to_geojson(spec: AreaSpec) -> dict[str, Any] | None:
    """The area as one GeoJSON geometry, or None when the source gave only geocodes (or nothing)."""
    shapes = [make_valid(Polygon(ring)) for ring in spec.polygons]
    shapes += [circle_polygon(lat, lon, r) for lat, lon, r in spec.circles if r > 0]
    shapes += [circle_polygon(lat, lon, r) for lat, lon, r in spec.points if r > 0]
    points = [Point(lon, lat) for lat, lon, r in [*spec.circles, *spec.points] if r <= 0]
    areal = unary_union(shapes) if shapes else None
    if areal is not None and areal.geom_type == "GeometryCollection":
        areal = unary_union([g for g in areal.geoms if g.geom_type in ("Polygon", "MultiPolygon")])
    parts = ([areal] if areal is not None and not areal.is_empty else []) + points
    if not parts:
        return None
    geom = parts[0] if len(parts) == 1 else GeometryCollection(parts)
    return dict(mapping(geom))


def to_dict(spec: AreaSpec) -> dict[str, Any]:
    return {
        "description": spec.description,
        "polygons": [[[lon, lat] for lon, lat in ring] for ring in spec.polygons],
        "circles": [list(c) for c in spec.circles],
        "points": [list(p) for p in spec.points],
        "geocodes": [list(g) for g in spec.geocodes],
    }


def from_dict(data: dict[str, Any] | None) -> AreaSpec:
    data = data or {}
    return AreaSpec(
        description=data.get("description"),
        polygons=[[(float(lon), float(lat)) for lon, lat in ring] for ring in data.get("polygons", [])],
        circles=[(float(a), float(b), float(c)) for a, b, c in data.get("circles", [])],
        points=[(float(a), float(b), float(c)) for a, b, c in data.get("points", [])],
        geocodes=[(str(n), str(v)) for n, v in data.get("geocodes", [])],
    )
