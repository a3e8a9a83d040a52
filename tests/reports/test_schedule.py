"""Report deadlines in Asia/Shanghai local time, across midnight, with a fixed clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from responses.reports.core import (
    ReportKind,
    ReportState,
    final_report,
    followups_between,
    initial_reports,
    is_overdue,
    next_followup,
)
from responses.runs.plans import ReportSchedule

TZ = ZoneInfo("Asia/Shanghai")
SCHED = ReportSchedule(initial_phone_minutes=30, written_minutes=60, followups_local=["17:00", "08:00"])


def local(y: int, mo: int, d: int, h: int, mi: int) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=TZ)


def test_initial_reports_cross_midnight() -> None:
    start = local(2026, 7, 19, 23, 40)
    phone, written = initial_reports(SCHED, start)
    assert phone.kind is ReportKind.INITIAL_PHONE and phone.due_at == local(2026, 7, 20, 0, 10)
    assert written.kind is ReportKind.INITIAL_WRITTEN and written.due_at == local(2026, 7, 20, 0, 40)
    assert phone.due_at.tzinfo == dt.UTC and phone.due_at.hour == 16  # stored as UTC: 16:10Z on the 19th


def test_followups_are_local_wall_clock_times() -> None:
    start = local(2026, 7, 19, 23, 40)
    _, written = initial_reports(SCHED, start)
    slots = followups_between(SCHED, written.due_at, local(2026, 7, 21, 12, 0), TZ)
    assert slots == [local(2026, 7, 20, 8, 0), local(2026, 7, 20, 17, 0), local(2026, 7, 21, 8, 0)]
    # 08:00 in Shanghai is midnight UTC: the UTC date differs from the local one for 17:00
    assert slots[1].astimezone(dt.UTC) == dt.datetime(2026, 7, 20, 9, 0, tzinfo=dt.UTC)
    assert slots[0].astimezone(dt.UTC) == dt.datetime(2026, 7, 20, 0, 0, tzinfo=dt.UTC)


def test_a_slot_before_the_written_report_is_skipped() -> None:
    start = local(2026, 7, 20, 7, 30)  # written due 08:30: the 08:00 slot would repeat it
    _, written = initial_reports(SCHED, start)
    assert next_followup(SCHED, written.due_at, TZ) == local(2026, 7, 20, 17, 0)
    # exactly at a slot: the slot itself is not "after"
    assert next_followup(SCHED, local(2026, 7, 20, 17, 0), TZ) == local(2026, 7, 21, 8, 0)


def test_late_evening_start_first_followup_next_morning() -> None:
    _, written = initial_reports(SCHED, local(2026, 7, 20, 17, 30))
    assert next_followup(SCHED, written.due_at, TZ) == local(2026, 7, 21, 8, 0)


def test_no_followups_configured() -> None:
    sched = ReportSchedule(initial_phone_minutes=30, written_minutes=60, followups_local=[])
    assert next_followup(sched, local(2026, 7, 20, 1, 0), TZ) is None
    assert followups_between(sched, local(2026, 7, 20, 1, 0), local(2026, 7, 25, 1, 0), TZ) == []


def test_final_report_and_overdue() -> None:
    closed = local(2026, 7, 21, 22, 0)
    fin = final_report(SCHED, closed, final_minutes=180)
    assert fin is not None and fin.due_at == local(2026, 7, 22, 1, 0)
    assert final_report(ReportSchedule(initial_phone_minutes=30, written_minutes=60, final_on_closure=False),
                        closed) is None
    assert is_overdue(ReportState.DRAFT, fin.due_at, fin.due_at)
    assert not is_overdue(ReportState.DRAFT, fin.due_at, fin.due_at - dt.timedelta(seconds=1))
    assert not is_overdue(ReportState.SENT, fin.due_at, fin.due_at + dt.timedelta(days=1))
