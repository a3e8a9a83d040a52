"""Geohazard (地质灾害) warnings: CAP-coded 地质灾害气象风险预警, and a GeoJSON risk-zone format.

- An XML payload is read as CAP (``warning.feeds.cap``); the hazard comes from its event text
  (地质灾害/滑坡/泥石流…), falling back to geohazard as this feed's default.
- The risk-zone format defined here, a GeoJSON FeatureCollection in WGS84::

      {"type": "FeatureCollection",
       "id": "JC-DZ-20260720-01",                 # issuance id (required, stable)
       "sender": "晋城市自然资源局",                 # issuer
       "sent": "2026-07-20T08:00:00+08:00",       # issued (offset required)
       "expires": "2026-07-21T08:00:00+08:00",    # optional
       "status": "actual", "msg_type": "alert",   # optional; CAP values (alert/update/cancel)
       "references": [{"sender": ..., "identifier": ..., "sent": ...}],   # optional, for update/cancel
       "headline": "地质灾害气象风险预警",           # optional
       "features": [{"type": "Feature", "geometry": {"type": "Polygon", ...},
                     "properties": {"zone_id": "Z1", "name": "…", "level": "橙色",
                                    "kinds": ["滑坡", "崩塌"], "geocodes": ["140502100000"]}}]}

  ``level`` may be a colour (蓝/黄/橙/红 色, blue/yellow/orange/red), a grade (Ⅰ–Ⅳ级, 一–四级), or a
  number 1–4 in the Chinese convention (1 = 一级 = red, highest; 4 = blue). Zones are grouped by level:
  each level present gives one warning (identifier ``<id>-<level>``) whose area is its zones, because a
  response plan acts per level. A zone without geometry must carry geocodes.
- A CSV landslide catalogue (the NASA Global Landslide Catalog shape) records past events, not
  warnings: reported as skipped with the count.
"""

from __future__ import annotations

from typing import Any

from warning.draft import (
    AreaSpec,
    Hazard,
    InfoText,
    Level,
    MsgType,
    ParseError,
    ParseResult,
    Reference,
    Skipped,
    Status,
    WarningDraft,
)
from warning.feeds import cap
from warning.feeds.common import ParserContext, check_lat_lon, china_admin_code, load_json, parse_time
from warning.levels import level_from_text

_NUMERIC = {"1": Level.RED, "2": Level.ORANGE, "3": Level.YELLOW, "4": Level.BLUE}
_EN = {"blue": Level.BLUE, "yellow": Level.YELLOW, "orange": Level.ORANGE, "red": Level.RED}


def _level(value: Any) -> Level:
    text = str(value if value is not None else "").strip()
    lvl = _EN.get(text.lower()) or _NUMERIC.get(text) or level_from_text(text) or level_from_text(text + "级")
    if lvl is None:
        raise ParseError("bad_field", f"无法识别的风险等级 / unknown risk level {value!r:.20}")
    return lvl


def _rings(geometry: dict[str, Any] | None) -> list[list[tuple[float, float]]]:
    if not geometry:
        return []
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    polys = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else None
    if polys is None:
        raise ParseError("invalid_geometry", f"风险区几何须为面 / zone geometry must be a polygon, got {kind}")
    out = []
    for poly in polys:
        try:
            ring = [(float(p[0]), float(p[1])) for p in poly[0]]
        except (TypeError, ValueError, IndexError):
            raise ParseError("invalid_geometry", "风险区坐标无效 / bad zone coordinates") from None
        for lon, lat in ring:
            check_lat_lon(lat, lon, "zone")
        if len(set(ring)) < 3:
            raise ParseError("invalid_geometry", "风险区点数不足 / a zone needs 3 distinct points")
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        out.append(ring)
    return out


