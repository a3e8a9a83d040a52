"""US National Weather Service API alerts (``api.weather.gov/alerts…``, GeoJSON-LD).

Each feature's ``properties`` are CAP fields under JSON names (``messageType``, ``geocode`` as
``{"UGC": [...], "SAME": [...]}``, ``parameters`` as ``{name: [values]}``, ``references`` as objects),
so they are mapped onto the CAP reader in ``warning.feeds.cap`` and judged by the same rules (hazard
from the event, level from colour or the severity table). The geometry, when present, is a GeoJSON
polygon in lon/lat. Other api.weather.gov documents (points, forecasts) are not alerts: skipped.
"""

from __future__ import annotations

from typing import Any

from warning.draft import ParseError, ParseResult, Skipped
from warning.feeds.cap import draft_from_alert
from warning.feeds.common import ParserContext, load_json

_SCALARS = ("event", "urgency", "severity", "certainty", "effective", "onset", "expires", "senderName", "headline",
            "description", "instruction", "web")


def _rings(geometry: dict[str, Any] | None) -> list[str]:
    if not geometry:
        return []
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    polys = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    out = []
    for poly in polys:
        if poly:
            try:
                out.append(" ".join(f"{float(p[1])},{float(p[0])}" for p in poly[0]))
            except (TypeError, ValueError, IndexError):
                raise ParseError("invalid_geometry", "NWS 几何坐标无效 / bad NWS geometry") from None
    return out


def _alert(feature: dict[str, Any]) -> dict[str, Any]:
    p = feature.get("properties") or {}
    geocodes = [(name, str(v)) for name, values in (p.get("geocode") or {}).items() for v in values or []]
    params = [(name, str(v)) for name, values in (p.get("parameters") or {}).items() for v in values or []]
    info = {k: (str(p[k]) if p.get(k) is not None else None) for k in _SCALARS}
    info.update(language="en-US", category=[str(p["category"])] if p.get("category") else [], eventCode=[],
                parameter=params,
                area=[{"areaDesc": p.get("areaDesc"), "polygon": _rings(feature.get("geometry")), "circle": [],
                       "geocode": geocodes}])
    refs = " ".join(f"{r.get('sender')},{r.get('identifier')},{r.get('sent')}" for r in p.get("references") or []
                    if isinstance(r, dict))
    return {
        "identifier": p.get("identifier") or p.get("id") or feature.get("id"), "sender": p.get("sender"),
        "sent": p.get("sent"), "status": p.get("status"), "msgType": p.get("messageType"),
        "scope": p.get("scope"), "references": refs, "info": [info], "code": [],
    }


def parse(payload: bytes, ctx: ParserContext) -> ParseResult:
    doc = load_json(payload, allow_empty=False)
    if not isinstance(doc, dict):
        raise ParseError("unknown_format", "不是 NWS 预警 GeoJSON / not NWS alerts GeoJSON")
    if doc.get("type") == "Feature":
        features = [doc]
    elif doc.get("type") == "FeatureCollection" and isinstance(doc.get("features"), list):
        features = doc["features"]
    else:
        features = None
    result = ParseResult()
    if features is None or any(
        not isinstance(f, dict) or (f.get("properties") or {}).get("@type") not in (None, "wx:Alert")
        or "event" not in (f.get("properties") or {}) for f in features
    ):
        kind = ((doc.get("properties") or {}).get("@type")) or doc.get("@type") or doc.get("type")
        result.skipped.append(Skipped(reason=f"不是预警：NWS API 的 {kind} 文档 / not a hazard warning: an NWS API "
                                             f"{kind} document, not alerts"))
        return result
    for f in features:
        out = draft_from_alert(_alert(f), ctx, source_format="nws")
        (result.skipped if isinstance(out, Skipped) else result.warnings).append(out)  # type: ignore[arg-type]
    if not features:
        result.skipped.append(Skipped(reason="当前没有预警 / no active alerts"))
    return result
