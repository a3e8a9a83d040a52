"""The duty log and handovers against the real databases (SQLite and PostgreSQL): entries written and
back-dated within the shift, the system's events linked in from the event log, the handover drafted by the
scheduler 30 minutes before the end with the open run and its unanswered people, signed, acknowledged, and
flagged to the incoming leader at exactly 30 minutes into the next shift; roster gaps on a fixed clock."""

from __future__ import annotations

import datetime as dt
import threading
from types import ModuleType

import pytest
from sqlalchemy import Engine, select

from config.clock import VirtualClock
from config.database import make_session_factory, session_scope
from config.eventlog import Event, events_for, record, verify
from config.runtime import Runtime
from responses.callouts.models import Callout
from responses.contacts import roster_service
from responses.contacts.roster import Person, ShiftSpec
from responses.duty import gaps, handovers, jobs
from responses.duty import service as duty
from responses.duty.models import DutyLogEntry, Handover
from responses.reports import service as report_service
from responses.runs import service as run_service
from responses.runs.core import Trigger
from responses.runs.models import Notice, SupervisionFlag
from tests.duty.helpers import TZ, add_roster, add_shift, local
from warning.models import Warning


def at(rt: Runtime, when: dt.datetime) -> Runtime:
    """The same database on a clock set to ``when``."""
    return Runtime(rt.settings, rt.engine, rt.session_factory, VirtualClock(when))


def _start_run(rt: Runtime, region: ModuleType) -> tuple[int, int]:
    """The region's orange flood warning, received (as the intake records it), and a run for it."""
    now = rt.now()
    with session_scope(rt.session_factory) as s:
        r = region.make_region(s, now)
        w = s.get(Warning, r.warning_id)
        assert w is not None
        record(s, now=now, action="warning.received", entity_type="warning", entity_id=w.id, actor="feed:cap",
               payload={"msg_type": "alert", "level": "orange", "hazard": "flood", "sender": w.sender})
        run, _ = run_service.start_run(s, warning=w, level="orange", areas=w.affected, trigger=Trigger.DECISION,
                                       actor="user:leader", now=now, measures=[region.EVACUATION])
        assert run is not None
        return w.id, run.id


# ---------------------------------------------------------------------------------------------- the log


def test_entries_are_written_in_the_current_shift_and_back_dated_within_it(runtime: Runtime) -> None:
    rt = at(runtime, local(20, 7))
    with session_scope(rt.session_factory) as s:
        night, _day = add_roster(s, rt.now())
    with session_scope(rt.session_factory) as s:
        call = duty.write_entry(s, kind="call", text="建设路积水 40 厘米", at=local(19, 23, 10), from_name="刘主任",
                                from_unit="东街街道", from_phone="0356-2021234", actor="user:li", author_name="李值班",
                                now=rt.now(), for_handover=True)
        note = duty.write_entry(s, kind="note", text="  交班前检查电台  ", actor="user:li", author_name="李值班",
                                now=rt.now())
        assert call.shift_id == night and note.shift_id == night and note.text == "交班前检查电台"
        assert note.at == rt.now()
        for bad_at in (local(19, 19, 59), local(20, 7, 0, 1)):  # before the shift; in the future
            with pytest.raises(duty.DutyError) as exc:
                duty.write_entry(s, kind="note", text="x", at=bad_at, actor="user:li", author_name="李值班",
                                 now=rt.now())
            assert exc.value.status == 422 and exc.value.code == "time_out_of_range"
        for link in ({"warning_id": 999}, {"run_id": 999}):
            with pytest.raises(duty.DutyError) as exc:
                duty.write_entry(s, kind="note", text="x", actor="user:li", author_name="李值班", now=rt.now(),
                                 **link)  # type: ignore[arg-type]
            assert exc.value.status == 404
        with pytest.raises(duty.DutyError):
            duty.write_entry(s, kind="warning", text="x", actor="user:li", author_name="李值班", now=rt.now())
        duty.mark_for_handover(s, note, True, actor="user:li", now=rt.now())
        duty.mark_for_handover(s, note, True, actor="user:li", now=rt.now())  # no change, no event
        call_id, note_id = call.id, note.id
    with session_scope(rt.session_factory) as s:
        assert [e.action for e in events_for(s, "duty_log_entry", note_id)] == [
            "duty_log.written", "duty_log.handover_marked"]
        written = events_for(s, "duty_log_entry", call_id)[0]
        assert written.payload["from_unit"] == "东街街道" and written.payload["at"].startswith("2026-07-19T15:10")
        view = duty.log_view(s, now=rt.now(), tz=TZ)  # default: the current shift
        assert view["shift"]["id"] == night and view["shift"]["leader"] == "张带班"
        assert [(e["at_local"], e["kind_zh"], e["text"], e["source"], e["for_handover"]) for e in view["entries"]] == [
            ("2026-07-19 23:10", "来电", "东街街道，刘主任，0356-2021234来电：建设路积水 40 厘米", "李值班", True),
            ("2026-07-20 07:00", "记事", "交班前检查电台", "李值班", True),
        ]
        # the local day holds the same entries (the night shift's day part) and a day with none is empty
        assert [e["id"] for e in duty.log_view(s, now=rt.now(), tz=TZ, day=dt.date(2026, 7, 20))["entries"]] == [
            note_id]
        assert duty.log_view(s, now=rt.now(), tz=TZ, day=dt.date(2026, 7, 18))["entries"] == []
        for bad in ({"shift_id": night, "day": dt.date(2026, 7, 20)}, {"start": local(20, 1)},
                    {"start": local(20, 2), "end": local(20, 1)}):
            with pytest.raises(duty.DutyError) as exc:
                duty.log_view(s, now=rt.now(), tz=TZ, **bad)  # type: ignore[arg-type]
            assert exc.value.status == 422
        with pytest.raises(duty.DutyError) as exc:
            duty.log_view(s, now=rt.now(), tz=TZ, shift_id=999)
        assert exc.value.status == 404
        assert verify(s).ok


