"""Inline SVG charts for the HTML report, drawn from the report dict (pure, deterministic).

The charts are plain SVG written here rather than by a plotting library: the text stays text (the
reader's browser renders the Chinese with its own CJK font), the page needs nothing from a network,
and the same report always gives byte-identical markup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from responses.audit.kpis import answer_seconds, missed
from responses.audit.shape import VALUE_ZH, parse_iso

FONT = "'WenQuanYi Micro Hei','Noto Sans CJK SC','Microsoft YaHei','PingFang SC',sans-serif"
GREEN, ORANGE, RED, BLUE, GREY, DARK = "#2e7d32", "#ef6c00", "#c62828", "#1565c0", "#9e9e9e", "#333333"


@dataclass
class Lane:
    label: str
    bars: list[tuple[dt.datetime, dt.datetime, str, str]] = field(default_factory=list)  # start, end, colour, tip
    marks: list[tuple[dt.datetime, str, str, str]] = field(default_factory=list)  # at, shape, colour, tip


def _t(v: Any) -> dt.datetime | None:
    return parse_iso(v) if isinstance(v, str) else None


def _hm(when: dt.datetime) -> str:
    return when.strftime("%H:%M")


def _tip(*parts: Any) -> str:
    return " ".join(str(p) for p in parts if p not in (None, ""))


def _lanes(report: Mapping[str, Any], as_of: dt.datetime) -> list[Lane]:
    lanes: list[Lane] = []
    for w in report.get("warnings") or []:
        lane = Lane(f"预警 #{w.get('id')}")
        start, end = _t(w.get("received_at")), _t(w.get("ended_at")) or as_of
        if start:
            lane.bars.append((start, max(end, start), BLUE, _tip("预警", w.get("event") or "", w.get("headline"))))
        for v in w.get("versions") or []:
            at = _t(v.get("received_at"))
            if at:
                kind = VALUE_ZH["msg_type"].get(v.get("msg_type", ""), v.get("msg_type"))
                lane.marks.append((at, "diamond", RED if v.get("msg_type") == "cancel" else DARK,
                                   _tip(kind, VALUE_ZH["level"].get(v.get("level") or "", ""), _hm(at))))
        lanes.append(lane)
    for c in report.get("consultations") or []:
        lane = Lane(f"会商 #{c.get('id')}")
        start, deadline, decided = _t(c.get("opened_at")), _t(c.get("deadline")), _t(c.get("decided_at"))
        if start:
            end = decided or deadline or as_of
            lane.bars.append((start, max(end, start), "#6a1b9a", _tip("会商研判", _hm(start), "→", _hm(end))))
        if deadline:
            lane.marks.append((deadline, "tick", RED, _tip("研判截止", _hm(deadline))))
        for j in c.get("judgements") or []:
            at = _t(j.get("at"))
            if at:
                lane.marks.append((at, "circle", ORANGE if j.get("late") else GREEN,
                                   _tip(j.get("department"), VALUE_ZH["level"].get(j.get("level") or "", ""), _hm(at))))
        if decided:
            lane.marks.append((decided, "diamond", DARK, _tip("决策", c.get("decision_level"), _hm(decided))))
        lanes.append(lane)
    for r in report.get("runs") or []:
        lane = Lane(f"响应 #{r.get('id')}")
        start = _t(r.get("started_at"))
        if start:
            end = _t(r.get("closed_at")) or as_of
            lane.bars.append((start, max(end, start), "#00838f", _tip("响应", r.get("response_level"), _hm(start))))
        lanes.append(lane)
    tiers: dict[str, Lane] = {}
    for c in report.get("callouts") or []:
        tier = c.get("tier") or "—"
        lane = tiers.setdefault(tier, Lane(f"叫应·{VALUE_ZH['tier'].get(tier, tier)}"))
        called, deadline, answered = _t(c.get("called_at")), _t(c.get("deadline")), _t(c.get("answered_at"))
        if called:
            lane.marks.append((called, "tick", GREY, _tip("叫", c.get("person"), _hm(called))))
        if answered:
            late = missed(deadline, answered, as_of)
            lane.marks.append((answered, "circle", ORANGE if late else GREEN,
                               _tip("应", c.get("person"), _hm(answered), "超时" if late else "按时")))
        elif deadline:
            pending = deadline > as_of
            lane.marks.append((deadline, "cross", GREY if pending else RED,
                               _tip("待应答" if pending else "未应答", c.get("person"), "时限", _hm(deadline))))
    lanes.extend(tiers[k] for k in sorted(tiers, key=_tier_order))
    if report.get("escalations"):
        lane = Lane("升级")
        for e in report["escalations"]:
            at = _t(e.get("at"))
            if at:
                lane.marks.append((at, "triangle", RED, _tip(e.get("from_person"), "→", e.get("to_person"), _hm(at))))
        lanes.append(lane)
    kinds: dict[str, Lane] = {}
    for m in report.get("measures") or []:
        kind = m.get("kind") or "—"
        lane = kinds.setdefault(kind, Lane(f"措施·{VALUE_ZH['kind'].get(kind, kind)}"))
        ordered, deadline = _t(m.get("ordered_at")), _t(m.get("deadline"))
        done, lifted = _t(m.get("carried_out_at")), _t(m.get("lifted_at"))
        if ordered:
            end = done or as_of
            colour = ORANGE if missed(deadline, done, as_of) else GREEN
            lane.bars.append((ordered, max(end, ordered), colour, _tip(m.get("title") or kind, _hm(ordered))))
        if lifted:
            lane.marks.append((lifted, "diamond", BLUE, _tip("解除", _hm(lifted))))
    lanes.extend(kinds[k] for k in sorted(kinds))
    if report.get("reports"):
        lane = Lane("信息报送")
        for r in report["reports"]:
            due, sent = _t(r.get("due_at")), _t(r.get("sent_at"))
            if due:
                lane.marks.append((due, "tick", RED, _tip(r.get("kind"), "应报", _hm(due))))
            if sent:
                lane.marks.append((sent, "circle", ORANGE if missed(due, sent, as_of) else GREEN,
                                   _tip(r.get("kind"), "已报", _hm(sent))))
        lanes.append(lane)
    return lanes


def _tier_order(tier: str) -> int:
    order = ["site", "village", "township", "district", "leader_on_duty"]
    return order.index(tier) if tier in order else len(order)


def _step_seconds(span_s: float) -> int:
    for step in (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if span_s / step <= 10:
            return step
    return 86400 * max(1, int(span_s / 86400 / 10) + 1)


def _shape(x: float, y: float, shape: str, colour: str, tip: str) -> str:
    title = f"<title>{escape(tip)}</title>"
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">{title}</circle>'
    if shape == "diamond":
        pts = f"{x:.1f},{y - 6:.1f} {x + 6:.1f},{y:.1f} {x:.1f},{y + 6:.1f} {x - 6:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{colour}">{title}</polygon>'
    if shape == "triangle":
        pts = f"{x:.1f},{y - 6:.1f} {x + 6:.1f},{y + 5:.1f} {x - 6:.1f},{y + 5:.1f}"
        return f'<polygon points="{pts}" fill="{colour}">{title}</polygon>'
    if shape == "cross":
        return (f'<g stroke="{colour}" stroke-width="2">{title}<line x1="{x - 4:.1f}" y1="{y - 4:.1f}" '
                f'x2="{x + 4:.1f}" y2="{y + 4:.1f}"/><line x1="{x - 4:.1f}" y1="{y + 4:.1f}" x2="{x + 4:.1f}" '
                f'y2="{y - 4:.1f}"/></g>')
    return (f'<line x1="{x:.1f}" y1="{y - 7:.1f}" x2="{x:.1f}" y2="{y + 7:.1f}" stroke="{colour}" '
            f'stroke-width="2">{title}</line>')


def _all_times(lanes: Iterable[Lane]) -> list[dt.datetime]:
    out: list[dt.datetime] = []
    for lane in lanes:
        for s, e, _, _ in lane.bars:
            out += [s, e]
        out += [m[0] for m in lane.marks]
    return out


def timeline_svg(report: Mapping[str, Any], *, width: int = 960) -> str:
    """The event on one time axis: warnings, consultation, runs, calls and answers per tier, measures, reports."""
    as_of = parse_iso(report.get("as_of") or report.get("generated_at"))
    assert as_of is not None
    lanes = _lanes(report, as_of)
    times = _all_times(lanes)
    if not times:
        return _empty_svg("时间线", "本报告没有可绘制的时间记录", width)
    t0, t1 = min(times), min(max(times), as_of)  # what lies after the report's moment is not drawn
    if t1 <= t0:
        t1 = max(times)
    tz = t0.tzinfo
    span = max((t1 - t0).total_seconds(), 60.0)
    left, right, top, lane_h = 150, 20, 36, 26
    height = top + lane_h * len(lanes) + 70
    plot_w = width - left - right

    def x(t: dt.datetime) -> float:
        return left + (t - t0).total_seconds() / span * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-timeline" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="事件时间线" font-family="{FONT}" font-size="12">',
        '<text x="10" y="20" font-size="15" font-weight="bold">事件时间线（北京时间）</text>',
    ]
    step = _step_seconds(span)
    first_tick = t0.astimezone(tz)
    first_tick = first_tick - dt.timedelta(seconds=(first_tick.hour * 3600 + first_tick.minute * 60 +
                                                    first_tick.second) % step)
    tick = first_tick
    axis_y = top + lane_h * len(lanes)
    while tick <= t1:
        if tick >= t0:
            xx = x(tick)
            parts.append(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{axis_y}" stroke="#e0e0e0"/>')
            parts.append(f'<text x="{xx:.1f}" y="{axis_y + 16}" text-anchor="middle">{_hm(tick)}</text>')
        tick += dt.timedelta(seconds=step)
    for i, lane in enumerate(lanes):
        y = top + lane_h * i + lane_h / 2
        if i % 2 == 0:
            parts.append(f'<rect x="{left}" y="{top + lane_h * i}" width="{plot_w}" height="{lane_h}" fill="#fafafa"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(lane.label)}</text>')
        for s, e, colour, tip in lane.bars:
            if s > t1:
                continue
            e = min(e, t1)
            w = max(x(e) - x(s), 2.0)
            parts.append(f'<rect x="{x(s):.1f}" y="{y - 5:.1f}" width="{w:.1f}" height="10" rx="2" fill="{colour}" '
                         f'fill-opacity="0.35" stroke="{colour}"><title>{escape(tip)}</title></rect>')
        for at, shape, colour, tip in lane.marks:
            if at <= t1:
                parts.append(_shape(x(at), y, shape, colour, tip))
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="{DARK}"/>')
    if as_of <= t1:
        xa = x(as_of)
        parts.append(f'<line x1="{xa:.1f}" y1="{top}" x2="{xa:.1f}" y2="{axis_y}" stroke="{DARK}" '
                     f'stroke-dasharray="4 3"><title>报告截止 {_hm(as_of.astimezone(tz))}</title></line>')
    legend = [("circle", GREEN, "按时"), ("circle", ORANGE, "超时"), ("cross", RED, "未应答"),
              ("tick", GREY, "叫应发出"), ("triangle", RED, "升级"), ("diamond", DARK, "预警版本 / 决策")]
    lx = left
    ly = axis_y + 44
    for shape, colour, label in legend:
        parts.append(_shape(lx, ly - 4, shape, colour, label))
        parts.append(f'<text x="{lx + 10}" y="{ly}">{escape(label)}</text>')
        lx += 30 + 14 * len(label)
    parts.append("</svg>")
    return "\n".join(parts)


BUCKETS: tuple[tuple[float, str, str], ...] = (
    (120, "≤2分钟", "#1b5e20"),
    (300, "2–5分钟", "#66bb6a"),
    (600, "5–10分钟", "#fdd835"),
    (1200, "10–20分钟", "#fb8c00"),
    (1800, "20–30分钟", "#e53935"),
    (float("inf"), ">30分钟", "#8e0000"),
)
UNANSWERED = ("未应答", "#9e9e9e")


def answer_buckets(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per township, how many calls were answered within each time band, and how many never."""
    names: Mapping[str, str] = report.get("area_names") or {}
    rows: dict[str, dict[str, Any]] = {}
    for c in report.get("callouts") or []:
        key = c.get("township") or "—"
        row = rows.setdefault(key, {"township": key, "name": names.get(key, key),
                                    "counts": [0] * (len(BUCKETS) + 1)})
        s = answer_seconds(c)
        if s is None:
            row["counts"][-1] += 1
            continue
        for i, (limit, _, _) in enumerate(BUCKETS):
            if s <= limit:
                row["counts"][i] += 1
                break
    return [rows[k] for k in sorted(rows)]


