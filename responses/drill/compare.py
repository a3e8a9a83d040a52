"""Two audit reports side by side: the KPIs, overall and per township, and what changed ("what if").

Pure: it takes two ``report.json`` dicts (``responses.audit`` shape) and returns a plain dict, so the
CLI prints it, ``--json`` writes it as it is, and the HTML page draws it. The difference is always
``B − A``: A is the baseline (what happened, or the plan as it is), B the variant being asked about.

Per township the figures are recounted from the callout rows with the report's own definitions
(``responses.audit.kpis``): a late answer is one given after its deadline; an escalation is one step
up from a callout of that township (so it is counted where the silence was, not where the call went).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from responses.audit.kpis import answer_seconds, median, missed
from responses.audit.shape import KPI_KEYS, KPI_ZH, SCHEMA, parse_iso

COMPARE_SCHEMA = "jiaoying.drill-compare/1"

# The overall figures compared: the report's KPIs, and the count of late answers (answered − in time),
# which the question "what if the deadline were shorter" is usually about.
KEYS: tuple[str, ...] = (*KPI_KEYS, "late_answers")
ZH: dict[str, str] = {**KPI_ZH, "late_answers": "超时应答"}
EN: dict[str, str] = {
    "warning_to_first_call_s": "warning to first call (s)", "callouts": "callouts", "answered": "answered",
    "answered_in_time": "answered in time", "answer_rate_in_time": "answer rate in time",
    "median_answer_s": "median answer time (s)", "p90_answer_s": "p90 answer time (s)",
    "escalations": "escalations", "unanswered_after_escalation": "unanswered after escalation",
    "measures_overdue": "measures overdue", "reports_overdue": "reports overdue", "late_answers": "late answers",
}
# Per township: the same questions, recounted from the callout rows.
TOWNSHIP_KEYS: tuple[str, ...] = ("callouts", "answered", "answered_in_time", "late_answers", "unanswered",
                                  "escalations", "median_answer_s")
TOWNSHIP_ZH: dict[str, str] = {"callouts": "叫应人次", "answered": "已应答", "answered_in_time": "按时应答",
                               "late_answers": "超时应答", "unanswered": "未应答", "escalations": "升级次数",
                               "median_answer_s": "应答用时中位数（秒）"}
# For these a rise is worse; for the others (answered in time, rate) a rise is better. Used for the wording.
WORSE_WHEN_UP = frozenset({"warning_to_first_call_s", "median_answer_s", "p90_answer_s", "escalations",
                           "unanswered_after_escalation", "measures_overdue", "reports_overdue", "late_answers",
                           "unanswered"})
NEUTRAL = frozenset({"callouts"})  # more calls is neither better nor worse in itself
# What the summary sentences speak of (the rest is in the tables).
HEADLINE = ("late_answers", "escalations", "unanswered_after_escalation", "answered_in_time")


class CompareError(ValueError):
    def __init__(self, zh: str, en: str) -> None:
        self.zh, self.en = zh, en
        super().__init__(f"{zh} / {en}")


def _check(report: Any, label: str) -> Mapping[str, Any]:
    if not isinstance(report, Mapping) or report.get("schema") != SCHEMA:
        raise CompareError(f"{label} 不是时效审计报告（report.json，schema {SCHEMA}）",
                           f"{label} is not an audit report (report.json, schema {SCHEMA})")
    if not isinstance(report.get("kpis"), Mapping) or not isinstance(report.get("callouts"), list):
        raise CompareError(f"{label} 缺少 kpis 或 callouts", f"{label} lacks kpis or callouts")
    return report


def _diff(a: Any, b: Any) -> float | int | None:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int | float) or not isinstance(b, int | float):
        return None
    d = b - a
    return round(d, 4) if isinstance(d, float) else d


def overall(report: Mapping[str, Any]) -> dict[str, Any]:
    k = dict(report["kpis"])
    answered, in_time = k.get("answered"), k.get("answered_in_time")
    k["late_answers"] = answered - in_time if isinstance(answered, int) and isinstance(in_time, int) else None
    return {key: k.get(key) for key in KEYS}


def township_figures(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Township code → its figures (``TOWNSHIP_KEYS``), recounted from the callout rows."""
    as_of = parse_iso(report.get("as_of") or report.get("generated_at"))
    out: dict[str, dict[str, Any]] = {}
    times: dict[str, list[float]] = {}
    for c in report.get("callouts") or []:
        key = c.get("township") or "—"
        g = out.setdefault(key, {k: 0 for k in TOWNSHIP_KEYS})
        times.setdefault(key, [])
        g["callouts"] += 1
        g["escalations"] += len(c.get("escalated_to") or [])
        s = answer_seconds(c)
        if s is None:
            g["unanswered"] += 1
            continue
        g["answered"] += 1
        times[key].append(s)
        if as_of is not None and missed(parse_iso(c.get("deadline")), parse_iso(c.get("answered_at")), as_of):
            g["late_answers"] += 1
        else:
            g["answered_in_time"] += 1
    for key, g in out.items():
        g["median_answer_s"] = median(times[key])
    return out


def _line(key: str, a: Any, b: Any, zh: str, en: str) -> dict[str, Any]:
    return {"key": key, "zh": zh, "en": en, "a": a, "b": b, "diff": _diff(a, b)}


