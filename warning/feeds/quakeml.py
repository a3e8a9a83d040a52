"""QuakeML 1.2 (BED): every ``<event>`` with its preferred origin and magnitude (or the first ones
when no preference is given). QuakeML times are UTC by definition, often written without an offset.
Each event goes through the earthquake rule in ``warning.feeds.quake``; the identifier comes from the
event's ``publicID``. Parsed with the safe XML parser (no entities, no network).
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from warning.draft import ParseError, ParseResult
from warning.feeds.common import ParserContext, stable_id
from warning.feeds.quake import QuakeEvent, evaluate_all
from warning.xmlsafe import local, parse_xml


def _child(el: etree._Element | None, *path: str) -> etree._Element | None:
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if local(c.tag) == name), None)
    return el


def _value(el: etree._Element | None, *path: str) -> str | None:
    found = _child(el, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _utc(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    try:
        out = dt.datetime.fromisoformat(t)
    except ValueError:
        raise ParseError("bad_time", f"QuakeML time {text!r:.40}") from None
    return out if out.tzinfo else out.replace(tzinfo=dt.UTC)


def _preferred(event: etree._Element, kind: str) -> etree._Element | None:
    pref = _value(event, f"preferred{kind.capitalize()}ID")
    items = [c for c in event if local(c.tag) == kind]
    for c in items:
        if pref and c.get("publicID") == pref:
            return c
    return items[0] if items else None


def _event(event: etree._Element, sender: str) -> QuakeEvent:
    origin = _preferred(event, "origin")
    mag = _preferred(event, "magnitude")
    public_id = event.get("publicID") or ""
    if origin is None or mag is None:
        raise ParseError("missing_field", f"QuakeML 事件缺少震源或震级 / event lacks origin or magnitude: {public_id}")
    try:
        t = _utc(_value(origin, "time", "value"))
        lat = float(_value(origin, "latitude", "value") or "nan")
        lon = float(_value(origin, "longitude", "value") or "nan")
        m = float(_value(mag, "mag", "value") or "nan")
        depth_m = _value(origin, "depth", "value")
    except ValueError as exc:
        raise ParseError("bad_field", f"QuakeML: {exc}") from None
    if t is None or m != m:
        raise ParseError("missing_field", f"QuakeML 事件缺少时间或震级 / event lacks time or magnitude: {public_id}")
    updated = _utc(_value(origin, "creationInfo", "creationTime"))
    place = _value(event, "description", "text")
    # QuakeML depths are metres; some services (IRIS) write kilometres — values under 1000 are taken as km.
    depth = None
    if depth_m is not None:
        d = float(depth_m)
        depth = d / 1000.0 if d >= 1000 else d
    return QuakeEvent(
        source="quakeml", sender=sender, event_id=public_id or stable_id("qml", t.isoformat(), lat, lon, m),
        origin=t, updated=updated, lat=lat, lon=lon, depth_km=depth, magnitude=m,
        mag_type=_value(mag, "type"), place=place, event_type=_value(event, "type") or "earthquake",
        status=_value(origin, "evaluationStatus"),
    )


def parse(payload: bytes, ctx: ParserContext) -> ParseResult:
    root = parse_xml(payload)
    if local(root.tag) not in ("quakeml", "eventParameters"):
        raise ParseError("unknown_format", f"不是 QuakeML / not QuakeML: root <{local(root.tag)}>")
    params = root if local(root.tag) == "eventParameters" else _child(root, "eventParameters")
    if params is None:
        raise ParseError("unknown_format", "QuakeML 缺少 eventParameters / no eventParameters")
    sender = _value(params, "creationInfo", "agencyID") or (params.get("publicID") or "quakeml").split("/")[0]
    events = (c for c in params if local(c.tag) == "event")
    return evaluate_all((_event(ev, sender) for ev in events), ctx,
                        none_zh="没有地震事件", none_en="no events in the QuakeML document")