def answer_distribution_svg(report: Mapping[str, Any], *, width: int = 960) -> str:
    """How long each township's people took to answer: stacked bands per township."""
    rows = answer_buckets(report)
    if not rows:
        return _empty_svg("各乡镇（街道）应答用时分布", "本报告没有叫应记录", width)
    left, right, top, row_h = 170, 60, 36, 28
    height = top + row_h * len(rows) + 60
    plot_w = width - left - right
    most = max(sum(r["counts"]) for r in rows) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-answers" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="各乡镇应答用时分布" font-family="{FONT}" '
        'font-size="12">',
        '<text x="10" y="20" font-size="15" font-weight="bold">各乡镇（街道）应答用时分布（人次）</text>',
    ]
    colours = [b[2] for b in BUCKETS] + [UNANSWERED[1]]
    labels = [b[1] for b in BUCKETS] + [UNANSWERED[0]]
    for i, row in enumerate(rows):
        y = top + row_h * i
        parts.append(f'<text x="{left - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end">{escape(row["name"])}</text>')
        xx = float(left)
        for count, colour, label in zip(row["counts"], colours, labels, strict=True):
            if not count:
                continue
            w = count / most * plot_w
            parts.append(f'<rect x="{xx:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{colour}">'
                         f'<title>{escape(row["name"])} {escape(label)}：{count} 人次</title></rect>')
            xx += w
        parts.append(f'<text x="{xx + 6:.1f}" y="{y + row_h / 2 + 4:.1f}">{sum(row["counts"])}</text>')
    ly = top + row_h * len(rows) + 30
    lx = float(left)
    for colour, label in zip(colours, labels, strict=True):
        parts.append(f'<rect x="{lx:.1f}" y="{ly - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 16:.1f}" y="{ly}">{escape(label)}</text>')
        lx += 24 + 12 * len(label)
    parts.append("</svg>")
    return "\n".join(parts)


def _empty_svg(title: str, message: str, width: int) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} 60" width="{width}" '
            f'height="60" font-family={quoteattr(FONT)} font-size="12"><text x="10" y="20" font-size="15" '
            f'font-weight="bold">{escape(title)}</text><text x="10" y="44">{escape(message)}</text></svg>')