def _says(where_zh: str, where_en: str, rows: list[dict[str, Any]], code: str = "") -> list[dict[str, str]]:
    """One sentence per headline figure that changed, Chinese and English."""
    out = []
    for row in rows:
        if row["key"] not in HEADLINE or not row["diff"]:
            continue
        d = row["diff"]
        more = d > 0
        worse = more == (row["key"] in WORSE_WHEN_UP)
        out.append({
            "key": row["key"], "township": code, "direction": "more" if more else "fewer",
            "worse": "yes" if worse else "no",
            "zh": f"{where_zh}：B 的{row['zh']}{'多' if more else '少'} {abs(d)}（A {row['a']} → B {row['b']}）",
            "en": f"{where_en}: {'more' if more else 'fewer'} {row['en']} in B, {'+' if more else '-'}{abs(d)} "
                  f"(A {row['a']} → B {row['b']})",
        })
    return out


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison of report ``a`` (baseline) with report ``b`` (variant): every figure, and B − A."""
    a, b = _check(a, "A"), _check(b, "B")
    oa, ob = overall(a), overall(b)
    kpis = [_line(key, oa[key], ob[key], ZH[key], EN[key]) for key in KEYS]
    names = {**(a.get("area_names") or {}), **(b.get("area_names") or {})}
    ta, tb = township_figures(a), township_figures(b)
    townships = []
    summary = _says("总体", "overall", kpis)
    for code in sorted(set(ta) | set(tb)):
        fa = ta.get(code) or {k: 0 for k in TOWNSHIP_KEYS}
        fb = tb.get(code) or {k: 0 for k in TOWNSHIP_KEYS}
        if code not in ta:
            fa = {**fa, "median_answer_s": None}
        if code not in tb:
            fb = {**fb, "median_answer_s": None}
        rows = [_line(k, fa[k], fb[k], TOWNSHIP_ZH[k], EN.get(k, k)) for k in TOWNSHIP_KEYS]
        name = names.get(code, code)
        townships.append({"township": code, "name": name, "figures": rows})
        summary += _says(name, f"{name} ({code})", rows, code)
    return {
        "schema": COMPARE_SCHEMA,
        "a": _about(a), "b": _about(b),
        "kpis": kpis,
        "townships": townships,
        "summary": summary,
    }


def _about(r: Mapping[str, Any]) -> dict[str, Any]:
    scenario = r.get("scenario") or {}
    return {"title": r.get("title"), "drill": r.get("drill"), "as_of": r.get("as_of"),
            "scenario": scenario.get("name"), "run_ids": (r.get("scope") or {}).get("run_ids")}


def figure_text(key: str, value: Any) -> str:
    """A figure as people read it (rates in %, seconds with minutes); '—' for none."""
    if value is None:
        return "—"
    if key == "answer_rate_in_time":
        return f"{value * 100:.1f}%"
    if key.endswith("_s") and isinstance(value, int | float):
        return f"{value:g} 秒" if abs(value) < 60 else f"{value:g} 秒（{value / 60:.1f} 分钟）"
    return f"{value:g}" if isinstance(value, float) else str(value)


def diff_text(key: str, d: Any) -> str:
    if d is None:
        return "—"
    if d == 0:
        return "0"
    if key == "answer_rate_in_time":
        return f"{d * 100:+.1f}%"
    return f"{d:+g}"


def compare_html(comparison: Mapping[str, Any], a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """A self-contained page: the tables and both timelines (the audit report's own SVG, nothing fetched)."""
    from html import escape

    from responses.audit.charts import timeline_svg

    def cell(v: Any) -> str:
        return f"<td>{escape(str(v))}</td>"

    def table(rows: list[dict[str, Any]]) -> str:
        body = "".join(
            f"<tr><th>{escape(r['zh'])}<br><small>{escape(r['en'])}</small></th>{cell(figure_text(r['key'], r['a']))}"
            f"{cell(figure_text(r['key'], r['b']))}"
            f"<td class=\"{_tone(r)}\">{escape(diff_text(r['key'], r['diff']))}</td></tr>" for r in rows)
        return ("<table><thead><tr><th>指标 / figure</th><th>A</th><th>B</th><th>差值 B−A / diff</th></tr></thead>"
                f"<tbody>{body}</tbody></table>")

    sa, sb = comparison["a"], comparison["b"]
    said = "".join(f"<li>{escape(s['zh'])}<br><small>{escape(s['en'])}</small></li>" for s in comparison["summary"])
    towns = "".join(f"<h3>{escape(str(t['name']))} <small>{escape(t['township'])}</small></h3>{table(t['figures'])}"
                    for t in comparison["townships"])
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>演练对比 / drill comparison</title>
<style>
body{{font-family:'WenQuanYi Micro Hei','Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:1.5rem;color:#222}}
table{{border-collapse:collapse;margin:.5rem 0 1rem}}
th,td{{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}}
th{{text-align:left;font-weight:normal}}thead th{{background:#f3f3f3;font-weight:bold}}small{{color:#666}}
.worse{{color:#c62828;font-weight:bold}}.better{{color:#2e7d32;font-weight:bold}}svg{{max-width:100%;height:auto}}
</style></head><body>
<h1>演练对比 / drill comparison</h1>
<p>A：{escape(str(sa.get('title') or ''))}（截至 {escape(str(sa.get('as_of') or ''))}）<br>
B：{escape(str(sb.get('title') or ''))}（截至 {escape(str(sb.get('as_of') or ''))}）<br>
<small>差值为 B − A / the difference is B − A</small></p>
<h2>变化 / what changed</h2><ul>{said or '<li>关键指标无变化 / no headline figure changed</li>'}</ul>
<h2>关键指标 / KPIs</h2>{table(comparison['kpis'])}
<h2>分乡镇（街道）/ per township</h2>{towns}
<h2>时间线 A / timeline A</h2>{timeline_svg(a)}
<h2>时间线 B / timeline B</h2>{timeline_svg(b)}
</body></html>
"""


def _tone(row: Mapping[str, Any]) -> str:
    d = row.get("diff")
    if not d or row["key"] in NEUTRAL:
        return ""
    return "worse" if (d > 0) == (row["key"] in WORSE_WHEN_UP) else "better"
