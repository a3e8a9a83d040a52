"""The rule that turns an earthquake event (from USGS, CENC or QuakeML) into a warning, or not.

Intensity attenuation — the relation for eastern China (most of its data from North China, which
includes 晋城) by 汪素云, 俞言祥, 高阿甲, 严尚智 (2000), "中国分区地震动衰减关系的确定",
《中国地震》16(2): 99–106:

    long axis   I = 5.019 + 1.446·M − 4.136·lg(R + 24)
    short axis  I = 2.240 + 1.446·M − 3.070·lg(R + 9)

I is the intensity (China seismic intensity scale, GB/T 17742), M the surface-wave magnitude, R the
epicentral distance in km. (Both axes give the same epicentral intensity at R = 0 — e.g. M6 → 8.0 —
which is the check that the logarithms are decimal.) We use the LONG axis throughout: without the
fault strike we do not know the ellipse's orientation, and over-covering is the safe error for a
warning. Magnitudes of other types (ML, mb, Mw, md) are used as if Ms; the differences at the sizes
that matter here are a few tenths, within the relation's own scatter.

Rule (``ctx.config`` keys, defaults in brackets):

- ``earthquake_min_magnitude`` [3.0]: smaller events are skipped;
- intensity at the region centre ``I_r`` from the relation; the event becomes a warning when
  ``I_r ≥ earthquake_felt_intensity`` [4.0, felt indoors by many], or when it is within
  ``earthquake_near_km`` [50] of the region centre (a local M3+ is always reported to the duty room);
- ``earthquake_max_distance_km`` [600]: beyond it the event is skipped whatever the relation says —
  the relation was fitted on isoseismals within a few hundred km and its extrapolation to great
  distances (a M9 3,000 km away) is meaningless;
- level from ``I_r``: ≥ 8 red, ≥ 7 orange, ≥ 6 yellow, otherwise blue;
- area: a circle around the epicentre whose radius is where the long-axis intensity falls to
  ``earthquake_felt_intensity``, widened to reach ``earthquake_region_radius_km`` [15] past the region
  centre when a near event's felt radius would not reach it;
- ``earthquake_valid_hours`` [24]: expiry after the origin time.

Everything else is skipped with the reason (too small / too far). The identifier is derived from the
source's event id only, so re-reading the same event gives the same identifier.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
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
from warning.feeds.common import ParserContext, check_lat_lon, distance_km

A_LONG, B_LONG, C_LONG, R0_LONG = 5.019, 1.446, 4.136, 24.0


@dataclass(frozen=True)
class QuakeEvent:
    source: str  # usgs, cenc, quakeml
    sender: str
    event_id: str
    origin: dt.datetime
    updated: dt.datetime | None
    lat: float
    lon: float
    depth_km: float | None
    magnitude: float
    mag_type: str | None
    place: str | None
    url: str | None = None
    status: str | None = None
    event_type: str = "earthquake"


def intensity_at(magnitude: float, distance: float) -> float:
    """Long-axis intensity at ``distance`` km from the epicentre."""
    return A_LONG + B_LONG * magnitude - C_LONG * math.log10(max(distance, 0.0) + R0_LONG)


def radius_for(magnitude: float, intensity: float) -> float:
    """Long-axis radius (km) inside which the intensity is at least ``intensity`` (0 when nowhere)."""
    return max(0.0, 10 ** ((A_LONG + B_LONG * magnitude - intensity) / C_LONG) - R0_LONG)


def level_for_intensity(intensity: float) -> Level:
    if intensity >= 8:
        return Level.RED
    if intensity >= 7:
        return Level.ORANGE
    if intensity >= 6:
        return Level.YELLOW
    return Level.BLUE


def evaluate_all(events: Iterable[QuakeEvent], ctx: ParserContext, *, none_zh: str, none_en: str) -> ParseResult:
    """Every event of a catalogue through the rule; a catalogue with no event says so rather than nothing."""
    result = ParseResult()
    for ev in events:
        out = evaluate(ev, ctx)
        if isinstance(out, Skipped):
            result.skipped.append(out)
        else:
            result.warnings.append(out)
    if not result.warnings and not result.skipped:
        result.skipped.append(Skipped(reason=f"{none_zh} / {none_en}"))
    return result


def as_object(item: object, what_zh: str, what_en: str) -> dict[str, object]:
    if not isinstance(item, dict):
        raise ParseError("unknown_format", f"{what_zh}不是对象 / {what_en} is not an object")
    return item


def evaluate(ev: QuakeEvent, ctx: ParserContext) -> WarningDraft | Skipped:
    check_lat_lon(ev.lat, ev.lon, "epicentre")
    ident = f"eq-{ev.source}-{ev.event_id}"
    if ev.event_type and ev.event_type.lower() not in ("earthquake", "eq", "induced or triggered event"):
        return Skipped(reason=f"不是地震：{ev.event_type} / not an earthquake: {ev.event_type}", identifier=ident)
    min_mag = float(ctx.get("earthquake_min_magnitude", 3.0))
    felt = float(ctx.get("earthquake_felt_intensity", 4.0))
    near_km = float(ctx.get("earthquake_near_km", 50.0))
    region_radius = float(ctx.get("earthquake_region_radius_km", 15.0))
    valid_h = float(ctx.get("earthquake_valid_hours", 24.0))
    clat, clon = ctx.region_center
    dist = distance_km(ev.lat, ev.lon, clat, clon)
    i_r = intensity_at(ev.magnitude, dist)
    where = ev.place or f"{ev.lat:.2f},{ev.lon:.2f}"
    if ev.magnitude < min_mag:
        return Skipped(
            reason=f"震级过小，不构成预警：M{ev.magnitude:.1f} < {min_mag:.1f}（{where}）/ "
                   f"below the magnitude threshold: M{ev.magnitude:.1f} < {min_mag:.1f} ({where})",
            identifier=ident,
        )
    max_km = float(ctx.get("earthquake_max_distance_km", 600.0))
    if dist > max_km:
        return Skipped(
            reason=f"距离过远：M{ev.magnitude:.1f} 距辖区 {dist:.0f} 公里（上限 {max_km:.0f}）（{where}）/ "
                   f"too far away: M{ev.magnitude:.1f} {dist:.0f} km from the region (limit {max_km:.0f}) ({where})",
            identifier=ident,
        )
    if i_r < felt and dist > near_km:
        return Skipped(
            reason=f"距离过远，辖区无感：M{ev.magnitude:.1f} 距辖区 {dist:.0f} 公里，估计烈度 {i_r:.1f} 度 / "
                   f"too far to be felt in the region: M{ev.magnitude:.1f} {dist:.0f} km away, "
                   f"estimated intensity {i_r:.1f}",
            identifier=ident,
        )
    radius = radius_for(ev.magnitude, felt)
    if radius < dist + region_radius and dist <= near_km:
        radius = dist + region_radius
    level = level_for_intensity(i_r)
    mag_label = f"{ev.mag_type or 'M'} {ev.magnitude:.1f}"
    zh = InfoText(
        language="zh-CN", event="地震",
        headline=f"{where}发生{ev.magnitude:.1f}级地震，距辖区约{dist:.0f}公里，估计辖区烈度{i_r:.1f}度",
        description=(f"发震时刻 {ev.origin.isoformat()}，震中 {ev.lat:.3f}°N {ev.lon:.3f}°E，"
                     f"深度 {ev.depth_km if ev.depth_km is not None else '未知'} 公里，震级 {mag_label}。"
                     f"影响半径（{felt:.0f}度）约 {radius:.0f} 公里。"),
        web=ev.url,
    )
    en = InfoText(
        language="en-US", event="Earthquake",
        headline=f"M{ev.magnitude:.1f} earthquake {where}, {dist:.0f} km from the region, "
                 f"estimated intensity {i_r:.1f} there",
        description=(f"Origin {ev.origin.isoformat()}, epicentre {ev.lat:.3f}N {ev.lon:.3f}E, depth "
                     f"{ev.depth_km if ev.depth_km is not None else 'unknown'} km, magnitude {mag_label}. "
                     f"Felt radius (intensity {felt:.0f}) about {radius:.0f} km."),
        web=ev.url,
    )
    return WarningDraft(
        identifier=ident, sender=ev.sender, sent=ev.updated or ev.origin, msg_type=MsgType.ALERT,
        status=Status.ACTUAL, hazard=Hazard.EARTHQUAKE, event="地震", level=level,
        effective=ev.origin, onset=ev.origin, expires=ev.origin + dt.timedelta(hours=valid_h),
        infos=[zh, en],
        areas=[AreaSpec(description=where, circles=[(ev.lat, ev.lon, round(radius, 3))])],
        severity={Level.RED: "Extreme", Level.ORANGE: "Severe", Level.YELLOW: "Moderate"}.get(level, "Minor"),
        urgency="Immediate", certainty="Observed", source_format=ev.source,
        extra={
            "magnitude": ev.magnitude, "magnitude_type": ev.mag_type, "depth_km": ev.depth_km,
            "epicentre": [ev.lat, ev.lon], "distance_km": round(dist, 1),
            "intensity_at_region": round(i_r, 2), "felt_radius_km": round(radius, 1), "event_id": ev.event_id,
            "review_status": ev.status,
        },
    )
