"""Information reports (信息报送) as pure rules: which reports are due when, in local time.

The plan's ``reports`` entry is a local rule: an initial report by phone within N minutes of the
run reaching the level, a written one within M minutes, follow-ups at fixed local times of day
(e.g. 08:00 and 17:00) while the run is open, and a final report when it closes. Follow-up slots
are local wall-clock times in the display zone (Asia/Shanghai), turned into UTC instants date by
date, so a run that starts at 23:40 has its first follow-up at 08:00 the next morning.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from responses.runs.plans import ReportSchedule


class ReportKind(enum.StrEnum):
    INITIAL_PHONE = "initial_phone"  # 电话初报
    INITIAL_WRITTEN = "initial_written"  # 书面初报
    FOLLOWUP = "followup"  # 续报
    FINAL = "final"  # 终报


class ReportState(enum.StrEnum):
    DRAFT = "draft"  # due; Jiaoying's draft waits for the duty officer
    SENT = "sent"
    CANCELLED = "cancelled"  # no longer needed (e.g. a follow-up slot after the run closed), with a reason


KIND_ZH = {
    ReportKind.INITIAL_PHONE: "电话初报",
    ReportKind.INITIAL_WRITTEN: "书面初报",
    ReportKind.FOLLOWUP: "续报",
    ReportKind.FINAL: "终报",
}
STATE_ZH = {ReportState.DRAFT: "待报送", ReportState.SENT: "已报送", ReportState.CANCELLED: "已取消"}

# When the plan does not say how long the final report may take after closure.
DEFAULT_FINAL_MINUTES = 24 * 60


@dataclass(frozen=True)
class DueReport:
    kind: ReportKind
    due_at: dt.datetime  # UTC
    seq: int = 1  # the n-th report of this kind in the run


def _hhmm(value: str) -> dt.time:
    h, m = value.split(":")
    return dt.time(int(h), int(m))


def initial_reports(schedule: ReportSchedule, reached_at: dt.datetime) -> list[DueReport]:
    """The initial phone and written reports, counted from when the run reached the level."""
    if reached_at.tzinfo is None:
        raise ValueError("aware datetime required")
    at = reached_at.astimezone(dt.UTC)
    return [
        DueReport(ReportKind.INITIAL_PHONE, at + dt.timedelta(minutes=schedule.initial_phone_minutes)),
        DueReport(ReportKind.INITIAL_WRITTEN, at + dt.timedelta(minutes=schedule.written_minutes)),
    ]


def local_slots(times: Sequence[str], after: dt.datetime, tz: ZoneInfo) -> Iterator[dt.datetime]:
    """Every local slot strictly after ``after``, in order, as UTC instants; endless."""
    if after.tzinfo is None:
        raise ValueError("aware datetime required")
    wall = sorted(_hhmm(t) for t in times)
    if not wall:
        return
    day = after.astimezone(tz).date()
    while True:
        for t in wall:
            slot = dt.datetime.combine(day, t, tzinfo=tz).astimezone(dt.UTC)
            if slot > after:
                yield slot
        day += dt.timedelta(days=1)


def followups_between(schedule: ReportSchedule, start: dt.datetime, until: dt.datetime,
                      tz: ZoneInfo) -> list[dt.datetime]:
    """Follow-up deadlines in (start, until]: ``start`` is when the written initial report is due —
    a slot that falls before it would only repeat the initial report."""
    out: list[dt.datetime] = []
    for slot in local_slots(schedule.followups_local, start, tz):
        if slot > until:
            break
        out.append(slot)
    return out


def next_followup(schedule: ReportSchedule, after: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
    return next(local_slots(schedule.followups_local, after, tz), None)


def final_report(schedule: ReportSchedule, closed_at: dt.datetime,
                 final_minutes: int | None = None) -> DueReport | None:
    if not schedule.final_on_closure:
        return None
    minutes = final_minutes or getattr(schedule, "final_minutes", None) or DEFAULT_FINAL_MINUTES
    return DueReport(ReportKind.FINAL, closed_at.astimezone(dt.UTC) + dt.timedelta(minutes=minutes))


def is_overdue(state: ReportState | str, due_at: dt.datetime, now: dt.datetime) -> bool:
    return ReportState(state) is ReportState.DRAFT and now >= due_at


# ---------------------------------------------------------------------------------------------- drafting


@dataclass(frozen=True)
class ReportFacts:
    """What a report says, gathered by the service from the run, its warning, calls and measures."""

    kind: ReportKind
    seq: int
    now_local: str  # e.g. 2026年7月20日 02:30
    run_number: str
    hazard_zh: str
    level_zh: str
    response_level: str
    warning_headline: str
    warning_sent_local: str
    started_local: str
    areas: Sequence[str]
    calls_total: int = 0
    calls_answered: int = 0
    calls_overdue: int = 0
    measures: Sequence[Mapping[str, Any]] = ()  # {label, state_zh, unit, figures_zh, gap_zh}
    figures: Mapping[str, int] | None = None  # totals: people_evacuated, places_closed …
    closed_local: str | None = None
    reporting_unit: str = "区应急管理局"


def report_title(kind: ReportKind | str, seq: int, hazard_zh: str, level_zh: str) -> str:
    k = ReportKind(kind)
    base = f"关于{level_zh}{hazard_zh}预警响应情况的"
    if k is ReportKind.FOLLOWUP:
        return f"{base}续报（第{seq}次）"
    if k is ReportKind.FINAL:
        return f"{base}终报"
    if k is ReportKind.INITIAL_PHONE:
        return f"{base}电话初报要点"
    return f"{base}初报"
