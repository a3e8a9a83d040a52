"""The duty room's rules on plain data: log entry kinds, how a system event reads in the log, the handover
machine and its times, the handover draft, and the gaps in a roster.

A duty log (值班日志) is what the officer writes — calls received, instructions from a superior or the leader
on duty (领导批示), actions taken, notes — interleaved with what the system did in the same hours. The
system's part is never copied into the log: it is read from the event log when the log is shown, so it
cannot drift from the record. This module says how each such event reads; the service finds them.

A handover (交接班) belongs to the outgoing shift: drafted from the open work ``DRAFT_BEFORE_END`` before the
shift ends, edited and signed by the outgoing officer, acknowledged by the incoming one. Not acknowledged
``ACK_GRACE`` into the next shift (at that instant, inclusive), it is flagged to the leader on duty; an
acknowledgement at or before that instant is on time.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from config.transitions import IllegalTransition, Machine
from warning.draft import HAZARD_ZH, Hazard, Level

# ---------------------------------------------------------------------------------------------- log entries


class EntryKind(enum.StrEnum):
    # written by the officer
    CALL = "call"  # 来电：from whom (name, unit, phone), about what
    INSTRUCTION = "instruction"  # 领导批示 / 上级指示
    ACTION = "action"  # 处置：what the duty room did
    NOTE = "note"  # 记事
    # linked in from the event log
    WARNING = "warning"  # 收到预警（发布、更新、解除）
    DECISION = "decision"  # 会商决策
    RUN_STARTED = "run_started"
    RUN_CLOSED = "run_closed"
    ESCALATION = "escalation"  # 叫应升级至带班领导
    REPORT_SENT = "report_sent"  # 信息报送
    HANDOVER = "handover"  # 交班签字、接班确认


WRITTEN_KINDS = (EntryKind.CALL, EntryKind.INSTRUCTION, EntryKind.ACTION, EntryKind.NOTE)

KIND_ZH: dict[EntryKind, str] = {
    EntryKind.CALL: "来电",
    EntryKind.INSTRUCTION: "领导批示",
    EntryKind.ACTION: "处置",
    EntryKind.NOTE: "记事",
    EntryKind.WARNING: "收到预警",
    EntryKind.DECISION: "会商决策",
    EntryKind.RUN_STARTED: "启动响应",
    EntryKind.RUN_CLOSED: "结束响应",
    EntryKind.ESCALATION: "升级至带班领导",
    EntryKind.REPORT_SENT: "信息报送",
    EntryKind.HANDOVER: "交接班",
}

# Event-log actions that belong in a duty log, and the kind each one reads as. ``callout.escalated`` counts only
# when the step reached the leader on duty: lower steps are the township's business, not the duty room's.
SYSTEM_ACTIONS: dict[str, EntryKind] = {
    "warning.received": EntryKind.WARNING,
    "consultation.decided": EntryKind.DECISION,
    "consultation.decision_revised": EntryKind.DECISION,
    "run.started": EntryKind.RUN_STARTED,
    "run.closed": EntryKind.RUN_CLOSED,
    "callout.escalated": EntryKind.ESCALATION,
    "report.sent": EntryKind.REPORT_SENT,
    "handover.signed": EntryKind.HANDOVER,
    "handover.acknowledged": EntryKind.HANDOVER,
}
LEADER_STEP = "leader_on_duty"

# How far an entry may be back-dated when no shift is on the roster (within a shift: to its start).
MAX_BACKDATE_WITHOUT_SHIFT = dt.timedelta(hours=24)
# The longest window one log view covers (a month of shifts is already a long printout).
MAX_WINDOW = dt.timedelta(days=31)
# Times the log handles at all; outside them a date is a typo (and the arithmetic would overflow).
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


class EntryTimeError(ValueError):
    """A time the log refuses (in the future, before the shift, a window upside down); both languages."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code, self.zh, self.en = code, zh, en


def level_zh(level: str | None) -> str:
    return Level(level).zh if level in Level._value2member_map_ else ""


