"""USGS earthquake GeoJSON: the summary feeds (FeatureCollection, also the FDSN ``format=geojson``
query) and the event detail (a single Feature with ``products``). Each event goes through the
earthquake rule in ``warning.feeds.quake`` (thresholds and attenuation relation documented there).
Times are epoch milliseconds (UTC). Events whose ``type`` is not an earthquake (quarry blast,
explosion) are skipped with the reason.
"""

from __future__ import annotations

from typing import Any

from warning.draft import ParseError, ParseResult
from warning.feeds.common import ParserContext, from_epoch_ms, load_json
from warning.feeds.quake import QuakeEvent, as_object, evaluate_all

SENDER = "earthquake.usgs.gov"


def _event(feature: dict[str, Any]) -> QuakeEvent:
    props = feature.get("properties") or {}
    geom = feature.get("geometry") or {}
    coords = geom.get("coordinates") or []
    if len(coords) < 2 or props.get("mag") is None or props.get("time") is None:
        raise ParseError("missing_field", f"USGS 事件缺少坐标/震级/时间 / event lacks coordinates, mag or time: "
                                          f"{feature.get('id')!r}")
    try:
        return QuakeEvent(
            source="usgs", sender=SENDER, event_id=str(feature.get("id") or f"{props.get('net')}{props.get('code')}"),
            origin=from_epoch_ms(props["time"]),
            updated=from_epoch_ms(props["updated"]) if props.get("updated") is not None else None,
            lat=float(coords[1]), lon=float(coords[0]),
            depth_km=float(coords[2]) if len(coords) > 2 and coords[2] is not None else None,
            magnitude=float(props["mag"]), mag_type=props.get("magType"), place=props.get("place"),
            url=props.get("url"), status=props.get("status"), event_type=str(props.get("type") or "earthquake"),
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise ParseError("bad_field", f"USGS 事件字段无效 / bad event field: {exc}") from None


def parse(payload: bytes, ctx: ParserContext) -> ParseResult:
    doc = load_json(payload, allow_empty=False)
    if not isinstance(doc, dict):
        raise ParseError("unknown_format", "不是 USGS GeoJSON / not USGS GeoJSON")
    if doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise ParseError("unknown_format", "features 不是列表 / features is not a list")
    elif doc.get("type") == "Feature":
        features = [doc]
    else:
        raise ParseError("unknown_format", "不是 USGS GeoJSON / not USGS GeoJSON")
    return evaluate_all((_event(as_object(f, "feature ", "a feature")) for f in features), ctx,
                        none_zh="没有地震事件", none_en="no earthquake events in the feed")
