"""NASA FIRMS active-fire CSV (MODIS: ``brightness``, numeric ``confidence`` 0–100; VIIRS:
``bright_ti4``, ``confidence`` l/n/h) → forest-fire warnings for hotspot clusters near the region.

Steps, with the ``ctx.config`` keys and [defaults]:

1. keep hotspots with confidence ≥ ``firms_min_confidence`` [30, FIRMS' "nominal" floor]; VIIRS
   letters count as l = 10, n = 50, h = 90;
2. keep those within ``firms_region_km`` [25] of the region centre (城区 is about 10 km across its
   half-width; the margin catches fires just outside that can cross in);
3. cluster them: two hotspots belong together when they are within ``firms_cluster_km`` [2.0] and
   ``firms_window_hours`` [24] of each other (single linkage, on a grid so 100k rows stay fast);
4. each cluster is one warning. Level: red with ≥ ``firms_red_count`` [25] hotspots or total FRP ≥
   ``firms_red_frp`` [500 MW]; orange with ≥ 10 hotspots, FRP ≥ 150 MW, or any hotspot inside a
   forest-block site (``ctx.sites`` of kind ``forest_block``/``forest``, radius ``attrs.radius_km``
   [2]); yellow with ≥ 3 hotspots or FRP ≥ 50 MW; otherwise blue;
5. area: a circle around the cluster centroid reaching its farthest hotspot plus
   ``firms_buffer_km`` [1.0].

The identifier is derived from the cluster's earliest hotspot (time, position, satellite), so the
same file gives the same identifiers and a cluster that grows in a later file keeps its identifier.
Hotspots left out (low confidence, far away) are counted in one skipped entry, not listed one by one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass

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
from warning.feeds.common import ParserContext, distance_km, stable_id

SENDER = "firms.modaps.eosdis.nasa.gov"
_VIIRS_CONF = {"l": 10.0, "low": 10.0, "n": 50.0, "nominal": 50.0, "h": 90.0, "high": 90.0}
_FOREST_KINDS = {"forest_block", "forest"}


@dataclass
class Hotspot:
    lat: float
    lon: float
    t: dt.datetime
    confidence: float
    frp: float
    satellite: str
    instrument: str


def _conf(text: str) -> float:
    t = text.strip().lower()
    if t in _VIIRS_CONF:
        return _VIIRS_CONF[t]
    return float(t)


def _read(payload: bytes, ctx: ParserContext) -> tuple[list[Hotspot], int, int, int]:
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError("wrong_encoding", f"FIRMS CSV 不是 UTF-8 / not UTF-8: {exc}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise ParseError("empty", "空 CSV / empty CSV")
    cols = {h.strip().lower(): i for i, h in enumerate(header)}
    need = ("latitude", "longitude", "acq_date", "acq_time", "confidence")
    missing = [c for c in need if c not in cols]
    if missing:
        raise ParseError("unknown_format", f"不是 FIRMS CSV，缺少列 / not FIRMS CSV, missing columns: {missing}")
    i_lat, i_lon, i_date, i_time, i_conf = (cols[c] for c in need)
    i_frp = cols.get("frp")
    i_sat = cols.get("satellite")
    i_ins = cols.get("instrument")
    instrument_default = "VIIRS" if "bright_ti4" in cols else "MODIS"
    min_conf = float(ctx.get("firms_min_confidence", 30.0))
    region_km = float(ctx.get("firms_region_km", 25.0))
    clat, clon = ctx.region_center
    dlat = math.degrees(region_km / 6371.0) * 1.01
    dlon = dlat / max(math.cos(math.radians(clat)), 1e-6)
    lat_lo, lat_hi, lon_lo, lon_hi = clat - dlat, clat + dlat, clon - dlon, clon + dlon
    kept: list[Hotspot] = []
    low = far = rows = 0
    width = len(header)
    for n, row in enumerate(reader, start=2):
        if not row:
            continue
        rows += 1
        if len(row) < width:
            raise ParseError("bad_row", f"第 {n} 行列数不足 / line {n} has too few columns")
        try:
            lat = float(row[i_lat])
            lon = float(row[i_lon])
            conf = _conf(row[i_conf])
        except ValueError:
            raise ParseError("bad_row", f"第 {n} 行数值无效 / line {n}: bad number") from None
        if conf < min_conf:
            low += 1
            continue
        if not (lat_lo <= lat <= lat_hi and lon_lo <= lon <= lon_hi) or distance_km(lat, lon, clat, clon) > region_km:
            far += 1
            continue
        hhmm = row[i_time].strip().zfill(4)
        try:
            t = dt.datetime.fromisoformat(f"{row[i_date].strip()}T{hhmm[:2]}:{hhmm[2:4]}:00+00:00")
            frp = float(row[i_frp]) if i_frp is not None and row[i_frp].strip() else 0.0
        except ValueError:
            raise ParseError("bad_row", f"第 {n} 行时间或 FRP 无效 / line {n}: bad time or FRP") from None
        kept.append(Hotspot(lat, lon, t, conf, frp, row[i_sat].strip() if i_sat is not None else "",
                            row[i_ins].strip() if i_ins is not None else instrument_default))
    return kept, low, far, rows


def _clusters(points: list[Hotspot], cluster_km: float, window: dt.timedelta) -> list[list[Hotspot]]:
    """Single-linkage clusters in space and time.

    Cells are squares whose diagonal is ``cluster_km`` and whose time span is ``window``, so all
    hotspots in one cell belong together at once; neighbouring cells (two cells out, one time span
    either way) are joined by the first qualifying pair found, and skipped once already joined. This
    keeps 100k dense rows well under a second, where a pairwise search would take minutes.
    """
    if not points:
        return []
    parent = list(range(len(points)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    side_lat = math.degrees(cluster_km / math.sqrt(2) / 6371.0)
    mean_lat = sum(p.lat for p in points) / len(points)
    side_lon = side_lat / max(math.cos(math.radians(mean_lat)), 1e-6)
    win = max(window.total_seconds(), 1.0)
    t0 = min(p.t for p in points)
    cells: dict[tuple[int, int, int], list[int]] = {}
    for i, p in enumerate(points):
        key = (int(p.lat // side_lat), int(p.lon // side_lon), int((p.t - t0).total_seconds() // win))
        members = cells.setdefault(key, [])
        if members:
            parent[i] = members[0]
        members.append(i)
    reach = 3 if side_lon < side_lat * 0.999 else 2
    for (cy, cx, ct), members in cells.items():
        for dy in range(-2, 3):
            for dx in range(-reach, reach + 1):
                for dt_ in (-1, 0, 1):
                    other = cells.get((cy + dy, cx + dx, ct + dt_))
                    if other is None or other is members:
                        continue
                    if find(members[0]) == find(other[0]):
                        continue
                    _join_first(points, members, other, cluster_km, window, find, parent)
    groups: dict[int, list[Hotspot]] = {}
    for i, p in enumerate(points):
        groups.setdefault(find(i), []).append(p)
    return list(groups.values())


def _join_first(points: list[Hotspot], a: list[int], b: list[int], km: float, window: dt.timedelta,
                find: object, parent: list[int]) -> None:
    for i in a:
        pi = points[i]
        for j in b:
            pj = points[j]
            if abs(pi.t - pj.t) <= window and distance_km(pi.lat, pi.lon, pj.lat, pj.lon) <= km:
                ri, rj = find(a[0]), find(b[0])  # type: ignore[operator]
                if ri != rj:
                    parent[rj] = ri
                return


def _level(count: int, frp: float, in_forest: bool, ctx: ParserContext) -> Level:
    if count >= int(ctx.get("firms_red_count", 25)) or frp >= float(ctx.get("firms_red_frp", 500.0)):
        return Level.RED
    if count >= 10 or frp >= 150.0 or in_forest:
        return Level.ORANGE
    if count >= 3 or frp >= 50.0:
        return Level.YELLOW
    return Level.BLUE


def parse(payload: bytes, ctx: ParserContext) -> ParseResult:
    if not payload.strip():
        raise ParseError("empty", "空内容 / empty payload")
    points, low, far, rows = _read(payload, ctx)
    cluster_km = float(ctx.get("firms_cluster_km", 2.0))
    window = dt.timedelta(hours=float(ctx.get("firms_window_hours", 24.0)))
    buffer_km = float(ctx.get("firms_buffer_km", 1.0))
    forests = [s for s in ctx.site_list() if s.kind in _FOREST_KINDS]
    result = ParseResult()
    clat, clon = ctx.region_center
    for group in _clusters(points, cluster_km, window):
        group.sort(key=lambda p: (p.t, p.lat, p.lon, p.satellite))
        first = group[0]
        n = len(group)
        lat = sum(p.lat for p in group) / n
        lon = sum(p.lon for p in group) / n
        radius = max(distance_km(lat, lon, p.lat, p.lon) for p in group) + buffer_km
        frp = sum(p.frp for p in group)
        sites = sorted({s.id for s in forests for p in group
                        if distance_km(p.lat, p.lon, s.lat, s.lon) <= float(s.attrs.get("radius_km", 2.0))})
        level = _level(n, frp, bool(sites), ctx)
        last = group[-1].t
        ident = stable_id("firms", first.t.isoformat(), f"{first.lat:.4f}", f"{first.lon:.4f}", first.satellite)
        dist = distance_km(lat, lon, clat, clon)
        zh = InfoText(
            language="zh-CN", event="森林火灾（卫星热点）",
            headline=f"卫星监测到 {n} 个火点，距辖区中心约 {dist:.1f} 公里",
            description=(f"{first.instrument} 卫星热点 {n} 个，首次 {first.t.isoformat()}，最近 {last.isoformat()}，"
                         f"总辐射功率 {frp:.1f} MW，中心 {lat:.4f}°N {lon:.4f}°E。"
                         + (f"位于林区：{'、'.join(sites)}。" if sites else "")),
            instruction="请林业、应急部门核实火情。",
        )
        en = InfoText(
            language="en-US", event="Forest fire (satellite hotspots)",
            headline=f"{n} satellite fire hotspot(s) about {dist:.1f} km from the region centre",
            description=(f"{n} {first.instrument} hotspots, first {first.t.isoformat()}, last {last.isoformat()}, "
                         f"total FRP {frp:.1f} MW, centre {lat:.4f}N {lon:.4f}E."
                         + (f" Inside forest blocks: {', '.join(sites)}." if sites else "")),
            instruction="Forestry and emergency staff to verify on the ground.",
        )
        result.warnings.append(WarningDraft(
            identifier=ident, sender=SENDER, sent=last, msg_type=MsgType.ALERT, status=Status.ACTUAL,
            hazard=Hazard.FOREST_FIRE, event="森林火灾", level=level, effective=first.t, onset=first.t,
            expires=last + window, infos=[zh, en],
            areas=[AreaSpec(description=f"{lat:.4f},{lon:.4f}",
                            circles=[(round(lat, 6), round(lon, 6), round(radius, 3))])],
            severity="Severe" if level.rank >= 3 else "Moderate", urgency="Immediate", certainty="Observed",
            source_format="firms",
            extra={"hotspots": n, "frp_total_mw": round(frp, 2), "first_detected": first.t, "last_detected": last,
                   "instrument": first.instrument, "forest_sites": sites, "distance_km": round(dist, 2),
                   "points": [[p.lat, p.lon] for p in group[:50]]},
        ))
    if low or far:
        result.skipped.append(Skipped(reason=(
            f"共 {rows} 个热点：{low} 个置信度过低，{far} 个不在辖区附近 / of {rows} hotspots, {low} below the "
            f"confidence threshold and {far} not near the region")))
    return result