def test_no_shift_on_duty_logs_today_and_allows_a_day_of_back_dating(runtime: Runtime) -> None:
    rt = at(runtime, local(25, 10))
    with session_scope(rt.session_factory) as s:
        e = duty.write_entry(s, kind="action", text="通知各镇（街道）加强巡查", at=local(24, 11), actor="user:li",
                             author_name="李值班", now=rt.now())
        assert e.shift_id is None
        with pytest.raises(duty.DutyError):
            duty.write_entry(s, kind="note", text="x", at=local(24, 9, 59), actor="user:li", author_name="李值班",
                             now=rt.now())
        view = duty.log_view(s, now=rt.now(), tz=TZ)
        assert view["shift"] is None and view["day"] == dt.date(2026, 7, 25) and view["entries"] == []
        assert [x["text"] for x in duty.log_view(s, now=rt.now(), tz=TZ, start=local(24, 0),
                                                 end=local(25, 0))["entries"]] == ["通知各镇（街道）加强巡查"]


def test_system_events_are_linked_in_not_copied(runtime: Runtime, region: ModuleType) -> None:
    rt = at(runtime, local(20, 6))
    with session_scope(rt.session_factory) as s:
        night, _day = add_roster(s, rt.now())
    warning_id, run_id = _start_run(rt, region)
    with session_scope(rt.session_factory) as s:
        calls = list(s.execute(select(Callout).where(Callout.run_id == run_id)).scalars())
        assert calls, "the run calls the township chief"
        for step in ("township", "leader_on_duty"):  # only the step that reached the leader belongs in the log
            record(s, now=local(20, 6, 20), action="callout.escalated", entity_type="callout", entity_id=calls[0].id,
                   actor="rule:callout_deadline", payload={"step": step, "to_callouts": []})
        record(s, now=local(20, 6, 25), action="consultation.decided", entity_type="consultation", entity_id=5,
               actor="user:leader", payload={"final_level": "orange", "response_level": "II", "reason": "雨势加强"})
        phone = next(r for r in report_service.for_run(s, run_id) if r.kind == "initial_phone")
        report_service.mark_sent(s, phone, via="phone", actor="user:li", now=local(20, 6, 30), recipient="市应急管理局")
        duty.write_entry(s, kind="instruction", text="全力做好转移", from_name="王区长", actor="user:li",
                         author_name="李值班", now=local(20, 6, 40), run_id=run_id)
    with session_scope(rt.session_factory) as s:
        entries = duty.log_view(s, now=local(20, 7), tz=TZ, shift_id=night)["entries"]
        rows = [(e["at_local"][-5:], e["kind"], e["system"], e["text"]) for e in entries]
        chief = calls[0].name
        assert rows == [
            ("06:00", "warning", True, "收到橙色预警：城区气象台发布暴雨橙色预警（chengqu-met）"),
            ("06:00", "run_started", True, "启动II级响应 2026-0001（橙色预警）"),
            ("06:20", "escalation", True, f"叫应升级至带班领导：{chief}（北街街道）未按时应答"),
            ("06:25", "decision", True, "会商 #5 带班领导决策：橙色，II级响应；理由：雨势加强"),
            ("06:30", "report_sent", True, f"已报送：{phone.title}（电话，报送至市应急管理局）"),
            ("06:40", "instruction", False, "王区长批示：全力做好转移"),
        ]
        assert entries[0]["warning_id"] == warning_id and entries[1]["run_id"] == run_id
        assert entries[4]["run_id"] == run_id and entries[5]["run_id"] == run_id
        assert all(e["source"] == "系统" for e in entries[:5]) and entries[5]["source"] == "李值班"
        assert s.execute(select(DutyLogEntry)).scalars().all()[0].kind == "instruction"  # nothing else stored