def hazard_zh(hazard: str | None) -> str:
    return HAZARD_ZH[Hazard(hazard)] if hazard in Hazard._value2member_map_ else (hazard or "")


def system_kind(action: str, payload: Mapping[str, Any]) -> EntryKind | None:
    """The log kind of an event, or None when the event does not belong in a duty log."""
    kind = SYSTEM_ACTIONS.get(action)
    if kind is EntryKind.ESCALATION and payload.get("step") != LEADER_STEP:
        return None
    return kind


_VIA_ZH = {"phone": "电话", "written": "书面", "fax": "传真", "system": "系统", "other": "其他方式"}
_MSG_ZH = {"alert": "发布", "update": "更新", "cancel": "解除"}


def system_text(action: str, payload: Mapping[str, Any], facts: Mapping[str, Any]) -> str:
    """How one system event reads in the log. ``facts`` are what the service looked up about its subject
    (a warning's headline, a run's number, a callout's person …); anything missing is left out, not guessed."""
    drill = "【演练】" if facts.get("drill") else ""
    if action == "warning.received":
        msg = str(payload.get("msg_type") or facts.get("msg_type") or "alert")
        what = facts.get("headline") or facts.get("event") or hazard_zh(payload.get("hazard")) or "预警"
        lv = level_zh(payload.get("level") or facts.get("level"))
        sender = facts.get("sender_name") or payload.get("sender") or ""
        head = {"alert": f"收到{lv}预警", "update": f"收到预警更新（{lv}）" if lv else "收到预警更新",
                "cancel": "收到预警解除"}.get(msg, f"收到预警（{_MSG_ZH.get(msg, msg)}）")
        return f"{drill}{head}：{what}" + (f"（{sender}）" if sender else "")
    if action in ("consultation.decided", "consultation.decision_revised"):
        verb = "修改决策" if action.endswith("revised") else "决策"
        lv = level_zh(payload.get("final_level"))
        resp = payload.get("response_level")
        text = f"{drill}会商 #{facts.get('id', '')} 带班领导{verb}：{lv}" + (f"，{resp}级响应" if resp else "")
        reason = str(payload.get("reason") or "").strip()
        return text + (f"；理由：{reason}" if reason else "")
    if action == "run.started":
        resp = payload.get("response_level") or facts.get("response_level")
        lv = level_zh(payload.get("level"))
        number = payload.get("number") or facts.get("number") or ""
        return f"{drill}启动{resp or ''}级响应 {number}" + (f"（{lv}预警）" if lv else "")
    if action == "run.closed":
        note = str(payload.get("note") or "").strip()
        return f"{drill}响应 {payload.get('number') or facts.get('number') or ''} 结束" + (f"：{note}" if note else "")
    if action == "callout.escalated":
        who = facts.get("name") or "责任人"
        areas = "、".join(str(a) for a in facts.get("area_names") or [])
        return f"{drill}叫应升级至带班领导：{who}" + (f"（{areas}）" if areas else "") + "未按时应答"
    if action == "report.sent":
        title = facts.get("title") or "信息报告"
        via = _VIA_ZH.get(str(payload.get("via")), str(payload.get("via") or ""))
        to = payload.get("recipient")
        late = "，超时" if payload.get("late") else ""
        return f"{drill}已报送：{title}（{via}" + (f"，报送至{to}" if to else "") + f"{late}）"
    if action == "handover.signed":
        return f"交班签字：{payload.get('name') or ''}（{payload.get('shift_label') or '本班'}）"
    if action == "handover.acknowledged":
        late = "，超过接班确认时限" if payload.get("late") else ""
        return f"接班确认：{payload.get('name') or ''}{late}"
    return action


def written_text(kind: EntryKind | str, text: str, *, from_name: str | None = None, from_unit: str | None = None,
                 from_phone: str | None = None) -> str:
    """An officer's entry as one line of the log: a call or an instruction says whose it was first."""
    k = EntryKind(kind)
    who = "，".join(p for p in (from_unit, from_name, from_phone) if p)
    if k is EntryKind.CALL and who:
        return f"{who}来电：{text}"
    if k is EntryKind.INSTRUCTION and who:
        return f"{who}批示：{text}"
    return text


