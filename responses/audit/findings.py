"""Findings (结论): why a warning in a report started no response, said in Chinese and English.

A drill whose warning starts nothing used to end without a report; the report now says why, from
the same records the engine acted on, so an auditor reading ``report.json`` sees the cause rather
than an empty table. The rules are checked in the order the engine meets them — a message that is
not live, a warning already expired on arrival, one still held for the message it references, an
area outside the region, no level, no plan, and last the plan's own rule (consult first: only the
leader's decision starts a response) — and the first that holds is the finding.

Each finding is a plain dict in ``report.json``:
``{"code", "warning_id", "message", "message_en", "details"}`` (``details`` holds the facts behind
the sentence: times in the display zone, the plan's title and level, the consultation's state).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from responses.audit.shape import VALUE_ZH, iso

LIVE_STATUSES = ("actual", "exercise")  # as the engine: test, system and draft messages start nothing

# code -> (Chinese, English) short title, for the page and the workbook
CODES: dict[str, tuple[str, str]] = {
    "not_live": ("非正式预警消息", "not a live message"),
    "expired_on_arrival": ("预警接收时已过期", "expired on arrival"),
    "held": ("等待原始预警", "held for the message it references"),
    "outside_region": ("预警区域不在本辖区", "outside the region"),
    "no_level": ("预警无等级", "no warning level"),
    "no_plan": ("无对应应急预案", "no response plan"),
    "consultation_first_no_decision": ("预案规定先会商，尚未决策", "plan consults first; no decision"),
    "dismissed_by_leader": ("带班领导决定不启动响应", "the leader decided no response"),
    "ended_before_decision": ("决策前预警已结束", "the warning ended before a decision"),
    "input_without_warning": ("输入未产生预警", "an input produced no warning"),
    "no_response_unexplained": ("未启动响应（原因未明）", "no response started (cause not found)"),
}

MODE_ZH = {"before": "先会商后响应", "parallel": "立即响应、同时会商", "skip": "直接响应"}
MODE_EN = {"before": "consultation first", "parallel": "respond at once and consult alongside",
           "skip": "respond at once, no consultation"}
STATE_ZH = {"open": "研判中", "deadline_passed": "已过研判时限、待决策", "decided": "已决策", "dismissed": "已否决",
            "closed": "已结束"}
WARNING_STATE_ZH = {"active": "生效", "held": "暂存待关联", "superseded": "已被更新", "cancelled": "已解除",
                    "expired": "已过期"}
END_ZH = {"warning cancelled": "预警已解除", "warning expired": "预警已过期"}


@dataclass(frozen=True)
class Finding:
    code: str
    message: str  # Chinese, first
    message_en: str
    warning_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "warning_id": self.warning_id, "message": self.message,
                "message_en": self.message_en, "details": self.details}


@dataclass(frozen=True)
class PlanLevel:
    """The plan entry in force for the warning's hazard and level (what the engine read)."""

    title: str
    title_en: str
    version: str
    level: str
    response_level: str
    mode: str  # before | parallel | skip


def _aware(when: dt.datetime | None) -> dt.datetime | None:
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _hm(when: dt.datetime | None, tz: dt.tzinfo) -> str:
    w = _aware(when)
    return w.astimezone(tz).strftime("%Y-%m-%d %H:%M") if w else "—"


def _name(versions: Sequence[Any]) -> tuple[str, str]:
    """How the warning is named in a sentence: its headline, else event and colour."""
    first = versions[0]
    headline = next((v.headline for v in versions if getattr(v, "headline", None)), None)
    level = next((v.level for v in reversed(versions) if v.level), None)
    if headline:
        return f"「{headline}」", f"'{headline}'"
    event = first.event or VALUE_ZH["hazard"].get(first.hazard or "", first.hazard or "")
    return (f"「{event}{VALUE_ZH['level'].get(level or '', '')}预警」",
            f"'{event} {level or ''} warning'".replace("  ", " "))