# ---------------------------------------------------------------------------------------------- handovers


def test_the_handover_is_drafted_at_30_minutes_before_the_end_with_the_open_work(
        runtime: Runtime, region: ModuleType) -> None:
    rt = at(runtime, local(20, 6))
    with session_scope(rt.session_factory) as s:
        night, day = add_roster(s, rt.now())
    _warning_id, run_id = _start_run(rt, region)
    with session_scope(rt.session_factory) as s:
        duty.write_entry(s, kind="call", text="东风水库水位上涨", from_unit="东风水库", actor="user:li",
                         author_name="李值班", now=local(20, 6, 10), for_handover=True)
        duty.write_entry(s, kind="note", text="不交接的记事", actor="user:li", author_name="李值班",
                         now=local(20, 6, 11))
        chief = s.execute(select(Callout.name).where(Callout.run_id == run_id)).scalars().first()

    jobs.handover_sweep(at(rt, local(20, 7, 29, 59)))
    with session_scope(rt.session_factory) as s:
        assert s.execute(select(Handover)).first() is None
    jobs.handover_sweep(at(rt, local(20, 7, 30)))
    jobs.handover_sweep(at(rt, local(20, 7, 31)))  # idempotent
    with session_scope(rt.session_factory) as s:
        [h] = s.execute(select(Handover)).scalars().all()
        assert (h.shift_id, h.next_shift_id, h.state, h.drafted_by) == (night, day, "draft", "rule:handover")
        assert h.drafted_at == local(20, 7, 30) and h.ack_due_at == local(20, 8, 30)
        t = h.text
        assert "交班班次：2026-07-19 20:00 至 2026-07-20 08:00（夜班）" in t
        assert "接班人员：带班领导 赵带班；值班员 钱值班" in t
        assert "【橙色】城区气象台发布暴雨橙色预警" in t
        assert f"   - {chief}" in t and "未应答 1 人" in t
        assert "转移疏散" in t and "（下一班次应报送的信息" not in t
        assert "电话初报" in t and "书面初报" in t  # due during the next shift (and overdue ones too)
        assert "东风水库来电：东风水库水位上涨（李值班）" in t and "不交接的记事" not in t
        assert h.sections["counts"]["runs"] == 1 and h.sections["runs"][0]["unanswered"][0]["name"] == chief
        assert [e.action for e in events_for(s, "handover", h.id)] == ["handover.drafted"]
        hid = h.id

    # the outgoing officer edits and signs at 07:55; the incoming one acknowledges at 08:10
    with session_scope(rt.session_factory) as s:
        h = handovers.get(s, hid, lock=True)
        assert h is not None
        ok, names = handovers.may_act(s, h.shift_id, user_id=None, names=["李值班"])
        assert ok and set(names) == {"张带班", "李值班"}
        assert not handovers.may_act(s, h.shift_id, user_id=None, names=["钱值班"])[0]
        assert handovers.may_act(s, h.next_shift_id, user_id=None, names=["钱值班"])[0]
        with pytest.raises(handovers.core.IllegalHandoverTransition):
            handovers.acknowledge(s, h, actor="user:qian", name="钱值班", now=local(20, 7, 50))
    with session_scope(rt.session_factory) as s:
        h = handovers.get(s, hid, lock=True)
        assert h is not None
        with pytest.raises(duty.DutyError):
            handovers.sign(s, h, actor="user:li", name="李值班", now=local(20, 7, 55), text="   ")
        handovers.sign(s, h, actor="user:li", name="李值班", now=local(20, 7, 55), text=h.text + "另：电台已检查。\n")
    with session_scope(rt.session_factory) as s:
        h = handovers.get(s, hid, lock=True)
        assert h is not None
        handovers.acknowledge(s, h, actor="user:qian", name="钱值班", now=local(20, 8, 10), note="已阅，继续跟踪转移")
    jobs.handover_sweep(at(rt, local(20, 9)))  # acknowledged in time: nothing to flag
    with session_scope(rt.session_factory) as s:
        h = handovers.get(s, hid)
        assert h is not None
        v = handovers.view(s, h, now=local(20, 9), tz=TZ)
        assert (v["state"], v["state_zh"], v["edited"], v["late"], v["overdue"]) == (
            "acknowledged", "已确认", True, False, False)
        assert (v["signed_by_name"], v["signed_local"], v["acknowledged_by_name"], v["ack_note"]) == (
            "李值班", "2026-07-20 07:55", "钱值班", "已阅，继续跟踪转移")
        signed = [e for e in events_for(s, "handover", hid) if e.action == "handover.signed"][0]
        assert signed.payload["edited"] is True and "另：电台已检查。" in signed.payload["text"]
        assert not s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "handover_unacknowledged")).first()
        # both steps are in the log of the shift they happened in, as system entries
        night_log = duty.log_view(s, now=local(20, 9), tz=TZ, shift_id=night)["entries"]
        day_log = duty.log_view(s, now=local(20, 9), tz=TZ, shift_id=day)["entries"]
        assert [e["text"] for e in night_log if e["kind"] == "handover"] == ["交班签字：李值班（夜班）"]
        assert [e["text"] for e in day_log if e["kind"] == "handover"] == ["接班确认：钱值班"]