def check_entry_time(at: dt.datetime, *, now: dt.datetime, earliest: dt.datetime) -> None:
    """An entry is written now or back-dated to a moment not before ``earliest`` (the shift's start, or
    ``MAX_BACKDATE_WITHOUT_SHIFT`` ago with no shift): a call taken earlier is logged when the line is free."""
    if at.tzinfo is None:
        raise ValueError("aware datetime required")
    if at > now:
        raise EntryTimeError("time_out_of_range", "记录时间不能晚于当前时间", "the entry's time lies in the future")
    if at < earliest:
        raise EntryTimeError("time_out_of_range", "记录时间早于本班开始，只能补记本班内的事项",
                             "the entry's time lies before the shift began; only this shift's events can be "
                             "back-dated")


def check_window(start: dt.datetime, end: dt.datetime) -> None:
    """A log view's window: start before end, within ``MAX_WINDOW``, and between ``EARLIEST`` and ``LATEST``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("aware datetime required")
    if end <= start:
        raise EntryTimeError("bad_window", "结束时间须晚于开始时间", "'to' must be later than 'from'")
    if end - start > MAX_WINDOW:
        raise EntryTimeError("bad_window", f"一次最多查看 {MAX_WINDOW.days} 天",
                             f"one view covers at most {MAX_WINDOW.days} days")
    if start < EARLIEST or end > LATEST:
        raise EntryTimeError("bad_window", "时间超出可查询范围（1970—2200 年）",
                             "the time lies outside the range kept (1970–2200)")


def day_window(day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """A calendar day in the display zone (Asia/Shanghai), as a UTC window [00:00, next 00:00)."""
    if not (EARLIEST.year <= day.year < LATEST.year):
        raise EntryTimeError("bad_window", "日期超出可查询范围（1970—2200 年）",
                             "the day lies outside the range kept (1970–2200)")
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def local_text(when: dt.datetime | None, tz: ZoneInfo, *, with_date: bool = True) -> str:
    """A time for people in the duty room: local wall time, to the minute."""
    if when is None:
        return ""
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


# ---------------------------------------------------------------------------------------------- handover


class HandoverState(enum.StrEnum):
    DRAFT = "draft"  # drafted from the data; the outgoing officer may edit it
    SIGNED = "signed"  # the outgoing officer signed it; the incoming one must acknowledge it
    ACKNOWLEDGED = "acknowledged"


class HandoverAction(enum.StrEnum):
    REDRAFT = "redraft"  # draft again from the current data (the text edited so far is replaced)
    SIGN = "sign"  # the outgoing officer, with the text as edited
    ACKNOWLEDGE = "acknowledge"  # the incoming officer


H = HandoverState
HA = HandoverAction

TRANSITIONS: dict[tuple[HandoverAction, HandoverState], HandoverState] = {
    (HA.REDRAFT, H.DRAFT): H.DRAFT,
    (HA.SIGN, H.DRAFT): H.SIGNED,
    (HA.ACKNOWLEDGE, H.SIGNED): H.ACKNOWLEDGED,
}
STATE_ZH = {H.DRAFT: "草稿（待交班签字）", H.SIGNED: "已签字（待接班确认）", H.ACKNOWLEDGED: "已确认"}
ACTION_ZH = {HA.REDRAFT: "重新起草", HA.SIGN: "交班签字", HA.ACKNOWLEDGE: "接班确认"}


class IllegalHandoverTransition(IllegalTransition):
    """A handover step its state does not allow (signing twice, acknowledging before the signature)."""


MACHINE = Machine("交接班记录", "handover", HandoverState, HandoverAction, TRANSITIONS, STATE_ZH, ACTION_ZH,
                  IllegalHandoverTransition)

DRAFT_BEFORE_END = dt.timedelta(minutes=30)  # the scheduler drafts the handover this long before the end
ACK_GRACE = dt.timedelta(minutes=30)  # unacknowledged this long into the next shift: flagged to the leader
DRAFT_LOOKBACK = dt.timedelta(hours=2)  # a shift that ended this recently without a handover still gets one


def apply(state: HandoverState | str, action: HandoverAction | str) -> HandoverState:
    return MACHINE.apply(state, action)


def ack_due(outgoing_ends_at: dt.datetime, next_starts_at: dt.datetime | None) -> dt.datetime:
    """When the incoming officer must have acknowledged: ``ACK_GRACE`` after the next shift begins (after the
    outgoing shift's end when the roster has no next shift, or it begins earlier)."""
    start = outgoing_ends_at if next_starts_at is None else max(outgoing_ends_at, next_starts_at)
    return start + ACK_GRACE


def draft_due(ends_at: dt.datetime, now: dt.datetime) -> bool:
    """Whether the scheduler should have drafted this shift's handover by ``now``."""
    return ends_at - DRAFT_BEFORE_END <= now < ends_at + DRAFT_LOOKBACK


def unacknowledged(state: HandoverState | str, due: dt.datetime, now: dt.datetime) -> bool:
    """The flag's rule: at ``due`` itself an unacknowledged handover is flagged."""
    return HandoverState(state) is not HandoverState.ACKNOWLEDGED and now >= due


def ack_late(due: dt.datetime, acknowledged_at: dt.datetime | None, as_of: dt.datetime) -> bool:
    """Late: acknowledged after ``due``, or still not acknowledged at (or after) it — the flag's rule."""
    if acknowledged_at is not None:
        return acknowledged_at > due
    return as_of >= due


# ---------------------------------------------------------------------------------------------- the draft


@dataclass(frozen=True)
class ShiftFacts:
    label: str
    starts_local: str
    ends_local: str
    leader: str | None = None
    officers: Sequence[str] = ()

    def title(self) -> str:
        name = f"（{self.label}）" if self.label else ""
        return f"{self.starts_local} 至 {self.ends_local}{name}"

    def people(self) -> str:
        parts = []
        if self.leader:
            parts.append(f"带班领导 {self.leader}")
        if self.officers:
            parts.append(f"值班员 {'、'.join(self.officers)}")
        return "；".join(parts) or "值班表未列人员"

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "starts_local": self.starts_local, "ends_local": self.ends_local,
                "leader": self.leader, "officers": list(self.officers)}


