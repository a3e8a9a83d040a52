"""The fixed shape of the audit report: its tables, their columns (with Chinese headers) and the KPIs.

``report.json`` is an interface other systems read, so the column lists here are the single place
the shape is written down; the builder fills them, the renderers and the workbook read them.
Every time is ISO 8601 with the display zone's offset (e.g. ``2026-07-20T02:00:00+08:00``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

SCHEMA = "jiaoying.audit-report/1"

Kind = Literal["text", "time", "list", "bool", "int", "float", "count"]


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    kind: Kind = "text"


def _cols(*specs: tuple[str, str] | tuple[str, str, Kind]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in specs)


# table key -> (sheet / section title in Chinese, columns). The first columns of each table are the ones the
# issue fixes; the rest are what an auditor needs beyond them.
TABLES: dict[str, tuple[str, tuple[Column, ...]]] = {
    "warnings": ("预警", _cols(
        ("id", "编号", "int"), ("identifier", "标识符"), ("sender", "发布者"), ("hazard", "灾种"),
        ("event", "事件"), ("level", "等级"), ("received_at", "首次接收时间", "time"), ("status", "状态（CAP）"),
        ("versions", "版本数", "count"), ("msg_type", "最新消息类型"), ("state", "当前状态"),
        ("headline", "标题"), ("ended_at", "结束时间", "time"),
    )),
    "consultations": ("会商研判", _cols(
        ("id", "编号", "int"), ("warning_id", "预警编号", "int"), ("opened_at", "开始时间", "time"),
        ("deadline", "截止时间", "time"), ("decided_at", "决策时间", "time"), ("decision_level", "决策等级"),
        ("judgements", "研判意见数", "count"), ("missing", "未按时研判部门", "list"), ("invited", "受邀部门", "list"),
        ("state", "状态"),
    )),
    "runs": ("响应", _cols(
        ("id", "编号", "int"), ("warning_id", "预警编号", "int"), ("level", "预警等级"), ("trigger", "启动方式"),
        ("started_at", "启动时间", "time"), ("closed_at", "结束时间", "time"), ("number", "响应编号"),
        ("response_level", "响应级别"), ("state", "状态"),
    )),
    "callouts": ("叫应", _cols(
        ("id", "编号", "int"), ("run_id", "响应编号", "int"), ("person", "责任人"), ("phone", "电话"),
        ("role", "角色"), ("tier", "层级"), ("areas", "负责区域", "list"), ("called_at", "叫应时间", "time"),
        ("deadline", "应答时限", "time"), ("answered_at", "应答时间", "time"), ("answer_channel", "应答方式"),
        ("late", "超时", "bool"), ("attempts", "尝试次数", "int"), ("escalated_to", "升级至（叫应编号）", "list"),
        ("state", "状态"), ("township", "乡镇（街道）"), ("answer_s", "应答用时（秒）", "float"),
        ("escalated_from", "由此升级而来（叫应编号）", "int"),
    )),
    "escalations": ("升级", _cols(
        ("from_callout", "原叫应编号", "int"), ("to_callout", "升级叫应编号", "int"), ("at", "升级时间", "time"),
        ("from_person", "未应答人"), ("to_person", "升级至"), ("to_role", "升级至角色"), ("reason", "原因"),
    )),
    "measures": ("措施", _cols(
        ("id", "编号", "int"), ("run_id", "响应编号", "int"), ("kind", "措施类型"), ("areas", "区域", "list"),
        ("ordered_at", "下达时间", "time"), ("deadline", "落实时限", "time"),
        ("carried_out_at", "落实时间", "time"), ("lifted_at", "解除时间", "time"), ("overdue", "逾期", "bool"),
        ("title", "措施内容"), ("state", "状态"),
    )),
    "reports": ("信息报送", _cols(
        ("id", "编号", "int"), ("run_id", "响应编号", "int"), ("kind", "报告类型"), ("due_at", "应报时间", "time"),
        ("sent_at", "报送时间", "time"), ("overdue", "逾期", "bool"),
    )),
}

# Nested tables flattened into their own sheets: (parent table, list field, sheet title, columns).
NESTED: dict[str, tuple[str, str, str, tuple[Column, ...]]] = {
    "warning_versions": ("warnings", "versions", "预警版本", _cols(
        ("id", "版本编号", "int"), ("identifier", "标识符"), ("msg_type", "消息类型"), ("status", "状态（CAP）"),
        ("level", "等级"), ("sent", "发布时间", "time"), ("received_at", "接收时间", "time"), ("state", "状态"),
    )),
    "judgements": ("consultations", "judgements", "研判意见", _cols(
        ("department", "部门"), ("at", "研判时间", "time"), ("level", "研判等级"), ("late", "超时", "bool"),
    )),
}

# The duty shifts the runs crossed (``report["shifts"]``): one row per shift with its handover, and the shifts'
# duty logs on a sheet of their own. Not among ``TABLES``: a report of the fixed shape may lack the key.
SHIFTS: tuple[str, tuple[Column, ...]] = ("值班交接", _cols(
    ("id", "班次编号", "int"), ("label", "班次"), ("starts_at", "开始时间", "time"), ("ends_at", "结束时间", "time"),
    ("leader", "带班领导"), ("officers", "值班员", "list"), ("handover_state", "交接状态"),
    ("signed_by", "交班签字"), ("signed_at", "签字时间", "time"), ("acknowledged_by", "接班确认"),
    ("acknowledged_at", "确认时间", "time"), ("ack_due_at", "确认时限", "time"), ("late", "确认超时", "bool"),
    ("handover_text", "交接内容"),
))
SHIFT_LOG: tuple[str, tuple[Column, ...]] = ("值班日志", _cols(
    ("shift_id", "班次编号", "int"), ("at", "时间", "time"), ("kind_zh", "类型"), ("text", "内容"),
    ("source", "来源/记录人"), ("for_handover", "交接", "bool"),
))


def shift_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``report["shifts"]`` flattened to the columns of ``SHIFTS`` (a shift without a handover has blanks)."""
    out = []
    for sh in report.get("shifts") or []:
        h = sh.get("handover") or {}
        out.append({**sh, "handover_state": h.get("state_zh") or ("未起草" if not h else h.get("state")),
                    "signed_by": h.get("signed_by"), "signed_at": h.get("signed_at"),
                    "acknowledged_by": h.get("acknowledged_by"), "acknowledged_at": h.get("acknowledged_at"),
                    "ack_due_at": h.get("ack_due_at"), "late": h.get("late") if h else None,
                    "handover_text": h.get("text")})
    return out