def test_an_unacknowledged_handover_is_flagged_to_the_incoming_leader_at_exactly_30_minutes(
        runtime: Runtime) -> None:
    rt = at(runtime, local(20, 7))
    with session_scope(rt.session_factory) as s:
        night, day = add_roster(s, rt.now())
        h, created = handovers.draft(s, duty.get_shift(s, night), actor="user:li", now=rt.now(), tz=TZ)  # type: ignore[arg-type]
        again, created_again = handovers.draft(s, duty.get_shift(s, night), actor="user:li", now=rt.now(), tz=TZ)  # type: ignore[arg-type]
        assert created and not created_again and again.id == h.id
        handovers.sign(s, h, actor="user:li", name="李值班", now=local(20, 7, 58))
        hid = h.id
    jobs.handover_sweep(at(rt, local(20, 8, 29, 59)))
    with session_scope(rt.session_factory) as s:
        assert not s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "handover_unacknowledged")).first()
    jobs.handover_sweep(at(rt, local(20, 8, 30)))
    jobs.handover_sweep(at(rt, local(20, 8, 35)))  # once
    with session_scope(rt.session_factory) as s:
        [flag] = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "handover_unacknowledged")).scalars()
        assert (flag.subject_type, flag.subject_id, flag.raised_at, flag.due_at) == (
            "handover", str(hid), local(20, 8, 30), local(20, 8, 30))
        assert flag.detail["notified"] == "赵带班"  # the leader on duty now: the incoming shift's
        [notice] = s.execute(select(Notice).where(Notice.kind == "handover_unacknowledged")).scalars()
        assert notice.recipient_name == "赵带班" and notice.recipient_phone == "+8613900000103"
        assert "白班" not in notice.subject and "夜班" in notice.subject and "已签字、未确认" in notice.subject
        h = handovers.get(s, hid)
        assert h is not None and h.unack_flagged_at == local(20, 8, 30)
        assert handovers.view(s, h, now=local(20, 8, 30), tz=TZ)["overdue"] is True
    with session_scope(rt.session_factory) as s:
        h = handovers.get(s, hid, lock=True)
        assert h is not None
        handovers.acknowledge(s, h, actor="user:qian", name="钱值班", now=local(20, 8, 45))
        flag = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "handover_unacknowledged")).scalar_one()
        assert flag.cleared_at == local(20, 8, 45)
        ack = [e for e in events_for(s, "handover", hid) if e.action == "handover.acknowledged"][0]
        assert ack.payload["late"] is True
        assert handovers.audit_view(s, h, local(20, 12))["late"] is True
        assert h.next_shift_id == day