@dataclass(frozen=True)
class HandoverFacts:
    """What a handover says, gathered by the service; each item is a plain mapping (keys below)."""

    shift: ShiftFacts
    next_shift: ShiftFacts | None
    now_local: str
    warnings: Sequence[Mapping[str, Any]] = ()  # id, level, hazard, event, headline, received_local, drill
    consultations: Sequence[Mapping[str, Any]] = ()  # id, level, hazard, deadline_local, overdue, missing, drill
    runs: Sequence[Mapping[str, Any]] = ()  # id, number, level, response_level, started_local, state, drill,
    #                                         unanswered: [{name, areas, state_zh}], calls, answered
    measures: Sequence[Mapping[str, Any]] = ()  # id, run, label, state_zh, deadline_local, overdue, person, unit
    reports: Sequence[Mapping[str, Any]] = ()  # id, run, title, kind_zh, due_local, overdue
    quarantined: Sequence[Mapping[str, Any]] = ()  # id, feed, reason, received_local
    log: Sequence[Mapping[str, Any]] = field(default_factory=tuple)  # id, at_local, kind_zh, text, author


@dataclass(frozen=True)
class HandoverDraft:
    text: str
    sections: dict[str, Any]


SECTION_TITLES = (
    ("warnings", "生效预警"),
    ("consultations", "待决策会商"),
    ("runs", "进行中的响应及未应答人员"),
    ("measures", "未落实（未解除）的措施"),
    ("reports", "下一班次应报送的信息"),
    ("quarantined", "隔离区待处理的数据"),
    ("log", "值班日志交接事项"),
)
_NUMERALS = "一二三四五六七八九十"