def expired_on_arrival(version: Any) -> bool:
    """Stored as expired at once: its ``expires`` had passed when it was received."""
    expires, received = _aware(version.expires), _aware(version.received_at)
    return expires is not None and received is not None and expires <= received and version.state == "expired"


def no_response_finding(versions: Sequence[Any], *, consultation: Any | None, plan: PlanLevel | None,
                        plan_missing: bool, outside: bool, as_of: dt.datetime, tz: dt.tzinfo) -> Finding:
    """Why the thread of ``versions`` (oldest first) started no response; the first rule that holds.

    ``outside`` is the engine's own rule applied to the thread (``responses.runs.engine.outside_region``);
    ``plan`` is the plan entry for its hazard and latest level, ``plan_missing`` that its hazard has none.
    """
    first = versions[0]
    wid = first.thread_id or first.id
    zh_name, en_name = _name(versions)
    level = next((v.level for v in reversed(versions) if v.level), None)

    if first.status not in LIVE_STATUSES:
        return Finding("not_live", f"预警{zh_name}的状态为 {first.status}（测试/系统/草稿），此类消息不启动响应。",
                       f"The warning {en_name} has status {first.status} (test, system or draft): such messages "
                       "start no response.", wid, {"status": first.status})

    stale = next((v for v in versions if expired_on_arrival(v)), None)
    if stale is not None:
        details = {"identifier": stale.identifier, "expires": iso(_aware(stale.expires), tz),
                   "received_at": iso(_aware(stale.received_at), tz)}
        return Finding(
            "expired_on_arrival",
            f"预警{zh_name}接收时已过期：失效时间 {_hm(stale.expires, tz)}，接收（注入）时间 "
            f"{_hm(stale.received_at, tz)}。系统按已过期处理，未启动响应。",
            f"The warning {en_name} had already expired on arrival: it expired at {_hm(stale.expires, tz)} "
            f"and was received (injected) at {_hm(stale.received_at, tz)}. It was stored as expired and "
            "started no response.", wid, details)

    if all(v.state == "held" for v in versions):
        return Finding("held", f"预警{zh_name}为更新或解除消息，所引用的原始预警尚未收到，暂存待关联，未启动响应。",
                       f"The warning {en_name} is an update or cancel whose original alert has not arrived; it "
                       "is held until it can be placed, and started no response.", wid,
                       {"msg_type": first.msg_type})

    if outside:
        desc = next((v.area_description for v in reversed(versions) if getattr(v, "area_description", None)), None)
        where_zh, where_en = (f"（{desc}）", f" ({desc})") if desc else ("", "")
        return Finding(
            "outside_region",
            f"预警{zh_name}的区域{where_zh}不涉及本辖区任何村（社区）、乡镇（街道）或隐患点，未启动响应。",
            f"The area of the warning {en_name}{where_en} reaches no village, township or hazard site of the "
            "region: no area was affected, so no response started.", wid, {"area_description": desc})

    if not level:
        return Finding("no_level", f"预警{zh_name}未给出等级，预案无从确定响应，未启动响应。",
                       f"The warning {en_name} gives no level, so no plan level applies and no response started.",
                       wid, {})

    if plan_missing or plan is None:
        hazard = first.hazard
        return Finding("no_plan", f"灾种“{VALUE_ZH['hazard'].get(hazard or '', hazard)}”没有应急预案，未启动响应。",
                       f"There is no response plan for the hazard '{hazard}', so no response started.", wid,
                       {"hazard": hazard})

    level_zh = VALUE_ZH["level"].get(plan.level, plan.level)
    plan_zh = (f"预警{zh_name}：《{plan.title}》{level_zh}预警（{plan.response_level} 级响应）规定"
               f"{MODE_ZH.get(plan.mode, plan.mode)}（consultation.mode: {plan.mode}）")
    plan_en = (f"Warning {en_name}: the plan '{plan.title_en or plan.title}' at {plan.level} (response level "
               f"{plan.response_level}) says {MODE_EN.get(plan.mode, plan.mode)} (consultation.mode: {plan.mode})")
    details: dict[str, Any] = {"plan": plan.title, "plan_version": plan.version, "level": plan.level,
                               "response_level": plan.response_level, "consultation_mode": plan.mode}
    if plan.mode == "before" and level != "red":
        plan_zh += "，须经带班领导决策方可启动响应"
        plan_en += ": only the leader's decision starts a response"
        if consultation is not None:
            details |= {"consultation_id": consultation.id, "consultation_state": consultation.state,
                        "consultation_deadline": iso(_aware(consultation.deadline), tz)}
        state = consultation.state if consultation is not None else None
        if state == "dismissed":
            reason = consultation.dismiss_reason or ""
            details["dismiss_reason"] = reason
            return Finding("dismissed_by_leader",
                           f"{plan_zh}；带班领导在会商 #{consultation.id} 中决定不启动响应"
                           f"{'（' + reason + '）' if reason else ''}。",
                           f"{plan_en}; in consultation #{consultation.id} the leader decided no response was "
                           f"needed{' (' + reason + ')' if reason else ''}.", wid, details)
        if state == "closed":
            why = consultation.close_reason or ""
            details["close_reason"] = why
            return Finding("ended_before_decision",
                           f"{plan_zh}；会商 #{consultation.id} 尚未决策，{END_ZH.get(why, why or '预警已结束')}"
                           f"（{_hm(consultation.closed_at, tz)}），故未启动响应。",
                           f"{plan_en}; consultation #{consultation.id} had no decision when the warning ended "
                           f"({why or 'ended'}, {_hm(consultation.closed_at, tz)}), so no response started.",
                           wid, details)
        if state in ("open", "deadline_passed"):
            return Finding("consultation_first_no_decision",
                           f"{plan_zh}；会商 #{consultation.id}（研判截止 {_hm(consultation.deadline, tz)}）至 "
                           f"{_hm(as_of, tz)} 未作决策（{STATE_ZH.get(state or '', state)}），故未启动响应。",
                           f"{plan_en}; consultation #{consultation.id} (judgements due "
                           f"{_hm(consultation.deadline, tz)}) had no decision by {_hm(as_of, tz)} ({state}), "
                           "so no response started.", wid, details)
        if consultation is None:
            return Finding("consultation_first_no_decision",
                           f"{plan_zh}；未开启会商，也没有决策，故未启动响应。",
                           f"{plan_en}; no consultation was opened and no decision taken, so no response "
                           "started.", wid, details)

    last = versions[-1]
    state_zh = WARNING_STATE_ZH.get(last.state, last.state)
    return Finding("no_response_unexplained",
                   f"{plan_zh}；该预警（当前状态：{state_zh}）未启动响应，记录中未找到原因，请核查事件日志。",
                   f"{plan_en}; the warning (state: {last.state}) started no response and the records give no "
                   "cause: check the event log.", wid, details | {"state": last.state})


def input_without_warning(*, file: str, at: dt.datetime, state: str, reason: str | None, tz: dt.tzinfo) -> Finding:
    """A drill input that produced no warning at all: refused (quarantined), or nothing in it was a warning."""
    why_zh = {"quarantined": "无法解析，已隔离", "processed": "其中没有可用的预警"}.get(state, f"处理结果：{state}")
    why_en = {"quarantined": "it could not be read and was quarantined",
              "processed": "it held no usable warning"}.get(state, f"outcome: {state}")
    if reason:
        why_zh, why_en = f"{why_zh}（{reason}）", f"{why_en} ({reason})"
    return Finding("input_without_warning",
                   f"输入 {file}（{_hm(at, tz)} 注入）未产生预警：{why_zh}，未启动响应。",
                   f"The input {file} (injected at {_hm(at, tz)}) produced no warning: {why_en}; no response "
                   "started.", None, {"file": file, "at": iso(at, tz), "state": state, "reason": reason})
