"""Any stored warning written back as a CAP 1.2 message, valid against the OASIS schema, for
neighbouring agencies and for the record.

The area is written from the stored source shapes (``area_spec``), not from the GeoJSON
approximation, so polygons and circles go out as they came in. Times are written in the display
zone with an explicit offset, as CAP requires (no ``Z``, no fractions). Pure: takes the warning's
attributes, returns bytes.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "CAP-v1.2.xsd"
_CATEGORY = {"weather": "Met", "flood": "Met", "earthquake": "Geo", "geohazard": "Geo", "forest_fire": "Fire"}
_HAZARD_ZH = {"weather": "气象灾害", "flood": "洪涝灾害", "earthquake": "地震", "geohazard": "地质灾害",
              "forest_fire": "森林火灾"}
_LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
_ENUMS = {
    "urgency": ("Immediate", "Expected", "Future", "Past", "Unknown"),
    "severity": ("Extreme", "Severe", "Moderate", "Minor", "Unknown"),
    "certainty": ("Observed", "Likely", "Possible", "Unlikely", "Unknown"),
}
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_URI_OK = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"]+$")


def cap_time(value: dt.datetime, tz: dt.tzinfo) -> str:
    text = value.astimezone(tz).replace(microsecond=0).isoformat()
    return text[:-6] + "-00:00" if text.endswith("+00:00") else text


def _clean(text: Any) -> str:
    return _XML_BAD.sub("", str(text))


def _enum(kind: str, value: str | None) -> str:
    if value:
        for option in _ENUMS[kind]:
            if option.lower() == value.strip().lower():
                return option
    return "Unknown"


def _sub(parent: etree._Element, name: str, text: Any | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{CAP_NS}}}{name}")
    if text is not None:
        el.text = _clean(text)
    return el


def _pair(parent: etree._Element, name: str, value_name: str, value: str) -> None:
    el = _sub(parent, name)
    _sub(el, "valueName", value_name)
    _sub(el, "value", value)


def _polygon_text(ring: list[list[float]]) -> str | None:
    pts = [(float(lon), float(lat)) for lon, lat in ring]
    if len(pts) < 3:
        return None
    if pts[0] != pts[-1]:
        pts.append(pts[0])
    return " ".join(f"{lat:.6g},{lon:.7g}" for lon, lat in pts)


def _area(info: etree._Element, w: Any) -> None:
    """One ``<area>`` per block the source sent (``area_spec["blocks"]``), else one for the whole area."""
    spec = w.area_spec or {}
    blocks = spec.get("blocks") or [spec]
    for n, block in enumerate(blocks):
        geocodes = [tuple(g) for g in block.get("geocodes", [])]
        if n == 0 and len(blocks) == 1:
            geocodes = [(g["name"], g["value"]) for g in (w.geocodes or [])] or geocodes
        polygons = [p for p in (_polygon_text(r) for r in block.get("polygons", [])) if p]
        circles = [f"{lat:.6g},{lon:.7g} {radius:g}" for lat, lon, radius in [*block.get("circles", []),
                                                                                *block.get("points", [])]]
        desc = block.get("description") if len(blocks) > 1 else (w.area_description or block.get("description"))
        if not (polygons or circles or geocodes or desc):
            continue
        area = _sub(info, "area")
        _sub(area, "areaDesc", desc or "未说明区域 / area not described")
        for p in polygons:
            _sub(area, "polygon", p)
        for c in circles:
            _sub(area, "circle", c)
        for name, value in geocodes:
            _pair(area, "geocode", str(name), str(value))


def _info(alert: etree._Element, w: Any, text: dict[str, Any], tz: dt.tzinfo) -> None:
    info = _sub(alert, "info")
    _sub(info, "language", text.get("language") or "zh-CN")
    _sub(info, "category", _CATEGORY.get(w.hazard, "Other"))
    _sub(info, "event", text.get("event") or w.event or _HAZARD_ZH.get(w.hazard or "", "未说明 / not stated"))
    _sub(info, "urgency", _enum("urgency", w.urgency))
    _sub(info, "severity", _enum("severity", w.severity))
    _sub(info, "certainty", _enum("certainty", w.certainty))
    if w.hazard:
        _pair(info, "eventCode", "jiaoying:hazard", w.hazard)
    for name in ("effective", "onset", "expires"):
        value = getattr(w, name)
        if value is not None:
            _sub(info, name, cap_time(value, tz))
    for key, name in (("sender_name", "senderName"), ("headline", "headline"), ("description", "description"),
                      ("instruction", "instruction")):
        if text.get(key):
            _sub(info, name, text[key])
    web = text.get("web")
    if web and _URI_OK.match(str(web)):
        _sub(info, "web", web)
    if w.level:
        _pair(info, "parameter", "jiaoying:level", w.level)
        _pair(info, "parameter", "预警等级", _LEVEL_ZH.get(w.level, w.level))
    for name, values in (w.parameters or {}).items():
        for value in values if isinstance(values, list) else [values]:
            _pair(info, "parameter", str(name), str(value))
    _area(info, w)


def _reference_text(refs: list[dict[str, Any]], tz: dt.tzinfo) -> str | None:
    parts = []
    for r in refs:
        sent = r.get("sent")
        when = dt.datetime.fromisoformat(sent) if isinstance(sent, str) else sent
        triple = [str(r.get("sender", "")), str(r.get("identifier", ""))]
        if when is not None:
            triple.append(cap_time(when, tz))
        parts.append(",".join(triple))
    return " ".join(parts) or None


def warning_to_cap(w: Any, *, tz: dt.tzinfo | str = "Asia/Shanghai", note: str | None = None) -> bytes:
    """The CAP 1.2 document of a stored warning (any object with the ``Warning`` attributes)."""
    tz = ZoneInfo(tz) if isinstance(tz, str) else tz
    alert = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _sub(alert, "identifier", w.identifier)
    _sub(alert, "sender", w.sender)
    _sub(alert, "sent", cap_time(w.sent, tz))
    _sub(alert, "status", (w.status or "actual").capitalize())
    _sub(alert, "msgType", (w.msg_type or "alert").capitalize())
    _sub(alert, "source", "Jiaoying 叫应" + (f" ({w.entered_by})" if getattr(w, "entered_by", None) else ""))
    _sub(alert, "scope", "Public")
    if note:
        _sub(alert, "note", note)
    refs = _reference_text(list(w.references or []), tz)
    if refs:
        _sub(alert, "references", refs)
    if not w.infos and (w.extra or {}).get("no_info"):
        # A Cancel (or Update) that came without <info> is exported as it came: the envelope alone.
        return bytes(etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    infos = list(w.infos or []) or [{"language": "zh-CN", "event": w.event, "headline": w.headline}]
    for text in infos:
        _info(alert, w, text, tz)
    return bytes(etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True))


@lru_cache(maxsize=1)
def cap_schema() -> Any:
    import xmlschema

    return xmlschema.XMLSchema(str(SCHEMA_PATH))


def validation_errors(document: bytes) -> list[str]:
    """Why a document is not valid CAP 1.2 (empty when it is)."""
    schema = cap_schema()
    return [str(e.reason or e)[:300] for e in schema.iter_errors(document.decode("utf-8"))]