def test_a_waiting_handover_follows_the_roster_when_its_incoming_shift_is_removed_or_replaced(
        runtime: Runtime) -> None:
    """The incoming shift removed before it begins leaves the handover to nobody (its deadline falls back to the
    night's end); the shift put in instead takes it over as soon as it covers the change of shift, in the edit's
    own transaction, the move in the event log."""
    rt = at(runtime, local(20, 7, 40))
    with session_scope(rt.session_factory) as s:
        night, day = add_roster(s, rt.now())
        h, _ = handovers.draft(s, duty.get_shift(s, night), actor="rule:handover", now=rt.now(), tz=TZ)  # type: ignore[arg-type]
        hid = h.id
        assert (h.next_shift_id, h.ack_due_at) == (day, local(20, 8, 30))
    with session_scope(rt.session_factory) as s:
        roster_service.remove_shift(s, roster_service.get_shift(s, day), actor="user:admin",  # type: ignore[arg-type]
                                    now=local(20, 7, 45), tz=TZ)
    with session_scope(rt.session_factory) as s:
        h = handovers.get(s, hid)
        assert h is not None and (h.next_shift_id, h.ack_due_at) == (None, local(20, 8, 30))
        late = add_shift(s, "白班（替）", local(20, 9), local(20, 20), ("孙带班", "+8613900000105"), [],
                         now=local(20, 7, 50))
    with session_scope(rt.session_factory) as s:  # added through a roster import, as the API and console do
        roster_service.save_api_batch(s, [], actor="user:admin", now=local(20, 7, 50))
    with session_scope(rt.session_factory) as s:
        h = handovers.get(s, hid)
        assert h is not None and (h.next_shift_id, h.ack_due_at) == (None, local(20, 8, 30))  # 08:00 is a gap
        shift = roster_service.get_shift(s, late)
        assert shift is not None
        roster_service.update_shift(s, shift, ShiftSpec(local(20, 8), local(20, 20), Person("孙带班"), [],
                                                        label="白班（替）"),
                                    actor="user:admin", now=local(20, 7, 55), tz=TZ)
    with session_scope(rt.session_factory) as s:
        h = handovers.get(s, hid, lock=True)
        assert h is not None and (h.next_shift_id, h.ack_due_at) == (late, local(20, 8, 30))
        moves = [e.payload for e in events_for(s, "handover", hid) if e.action == "handover.next_shift_changed"]
        # the removal itself unlinked the handover (the database's SET NULL; roster.shift_removed records it)
        assert [(m["before"]["next_shift_id"], m["next_shift_id"]) for m in moves] == [(None, late)]
        assert verify(s).ok
        handovers.sign(s, h, actor="user:li", name="李值班", now=local(20, 7, 58))
        handovers.acknowledge(s, h, actor="user:sun", name="孙带班", now=local(20, 8, 5))
        assert h.ack_due_at == local(20, 8, 30) and not handovers.follow_roster(s, now=local(20, 8, 6), actor="x")


def test_a_handover_never_drafted_still_is_and_a_future_shift_is_refused(runtime: Runtime) -> None:
    rt = at(runtime, local(20, 8, 20))  # the scheduler was down over the change of shift
    with session_scope(rt.session_factory) as s:
        night, _day = add_roster(s, rt.now())
    jobs.handover_sweep(rt)
    with session_scope(rt.session_factory) as s:
        [h] = s.execute(select(Handover)).scalars().all()
        assert h.shift_id == night  # the day shift ends at 20:00: not yet
        with pytest.raises(duty.DutyError) as exc:
            tomorrow = add_shift(s, "次日白班", local(21, 8), local(21, 20), None, [], now=rt.now())
            handovers.draft(s, duty.get_shift(s, tomorrow), actor="user:x", now=rt.now(), tz=TZ)  # type: ignore[arg-type]
        assert exc.value.status == 409 and exc.value.code == "shift_not_started"


