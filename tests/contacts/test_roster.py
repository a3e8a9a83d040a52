"""The duty roster: import from CSV and XLSX, who is on duty, leaderless shifts flagged ahead."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from config.clock import VirtualClock
from config.database import session_scope
from config.runtime import Runtime
from responses.contacts import roster_service
from responses.contacts.models import Roster
from responses.contacts.roster import RosterFileError, Window, gaps, parse_rows, read_csv
from responses.runs import jobs
from responses.runs.models import SupervisionFlag

TZ = ZoneInfo("Asia/Shanghai")
CSV = (
    "开始,结束,带班领导,领导电话,值班员,值班员电话\n"
    "2026-07-20 08:00,2026-07-21 08:00,王局长,13800000001,李明、赵芳,13900000001、13900000002\n"
    "2026-07-21 08:00,2026-07-22 08:00,,,孙强,13900000003\n"
    "2026-07-22 08:00,2026-07-21 08:00,张局长,,周敏,\n"
    "2026-07-23 08:00,明天,张局长,,周敏,\n"
)


def test_parse_rows_keeps_good_rows_and_names_bad_ones() -> None:
    shifts, errors = parse_rows(read_csv(CSV.encode("utf-8")), TZ)
    assert len(shifts) == 2
    assert shifts[0].leader and shifts[0].leader.name == "王局长"
    assert [p.name for p in shifts[0].officers] == ["李明", "赵芳"]
    assert shifts[0].starts_at == dt.datetime(2026, 7, 20, 0, 0, tzinfo=dt.UTC)
    assert shifts[1].leader is None
    assert {(e.row, e.field) for e in errors} == {(4, "end"), (5, "end")}


def test_gbk_csv_and_missing_header() -> None:
    shifts, _ = parse_rows(read_csv(CSV.encode("gb18030")), TZ)
    assert len(shifts) == 2
    with pytest.raises(RosterFileError):
        parse_rows([["姓名", "电话"]], TZ)


def test_gaps() -> None:
    t = dt.datetime(2026, 7, 20, tzinfo=dt.UTC)
    h = dt.timedelta(hours=1)
    assert gaps([Window(t, t + 8 * h), Window(t + 10 * h, t + 24 * h)], t, t + 24 * h) == [
        Window(t + 8 * h, t + 10 * h)]


def test_import_on_duty_and_leaderless_flag(runtime: Runtime, clock: VirtualClock) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for row in read_csv(CSV.encode()):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    f = runtime.session_factory
    for name, data in (("duty.xlsx", buf.getvalue()), ("duty.csv", CSV.encode())):
        with session_scope(f) as s:
            roster = roster_service.import_file(s, data=data, filename=name, tz=TZ, actor="user:admin",
                                                now=clock.now())
            assert roster.rows_ok == 2 and len(roster.errors) == 2 and roster.raw == data
    with session_scope(f) as s:
        assert len(s.execute(select(Roster)).scalars().all()) == 2
        duty = roster_service.on_duty(s, clock.now())  # 2026-07-20 02:00 +08: before the first shift
        assert duty.shift is None
    clock.set(dt.datetime(2026, 7, 20, 9, 0, tzinfo=TZ))
    with session_scope(f) as s:
        duty = roster_service.on_duty(s, clock.now())
        assert duty.leader is not None and duty.leader.name == "王局长"
        assert sorted(m.name for m in duty.officers) == ["李明", "赵芳"]  # re-import replaced, not doubled
    jobs.supervision_sweep(runtime)
    jobs.supervision_sweep(runtime)
    with session_scope(f) as s:
        flags = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "shift_without_leader")).scalars()
        flags = list(flags)
        assert len(flags) == 1 and flags[0].detail["starts_at"].startswith("2026-07-21T00:00")