def shift_log_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every shift's log entries, in shift order, each with its shift's id."""
    return [{**e, "shift_id": sh.get("id")} for sh in report.get("shifts") or [] for e in sh.get("log") or []]


KPI_KEYS: tuple[str, ...] = (
    "warning_to_first_call_s", "callouts", "answered", "answered_in_time", "answer_rate_in_time",
    "median_answer_s", "p90_answer_s", "escalations", "unanswered_after_escalation", "measures_overdue",
    "reports_overdue",
)

KPI_ZH: dict[str, str] = {
    "warning_to_first_call_s": "预警接收至首次叫应（秒）",
    "callouts": "叫应人次",
    "answered": "已应答",
    "answered_in_time": "按时应答",
    "answer_rate_in_time": "按时应答率",
    "median_answer_s": "应答用时中位数（秒）",
    "p90_answer_s": "应答用时 90% 分位（秒）",
    "escalations": "升级次数",
    "unanswered_after_escalation": "升级后仍未应答",
    "measures_overdue": "逾期未落实措施",
    "reports_overdue": "逾期信息报送",
}

# Display names for codes the tables hold (the rows keep the codes; people read these).
VALUE_ZH: dict[str, dict[str, str]] = {
    "level": {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"},
    "hazard": {"weather": "气象", "flood": "洪涝", "earthquake": "地震", "geohazard": "地质灾害",
               "forest_fire": "森林火灾"},
    "trigger": {"automatic": "自动启动", "decision": "会商决策"},
    "tier": {"district": "区级", "township": "乡镇（街道）", "village": "村（社区）", "site": "隐患点",
             "leader_on_duty": "带班领导"},
    "answer_channel": {"keypress": "语音按键", "sms": "短信回复", "web": "网页确认", "phone": "值班员电话确认",
                       "sms_reply": "短信回复", "duty_officer": "电话确认（值班员录入）"},
    "status": {"actual": "实际", "exercise": "演练", "test": "测试", "system": "系统", "draft": "草稿"},
    "msg_type": {"alert": "发布", "update": "更新", "cancel": "解除"},
    "decision_level": {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"},
    "kind": {"closure": "关闭公共场所", "evacuation": "转移疏散", "stop_work": "停工", "stop_school": "停学",
             "stop_business": "停业", "stop_transport": "停运", "traffic_control": "交通管控", "custom": "其他措施",
             "initial": "首报", "initial_phone": "电话初报", "initial_written": "书面初报", "followup": "续报",
             "final": "终报"},
    "role": {"district_leader": "区级领导", "township_chief": "乡镇（街道）负责人", "village_head": "村（社区）负责人",
             "grid_worker": "网格员", "site_monitor": "隐患点监测员", "leader_on_duty": "带班领导"},
}


def iso(when: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    """A report time: ISO 8601 in the display zone, with its offset, to the second."""
    if when is None:
        return None
    if when.tzinfo is None:
        raise ValueError("naive datetime in a report; pass an aware datetime")
    return when.astimezone(tz).isoformat(timespec="seconds")


def parse_iso(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.utcoffset() is None:
        raise ValueError(f"report time without an offset: {value!r}")
    return when


def township_of(code: str) -> str:
    """The township (乡镇/街道) code a 12-digit area code lies in: its first nine digits, padded."""
    return code[:9] + "000" if len(code) == 12 and code.isdigit() else code
