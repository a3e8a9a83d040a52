"""A warning's area: checking the geometry a source sent, and turning it into GeoJSON (WGS84).

Polygons are repaired with ``make_valid`` (a self-touching ring from a source is still a real
area); what cannot be an area at all — coordinates outside the globe, NaN, rings of fewer than
three distinct points, zero area, negative or absurd radii — is *invalid*: that one area block is
left out (never targeting the wrong villages) and the problem is kept on the warning for the duty
officer, while the warning and its other blocks go on. Circles become 64-sided polygons for display
and matching; the exact circle stays in ``to_dict`` for the CAP export. A radius of 0 is a point.
"""

from __future__ import annotations

import math
from typing import Any

from shapely import make_valid
from shapely.geometry import GeometryCollection, Point, Polygon, mapping
from shapely.ops import unary_union

from warning.draft import MAX_RADIUS_KM, AreaSpec, WarningDraft

_KM_PER_DEG = 111.32


def _bad_coord(lon: float, lat: float) -> bool:
    return not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90)


def problems(spec: AreaSpec) -> list[str]:
    """Why this area block cannot be used, one line per problem (empty when it is fine).

    A self-intersecting ring is not a problem: ``make_valid`` repairs it (a bow-tie becomes its two
    triangles). A ring that encloses nothing, even after repair, is.
    """
    out: list[str] = []
    for i, ring in enumerate(spec.polygons):
        if any(_bad_coord(lon, lat) for lon, lat in ring):
            out.append(f"polygon {i}: coordinate outside WGS84 range")
            continue
        if len({(lon, lat) for lon, lat in ring}) < 3:
            out.append(f"polygon {i}: fewer than 3 distinct points")
            continue
        poly = Polygon(ring)
        if poly.is_valid:
            if poly.area == 0:
                out.append(f"polygon {i}: zero area")
        elif _areal(make_valid(poly)) is None:  # a bow-tie's signed area is 0 too: judge the repaired shape
            out.append(f"polygon {i}: encloses no area, even repaired")
    for kind, items in (("circle", spec.circles), ("point", spec.points)):
        for i, (lat, lon, radius) in enumerate(items):
            if _bad_coord(lon, lat):
                out.append(f"{kind} {i}: centre outside WGS84 range")
            elif not math.isfinite(radius) or radius < 0 or radius > MAX_RADIUS_KM:
                out.append(f"{kind} {i}: radius {radius} km out of range")
    return out


def _areal(geom: Any) -> Any:
    """The polygonal part of a geometry, or None when it has none."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return None if geom.is_empty else geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
        return unary_union(parts) if parts else None
    return None


def screen(draft: WarningDraft) -> list[str]:
    """Leave out the area blocks that cannot be an area, saying why in ``draft.area_problems``.

    One bad ``<area>`` must not cost the warning its other areas, nor the duty officer the warning:
    the rest goes on, and the problem is kept for whoever looks at it. Returns the new problems.
    """
    kept: list[AreaSpec] = []
    found: list[str] = []
    for block in draft.areas:
        bad = problems(block)
        if bad:
            found.append(f"{block.label}: 几何无效 / invalid geometry: " + "; ".join(bad) + " [invalid_geometry]")
        else:
            kept.append(block)
    if found:
        draft.areas = kept
        draft.area_problems.extend(found)
    return found


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


def to_dict(spec: AreaSpec, blocks: list[AreaSpec] | None = None) -> dict[str, Any]:
    """The area as stored: the merged shapes at the top (as before), each block under ``blocks``
    when there are several, so the CAP export writes one ``<area>`` per block as the source did."""
    out: dict[str, Any] = {
        "description": spec.description,
        "polygons": [[[lon, lat] for lon, lat in ring] for ring in spec.polygons],
        "circles": [list(c) for c in spec.circles],
        "points": [list(p) for p in spec.points],
        "geocodes": [list(g) for g in spec.geocodes],
    }
    if blocks is not None and len(blocks) > 1:
        out["blocks"] = [to_dict(b) for b in blocks]
    return out


def blocks_from_dict(data: dict[str, Any] | None) -> list[AreaSpec]:
    """The stored blocks (one for an area stored before blocks were kept, or with a single block)."""
    data = data or {}
    if data.get("blocks"):
        return [from_dict(b) for b in data["blocks"]]
    spec = from_dict(data)
    return [] if spec.empty and not spec.description else [spec]


def from_dict(data: dict[str, Any] | None) -> AreaSpec:
    data = data or {}
    return AreaSpec(
        description=data.get("description"),
        polygons=[[(float(lon), float(lat)) for lon, lat in ring] for ring in data.get("polygons", [])],
        circles=[(float(a), float(b), float(c)) for a, b, c in data.get("circles", [])],
        points=[(float(a), float(b), float(c)) for a, b, c in data.get("points", [])],
        geocodes=[(str(n), str(v)) for n, v in data.get("geocodes", [])],
    )
