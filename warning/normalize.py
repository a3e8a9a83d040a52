"""A ``WarningDraft`` (plus its geo match) as the fixed JSON shape other tools consume.

This is the shape ``jiaoying normalize`` prints: ``{"warnings": [...], "skipped": [{"reason": ...}]}``
where each warning carries identifier, sender, msg_type, status, hazard, event, level, sent,
effective, onset, expires (ISO 8601 with offset, or null), references, languages, headline (zh first),
area (GeoJSON geometry in WGS84 or null), geocodes and affected {villages, townships, sites}. More
keys are added after those (texts per language, CAP severity/urgency/certainty, parameters, source
facts) — consumers must ignore keys they do not know.

Pure: no I/O, no clock. Circles are drawn as 64-sided polygons on a local tangent plane, which is
well under a metre off at the radii warnings use (< 500 km) compared with the sources' own precision.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import math
from itertools import chain
from typing import Any

from warning.draft import AreaSpec, ParseResult, Skipped, WarningDraft
from warning.feeds.common import EARTH_RADIUS_KM, china_admin_code

try:  # geo is a lower layer; while it is absent the output simply has no affected areas
    from geo.targets import MatchTarget
except ImportError:  # pragma: no cover - depends on the tree state
    MatchTarget = None  # type: ignore[assignment,misc]

CIRCLE_SIDES = 64


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@functools.lru_cache(maxsize=1024)
def _circle_ring(lat: float, lon: float, radius_km: float, sides: int) -> tuple[tuple[float, float], ...]:
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    pts = tuple((round(lon + dlon * _COS[sides][i], 7), round(max(-90.0, min(90.0, lat + dlat * _SIN[sides][i])), 7))
                for i in range(sides))
    return (*pts, pts[0])


class _Trig(dict):  # sides -> unit circle table, computed once per side count
    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, sides: int) -> tuple[float, ...]:
        table = tuple(self.fn(2 * math.pi * i / sides) for i in range(sides))
        self[sides] = table
        return table


_COS, _SIN = _Trig(math.cos), _Trig(math.sin)


def circle_ring(lat: float, lon: float, radius_km: float, sides: int = CIRCLE_SIDES) -> list[list[float]]:
    """A closed (lon, lat) ring approximating a circle of ``radius_km`` around (lat, lon)."""
    return [list(p) for p in _circle_ring(lat, lon, radius_km, sides)]


def area_geojson(area: AreaSpec) -> dict[str, Any] | None:
    """One GeoJSON geometry for all the shapes of an area (null when it has none, e.g. geocodes only)."""
    polys: list[list[list[list[float]]]] = [[list(map(list, ring))] for ring in area.polygons]
    points: list[list[float]] = []
    for lat, lon, r in [*area.circles, *area.points]:
        if r > 0:
            polys.append([circle_ring(lat, lon, r)])
        else:
            points.append([lon, lat])
    shapes: list[dict[str, Any]] = []
    if len(polys) == 1:
        shapes.append({"type": "Polygon", "coordinates": polys[0]})
    elif polys:
        shapes.append({"type": "MultiPolygon", "coordinates": polys})
    if len(points) == 1:
        shapes.append({"type": "Point", "coordinates": points[0]})
    elif points:
        shapes.append({"type": "MultiPoint", "coordinates": points})
    if not shapes:
        return None
    if len(shapes) == 1:
        return shapes[0]
    return {"type": "GeometryCollection", "geometries": shapes}


def area_to_target(areas: AreaSpec | list[AreaSpec]) -> Any:
    """What geo matches: shapely polygons (repaired with make_valid), circles, points, Chinese codes.

    Only Chinese statistical codes go to geo as geocodes: foreign codes (FIPS, EMMA_ID …) can never
    name an area of the region, so asking would only produce noise.

    The rule is judged per area block (one CAP ``<area>``): where a block has a polygon or a circle,
    the geometry alone says where, and its geocodes are a coarse equivalent (CAP 1.2 asks for a
    geocode to come "in concert with an equivalent description" in polygon/circle form) that, in
    CMA-style alerts, names the issuing office's whole county. Matching them as well would put every
    village of the county under a warning drawn over a part of it. A block with only geocodes is
    targeted by its codes, whatever the other blocks hold. The geocodes stay on the warning as sent.

    A circle of radius 0 is a point: it targets the area that contains it (and, in geo, the hazard
    sites within ``geo.matching.POINT_SITE_KM``).
    """
    if MatchTarget is None:
        return None
    from shapely import make_valid
    from shapely.geometry import Polygon

    blocks = [areas] if isinstance(areas, AreaSpec) else areas
    polygons: list[Any] = []
    circles: list[tuple[float, float, float]] = []
    points: list[tuple[float, float, float]] = []
    codes: list[str] = []
    for block in blocks:
        for ring in block.polygons:
            poly = Polygon(ring)
            if not poly.is_valid:
                poly = make_valid(poly)
            if not poly.is_empty:
                polygons.append(poly)
        for lat, lon, r in block.circles:
            (circles if r > 0 else points).append((lat, lon, r))
        points.extend(block.points)
        if block.polygons or block.circles:
            continue
        for _name, value in block.geocodes:
            code = china_admin_code(value)
            if code and code not in codes:
                codes.append(code)
    return MatchTarget(polygons=tuple(polygons), circles=tuple(circles), points=tuple(points), geocodes=tuple(codes))


_PLAIN = frozenset({str, int, bool, type(None)})
_LISTS = frozenset({list})


def _jsonable(value: Any) -> Any:
    """``value`` as JSON types. Lists that already are JSON (nearly all) are returned as they are, not
    copied: the document is built to be serialized, and it shares them with the draft."""
    t = type(value)
    if t in _PLAIN:  # nearly every leaf: answered by one set lookup (str subclasses such as enums go on)
        return value
    if t is list:
        if _PLAIN.issuperset(map(type, value)):  # codes, categories: checked in C
            return value
        # lists of (name, value) pairs: both levels checked in C, no call per pair
        if _LISTS.issuperset(map(type, value)) and _PLAIN.issuperset(map(type, chain.from_iterable(value))):
            return value
        return [v if type(v) in _PLAIN else _jsonable(v) for v in value]
    if t is dict:  # the extra facts: their usual values (text, lists of text) answered without a call
        out: dict[str, Any] = {}
        for k, v in value.items():
            tv = type(v)
            out[k if type(k) is str else str(k)] = (
                v if tv in _PLAIN or (tv is list and _PLAIN.issuperset(map(type, v))) else _jsonable(v)
            )
        return out
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def affected_json(match: Any) -> dict[str, Any]:
    if match is None:
        return {"villages": [], "townships": [], "sites": [], "unknown_geocodes": []}
    return {
        "villages": [h.code for h in match.villages],
        "townships": [h.code for h in match.townships],
        "sites": [{"id": s.id, "name": s.name, "kind": s.kind} for s in match.sites],
        "unknown_geocodes": list(getattr(match, "unknown_geocodes", []) or []),
    }


def _block_json(block: AreaSpec) -> dict[str, Any]:
    return {"description": block.description, "geometry": area_geojson(block),
            "geocodes": [{"name": n, "value": v} for n, v in block.geocodes]}


def draft_to_json(draft: WarningDraft, match: Any | None) -> dict[str, Any]:
    """The fixed output shape (module docstring); ``match`` is a geo MatchResult or None."""
    # Adapters hand out one datetime object for equal times (sent = effective = onset, usually): its
    # ISO text is written once.
    sent, effective, onset, expires = draft.sent, draft.effective, draft.onset, draft.expires
    sent_iso = sent.isoformat()
    effective_iso = sent_iso if effective is sent else iso(effective)
    onset_iso = sent_iso if onset is sent else effective_iso if onset is effective else iso(onset)
    infos = draft.infos
    level = draft.level
    hazard = draft.hazard
    area = draft.area
    # Enum members' ``_value_`` is the plain value, read without the ``value`` property's call.
    out = {
        "identifier": draft.identifier,
        "sender": draft.sender,
        "msg_type": draft.msg_type._value_,
        "status": draft.status._value_,
        "hazard": hazard._value_ if hazard is not None else None,
        "event": draft.event,
        "level": level._value_ if level is not None else None,
        "sent": sent_iso,
        "effective": effective_iso,
        "onset": onset_iso,
        "expires": expires.isoformat() if expires is not None else None,
        "references": [{"sender": r.sender, "identifier": r.identifier, "sent": iso(r.sent)} for r in draft.references],
        "languages": list(dict.fromkeys(i.language for i in infos)),
        "headline": draft.headline,
        "area": area_geojson(area),
        "geocodes": [{"name": n, "value": v} for n, v in area.geocodes],
        "affected": affected_json(match),
        "area_description": area.description,
        "infos": [
            {"language": i.language, "event": i.event, "headline": i.headline, "description": i.description,
             "instruction": i.instruction, "sender_name": i.sender_name, "web": i.web}
            for i in infos
        ],
        "severity": draft.severity,
        "urgency": draft.urgency,
        "certainty": draft.certainty,
        "parameters": draft.parameters,
        "source_format": draft.source_format,
        "extra": _jsonable(draft.extra),
    }
    if len(draft.areas) > 1:
        out["areas"] = [_block_json(b) for b in draft.areas]
    if draft.area_problems:
        out["area_problems"] = list(draft.area_problems)
    return out


def skipped_to_json(skipped: Skipped) -> dict[str, Any]:
    out: dict[str, Any] = {"reason": skipped.reason, "identifier": skipped.identifier}
    if skipped.msg_type:
        out["msg_type"] = skipped.msg_type
        out["sender"] = skipped.sender
        out["references"] = [{"sender": r.sender, "identifier": r.identifier, "sent": iso(r.sent)}
                             for r in skipped.references]
        if skipped.note:
            out["note"] = skipped.note
    return out


def needs_reference(draft: WarningDraft) -> bool:
    """An Update whose own content names no hazard: what it is comes only from the warning it references,
    so it is not a warning on its own (intake carries the referenced content over and flags it)."""
    return draft.hazard is None and draft.msg_type._value_ == "update"


def update_without_hazard(draft: WarningDraft) -> Skipped:
    what = "没有 <info>" if not draft.infos else "内容未指明灾种"
    what_en = "carries no <info>" if not draft.infos else "names no hazard"
    return Skipped(reason=f"更新消息{what}，须与所引用的预警匹配后才有内容 / an Update that {what_en}: its content "
                          f"comes from the warning it references ({len(draft.references)} reference(s))",
                   identifier=draft.identifier, msg_type="update", sender=draft.sender,
                   references=tuple(draft.references))


def result_to_json(result: ParseResult, matcher: Any | None = None) -> dict[str, Any]:
    """The whole ``jiaoying normalize`` document; ``matcher(target) -> MatchResult`` targets each warning.

    With a matcher, each area block is also checked as a geometry (``warning.area.screen``): a block
    that cannot be an area is left out and said in the warning's ``area_problems``.
    """
    warnings = []
    skipped = [skipped_to_json(s) for s in result.skipped]
    for draft in result.warnings:
        if needs_reference(draft):
            skipped.append(skipped_to_json(update_without_hazard(draft)))
            continue
        match = None
        if matcher is not None:
            from warning.area import screen

            screen(draft)
            try:
                target = area_to_target(draft.areas) if draft.areas else None
                if target is not None:
                    match = matcher(target)
            except Exception as exc:  # noqa: BLE001 - one warning's geometry must not cost the others
                draft.area_problems.append(f"无法确定受影响区域 / targeting failed: {type(exc).__name__}: {exc}"[:300])
        warnings.append(draft_to_json(draft, match))
    out: dict[str, Any] = {"warnings": warnings, "skipped": skipped}
    if result.links:
        out["links"] = list(result.links)
    return out
