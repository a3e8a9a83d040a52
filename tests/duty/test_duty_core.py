"""The duty room's pure rules: the handover draft from plain data, roster gaps, the handover's times
(drafted 30 minutes before the end, flagged at exactly 30 minutes into the next shift), and how a system
event and an officer's entry read in the log."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from responses.duty import core
from responses.duty.core import EntryKind, EntryTimeError, GapKind, HandoverState, RosterShift, ShiftFacts

TZ = ZoneInfo("Asia/Shanghai")


def local(d: int, h: int, m: int = 0, s: int = 0) -> dt.datetime:
    return dt.datetime(2026, 7, d, h, m, s, tzinfo=TZ)


# ---------------------------------------------------------------------------------------------- the draft


def facts(**overrides: object) -> core.HandoverFacts:
    base: dict[str, object] = {
        "shift": ShiftFacts("夜班", "2026-07-19 20:00", "2026-07-20 08:00", "张带班", ("李值班",)),
        "next_shift": ShiftFacts("白班", "2026-07-20 08:00", "2026-07-20 20:00", "赵带班", ("钱值班", "孙值班")),
        "now_local": "2026-07-20 07:30",
    }
    base.update(overrides)
    return core.HandoverFacts(**base)  # type: ignore[arg-type]


def test_an_empty_draft_says_nothing_is_open_in_every_section() -> None:
    d = core.build_draft(facts())
    assert d.text.startswith("交接班记录\n")
    assert "交班班次：2026-07-19 20:00 至 2026-07-20 08:00（夜班）" in d.text
    assert "交班人员：带班领导 张带班；值班员 李值班" in d.text
    assert "接班人员：带班领导 赵带班；值班员 钱值班、孙值班" in d.text
    for n, (_key, title) in zip("一二三四五六七", core.SECTION_TITLES, strict=True):
        assert f"{n}、{title}（0）\n无" in d.text
    assert d.sections["counts"] == {k: 0 for k, _ in core.SECTION_TITLES}
    assert d.sections["next_shift"]["officers"] == ["钱值班", "孙值班"]
    assert d.text.rstrip().endswith("接班人（确认）：")


def test_the_draft_carries_every_kind_of_open_work() -> None:
    d = core.build_draft(facts(
        warnings=[{"id": 7, "level": "red", "hazard": "weather", "event": "暴雨", "headline": "城区暴雨红色预警",
                   "received_local": "2026-07-20 02:00", "drill": True}],
        consultations=[{"id": 3, "level": "orange", "hazard": "flood", "deadline_local": "2026-07-20 07:00",
                        "overdue": True, "missing": ["水利局", "自然资源局"]}],
        runs=[{"id": 1, "number": "2026-0001", "level": "red", "response_level": "I",
               "started_local": "2026-07-20 02:01", "calls": 12, "answered": 9,
               "unanswered": [{"name": "沉默村长", "areas": "建设路社区", "state_zh": "未应答，已升级"},
                              {"name": "东街镇长", "areas": "", "state_zh": "叫应中"}]}],
        measures=[{"id": 4, "run": "2026-0001", "label": "转移疏散", "state_zh": "落实中",
                   "deadline_local": "2026-07-20 04:00", "overdue": True, "person": "王镇长", "unit": "北街街道"}],
        reports=[{"id": 5, "run": "2026-0001", "title": "关于红色暴雨预警响应情况的续报（第1次）", "kind_zh": "续报",
                  "due_local": "2026-07-20 08:00", "overdue": False}],
        quarantined=[{"id": 9, "feed": "市气象台 CAP", "reason": "malformed_xml",
                      "received_local": "2026-07-20 05:12"}],
        log=[{"id": 2, "at_local": "2026-07-20 03:10", "kind_zh": "来电", "text": "东街街道来电：建设路积水 40 厘米",
              "author": "李值班"}],
    ))
    t = d.text
    assert "一、生效预警（1）\n1. 【演练】【红色】城区暴雨红色预警（气象灾害，2026-07-20 02:00 接收）" in t
    assert "【已超时】会商 #3（橙色洪涝灾害），研判时限 2026-07-20 07:00，尚缺：水利局、自然资源局" in t
    assert "响应 2026-0001（红色，I级，2026-07-20 02:01 启动）：叫应 12 人次，已应答 9，未应答 2 人：" in t
    assert "   - 沉默村长（建设路社区）：未应答，已升级\n   - 东街镇长：叫应中" in t
    assert "【已超时】转移疏散（响应 2026-0001，王镇长）：落实中，时限 2026-07-20 04:00" in t
    assert "关于红色暴雨预警响应情况的续报（第1次）（续报，响应 2026-0001），应于 2026-07-20 08:00 前报送" in t
    assert "数据 #9（市气象台 CAP，2026-07-20 05:12 收到）：malformed_xml" in t
    assert "七、值班日志交接事项（1）\n1. 2026-07-20 03:10 【来电】东街街道来电：建设路积水 40 厘米（李值班）" in t
    assert d.sections["counts"] == {"warnings": 1, "consultations": 1, "runs": 1, "measures": 1, "reports": 1,
                                    "quarantined": 1, "log": 1}
    assert d.sections["runs"][0]["unanswered"][0]["name"] == "沉默村长"


def test_a_long_list_of_unanswered_people_is_cut_and_counted() -> None:
    people = [{"name": f"网格员{i}"} for i in range(3)]
    t = core.build_draft(facts(runs=[{"number": "2026-0002", "level": "red", "response_level": "I", "calls": 900,
                                      "answered": 100, "unanswered": people, "unanswered_total": 800}])).text
    assert "未应答 800 人：\n   - 网格员0\n   - 网格员1\n   - 网格员2\n   - 另有 797 人未列出（见叫应看板）" in t


def test_a_draft_without_a_next_shift_asks_for_one() -> None:
    t = core.build_draft(facts(next_shift=None, shift=ShiftFacts("", "a", "b"))).text
    assert "接班班次：值班表未排（请报告管理员）" in t and "交班人员：值班表未列人员" in t


# ---------------------------------------------------------------------------------------------- times


def test_the_handover_is_drafted_from_30_minutes_before_the_end() -> None:
    end = local(20, 8)
    assert not core.draft_due(end, local(20, 7, 29, 59))
    assert core.draft_due(end, local(20, 7, 30))
    assert core.draft_due(end, local(20, 9, 59))  # a late tick catches up
    assert not core.draft_due(end, local(20, 10))  # ... but not for a shift long gone


def test_unacknowledged_is_flagged_at_exactly_30_minutes_into_the_next_shift() -> None:
    due = core.ack_due(local(20, 8), local(20, 8))
    assert due == local(20, 8, 30)
    for state in (HandoverState.DRAFT, HandoverState.SIGNED):
        assert not core.unacknowledged(state, due, local(20, 8, 29, 59))
        assert core.unacknowledged(state, due, local(20, 8, 30))
    assert not core.unacknowledged(HandoverState.ACKNOWLEDGED, due, local(20, 9))
    # an acknowledgement at the instant is on time; a missing one at the instant is late (the flag's rule)
    assert not core.ack_late(due, local(20, 8, 30), local(20, 12))
    assert core.ack_late(due, local(20, 8, 30, 1), local(20, 12))
    assert not core.ack_late(due, None, local(20, 8, 29, 59)) and core.ack_late(due, None, local(20, 8, 30))


def test_the_deadline_follows_the_next_shift() -> None:
    assert core.ack_due(local(20, 8), None) == local(20, 8, 30)  # no next shift: from the end
    assert core.ack_due(local(20, 8), local(20, 9)) == local(20, 9, 30)  # a gap: from when it starts
    assert core.ack_due(local(20, 8), local(20, 7)) == local(20, 8, 30)  # an overlap: from the end


def test_the_machine_signs_once_and_acknowledges_after_signing() -> None:
    assert core.apply("draft", "sign") is HandoverState.SIGNED
    assert core.apply("signed", "acknowledge") is HandoverState.ACKNOWLEDGED
    assert core.apply("draft", "redraft") is HandoverState.DRAFT
    with pytest.raises(core.IllegalHandoverTransition) as exc:
        core.apply("draft", "acknowledge")
    assert "交接班记录" in exc.value.zh and "交班签字" in exc.value.zh  # says what is allowed
    for bad in (("signed", "sign"), ("signed", "redraft"), ("acknowledged", "acknowledge")):
        with pytest.raises(core.IllegalHandoverTransition):
            core.apply(*bad)


# ---------------------------------------------------------------------------------------------- log entries


def test_entry_times_may_be_back_dated_within_the_shift_only() -> None:
    now, start = local(20, 10), local(20, 8)
    core.check_entry_time(local(20, 8), now=now, earliest=start)
    core.check_entry_time(now, now=now, earliest=start)
    with pytest.raises(EntryTimeError) as exc:
        core.check_entry_time(local(20, 7, 59), now=now, earliest=start)
    assert exc.value.code == "time_out_of_range" and "本班" in exc.value.zh
    with pytest.raises(EntryTimeError):
        core.check_entry_time(local(20, 10, 0, 1), now=now, earliest=start)


def test_windows_and_days() -> None:
    start, end = core.day_window(dt.date(2026, 7, 20), TZ)
    assert (start, end) == (local(20, 0), local(21, 0))
    assert start.tzinfo is dt.UTC
    with pytest.raises(EntryTimeError):
        core.day_window(dt.date(1, 1, 1), TZ)
    with pytest.raises(EntryTimeError):
        core.check_window(local(20, 9), local(20, 8))
    with pytest.raises(EntryTimeError):
        core.check_window(local(1, 0), local(1, 0) + dt.timedelta(days=32))
    core.check_window(local(1, 0), local(1, 0) + dt.timedelta(days=31))


def test_system_events_read_as_log_lines() -> None:
    assert core.system_kind("callout.escalated", {"step": "township"}) is None
    assert core.system_kind("callout.escalated", {"step": "leader_on_duty"}) is EntryKind.ESCALATION
    assert core.system_kind("callout.answered", {}) is None
    assert core.system_text("warning.received", {"msg_type": "alert", "level": "red"},
                            {"headline": "城区暴雨红色预警", "drill": True}) == "【演练】收到红色预警：城区暴雨红色预警"
    assert core.system_text("warning.received", {"msg_type": "cancel"}, {"event": "暴雨"}) == "收到预警解除：暴雨"
    assert core.system_text("consultation.decided", {"final_level": "red", "response_level": "I", "reason": "雨势加强"},
                            {"id": 3}) == "会商 #3 带班领导决策：红色，I级响应；理由：雨势加强"
    assert core.system_text("run.started", {"number": "2026-0001", "level": "red", "response_level": "I"},
                            {}) == "启动I级响应 2026-0001（红色预警）"
    assert core.system_text("run.closed", {"number": "2026-0001"}, {}) == "响应 2026-0001 结束"
    assert core.system_text("callout.escalated", {"step": "leader_on_duty"}, {
        "name": "东街镇长", "area_names": ["东街街道"]}) == "叫应升级至带班领导：东街镇长（东街街道）未按时应答"
    assert core.system_text("report.sent", {"via": "phone", "recipient": "市应急局", "late": True},
                            {"title": "初报"}) == "已报送：初报（电话，报送至市应急局，超时）"


def test_written_entries_say_whose_call_or_instruction_it_was() -> None:
    assert core.written_text("call", "建设路积水", from_name="刘主任", from_unit="东街街道",
                             from_phone="0356-2021234") == "东街街道，刘主任，0356-2021234来电：建设路积水"
    assert core.written_text("instruction", "加强巡查", from_name="王区长") == "王区长批示：加强巡查"
    assert core.written_text("action", "已通知东街街道") == "已通知东街街道"


# ---------------------------------------------------------------------------------------------- roster gaps


def shift(i: int, start: dt.datetime, hours: int, *, leader: bool = True, officer: bool = True) -> RosterShift:
    return RosterShift(i, start, start + dt.timedelta(hours=hours), f"班次{i}", leader, officer)


def test_a_complete_roster_has_no_gaps() -> None:
    shifts = [shift(i, local(20, 8) + dt.timedelta(hours=12 * i), 12) for i in range(15)]
    assert core.roster_gaps(shifts, local(20, 9), local(27, 9), previous_end=local(20, 8)) == []


def test_gaps_are_shifts_lacking_people_and_hours_lacking_shifts() -> None:
    shifts = [shift(1, local(20, 8), 12), shift(2, local(20, 20), 12, officer=False),
              shift(3, local(21, 12), 8, leader=False, officer=False)]  # 21 08:00–12:00 uncovered
    got = core.roster_gaps(shifts, local(20, 9), local(22, 9), previous_end=local(20, 8))
    assert [(g.kind, g.shift_id, g.starts_at, g.ends_at) for g in got] == [
        (GapKind.NO_OFFICER, 2, local(20, 20), local(21, 8)),
        (GapKind.NO_SHIFT, None, local(21, 8), local(21, 12)),
        (GapKind.NO_OFFICER, 3, local(21, 12), local(21, 20)),
        (GapKind.NO_LEADER, 3, local(21, 12), local(21, 20)),
        (GapKind.NO_SHIFT, None, local(21, 20), None),  # nothing after: open-ended
    ]
    # a gap keeps its identity while time moves on: its key names where it begins, not where the window does
    later = core.roster_gaps(shifts, local(21, 9), local(23, 9), previous_end=local(21, 8))
    assert {g.key for g in got} >= {g.key for g in later}


def test_an_empty_roster_is_one_open_gap() -> None:
    [g] = core.roster_gaps([], local(20, 9), local(27, 9))
    assert (g.kind, g.starts_at, g.ends_at, g.key) == (GapKind.NO_SHIFT, None, None, "no_shift:from:open")
    assert g.within(local(20, 9), local(21, 9))


def test_a_gap_now_begins_where_the_last_shift_ended() -> None:
    [g] = core.roster_gaps([shift(1, local(21, 8), 12)], local(20, 9), local(21, 9), previous_end=local(20, 6))
    assert (g.starts_at, g.ends_at) == (local(20, 6), local(21, 8))
    assert core.roster_gaps([shift(1, local(21, 8), 12)], local(20, 9), local(21, 8)) != []
    assert core.roster_gaps([shift(1, local(20, 8), 12)], local(20, 9), local(20, 10)) == []