def _mark(item: Mapping[str, Any]) -> str:
    return "【演练】" if item.get("drill") else ""


def _overdue(item: Mapping[str, Any]) -> str:
    return "【已超时】" if item.get("overdue") else ""


def _lines(key: str, items: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for i, it in enumerate(items, start=1):
        if key == "warnings":
            lv = level_zh(it.get("level"))
            what = it.get("headline") or it.get("event") or hazard_zh(it.get("hazard"))
            out.append(f"{i}. {_mark(it)}{'【' + lv + '】' if lv else ''}{what}（{hazard_zh(it.get('hazard'))}，"
                       f"{it.get('received_local', '')} 接收）")
        elif key == "consultations":
            missing = "、".join(it.get("missing") or [])
            out.append(f"{i}. {_mark(it)}{_overdue(it)}会商 #{it.get('id')}（{level_zh(it.get('level'))}"
                       f"{hazard_zh(it.get('hazard'))}），研判时限 {it.get('deadline_local', '')}"
                       + (f"，尚缺：{missing}" if missing else "，待带班领导决策"))
        elif key == "runs":
            unanswered = list(it.get("unanswered") or [])
            total = int(it.get("unanswered_total") or len(unanswered))  # a long list is cut, the total kept
            head = (f"{i}. {_mark(it)}响应 {it.get('number')}（{level_zh(it.get('level'))}，"
                    f"{it.get('response_level')}级，{it.get('started_local', '')} 启动）："
                    f"叫应 {it.get('calls', 0)} 人次，已应答 {it.get('answered', 0)}")
            out.append(head + (f"，未应答 {total} 人：" if total else "，无未应答人员"))
            out += [f"   - {u.get('name')}" + (f"（{u.get('areas')}）" if u.get("areas") else "")
                    + (f"：{u.get('state_zh')}" if u.get("state_zh") else "") for u in unanswered]
            if total > len(unanswered):
                out.append(f"   - 另有 {total - len(unanswered)} 人未列出（见叫应看板）")
        elif key == "measures":
            who = it.get("person") or it.get("unit") or ""
            out.append(f"{i}. {_mark(it)}{_overdue(it)}{it.get('label')}（响应 {it.get('run')}"
                       + (f"，{who}" if who else "") + f"）：{it.get('state_zh')}"
                       + (f"，时限 {it['deadline_local']}" if it.get("deadline_local") else ""))
        elif key == "reports":
            out.append(f"{i}. {_mark(it)}{_overdue(it)}{it.get('title')}（{it.get('kind_zh')}，响应 {it.get('run')}），"
                       f"应于 {it.get('due_local', '')} 前报送")
        elif key == "quarantined":
            out.append(f"{i}. 数据 #{it.get('id')}（{it.get('feed')}，{it.get('received_local', '')} 收到）："
                       f"{it.get('reason') or '无法读取'}")
        elif key == "log":
            out.append(f"{i}. {it.get('at_local', '')} 【{it.get('kind_zh')}】{it.get('text')}"
                       + (f"（{it.get('author')}）" if it.get("author") else ""))
    return out


def build_draft(f: HandoverFacts) -> HandoverDraft:
    """The handover note, in Chinese, with its sections kept as data too (for the console and the audit)."""
    lines = ["交接班记录", f"交班班次：{f.shift.title()}", f"交班人员：{f.shift.people()}"]
    if f.next_shift is not None:
        lines += [f"接班班次：{f.next_shift.title()}", f"接班人员：{f.next_shift.people()}"]
    else:
        lines.append("接班班次：值班表未排（请报告管理员）")
    lines.append(f"起草时间：{f.now_local}")
    sections: dict[str, Any] = {"shift": f.shift.as_dict(),
                                "next_shift": f.next_shift.as_dict() if f.next_shift else None,
                                "drafted_local": f.now_local}
    counts: dict[str, int] = {}
    for n, (key, title) in enumerate(SECTION_TITLES):
        items: Sequence[Mapping[str, Any]] = getattr(f, key)
        counts[key] = len(items)
        sections[key] = [dict(it) for it in items]
        lines.append("")
        lines.append(f"{_NUMERALS[n]}、{title}（{len(items)}）")
        lines += _lines(key, items) or ["无"]
    sections["counts"] = counts
    lines += ["", "交班人（签字）：", "接班人（确认）："]
    return HandoverDraft("\n".join(lines) + "\n", sections)


# ---------------------------------------------------------------------------------------------- roster gaps


class GapKind(enum.StrEnum):
    NO_SHIFT = "no_shift"  # hours no shift covers at all
    NO_OFFICER = "no_officer"  # a shift with no duty officer (值班员)
    NO_LEADER = "no_leader"  # a shift with no leader on duty (带班领导)


GAP_ZH = {GapKind.NO_SHIFT: "无人值班（未排班）", GapKind.NO_OFFICER: "班次缺值班员",
          GapKind.NO_LEADER: "班次缺带班领导"}
GAP_EN = {GapKind.NO_SHIFT: "no shift on the roster", GapKind.NO_OFFICER: "shift without a duty officer",
          GapKind.NO_LEADER: "shift without a leader on duty"}
GAP_FLAG_HORIZON = dt.timedelta(days=7)  # flagged to admins this far ahead
BOARD_HORIZON = dt.timedelta(hours=24)  # shown on the board this far ahead


@dataclass(frozen=True)
class RosterShift:
    id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    label: str = ""
    has_leader: bool = False
    has_officer: bool = False


@dataclass(frozen=True)
class RosterGap:
    """A gap; for ``no_shift`` ``starts_at``/``ends_at`` are the neighbouring shifts' end and start (None: the
    roster has nothing before, or after), so a gap keeps its identity as time moves on; for the others they
    are the shift's own times."""

    kind: GapKind
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    shift_id: int | None = None
    label: str = ""

    @property
    def key(self) -> str:
        if self.shift_id is not None:
            return f"{self.kind.value}:shift:{self.shift_id}"
        return f"{self.kind.value}:from:{self.starts_at.isoformat() if self.starts_at else 'open'}"

    def within(self, start: dt.datetime, end: dt.datetime) -> bool:
        return (self.starts_at is None or self.starts_at < end) and (self.ends_at is None or self.ends_at > start)


def roster_gaps(shifts: Iterable[RosterShift], start: dt.datetime, end: dt.datetime, *,
                previous_end: dt.datetime | None = None,
                next_start: dt.datetime | None = None) -> list[RosterGap]:
    """Every gap in [start, end): shifts there lacking an officer or a leader, and the stretches no shift covers.

    ``shifts`` are those overlapping the window; ``previous_end`` is the latest end of a shift before
    ``start`` (None: none on the roster) and ``next_start`` the earliest start of one after ``end``.
    """
    ordered = sorted((s for s in shifts if s.ends_at > start and s.starts_at < end),
                     key=lambda s: (s.starts_at, s.ends_at, s.id))
    out: list[RosterGap] = []
    for s in ordered:
        if not s.has_officer:
            out.append(RosterGap(GapKind.NO_OFFICER, s.starts_at, s.ends_at, s.id, s.label))
        if not s.has_leader:
            out.append(RosterGap(GapKind.NO_LEADER, s.starts_at, s.ends_at, s.id, s.label))
    cursor, cursor_true = start, previous_end
    for s in ordered:
        if s.starts_at > cursor:
            out.append(RosterGap(GapKind.NO_SHIFT, cursor_true, s.starts_at))
        if s.ends_at > cursor:
            cursor = cursor_true = s.ends_at
        if cursor >= end:
            break
    if cursor < end:
        out.append(RosterGap(GapKind.NO_SHIFT, cursor_true, next_start))
    order = {GapKind.NO_SHIFT: 0, GapKind.NO_OFFICER: 1, GapKind.NO_LEADER: 2}
    return sorted(out, key=lambda g: (g.starts_at or start, order[g.kind], g.shift_id or 0))