def _zones(doc: dict[str, Any], ctx: ParserContext) -> ParseResult:
    ident = str(doc.get("id") or "").strip()
    if not ident:
        raise ParseError("missing_field", "风险区文件缺少 id / risk-zone file lacks its id")
    sent = parse_time(doc.get("sent"), field_name="sent", required=True)
    assert sent is not None
    expires = parse_time(doc.get("expires"), field_name="expires")
    sender = str(doc.get("sender") or "geohazard")
    try:
        status = Status(str(doc.get("status") or "actual").lower())
        msg_type = MsgType(str(doc.get("msg_type") or "alert").lower())
    except ValueError as exc:
        raise ParseError("bad_field", str(exc)) from None
    refs = [Reference(str(r.get("sender")), str(r.get("identifier")), parse_time(r.get("sent"), field_name="ref"))
            for r in doc.get("references") or [] if isinstance(r, dict)]
    by_level: dict[Level, AreaSpec] = {}
    names: dict[Level, list[str]] = {}
    kinds: dict[Level, set[str]] = {}
    for f in doc.get("features") or []:
        if not isinstance(f, dict):
            raise ParseError("unknown_format", "feature 不是对象 / a feature is not an object")
        props = f.get("properties") or {}
        lvl = _level(props.get("level"))
        area = by_level.setdefault(lvl, AreaSpec())
        area.polygons.extend(_rings(f.get("geometry")))
        for code in props.get("geocodes") or []:
            cn = china_admin_code(str(code))
            area.geocodes.append(("行政区划代码", cn or str(code)))
        if area.empty:
            raise ParseError("invalid_geometry", f"风险区 {props.get('zone_id')} 既无几何也无区划代码 / zone has "
                                                 "neither geometry nor geocodes")
        names.setdefault(lvl, []).append(str(props.get("name") or props.get("zone_id") or ""))
        kinds.setdefault(lvl, set()).update(str(k) for k in props.get("kinds") or [])
    result = ParseResult()
    headline = str(doc.get("headline") or "地质灾害气象风险预警")
    for lvl, area in sorted(by_level.items(), key=lambda kv: -kv[0].rank):
        area.description = "、".join(n for n in names[lvl] if n) or None
        kind_text = "、".join(sorted(kinds[lvl])) or "地质灾害"
        result.warnings.append(WarningDraft(
            identifier=f"{ident}-{lvl.value}", sender=sender, sent=sent, msg_type=msg_type, status=status,
            hazard=Hazard.GEOHAZARD, event="地质灾害气象风险预警", level=lvl, effective=sent, expires=expires,
            references=refs,
            infos=[
                InfoText(language="zh-CN", event="地质灾害气象风险预警", headline=f"{headline}（{lvl.zh}）",
                         description=f"{area.description or ''}：{kind_text}{lvl.zh}风险区。", sender_name=sender),
                InfoText(language="en-US", event="Geohazard risk warning",
                         headline=f"Geohazard risk warning ({lvl.value})",
                         description=f"{len(names[lvl])} risk zone(s) at {lvl.value} level.", sender_name=sender),
            ],
            areas=[area], source_format="geohazard",
            extra={"zones": names[lvl], "kinds": sorted(kinds[lvl]), "issuance": ident},
        ))
    if not by_level:
        result.skipped.append(Skipped(reason="没有风险区 / no risk zones in the file", identifier=ident))
    return result


def parse(payload: bytes, ctx: ParserContext) -> ParseResult:
    head = payload[:200].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise ParseError("empty", "空内容 / empty payload")
    if head.startswith(b"<"):
        cfg = dict(ctx.config)
        cfg.setdefault("default_hazard", Hazard.GEOHAZARD.value)
        return cap.parse(payload, ParserContext(region_center=ctx.region_center, config=cfg, sites=ctx.sites))
    if head.startswith(b"{"):
        doc = load_json(payload)
        if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
            raise ParseError("unknown_format", "不是风险区 GeoJSON / not a risk-zone FeatureCollection")
        return _zones(doc, ctx)
    try:
        first_line = payload.decode("utf-8-sig").splitlines()[0].lower()
        lines = payload.count(b"\n")
    except UnicodeDecodeError as exc:
        raise ParseError("wrong_encoding", str(exc)[:200]) from None
    if "landslide_category" in first_line or "event_date" in first_line:
        return ParseResult(skipped=[Skipped(
            reason=f"历史滑坡目录（约 {lines} 条），记录的是已发生事件，不是预警 / a catalogue of past landslides "
                   f"(about {lines} records), not warnings")])
    raise ParseError("unknown_format", "无法识别的地质灾害数据 / unrecognised geohazard payload")
