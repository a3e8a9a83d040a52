"""Public notice texts (通告) for measures and their lifting.

Rendered from plain data with Jinja2 templates in ``templates/notices`` so a district can reword
them without touching code. Texts are plain Chinese, ready for the duty officer to check and
publish; nothing is sent from here. Missing data is a rendering error, never a blank in a notice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from responses.measures.core import REPORT_ZH
from responses.runs.plans import MEASURE_ZH, MeasureKind

TEMPLATES = Path(__file__).parent / "templates" / "notices"

TEMPLATE_OF = {
    MeasureKind.CLOSURE: "closure.txt.j2",
    MeasureKind.EVACUATION: "evacuation.txt.j2",
    MeasureKind.STOP_WORK: "suspension.txt.j2",
    MeasureKind.STOP_SCHOOL: "suspension.txt.j2",
    MeasureKind.STOP_BUSINESS: "suspension.txt.j2",
    MeasureKind.STOP_TRANSPORT: "suspension.txt.j2",
    MeasureKind.TRAFFIC_CONTROL: "traffic_control.txt.j2",
    MeasureKind.CUSTOM: "custom.txt.j2",
}

# (the act, who it applies to, what they do) for each suspension
_SUSPENSION = {
    MeasureKind.STOP_WORK: ("停工", "各类在建工程、矿山及户外作业单位", "一律停止施工作业"),
    MeasureKind.STOP_SCHOOL: ("停学", "各中小学校、幼儿园及校外培训机构", "一律停课，停止线下教学活动"),
    MeasureKind.STOP_BUSINESS: ("停业", "各类商场、景区、娱乐场所等经营单位", "一律暂停营业"),
    MeasureKind.STOP_TRANSPORT: ("停运", "城乡公交、客运班线及旅游客运车辆", "一律暂停运营"),
}

# For lift notices: what is lifted, and what resumes.
_LIFT = {
    MeasureKind.CLOSURE: ("公共场所临时关闭措施", "相关场所经安全检查后恢复开放"),
    MeasureKind.EVACUATION: ("人员转移避险措施", "已转移群众经安全评估后有序返回"),
    MeasureKind.STOP_WORK: ("停工措施", "各施工单位经安全检查后恢复施工"),
    MeasureKind.STOP_SCHOOL: ("停学措施", "各学校（幼儿园）恢复正常教学秩序"),
    MeasureKind.STOP_BUSINESS: ("停业措施", "各经营单位经安全检查后恢复营业"),
    MeasureKind.STOP_TRANSPORT: ("停运措施", "相关线路恢复运营"),
    MeasureKind.TRAFFIC_CONTROL: ("交通管控措施", "相关路段恢复通行"),
}

NOTICE_KINDS = ("order", "lift")


class NoticeError(ValueError):
    def __init__(self, zh: str, en: str) -> None:
        self.zh, self.en = zh, en
        super().__init__(en)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    # Plain text, not HTML: the console escapes when it shows them. StrictUndefined turns a missing
    # value into an error instead of a silent gap in a public notice.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        keep_trailing_newline=True,
    )


def local_text(when: dt.datetime | None, tz: ZoneInfo) -> str:
    """2026年7月20日 02:30 — how a Chinese notice writes a time."""
    if when is None:
        return ""
    t = when.astimezone(tz)
    return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M}"


def local_date(when: dt.datetime, tz: ZoneInfo) -> str:
    t = when.astimezone(tz)
    return f"{t.year}年{t.month}月{t.day}日"


@dataclass(frozen=True)
class NoticeData:
    """Everything a notice says, as plain values (the service reads them from the run and order)."""

    kind: MeasureKind
    label: str
    authority: str  # who publishes, e.g. 晋城市城区防汛抗旱指挥部
    plan_title: str
    unit: str
    area_names: Sequence[str]
    issued_at: dt.datetime
    deadline: dt.datetime
    tz: ZoneInfo
    hazard_zh: str = ""
    level_zh: str = ""
    warning_headline: str = ""
    warning_sender: str = ""
    site_names: Sequence[str] = ()
    expected: int | None = None
    number: str = ""  # e.g. 城区防指〔2026〕7号
    contact: str = ""
    lift_reason: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def _warning_sentence(d: NoticeData) -> str:
    who = d.warning_sender or "气象、水利等部门"
    if d.warning_headline:
        if "发布" in d.warning_headline:
            return f"{d.warning_headline.rstrip('。')}。"
        return f"{who}发布“{d.warning_headline}”。"
    if d.level_zh or d.hazard_zh:
        return f"{who}发布{d.level_zh}{d.hazard_zh}预警。"
    return ""


def _context(d: NoticeData) -> dict[str, Any]:
    if not d.area_names and not d.site_names:
        raise NoticeError("通告缺少涉及区域", "a notice needs at least one area or site")
    area_text = "、".join(d.area_names) if d.area_names else "相关区域"
    ctx: dict[str, Any] = {
        "kind": d.kind.value,
        "label": d.label or MEASURE_ZH[d.kind],
        "authority": d.authority,
        "plan_title": d.plan_title,
        "unit": d.unit,
        "area_text": area_text,
        "sites_text": "、".join(d.site_names),
        "effective_local": local_text(d.issued_at, d.tz),
        "deadline_local": local_text(d.deadline, d.tz),
        "issued_local": local_date(d.issued_at, d.tz),
        "warning_sentence": _warning_sentence(d),
        "expected": d.expected,
        "number": d.number,
        "contact": d.contact,
        "lift_reason": d.lift_reason,
        "places_text": d.extra.get("places_text") or "公园、景区、广场、体育场馆、文化场馆等人员密集公共场所",
    }
    if d.kind in _SUSPENSION:
        act, subject, detail = _SUSPENSION[d.kind]
        ctx.update(action_zh=act, subject_zh=subject, action_detail_zh=detail)
    return ctx


def render_order_notice(d: NoticeData) -> str:
    """The notice that announces a measure."""
    return environment().get_template(TEMPLATE_OF[d.kind]).render(**_context(d)).strip() + "\n"


def render_lift_notice(d: NoticeData) -> str:
    """The notice that lifts a measure: nothing stays closed or evacuated silently."""
    ctx = _context(d)
    subject, restore = _LIFT.get(d.kind, (f"“{ctx['label']}”措施", "相关工作恢复正常"))
    who = d.warning_sender or "相关部门"
    if d.warning_headline:
        lift_sentence = f"鉴于{who}发布的“{d.warning_headline}”已解除（或险情已消除），"
    else:
        lift_sentence = "鉴于险情已消除，"
    ctx.update(lift_subject_zh=subject, restore_zh=restore, lift_sentence=lift_sentence)
    return environment().get_template("lift.txt.j2").render(**ctx).strip() + "\n"


def render_notice(d: NoticeData, which: str = "order") -> str:
    if which not in NOTICE_KINDS:
        raise NoticeError(f"未知通告类型：{which}", f"unknown notice type {which!r}; use order or lift")
    return render_order_notice(d) if which == "order" else render_lift_notice(d)


def figures_zh(report: Mapping[str, Any] | None) -> str:
    """"已转移人数 120、应转移人数 130" from a measure report."""
    if not report:
        return ""
    return "、".join(f"{REPORT_ZH[k]} {v}" for k, v in report.items() if k in REPORT_ZH)
