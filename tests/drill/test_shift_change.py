"""A drill across a change of shift (08:00): the scenario's roster, the officer on duty writing the duty log,
the handover drafted by the scheduler at 07:30, signed by the outgoing officer and acknowledged by the
incoming one — all in the audit report's "shifts" section; and, when nobody acknowledges, the flag to the
incoming leader at 08:30."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from config.database import make_engine, make_session_factory, session_scope
from responses.drill.scenario import ScenarioError, parse_scenario
from responses.runs.models import Notice, SupervisionFlag

DATA = Path(__file__).resolve().parent / "data"


def test_a_drill_across_a_change_of_shift_reports_the_handover_and_the_logs(run_scenario: Any, tmp_path: Path,
                                                                             data_dir: Path) -> None:
    result = run_scenario(DATA / "shift-change.yaml", tmp_path)
    report = result.report
    check = subprocess.run([sys.executable, str(data_dir / "tools" / "contracts.py"), "report",
                            str(result.paths["json"])], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout
    night, day = report["shifts"]
    assert (night["label"], night["leader"], night["officers"]) == ("夜班", "张带班", ["李值班"])
    assert (day["label"], day["leader"], day["officers"]) == ("白班", "赵带班", ["钱值班"])
    h = night["handover"]
    assert (h["drafted_by"], h["drafted_at"]) == ("rule:handover", "2026-07-20T07:30:00+08:00")
    assert (h["signed_by"], h["signed_at"]) == ("李值班", "2026-07-20T07:50:00+08:00")
    assert (h["acknowledged_by"], h["acknowledged_at"], h["late"]) == ("钱值班", "2026-07-20T08:05:00+08:00", False)
    number = report["runs"][0]["number"]
    assert f"【演练】响应 {number}（红色，I级" in h["text"]
    assert "   - 沉默村长（建设路社区）：未应答，已升级" in h["text"]
    assert "东街街道，刘主任来电：建设路社区积水 40 厘米，村长电话无人接听（李值班）" in h["text"]
    assert day["handover"] is None  # the day shift ends after the drill
    night_log = [(e["kind"], e["source"]) for e in night["log"]]
    assert night_log[:2] == [("warning", "系统"), ("run_started", "系统")]
    assert ("escalation", "系统") in night_log and ("decision", "系统") in night_log
    assert ("call", "李值班") in night_log and night_log[-1] == ("handover", "系统")
    assert [(e["kind"], e["source"], e["text"]) for e in day["log"]] == [
        ("handover", "系统", "接班确认：钱值班"), ("action", "钱值班", "已电话通知东街街道派人到建设路社区查看")]
    escalations = [e["text"] for e in night["log"] if e["kind"] == "escalation"]
    assert escalations and all("叫应升级至带班领导：东街镇长" in t for t in escalations)
    # the leader on duty that night was the roster's, and answered
    leader_calls = [c for c in report["callouts"] if c["role"] == "leader_on_duty"]
    assert leader_calls and {c["person"] for c in leader_calls} == {"张带班"}
    assert all(c["answered_at"] for c in leader_calls)
    html = result.paths["html"].read_text(encoding="utf-8")
    assert 'id="shifts"' in html and "交班签字：李值班" in html and "按时确认" in html
    assert [r[0] for r in load_workbook(result.paths["xlsx"])["值班交接"].iter_rows(min_row=2, values_only=True)] == [
        night["id"], day["id"]]


def test_nobody_acknowledges_and_the_incoming_leader_is_told_at_0830(run_scenario: Any, tmp_path: Path) -> None:
    result = run_scenario(DATA / "shift-change-unacknowledged.yaml", tmp_path)
    h = result.report["shifts"][0]["handover"]
    assert (h["state"], h["acknowledged_at"], h["late"], h["flagged_at"]) == (
        "signed", None, True, "2026-07-20T08:30:00+08:00")
    assert "接班确认超时" in result.paths["html"].read_text(encoding="utf-8")
    engine = make_engine(f"sqlite:///{tmp_path / 'drill.sqlite3'}")
    try:
        with session_scope(make_session_factory(engine)) as s:
            [flag] = s.execute(select(SupervisionFlag).where(SupervisionFlag.kind == "handover_unacknowledged")
                               ).scalars()
            assert flag.cleared_at is None and flag.detail["notified"] == "赵带班"
            [notice] = s.execute(select(Notice).where(Notice.kind == "handover_unacknowledged")).scalars()
            assert notice.recipient_name == "赵带班" and "夜班" in notice.subject
    finally:
        engine.dispose()


def test_the_scenario_roster_and_log_are_checked_like_the_rest() -> None:
    text = """name: x
start: 2026-07-20T06:30:00+08:00
duration: 1h
roster:
  - {start: 2026-07-20T08:00:00+08:00, end: 2026-07-20T07:00:00+08:00, leader: {name: 张}}
  - {start: 2026-07-20T08:00:00, end: 2026-07-20T09:00:00+08:00}
events:
  - at: 0m
    feed: {format: cap, file: a.xml}
duty_log:
  - {at: 2h, kind: call, text: 积水}
  - {at: 1m, kind: gossip, text: x}
behaviour:
  handover: {sign_before_end: soon}
"""
    try:
        parse_scenario(text)
        raise AssertionError("accepted")
    except ScenarioError as exc:
        found = {(p.line, p.field) for p in exc.problems}
    assert (5, "roster[0]") in found  # ends before it starts
    assert (6, "roster[1].start") in found  # no offset
    assert (12, "duty_log[1].kind") in found
    assert (14, "behaviour.handover.sign_before_end") in found
    late_entry = text.split("roster:")[0] + "events:\n  - at: 0m\n    feed: {format: cap, file: a.xml}\n" \
        "duty_log:\n  - {at: 2h, kind: call, text: 积水}\n"
    try:
        parse_scenario(late_entry)
        raise AssertionError("accepted")
    except ScenarioError as exc:
        assert [(p.line, p.field) for p in exc.problems] == [(8, "duty_log[0].at")]