@pytest.mark.postgres
def test_two_instances_drafting_at_once_make_one_handover(pg_engine: Engine) -> None:
    factory = make_session_factory(pg_engine)
    with session_scope(factory) as s:
        night, _day = add_roster(s, local(20, 7))
    barrier = threading.Barrier(2)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def draft() -> None:
        try:
            with session_scope(factory) as s:
                shift = duty.get_shift(s, night)
                assert shift is not None
                barrier.wait(timeout=10)
                h, created = handovers.draft(s, shift, actor="rule:handover", now=local(20, 7, 30), tz=TZ)
                results.append((h.id, created))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=draft) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    with session_scope(factory) as s:
        [h] = s.execute(select(Handover)).scalars().all()
        assert sorted(created for _, created in results) == [False, True]
        assert {hid for hid, _ in results} == {h.id}
        assert [e.action for e in s.execute(select(Event).where(Event.entity_type == "handover")).scalars()] == [
            "handover.drafted"]
        assert verify(s).ok


# ---------------------------------------------------------------------------------------------- roster gaps


def test_roster_gaps_are_flagged_seven_days_ahead_and_shown_24_hours_ahead(runtime: Runtime) -> None:
    now = local(20, 9)
    rt = at(runtime, now)
    with session_scope(rt.session_factory) as s:
        add_roster(s, now)  # until 20 July 20:00
        add_shift(s, "夜班", local(20, 20), local(21, 8), ("张带班", "+8613900000101"), [], now=now)
        add_shift(s, "白班", local(21, 12), local(21, 20), None, [("钱值班", "+8613900000104")], now=now)
        add_shift(s, "远期", local(28, 8), local(28, 20), None, [], now=now)  # beyond seven days
    with session_scope(rt.session_factory) as s:
        board = gaps.gaps(s, now, tz=TZ)
        assert [(g["kind"], g["starts_local"], g["ends_local"]) for g in board] == [
            ("no_officer", "2026-07-20 20:00", "2026-07-21 08:00"),
            ("no_shift", "2026-07-21 08:00", "2026-07-21 12:00"),
        ]
        assert board[0]["message"] == "夜班（2026-07-20 20:00—2026-07-21 08:00） 班次缺值班员"
        assert board[1]["message"] == "2026-07-21 08:00 起至 2026-07-21 12:00 无人值班"
        assert all(g["within_24h"] and not g["now"] for g in board)
    jobs.roster_gap_sweep(rt)
    jobs.roster_gap_sweep(rt)  # raised once
    with session_scope(rt.session_factory) as s:
        flags = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "roster_gap")
                          .order_by(SupervisionFlag.id)).scalars().all()
        assert [(f.detail["gap"], f.detail["to"]) for f in flags] == [
            ("no_officer", "admin"), ("no_shift", "admin"), ("no_leader", "admin"), ("no_shift", "admin")]
        window = [dt.datetime.fromisoformat(flags[3].detail[k]) for k in ("starts_at", "ends_at")]
        assert window == [local(21, 20), local(28, 8)]  # up to the next shift, though it lies beyond seven days
        assert all(f.raised_at == now for f in flags)
    # the gap is filled: an officer for the night shift, a shift for 08:00–12:00
    with session_scope(rt.session_factory) as s:
        add_shift(s, "夜班", local(20, 20), local(21, 8), ("张带班", "+8613900000101"),
                  [("李值班", "+8613900000102")], now=now)
        add_shift(s, "上午", local(21, 8), local(21, 12), ("赵带班", "+8613900000103"),
                  [("钱值班", "+8613900000104")], now=now)
    later = at(rt, local(20, 10))
    jobs.roster_gap_sweep(later)
    with session_scope(rt.session_factory) as s:
        open_ = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "roster_gap",
                                                        SupervisionFlag.cleared_at.is_(None))).scalars().all()
        assert [f.detail["gap"] for f in open_] == ["no_leader", "no_shift"]
        cleared = s.execute(select(SupervisionFlag).where(SupervisionFlag.cleared_at.is_not(None))).scalars().all()
        assert {f.cleared_reason for f in cleared} == {"gap filled"}
        assert gaps.gaps(s, local(20, 10), tz=TZ) == []  # nothing left in the coming 24 hours
        assert [g["kind"] for g in gaps.gaps(s, local(20, 10), dt.timedelta(hours=48), tz=TZ)] == [
            "no_leader", "no_shift"]
        flagged = s.execute(select(Event.action).where(Event.entity_type == "supervision_flag")).scalars()
        assert set(flagged) == {"supervision.roster_gap_flagged", "supervision.roster_gap_cleared"}
