"""Gauge readings → flood warnings, by the station's warning (警戒) and guarantee (保证) levels.

Accepted payloads (detected from the content):

- USGS Water Services WaterML-JSON (``value.timeSeries``): gage height (parameter 00065) series;
- UK Environment Agency flood-monitoring JSON (``items`` of measures with ``latestReading``, or
  ``/readings`` items with ``measure`` and ``value``): ``parameter == "level"`` only;
- the generic Chinese 水情 format defined here, JSON or CSV, named after the national hydrological
  database fields (SL 323 实时雨水情数据库: STCD 测站编码, STNM 测站名称, TM 时间, Z 水位, WRZ 警戒水位,
  GRZ 保证水位)::

      {"stations": [{"stcd": "41401500", "stnm": "丹河 城区站", "lon": 112.85, "lat": 35.50,
                     "wrz": 652.5, "grz": 654.0, "unit": "m",
                     "readings": [{"tm": "2026-07-20T08:00:00+08:00", "z": 652.1}, ...]}]}

  or CSV with a header ``stcd,stnm,tm,z`` and optional ``lon,lat,wrz,grz``, one reading per row.
  ``tm`` without an offset is Beijing time. Keys are case-insensitive (STCD or stcd).

Thresholds for a station come from, in order: the payload (wrz/grz), a site in ``ctx.sites``
(kind gauge / hydro_station / river_section / reservoir) whose id or ``attrs["station"]`` is the
station id, with ``attrs`` ``warning_level`` and ``guarantee_level``, or
``ctx.config["hydro_stations"][station_id] = {"warning_level": .., "guarantee_level": ..}``.
A station without thresholds cannot be judged: it is counted in the skipped summary.

Level from the latest reading z (warning level W, guarantee level G, both in the reading's unit):
z ≥ G → red; z ≥ W + (G − W)/2 → orange; z ≥ W → yellow; z ≥ W − ``hydro_approach`` [0.3] → blue
(approaching). With no G, only yellow/blue. The rise rate (unit per hour, from the last two readings)
is reported; a rise ≥ ``hydro_fast_rise_per_hour`` [0.5] raises the level one step (water still
climbing fast is worse than water standing at the mark).

Identifier: station + level + local date of the latest reading — the same exceedance re-read is the
same warning; a change of level or a new day is a new one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any

from warning.draft import (
    AreaSpec,
    Hazard,
    InfoText,
    Level,
    MsgType,
    ParseError,
    ParseResult,
    Skipped,
    Status,
    WarningDraft,
)
from warning.feeds.common import ParserContext, check_lat_lon, load_json, parse_time

BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")
_GAUGE_KINDS = {"gauge", "hydro_station", "river_section", "reservoir", "station"}
_ORDER = [Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED]


@dataclass
class Series:
    source: str
    sender: str
    station: str
    name: str
    lat: float | None
    lon: float | None
    unit: str
    readings: list[tuple[dt.datetime, float]] = field(default_factory=list)
    warning_level: float | None = None
    guarantee_level: float | None = None


def _num(v: Any) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ParseError("bad_field", f"不是数值 / not a number: {v!r:.30}") from None


def _cn_time(v: Any) -> dt.datetime:
    text = str(v).strip().replace("/", "-")
    if not text:
        raise ParseError("missing_field", "tm")
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParseError("bad_time", f"tm={v!r:.40}") from None
    return t if t.tzinfo else t.replace(tzinfo=BEIJING)


def _waterml(doc: dict[str, Any]) -> list[Series]:
    out = []
    for ts in doc["value"].get("timeSeries") or []:
        var = ts.get("variable") or {}
        codes = [c.get("value") for c in var.get("variableCode") or []]
        if "00065" not in codes:
            continue
        info = ts.get("sourceInfo") or {}
        geo = (info.get("geoLocation") or {}).get("geogLocation") or {}
        nodata = var.get("noDataValue")
        s = Series("usgs-waterml", "waterservices.usgs.gov", str((info.get("siteCode") or [{}])[0].get("value")),
                   info.get("siteName") or "", _num(geo.get("latitude")), _num(geo.get("longitude")),
                   ((var.get("unit") or {}).get("unitCode") or "ft"))
        for block in ts.get("values") or []:
            for v in block.get("value") or []:
                val = _num(v.get("value"))
                if val is None or (nodata is not None and val == nodata):
                    continue
                t = parse_time(v.get("dateTime"), field_name="dateTime", required=True)
                assert t is not None
                s.readings.append((t, val))
        out.append(s)
    return out


def _ea(doc: dict[str, Any]) -> tuple[list[Series], int]:
    series: dict[str, Series] = {}
    station_list = 0
    for it in doc["items"]:
        if not isinstance(it, dict):
            raise ParseError("unknown_format", "items 中有非对象 / an item is not an object")
        if "stageScale" in it or ("measures" in it and "latestReading" not in it):
            station_list += 1
            continue
        reading = it.get("latestReading") if "latestReading" in it else (it if "measure" in it else None)
        if not isinstance(reading, dict) or it.get("parameter", "level") != "level":
            continue
        measure = str(reading.get("measure") or it.get("@id") or "")
        station = str(it.get("stationReference") or (it.get("station") or measure).rstrip("/").split("/")[-1])
        station = station.split("-level")[0]
        s = series.get(station)
        if s is None:
            s = series[station] = Series("ea", "environment.data.gov.uk", station, it.get("label") or station,
                                         None, None, str(it.get("unitName") or "m"))
        val = reading.get("value")
        if isinstance(val, list):  # the EA sometimes sends duplicated readings as a list
            val = val[0] if val else None
        num = _num(val)
        t = parse_time(reading.get("dateTime"), field_name="dateTime")
        if num is not None and t is not None:
            s.readings.append((t, num))
    return list(series.values()), station_list


def _lower(d: dict[str, Any]) -> dict[str, Any]:
    return {str(k).strip().lower(): v for k, v in d.items()}


def _generic_json(doc: Any) -> list[Series]:
    rows = doc["stations"] if isinstance(doc, dict) else doc
    out = []
    for raw in rows:
        if not isinstance(raw, dict):
            raise ParseError("unknown_format", "stations 中有非对象 / a station is not an object")
        st = _lower(raw)
        if not st.get("stcd"):
            raise ParseError("missing_field", "stcd")
        s = Series("cn-hydro", str(st.get("sender") or "水情"), str(st["stcd"]), str(st.get("stnm") or st["stcd"]),
                   _num(st.get("lat")), _num(st.get("lon")), str(st.get("unit") or "m"),
                   warning_level=_num(st.get("wrz")), guarantee_level=_num(st.get("grz")))
        for r in st.get("readings") or []:
            r = _lower(r)
            z = _num(r.get("z"))
            if z is not None:
                s.readings.append((_cn_time(r.get("tm")), z))
        out.append(s)
    return out


def _generic_csv(text: str) -> list[Series]:
    reader = csv.DictReader(io.StringIO(text))
    fields = {f.strip().lower() for f in reader.fieldnames or []}
    if not {"stcd", "tm", "z"} <= fields:
        raise ParseError("unknown_format", "水情 CSV 需要列 stcd,tm,z / hydro CSV needs columns stcd, tm, z")
    series: dict[str, Series] = {}
    for row in reader:
        r = _lower(row)
        code = str(r.get("stcd") or "").strip()
        if not code:
            raise ParseError("missing_field", "stcd")
        s = series.get(code)
        if s is None:
            s = series[code] = Series("cn-hydro", "水情", code, str(r.get("stnm") or code), _num(r.get("lat")),
                                      _num(r.get("lon")), str(r.get("unit") or "m"),
                                      warning_level=_num(r.get("wrz")), guarantee_level=_num(r.get("grz")))
        z = _num(r.get("z"))
        if z is not None:
            s.readings.append((_cn_time(r.get("tm")), z))
    return list(series.values())


def _thresholds(s: Series, ctx: ParserContext) -> tuple[float | None, float | None, Any]:
    if s.warning_level is not None:
        return s.warning_level, s.guarantee_level, None
    for site in ctx.site_list():
        if site.kind in _GAUGE_KINDS and s.station in (site.id, str(site.attrs.get("station", ""))):
            w = _num(site.attrs.get("warning_level"))
            if w is not None:
                if s.lat is None:
                    s.lat, s.lon = site.lat, site.lon
                return w, _num(site.attrs.get("guarantee_level")), site
    conf = (ctx.config.get("hydro_stations") or {}).get(s.station)
    if conf:
        return _num(conf.get("warning_level")), _num(conf.get("guarantee_level")), None
    return None, None, None


def _judge(z: float, w: float, g: float | None, approach: float) -> Level | None:
    if g is not None and z >= g:
        return Level.RED
    if g is not None and z >= w + (g - w) / 2:
        return Level.ORANGE
    if z >= w:
        return Level.YELLOW
    if z >= w - approach:
        return Level.BLUE
    return None


def _evaluate(s: Series, ctx: ParserContext) -> WarningDraft | str:
    if not s.readings:
        return "no_readings"
    w, g, site = _thresholds(s, ctx)
    if w is None:
        return "no_thresholds"
    s.readings.sort(key=lambda r: r[0])
    t, z = s.readings[-1]
    rate = None
    if len(s.readings) >= 2:
        t0, z0 = s.readings[-2]
        hours = (t - t0).total_seconds() / 3600
        if hours > 0:
            rate = (z - z0) / hours
    level = _judge(z, w, g, float(ctx.get("hydro_approach", 0.3)))
    if level is None:
        return "below"
    fast = float(ctx.get("hydro_fast_rise_per_hour", 0.5))
    raised = rate is not None and rate >= fast and level is not Level.RED
    if raised:
        level = _ORDER[_ORDER.index(level) + 1]
    over = z - w
    local_day = t.astimezone(BEIJING).date().isoformat()
    ident = f"hydro-{s.source}-{s.station}-{level.value}-{local_day}"
    rate_zh = f"，涨率 {rate:+.2f} {s.unit}/小时" if rate is not None else ""
    rate_en = f", rising {rate:+.2f} {s.unit}/h" if rate is not None else ""
    g_zh = f"，保证水位 {g} {s.unit}" if g is not None else ""
    zh = InfoText(
        language="zh-CN", event="洪水",
        headline=f"{s.name} 水位 {z} {s.unit}，{'超' if over >= 0 else '接近'}警戒水位 {abs(over):.2f} {s.unit}",
        description=f"{t.isoformat()} 实测水位 {z} {s.unit}，警戒水位 {w} {s.unit}{g_zh}{rate_zh}。",
    )
    en = InfoText(
        language="en-US", event="Flood",
        headline=f"{s.name} at {z} {s.unit}, {abs(over):.2f} {s.unit} {'above' if over >= 0 else 'below'} "
                 f"the warning level",
        description=f"Reading {z} {s.unit} at {t.isoformat()}; warning level {w}"
                    + (f", guarantee level {g}" if g is not None else "") + f"{rate_en}.",
    )
    area = AreaSpec(description=s.name)
    if s.lat is not None and s.lon is not None:
        check_lat_lon(s.lat, s.lon, "station")
        area.points.append((s.lat, s.lon, float(ctx.get("hydro_radius_km", 2.0))))
    return WarningDraft(
        identifier=ident, sender=s.sender, sent=t, msg_type=MsgType.ALERT, status=Status.ACTUAL, hazard=Hazard.FLOOD,
        event="洪水", level=level, effective=t, onset=t,
        expires=t + dt.timedelta(hours=float(ctx.get("hydro_valid_hours", 12.0))), infos=[zh, en], areas=[area],
        severity={Level.RED: "Extreme", Level.ORANGE: "Severe", Level.YELLOW: "Moderate"}.get(level, "Minor"),
        urgency="Immediate", certainty="Observed", source_format="hydro",
        extra={"station": s.station, "station_name": s.name, "reading": z, "reading_time": t, "unit": s.unit,
               "warning_level": w, "guarantee_level": g, "rise_per_hour": None if rate is None else round(rate, 4),
               "raised_for_fast_rise": raised, "site_id": site.id if site is not None else None},
    )


def parse(payload: bytes, ctx: ParserContext) -> ParseResult:
    if not payload.strip():
        raise ParseError("empty", "空内容 / empty payload")
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError("wrong_encoding", f"水情数据不是 UTF-8 / not UTF-8: {exc}") from None
    result = ParseResult()
    stripped = text.lstrip()
    station_list = 0
    if stripped.startswith("#"):
        result.skipped.append(Skipped(reason="USGS RDB 统计表（如年最大流量），不是实时读数 / a USGS RDB statistics "
                                             "table (e.g. annual peaks), not real-time readings"))
        return result
    if stripped.startswith(("{", "[")):
        doc = load_json(text)
        if isinstance(doc, dict) and isinstance(doc.get("value"), dict) and "timeSeries" in doc["value"]:
            series = _waterml(doc)
        elif isinstance(doc, dict) and isinstance(doc.get("items"), list):
            series, station_list = _ea(doc)
        elif (isinstance(doc, dict) and isinstance(doc.get("stations"), list)) or isinstance(doc, list):
            series = _generic_json(doc)
        else:
            raise ParseError("unknown_format", "无法识别的水情 JSON / unrecognised gauge JSON")
    else:
        series = _generic_csv(text)
    counts = {"no_readings": 0, "no_thresholds": 0, "below": 0}
    for s in series:
        out = _evaluate(s, ctx)
        if isinstance(out, str):
            counts[out] += 1
        else:
            result.warnings.append(out)
    if station_list and not series:
        result.skipped.append(Skipped(reason=f"测站清单（{station_list} 站），没有读数 / a station list "
                                             f"({station_list} stations) without readings"))
    if any(counts.values()):
        result.skipped.append(Skipped(reason=(
            f"{counts['below']} 站低于警戒，{counts['no_thresholds']} 站未设警戒水位，"
            f"{counts['no_readings']} 站无读数 / "
            f"{counts['below']} below warning level, {counts['no_thresholds']} without configured levels, "
            f"{counts['no_readings']} without readings")))
    if not series and not station_list:
        result.skipped.append(Skipped(reason="没有水位读数 / no water-level readings"))
    return result
