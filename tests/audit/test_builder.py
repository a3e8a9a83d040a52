"""build_report reads the records and the event log; drill and real runs stay apart."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from config.database import session_scope
from config.eventlog import Event, record
from responses.audit.builder import ReportScopeError, build_report
from responses.audit.kpis import answer_seconds, compute_kpis
from responses.callouts.models import Answer, Callout, Escalation
from responses.measures.models import MeasureOrder
from responses.reports.models import InfoReport
from responses.runs.models import ResponseRun
from warning.consultation.models import Consultation, Decision, Judgement
from warning.models import Warning

TZ = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 7, 20, 2, 0, tzinfo=TZ)


def m(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def add_warning(s: Session, ident: str, *, minutes: float, thread: int | None, msg_type: str = "alert",
                status: str = "exercise") -> Warning:
    w = Warning(sender="cq@cma.gov.cn", identifier=ident, msg_type=msg_type, status=status,
                drill=status == "exercise", hazard="weather", event="暴雨", level="red", sent=m(minutes - 1),
                received_at=m(minutes), updated_at=m(minutes), thread_id=thread,
                version=1 if msg_type == "alert" else 2, state="cancelled" if msg_type == "cancel" else "active")
    s.add(w)
    s.flush()
    if thread is None:
        w.thread_id = w.id
    record(s, now=m(minutes), action="warning.received", entity_type="warning", entity_id=w.id, actor="feed:test")
    return w


def add_run(s: Session, w: Warning, *, drill: bool, number: str) -> ResponseRun:
    run = ResponseRun(number=number, thread_id=w.thread_id, open_thread_id=None, warning_id=w.id, hazard="weather",
                      level="red", response_level="I", trigger="automatic", plan_version="t", plan_snapshot={},
                      entry_snapshot={}, state="closed", drill=drill, started_at=m(0.5), started_by="rule:test",
                      closed_at=m(200), updated_at=m(200))
    s.add(run)
    s.flush()
    record(s, now=m(0.5), action="run.started", entity_type="response_run", entity_id=run.id, actor="rule:test")
    return run


def add_callout(s: Session, run: ResponseRun, name: str, area: str, *, tier: str = "village",
                role: str = "grid_worker", called: float = 1, answer_min: int = 5, answered: float | None = None,
                state: str = "calling") -> Callout:
    c = Callout(key=f"{run.id}:{name}", run_id=run.id, name=name, role=role, tier=tier, rank=0, areas=[area],
                area_names=[], reason="plan", level="red", state=state, numbers=[f"+86139{len(name):08d}"],
                answer_minutes=answer_min, retries_total=1, retry_interval_minutes=2, attempts_made=2,
                started_at=m(called), deadline_at=m(called + answer_min),
                answered_at=m(answered) if answered is not None else None, drill=run.drill,
                created_at=m(called), updated_at=m(called))
    s.add(c)
    s.flush()
    record(s, now=m(called), action="callout.started", entity_type="callout", entity_id=c.id, actor="rule:test")
    if answered is not None:
        s.add(Answer(callout_id=c.id, channel="keypress", kind="received", late=answered > called + answer_min,
                     at=m(answered), entered_by="person:1"))
        record(s, now=m(answered), action="callout.answered", entity_type="callout", entity_id=c.id,
               actor="person:1")
    return c


def populate(factory: sessionmaker[Session], *, drill: bool = True) -> dict[str, Any]:
    with session_scope(factory) as s:
        alert = add_warning(s, "A-1" if drill else "R-1", minutes=0, thread=None,
                            status="exercise" if drill else "actual")
        cancel = add_warning(s, "A-2" if drill else "R-2", minutes=180, thread=alert.id, msg_type="cancel",
                             status="exercise" if drill else "actual")
        alert.ended_at = m(180)
        cons = Consultation(thread_id=alert.id, warning_id=alert.id, hazard="weather", level="red", state="decided",
                            mode="parallel", invited=["meteorology", "water"], missing=["water"], opened_at=m(0),
                            opened_by="rule:test", deadline=m(30), decided_at=m(20), drill=drill, updated_at=m(20))
        s.add(cons)
        s.flush()
        s.add(Judgement(consultation_id=cons.id, department="meteorology", author="user:qx", assessed_level="red",
                        trend="rising", confidence="high", recorded_at=m(5)))
        s.add(Decision(consultation_id=cons.id, version=1, final_level="red", response_level="I",
                       decided_by="user:leader", decided_at=m(20)))
        run = add_run(s, cancel, drill=drill, number="2026-0001" if drill else "2026-0002")
        quick = add_callout(s, run, "张伟", "140502001201", answered=3, state="answered")
        late = add_callout(s, run, "王强", "140502100201", answered=13, state="answered")
        silent = add_callout(s, run, "赵敏", "140502100202", state="escalated")
        chief = add_callout(s, run, "钟镇长", "140502100000", tier="township", role="township_chief", called=6,
                            state="escalated")
        leader = add_callout(s, run, "刘带班", "140502000000", tier="district", role="district_leader",
                             called=11, answered=12, state="answered")
        s.add_all([
            Escalation(run_id=run.id, from_callout_id=silent.id, to_callout_ids=[chief.id], step="township",
                       at=m(6), reason="no_answer"),
            Escalation(run_id=run.id, from_callout_id=chief.id, to_callout_ids=[leader.id], step="district",
                       at=m(11), reason="no_answer"),
        ])
        common = {"run_id": run.id, "level": "red", "responsible_unit": "钟家庄街道", "unit_kind": "township",
                  "ordered_at": m(20), "ordered_by": "rule:test", "deadline": m(50), "drill": drill,
                  "created_at": m(20), "updated_at": m(20)}
        s.add_all([
            MeasureOrder(key="a", kind="closure", label="关闭公园", state="lifted", carried_out_at=m(45),
                         lifted_at=m(200), area_codes=["140502001201"], **common),
            MeasureOrder(key="b", kind="evacuation", label="转移群众", state="ordered", **common),
            MeasureOrder(key="c", kind="stop_school", label="停学", state="waived", **common),
        ])
        rep = {"run_id": run.id, "level": "red", "drafted_at": m(1), "drill": drill, "created_at": m(1),
               "updated_at": m(1)}
        s.add_all([
            InfoReport(key="initial_phone", kind="initial_phone", due_at=m(30), state="sent", sent_at=m(25),
                       title="电话初报", **rep),
            InfoReport(key="final", kind="final", due_at=m(300), state="draft", title="终报", **rep),
            InfoReport(key="followup:x", kind="followup", due_at=m(120), state="cancelled", title="续报", **rep),
        ])
        return {"run": run.id, "thread": alert.id, "silent": silent.id, "chief": chief.id, "leader": leader.id,
                "late": late.id, "quick": quick.id}


def test_report_from_records(session_factory: sessionmaker[Session], tmp_path: Path, data_dir: Path) -> None:
    ids = populate(session_factory)
    with session_scope(session_factory) as s:
        report = build_report(s, now=m(360), tz=TZ, run_ids=[ids["run"]])
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    check = subprocess.run([sys.executable, str(data_dir / "tools" / "contracts.py"), "report", str(path)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout
    assert report["drill"] is True and report["event_log"]["ok"]
    assert report["generated_at"] == "2026-07-20T08:00:00+08:00"
    [w] = report["warnings"]
    assert w["id"] == ids["thread"] and len(w["versions"]) == 2 and w["received_at"] == "2026-07-20T02:00:00+08:00"
    assert report["runs"][0]["warning_id"] == ids["thread"]
    [c] = report["consultations"]
    assert c["judgements"][0]["department"] == "气象局" and c["missing"] == ["水利局"]
    rows = {r["id"]: r for r in report["callouts"]}
    assert rows[ids["late"]]["late"] is True and rows[ids["quick"]]["late"] is False
    assert rows[ids["silent"]]["escalated_to"] == [ids["chief"]]
    assert rows[ids["chief"]]["escalated_to"] == [ids["leader"]]
    assert rows[ids["leader"]]["escalated_from"] == ids["chief"]
    assert rows[ids["quick"]]["answer_channel"] == "keypress" and rows[ids["quick"]]["township"] == "140502001000"
    assert [e["to_role"] for e in report["escalations"]] == ["township_chief", "district_leader"]
    assert {mo["title"]: mo["overdue"] for mo in report["measures"]} == {"关闭公园": False, "转移群众": True,
                                                                         "停学": False}
    assert {r["kind"]: r["overdue"] for r in report["reports"]} == {"initial_phone": False, "followup": False,
                                                                    "final": True}
    # every KPI agrees with a recount from the callout rows
    k = report["kpis"]
    assert k == compute_kpis(report)
    answered = [r for r in report["callouts"] if r["answered_at"]]
    assert k["callouts"] == 5 and k["answered"] == len(answered) == 3
    assert k["answered_in_time"] == sum(1 for r in answered if not r["late"]) == 2
    assert sorted(answer_seconds(r) for r in answered) == [60.0, 120.0, 720.0]
    assert k["median_answer_s"] == 120.0 and k["escalations"] == 2 and k["unanswered_after_escalation"] == 2
    assert k["measures_overdue"] == 1 and k["reports_overdue"] == 1 and k["warning_to_first_call_s"] == 60.0
    # the log entries the report rests on are listed, in order
    seqs = [e["seq"] for e in report["events"]]
    assert seqs == sorted(seqs) and report["event_log"]["events_in_scope"] == len(seqs) > 5


def test_drill_and_real_kept_apart(session_factory: sessionmaker[Session]) -> None:
    drill_ids = populate(session_factory, drill=True)
    real_ids = populate(session_factory, drill=False)
    with session_scope(session_factory) as s:
        with pytest.raises(ReportScopeError):
            build_report(s, now=m(360), tz=TZ, run_ids=[drill_ids["run"], real_ids["run"]])
        real = build_report(s, now=m(360), tz=TZ)  # no scope: real runs only
        assert real["scope"]["run_ids"] == [real_ids["run"]] and real["drill"] is False
        assert "演练" not in real["title"]
        drills = build_report(s, now=m(360), tz=TZ, drill=True)
        assert drills["scope"]["run_ids"] == [drill_ids["run"]] and drills["drill"] is True
        assert {c["id"] for c in drills["callouts"]}.isdisjoint({c["id"] for c in real["callouts"]})
        by_thread = build_report(s, now=m(360), tz=TZ, thread_id=real_ids["thread"])
        assert by_thread["scope"]["run_ids"] == [real_ids["run"]]
        with pytest.raises(ReportScopeError):
            build_report(s, now=m(360), tz=TZ, run_ids=[999999])


def test_tampered_log_is_reported(session_factory: sessionmaker[Session]) -> None:
    ids = populate(session_factory)
    with session_scope(session_factory) as s:
        ev = s.query(Event).order_by(Event.seq).first()
        assert ev is not None
        ev.actor = "someone-else"
    with session_scope(session_factory) as s:
        report = build_report(s, now=m(360), tz=TZ, run_ids=[ids["run"]])
    assert report["event_log"]["ok"] is False and report["event_log"]["bad_seq"] == 1


def test_warning_threads_without_runs_are_reported_with_why(session_factory: sessionmaker[Session]) -> None:
    """A drill names the threads it fed: one that started no run is kept, with its consultation and a finding."""
    ids = populate(session_factory)  # a thread with a run: no finding for it
    with session_scope(session_factory) as s:
        quiet = add_warning(s, "Y-1", minutes=0, thread=None)
        quiet.level, quiet.headline = "yellow", "城区暴雨黄色预警"
        s.add(Consultation(thread_id=quiet.id, warning_id=quiet.id, hazard="weather", level="yellow",
                           state="dismissed", mode="before", invited=["meteorology"], missing=[], opened_at=m(0),
                           opened_by="rule:test", deadline=m(60), dismissed_at=m(30), dismiss_reason="雨势减弱",
                           drill=True, updated_at=m(30)))
        quiet_id = quiet.id
    with session_scope(session_factory) as s:
        with pytest.raises(ReportScopeError):  # asked for no thread, a report with no run is still refused
            build_report(s, now=m(360), tz=TZ, drill=True, run_ids=[])
        report = build_report(s, now=m(360), tz=TZ, drill=True, warning_threads=[quiet_id, ids["thread"]])
        real = build_report(s, now=m(360), tz=TZ, run_ids=[ids["run"]])
    assert [w["id"] for w in report["warnings"]] == sorted([ids["thread"], quiet_id])
    assert report["scope"]["thread_ids"] == sorted([ids["thread"], quiet_id])
    assert [r["id"] for r in report["runs"]] == [ids["run"]]
    assert {c["warning_id"]: c["state"] for c in report["consultations"]}[quiet_id] == "dismissed"
    [finding] = report["findings"]
    assert finding["code"] == "dismissed_by_leader" and finding["warning_id"] == quiet_id
    assert "城区暴雨黄色预警" in finding["message"] and "雨势减弱" in finding["message"]
    assert finding["details"]["level"] == "yellow" and finding["details"]["response_level"] == "III"
    assert real["findings"] == [] and list(real)[-1] == "findings"  # a real run's report: nothing to explain


def test_drill_that_fed_nothing_usable_still_gets_a_report(session_factory: sessionmaker[Session],
                                                          tmp_path: Path, data_dir: Path) -> None:
    with session_scope(session_factory) as s:
        report = build_report(s, now=m(60), tz=TZ, drill=True, warning_threads=[])
    assert report["warnings"] == report["runs"] == report["callouts"] == [] and report["findings"] == []
    assert report["kpis"]["callouts"] == 0 and report["kpis"]["answer_rate_in_time"] is None
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    check = subprocess.run([sys.executable, str(data_dir / "tools" / "contracts.py"), "report", str(path)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout
