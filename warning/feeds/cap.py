"""CAP 1.2 / 1.1 / 1.0 alerts, and the containers they travel in.

Accepted payloads:

- a single ``<alert>`` (any CAP namespace, or none; ``cap:`` prefixes fine);
- an EDXL-DE ``<EDXLDistribution>`` whose content objects embed CAP alerts (all of them are read);
- an Atom feed or RSS channel indexing CAP messages: an index is not a warning, so its CAP links go to
  ``ParseResult.links`` for the fetcher to follow, and any complete CAP alert embedded in an entry is
  read (NWS index entries carry placeholder alerts with identifier "!" — those are not read);
- CAP-as-JSON (the MeteoAlarm API shape ``{"warnings": [{"alert": {...}}]}``, or one alert object).

Each ``<alert>`` gives one ``WarningDraft``; all ``<info>`` blocks are kept (zh-CN first, then the
source order) and every ``<area>`` is kept as its own block (a block another language repeats is read
once). A block whose geometry cannot be read is left out and said in ``area_problems``; the message
goes on. A circle of radius 0 is a point. Chinese admin codes (6/9/12 digits) in any geocode are
zero-padded to 12 digits. Identifiers (GB/T 35965.1 style included) and XML signatures are kept
verbatim (``extra["signature"]``: every ``<Signature>`` of the alert in order, whitespace included).
The hazard comes from what the event is (``warning.hazards``), the category only as a fallback. A
Cancel, or an Update, with no ``<info>`` is a draft with no hazard or level of its own (intake takes
them from what it references). ``Ack``/``Error`` messages are skipped with their references, and
alerts about none of the five hazards (an AMBER child-abduction alert, a news item) with the reason.

``ctx.config`` keys: ``default_hazard`` (the feed's default hazard, used when the event text and CAP
category name none of the five).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from lxml import etree

from warning.draft import (
    MAX_RADIUS_KM,
    AreaSpec,
    Hazard,
    InfoText,
    MsgType,
    ParseError,
    ParseResult,
    Reference,
    Skipped,
    Status,
    WarningDraft,
)
from warning.feeds.common import (
    ParserContext,
    check_lat_lon,
    china_admin_code,
    load_json,
    parse_time,
)
from warning.hazards import hazard_from_category, hazard_from_codes, hazard_from_text
from warning.levels import level_from_text, level_of, max_level
from warning.xmlsafe import LOCAL_NAMES, local, parse_xml, utf8_of

CAP_NAMESPACES = (
    "urn:oasis:names:tc:emergency:cap:1.2",
    "urn:oasis:names:tc:emergency:cap:1.1",
    "urn:oasis:names:tc:emergency:cap:1.0",
)
_MSG_TYPES = {"alert": MsgType.ALERT, "update": MsgType.UPDATE, "cancel": MsgType.CANCEL}
_STATUSES = {s.value: s for s in Status}
_PLACEHOLDERS = {"", "!"}


# ---------------------------------------------------------------- XML → plain dicts


def _text(el: etree._Element) -> str:
    t = el.text
    return t.strip() if t else ""


# The readers below run once per element of every document, so they dispatch on the local name with
# one dict lookup per child (``_NAMES``), strip text inline and make no other calls.
_NAMES = LOCAL_NAMES


def _pairs(el: etree._Element) -> list[str]:
    """[valueName, value]: a list, as the JSON output writes event codes, so they need no copy."""
    if len(el) == 2:  # the usual <valueName/><value/>, read by index (an iterator costs more than both reads)
        a = el[0]
        b = el[1]
        if _NAMES[a.tag] == "valueName" and _NAMES[b.tag] == "value":
            t, u = a.text, b.text
            return [t.strip() if t else "", u.strip() if u else ""]
    name = value = ""
    for c in el:
        n = _NAMES[c.tag]
        if n == "valueName":
            t = c.text
            name = t.strip() if t else ""
        elif n == "value":
            t = c.text
            value = t.strip() if t else ""
    return [name, value]


def _area_dict(el: etree._Element) -> dict[str, Any]:
    polygons: list[str] = []
    circles: list[str] = []
    geocodes: list[list[str]] = []
    area: dict[str, Any] = {"areaDesc": None, "polygon": polygons, "circle": circles, "geocode": geocodes}
    for c in el:
        n = _NAMES[c.tag]
        if n == "geocode":
            geocodes.append(_pairs(c))
        elif n == "polygon":
            t = c.text
            polygons.append(t.strip() if t else "")
        elif n == "circle":
            t = c.text
            circles.append(t.strip() if t else "")
        elif n == "areaDesc":
            t = c.text
            area["areaDesc"] = t.strip() if t else ""
    return area


_INFO_SCALARS = frozenset({
    "language", "event", "urgency", "severity", "certainty", "effective", "onset", "expires", "senderName",
    "headline", "description", "instruction", "web", "contact", "audience",
})


def _info_dict(el: etree._Element) -> dict[str, Any]:
    categories: list[str] = []
    event_codes: list[list[str]] = []
    parameters: list[list[str]] = []
    areas: list[dict[str, Any]] = []
    info: dict[str, Any] = {"category": categories, "eventCode": event_codes, "parameter": parameters, "area": areas}
    for c in el:
        n = _NAMES[c.tag]
        if n in _INFO_SCALARS:
            t = c.text
            info[n] = t.strip() if t else ""
        elif n == "parameter":
            parameters.append(_pairs(c))
        elif n == "area":
            areas.append(_area_dict(c))
        elif n == "category":
            t = c.text
            categories.append(t.strip() if t else "")
        elif n == "eventCode":
            event_codes.append(_pairs(c))
    return info


def _alert_dict(el: etree._Element) -> dict[str, Any]:
    infos: list[dict[str, Any]] = []
    codes: list[str] = []
    alert: dict[str, Any] = {"info": infos, "code": codes}
    for c in el:
        n = _NAMES[c.tag]
        if n == "info":
            infos.append(_info_dict(c))
        elif n == "code":
            t = c.text
            codes.append(t.strip() if t else "")
        elif n == "Signature":  # the elements for now: ``_keep_signatures`` puts in the text as sent
            alert.setdefault("signature", []).append(c)
        elif n:
            t = c.text
            alert[n] = t.strip() if t else ""
    return alert


# CAP alerts are found with lxml's own tag matching (C, no proxy per element): ``{}alert`` is the
# no-namespace element only, as ``_is_cap_alert`` says.
_ALERT_TAGS = (*(f"{{{ns}}}alert" for ns in CAP_NAMESPACES), "{}alert")


def _is_cap_alert(el: etree._Element) -> bool:
    if _NAMES[el.tag] != "alert":
        return False
    ns = el.tag[1:].split("}", 1)[0] if el.tag.startswith("{") else ""
    return ns in CAP_NAMESPACES or ns == ""


# ---------------------------------------------------------------- plain dicts → drafts


def _coord(token: str, what: str) -> tuple[float, float]:
    try:
        lat_s, lon_s = token.split(",")[:2]
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        raise ParseError("invalid_geometry", f"{what}: {token!r:.40}") from None
    check_lat_lon(lat, lon, what)
    return lat, lon


def _ring_fast(text: str) -> list[tuple[float, float]] | None:
    """The ring when every token is "lat,lon" with numbers in range, else None.

    One split into tokens and one into numbers: when the numbers are exactly twice the tokens, every
    token had exactly one comma. Anything else goes the token-by-token way, which names the error.
    """
    tokens = text.split()
    parts = ",".join(tokens).split(",")
    if not tokens or len(parts) != 2 * len(tokens):
        return None
    try:
        nums = list(map(float, parts))
    except ValueError:
        return None
    lats, lons = nums[0::2], nums[1::2]
    # min/max can step over a NaN, which the sum does not
    if not (-90 <= min(lats) <= max(lats) <= 90 and -180 <= min(lons) <= max(lons) <= 180):
        return None
    if not math.isfinite(sum(nums)):
        return None
    return list(zip(lons, lats, strict=True))


def _polygon(text: str) -> list[tuple[float, float]]:
    ring = _ring_fast(text)
    if ring is None:
        ring = [(lon, lat) for lat, lon in (_coord(t, "polygon") for t in text.split())]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    if not _three_distinct(ring):
        raise ParseError("invalid_geometry", f"多边形点数不足 / polygon needs 3 distinct points: {text!r:.60}")
    return ring


def _three_distinct(ring: list[tuple[float, float]]) -> bool:
    # Usually answered by the first three points, where a set of the whole ring hashes every point.
    first, second = ring[0] if ring else None, None
    for p in ring:
        if p != first:
            if second is None:
                second = p
            elif p != second:
                return True
    return False


def _circle(text: str) -> tuple[float, float, float]:
    """(lat, lon, radius_km); a radius of 0 is the point itself (earthquake agencies send epicentres so)."""
    parts = text.split()
    if len(parts) != 2:
        raise ParseError("invalid_geometry",
                         f"圆形格式应为“纬度,经度 半径” / circle must be 'lat,lon radius': {text!r:.40}")
    lat, lon = _coord(parts[0], "circle")
    try:
        radius = float(parts[1])
    except ValueError:
        raise ParseError("invalid_geometry",
                         f"圆形半径不是数字 / circle radius is not a number: {text!r:.40}") from None
    if not 0 <= radius <= MAX_RADIUS_KM:  # NaN fails both
        raise ParseError("invalid_geometry",
                         f"圆形半径超出 0–{MAX_RADIUS_KM:g} 公里 / circle radius out of 0–{MAX_RADIUS_KM:g} km: "
                         f"{text!r:.40}")
    return lat, lon, radius


def _references(text: str | None) -> list[Reference]:
    refs: list[Reference] = []
    for tok in (text or "").split():
        parts = tok.split(",")
        if len(parts) < 2:
            continue
        sent = None
        if len(parts) >= 3:
            try:
                sent = parse_time(",".join(parts[2:]), field_name="references.sent")
            except ParseError:
                sent = None
        refs.append(Reference(sender=parts[0], identifier=parts[1], sent=sent))
    return refs


def _lang_key(info: dict[str, Any]) -> int:
    lang = (info.get("language") or "en-US").lower()
    return 0 if lang.startswith("zh") else 1


def _times(infos: list[dict[str, Any]], name: str, seen: dict[Any, Any]) -> list[Any]:
    """The parsed times of field ``name`` in ``infos`` (missing ones skipped); errors name ``name``.

    ``seen`` maps text already parsed in this alert to its datetime: sent, effective and onset are
    usually the same text, parsed once and then one object, whose ISO form the output writes once.
    """
    out = []
    for info in infos:
        value = info.get(name)
        t = seen.get(value) if type(value) is str else None
        if t is None:
            t = parse_time(value, field_name=name)
            if t is None:
                continue
            if type(value) is str:
                seen[value] = t
        out.append(t)
    return out


# Event names are a small vocabulary that every feed repeats ("Severe Thunderstorm Warning", "暴雨蓝色预警"):
# the hazard and the colour they name are worked out once per name. Headlines are free text: not cached.
_hazard_of_events = functools.lru_cache(maxsize=4096)(hazard_from_text)
_level_of_event = functools.lru_cache(maxsize=4096)(level_from_text)


def _area_blocks(infos: list[dict[str, Any]], problems: list[str]) -> list[AreaSpec]:
    """Every ``<area>`` of every ``<info>`` as its own block; a block another language's ``<info>``
    repeats (same shapes and codes) is read once. A block whose geometry cannot be read is left out
    and said in ``problems``; the other blocks, and the message, go on."""
    blocks: list[AreaSpec] = []
    # Only another language's <info> repeats blocks: a single <info> needs no repeat check.
    seen: set[tuple[Any, ...]] | None = set() if len(infos) > 1 else None
    n = 0
    for info in infos:
        for a in info.get("area", ()):
            polys = a["polygon"]
            circs = a["circle"]
            raw_codes = a["geocode"]
            if seen is not None:
                key = (tuple(polys), tuple(circs), tuple(map(tuple, raw_codes))) \
                    if (polys or circs or raw_codes) else ("desc", a["areaDesc"])
                if key in seen:
                    continue
                seen.add(key)
            n += 1
            block = AreaSpec(description=a["areaDesc"] or None, number=n)
            try:
                for p in polys:
                    if p.strip():  # an empty <polygon/> (NWS indexes send them) says nothing
                        ring = _polygon(p)
                        if ring not in block.polygons:
                            block.polygons.append(ring)
                for c in circs:
                    if c.strip():
                        circle = _circle(c)
                        target = block.circles if circle[2] > 0 else block.points
                        if circle not in target:
                            target.append(circle)
            except ParseError as exc:
                problems.append(f"{block.label}: {exc.detail} [{exc.reason}]")
                continue
            if raw_codes:
                # dict keys: in order, each once (NWS areas list dozens of codes)
                block.geocodes = list(dict.fromkeys(
                    (name, china_admin_code(value) or value) for name, value in raw_codes if value))
            blocks.append(block)
    if len(blocks) > 1:
        blocks = _without_coarse_repeats(blocks)
    return blocks


def _without_coarse_repeats(blocks: list[AreaSpec]) -> list[AreaSpec]:
    """Fold a geocode-only block whose codes all stand in a block with a polygon or circle into that block.

    Bilingual alerts sometimes draw the area in one language's ``<info>`` and give only its code in the
    other: the code-only block is the same area said coarsely, and must not widen the target to the
    whole coded division (it would, judged as a block of its own).
    """
    drawn = [b for b in blocks if b.polygons or b.circles or b.points]
    if not drawn:
        return blocks
    values = {v for b in drawn for _n, v in b.geocodes}
    out: list[AreaSpec] = []
    for b in blocks:
        if b.has_geometry or not b.geocodes or not all(v in values for _n, v in b.geocodes):
            out.append(b)
            continue
        home = next(d for d in drawn if any(v in {x for _m, x in d.geocodes} for _n, v in b.geocodes))
        home.geocodes.extend(g for g in b.geocodes if g not in home.geocodes)
        if b.description and home.description and b.description not in home.description:
            home.description = f"{home.description} / {b.description}"
    return out


def _hazard(infos: list[dict[str, Any]], categories: list[str], ctx: ParserContext) -> Hazard | None:
    """What the event is first, the category last (``warning.hazards``)."""
    hazard = _hazard_of_events(*(i.get("event") for i in infos))
    if hazard is None:
        hazard = hazard_from_codes(p for i in infos for p in i.get("eventCode") or ())
    if hazard is None:
        hazard = hazard_from_text(*(i.get("headline") for i in infos))
    if hazard is None:
        hazard = hazard_from_category(categories)
    if hazard is None and ctx.config.get("default_hazard"):
        hazard = Hazard(ctx.config["default_hazard"])
    return hazard


def draft_from_alert(alert: dict[str, Any], ctx: ParserContext, source_format: str = "cap") -> WarningDraft | Skipped:
    """One CAP alert (as plain dicts, from XML or JSON) → a draft, or why it is not a hazard warning.

    A Cancel needs no ``<info>`` (CAP makes it optional, and real Cancels carry none): it is a draft with
    ``hazard`` and ``level`` None, which cancels what it references. The same holds for a Cancel whose
    texts name none of the five hazards: what it cancels says what it was. An Update without ``<info>``
    is a draft with ``hazard`` None too; intake carries the referenced warning's content over and flags
    it. Ack and Error messages are not warnings: they are skipped with their references, for intake to
    record against the warnings they name.
    """
    identifier = (alert.get("identifier") or "").strip()
    sender = (alert.get("sender") or "").strip()
    if identifier in _PLACEHOLDERS or sender in _PLACEHOLDERS:
        raise ParseError("missing_field", "CAP 缺少 identifier 或 sender / CAP alert lacks identifier or sender")
    raw_sent = alert.get("sent")
    sent = parse_time(raw_sent, field_name="sent", required=True)
    assert sent is not None
    seen_times = {raw_sent: sent} if type(raw_sent) is str else {}
    raw_type = (alert.get("msgType") or "").strip().lower()
    if raw_type in ("ack", "error"):
        refs = tuple(_references(alert.get("references")))
        return Skipped(reason=f"不是预警：CAP {raw_type} 消息，涉及 {len(refs)} 条消息 / not a hazard warning: "
                              f"CAP {raw_type} message about {len(refs)} message(s)",
                       identifier=identifier, msg_type=raw_type, sender=sender, references=refs,
                       note=(alert.get("note") or None))
    msg_type = _MSG_TYPES.get(raw_type)
    if msg_type is None:
        raise ParseError("bad_field", f"msgType={alert.get('msgType')!r:.30}")
    status = _STATUSES.get((alert.get("status") or "").strip().lower())
    if status is None:
        raise ParseError("bad_field", f"status={alert.get('status')!r:.30}")
    references = _references(alert.get("references"))

    infos = alert.get("info") or []
    if len(infos) > 1:
        infos = sorted(infos, key=_lang_key)
    texts: list[InfoText] = []
    parameters: dict[str, list[str]] = {}
    categories: list[str] = []
    colour_levels = []
    table_levels = []
    for info in infos:
        get = info.get
        event, headline = get("event") or None, get("headline") or None
        texts.append(InfoText(
            language=get("language") or "en-US", event=event, headline=headline,
            description=get("description") or None, instruction=get("instruction") or None,
            sender_name=get("senderName") or None, web=get("web") or None,
        ))
        categories += get("category") or ()
        params = get("parameter") or ()
        for n, v in params:
            seen = parameters.get(n)
            if seen is None:
                parameters[n] = [v]
            elif v not in seen:
                seen.append(v)
        lvl = _level_of_event(event) if event else None
        if lvl is None:
            lvl, how = level_of((headline,), params, get("severity"), get("urgency"), get("certainty"))
        else:
            how = "colour"
        (colour_levels if how == "colour" else table_levels).append(lvl)
    area_problems: list[str] = []
    areas = _area_blocks(infos, area_problems)

    first = infos[0] if infos else {}
    hazard = _hazard(infos, categories, ctx) if infos else None
    if hazard is None and not (msg_type is MsgType.CANCEL or (msg_type is MsgType.UPDATE and not infos)):
        what = first.get("event") or "?"
        return Skipped(
            reason=f"不是灾害预警：事件“{what}”（类别 {', '.join(categories) or '无'}）/ "
                   f"not a hazard warning: event {what!r} (category {', '.join(categories) or 'none'})",
            identifier=identifier,
        )
    # A colour the source gave beats any table level; a message with no <info> has no level of its own.
    level = (max_level(colour_levels) or max_level(table_levels)) if infos else None

    extra: dict[str, Any] = {}
    for key in ("scope", "source", "note", "restriction", "addresses", "incidents", "signature"):
        value = alert.get(key)
        if value:
            extra[key] = value
    if alert.get("code"):
        extra["code"] = list(alert["code"])
    if categories:
        extra["categories"] = list(dict.fromkeys(categories))
    event_codes = [p for i in infos for p in i.get("eventCode") or ()]
    if event_codes:
        extra["event_codes"] = event_codes
    if infos:
        extra["level_source"] = "colour" if colour_levels else "table"
    else:
        extra["no_info"] = True

    effective = min(_times(infos, "effective", seen_times), default=None)
    onset = min(_times(infos, "onset", seen_times), default=None)
    expires = max(_times(infos, "expires", seen_times), default=None)
    return WarningDraft(
        identifier=identifier, sender=sender, sent=sent, msg_type=msg_type, status=status, hazard=hazard,
        event=first.get("event") or None, level=level, effective=effective, onset=onset, expires=expires,
        references=references, infos=texts, areas=areas,
        severity=first.get("severity") or None, urgency=first.get("urgency") or None,
        certainty=first.get("certainty") or None, parameters=parameters, source_format=source_format, extra=extra,
        area_problems=area_problems,
    )


def _add(result: ParseResult, alert: dict[str, Any], ctx: ParserContext) -> None:
    out = draft_from_alert(alert, ctx)
    if isinstance(out, Skipped):
        result.skipped.append(out)
    else:
        result.warnings.append(out)


# ---------------------------------------------------------------- containers


def _parse_feed(root: etree._Element, result: ParseResult) -> list[dict[str, Any]]:
    """Atom or RSS: collect CAP links, and return the complete alerts embedded in entries."""
    items = list(root.iter("{*}entry", "{*}item"))
    alerts: list[dict[str, Any]] = []
    for item in items:
        embedded = list(item.iter(*_ALERT_TAGS))
        complete = [el for el in embedded if _text_of(el, "identifier") not in _PLACEHOLDERS
                    and _text_of(el, "sender") not in _PLACEHOLDERS]
        alerts += map(_alert_dict, complete)
        if complete:
            continue
        link = _cap_link(item)
        if link and link not in result.links:
            result.links.append(link)
    if not items:
        result.skipped.append(Skipped(reason="空的 CAP 索引 / empty CAP index: no entries"))
    elif result.links:
        result.skipped.append(Skipped(reason=f"CAP 索引：{len(result.links)} 条链接待获取，索引本身不是预警 / "
                                             f"a CAP index: {len(result.links)} linked messages to fetch; "
                                             "the index itself is not a warning"))
    return alerts


def _text_of(el: etree._Element, name: str) -> str:
    for c in el:
        if _NAMES[c.tag] == name:
            return _text(c)
    return ""


def _cap_link(item: etree._Element) -> str | None:
    fallback = None
    for c in item.iterchildren("{*}link", "{*}id"):  # lxml's own tag test: no proxy for the other children
        n = _NAMES[c.tag]
        if n == "link":
            href = (c.get("href") or _text(c)).strip()
            if not href:
                continue
            typ = (c.get("type") or "").lower()
            if "cap" in typ or href.lower().endswith((".cap", ".cap.xml")):
                return href
            if c.get("rel") in (None, "alternate") and fallback is None:
                fallback = href
        elif n == "id" and fallback is None and _text(c).startswith("http"):
            fallback = _text(c)
    return fallback


def _parse_json(payload: bytes, ctx: ParserContext) -> ParseResult:
    doc = load_json(payload)
    if isinstance(doc, dict) and isinstance(doc.get("warnings"), list):
        alerts = [w.get("alert", w) if isinstance(w, dict) else None for w in doc["warnings"]]
    elif isinstance(doc, dict) and "identifier" in doc:
        alerts = [doc]
    elif isinstance(doc, list):
        alerts = [w.get("alert", w) if isinstance(w, dict) else None for w in doc]
    else:
        raise ParseError("unknown_format", "不是 CAP JSON / not CAP-as-JSON")
    result = ParseResult()
    for a in alerts:
        if not isinstance(a, dict):
            raise ParseError("unknown_format", "CAP JSON 中的元素不是对象 / an item is not an object")
        _add(result, _json_alert(a), ctx)
    return result


def _pairs_json(items: Any) -> list[list[str]]:
    return [[str(p.get("valueName", "")), str(p.get("value", ""))] for p in items or [] if isinstance(p, dict)]


def _listify(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _json_alert(a: dict[str, Any]) -> dict[str, Any]:
    infos = []
    for i in _listify(a.get("info")):
        areas = [{
            "areaDesc": ar.get("areaDesc"), "polygon": [str(p) for p in _listify(ar.get("polygon"))],
            "circle": [str(c) for c in _listify(ar.get("circle"))], "geocode": _pairs_json(ar.get("geocode")),
        } for ar in _listify(i.get("area")) if isinstance(ar, dict)]
        info = {k: (str(v) if v is not None else None) for k, v in i.items() if k in _INFO_SCALARS}
        info.update(category=[str(c) for c in _listify(i.get("category"))], eventCode=_pairs_json(i.get("eventCode")),
                    parameter=_pairs_json(i.get("parameter")), area=areas)
        infos.append(info)
    out = {k: (" ".join(v) if isinstance(v, list) else str(v)) for k, v in a.items()
           if k not in ("info", "code") and v is not None}
    out["info"] = infos
    out["code"] = [str(c) for c in _listify(a.get("code"))]
    return out


_PREFIX = re.compile(rb"[A-Za-z_][\w.-]*")
_TAG_END = frozenset(b" \t\r\n/>")


def _raw_signatures(data: bytes) -> list[bytes]:
    """Every whole <Signature> element (any prefix, or none) as it stands in ``data``, in order.

    Found with ``find`` rather than a regular expression, which tries every "<" of the document and
    is slow on large ones: "SignatureValue" and the like are passed over, a self-closed element
    ends at its "/>", an open one at its own end tag.
    """
    out: list[bytes] = []
    i = 0
    while (j := data.find(b"Signature", i)) >= 0:
        i = j + 9
        if i >= len(data) or data[i] not in _TAG_END:
            continue
        start = data.rfind(b"<", 0, j)
        qname = data[start + 1 : i]
        if start < 0 or not (qname == b"Signature" or (
                qname.endswith(b":Signature") and _PREFIX.fullmatch(qname, 0, len(qname) - 10))):
            continue
        head_end = data.find(b">", i)
        if head_end < 0:
            break
        if data[head_end - 1] == 47:  # "/>": no content
            out.append(data[start : head_end + 1])
            i = head_end + 1
            continue
        close_tag, close = b"</" + qname, head_end
        while (close := data.find(close_tag, close)) >= 0:  # not </SignatureValue>
            close += len(close_tag)
            if close < len(data) and data[close] in _TAG_END:
                break
        end = data.find(b">", close) if close >= 0 else -1
        if end < 0:
            break
        out.append(data[start : end + 1])
        i = end + 1
    return out


def _keep_signatures(payload: bytes, alerts: list[dict[str, Any]]) -> None:
    """Each alert's ``signature``: its <Signature> elements as sent, in order, whitespace and all.

    The signed form covers every byte of SignedInfo, and the tree was read without the whitespace
    between elements, so the text comes from the payload itself. Should the elements found there
    not be exactly the alerts' own (a signature on the envelope, one quoted in a comment), the
    document is read again with its whitespace and the elements are written out from that tree.
    """
    signed = [a for a in alerts if "signature" in a]
    if not signed:
        return
    elements = [el for a in signed for el in a["signature"]]
    texts = [raw.decode("utf-8") for raw in _raw_signatures(utf8_of(payload))]
    if len(texts) != len(elements) or not all(
        (el.findtext(".//{*}SignatureValue") or "").strip() in t for el, t in zip(elements, texts, strict=True)
    ):
        root = parse_xml(payload, keep_blanks=True)
        texts = [etree.tostring(c, encoding="unicode", with_tail=False)
                 for el in ([root] if _is_cap_alert(root) else root.iter(*_ALERT_TAGS))
                 for c in el if _NAMES[c.tag] == "Signature"]
    it = iter(texts)
    for a in signed:
        a["signature"] = "\n".join(next(it, "") for _ in a["signature"])


def parse(payload: bytes, ctx: ParserContext) -> ParseResult:
    head = payload[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"{", b"[")):
        return _parse_json(payload, ctx)
    root = parse_xml(payload)
    result = ParseResult()
    name = local(root.tag)
    if _is_cap_alert(root):
        alerts = [_alert_dict(root)]
    elif name in ("feed", "rss", "RDF"):
        alerts = _parse_feed(root, result)
    else:
        # EDXL-DE, or a publisher's own wrapper around several alerts (SMHI: <alerts>).
        alerts = [_alert_dict(el) for el in root.iter(*_ALERT_TAGS)]
        if not alerts and name == "EDXLDistribution":
            result.skipped.append(Skipped(reason="EDXL-DE 信封中没有 CAP / EDXL-DE envelope holds no CAP alert"))
        elif not alerts:
            raise ParseError("unknown_format", f"不是 CAP 文档 / not a CAP document: root <{name}>")
    _keep_signatures(payload, alerts)
    for alert in alerts:
        _add(result, alert, ctx)
    return result
