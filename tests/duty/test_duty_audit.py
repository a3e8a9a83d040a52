"""The audit report's "shifts" section: the shifts a run crossed, each with its people, its handover (signed
and acknowledged by whom and when, late or not) and its log, written and system — in report.json (whose fixed
keys still pass the contract check), in the HTML page and in the workbook."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from config.clock import VirtualClock
from config.database import session_scope
from config.runtime import Runtime
from responses.audit.builder import build_report
from responses.audit.render import write_report
from responses.duty import handovers, jobs
from responses.duty import service as duty
from responses.runs import service as run_service
from responses.runs.core import Trigger
from tests.duty.helpers import TZ, add_roster, local
from warning.models import Warning


def _run_across_the_change_of_shift(rt: Runtime, region: ModuleType) -> tuple[int, int, int]:
    """A run from 06:00 (night shift) into the day shift; the handover signed at 07:55 and acknowledged late,
    at 08:40. Returns (run id, night shift id, day shift id)."""
    assert isinstance(rt.clock, VirtualClock)
    rt.clock.set(local(20, 6))
    with session_scope(rt.session_factory) as s:
        night, day = add_roster(s, rt.now())
        r = region.make_region(s, rt.now())
        w = s.get(Warning, r.warning_id)
        assert w is not None
        run, _ = run_service.start_run(s, warning=w, level="orange", areas=w.affected, trigger=Trigger.DECISION,
                                       actor="user:leader", now=rt.now(), measures=[region.EVACUATION])
        assert run is not None
        run_id = run.id
        duty.write_entry(s, kind="call", text="东风水库下游 130 人需转移", from_unit="北街街道", from_name="王镇长",
                         actor="user:li", author_name="李值班", now=local(20, 6, 15), for_handover=True)
    rt.clock.set(local(20, 7, 30))
    jobs.handover_sweep(rt)
    with session_scope(rt.session_factory) as s:
        h = handovers.for_shift(s, night)
        assert h is not None
        handovers.sign(s, h, actor="user:li", name="李值班", now=local(20, 7, 55))
    with session_scope(rt.session_factory) as s:
        duty.write_entry(s, kind="action", text="通知北街街道组织转移", actor="user:qian", author_name="钱值班",
                         now=local(20, 8, 20), run_id=run_id)
    rt.clock.set(local(20, 8, 40))
    jobs.handover_sweep(rt)  # 30 minutes in: flagged
    with session_scope(rt.session_factory) as s:
        h = handovers.for_shift(s, night)
        assert h is not None
        handovers.acknowledge(s, h, actor="user:qian", name="钱值班", now=local(20, 8, 40), note="已阅")
    rt.clock.set(local(20, 9))
    return run_id, night, day


def test_the_report_shows_the_shifts_the_run_crossed(runtime: Runtime, region: ModuleType, tmp_path: Path,
                                                     data_dir: Path) -> None:
    run_id, night, day = _run_across_the_change_of_shift(runtime, region)
    with session_scope(runtime.session_factory) as s:
        report = build_report(s, now=runtime.now(), tz=TZ, run_ids=[run_id])
    shifts = report["shifts"]
    assert [sh["id"] for sh in shifts] == [night, day]
    n, d = shifts
    assert (n["label"], n["starts_at"], n["ends_at"], n["leader"], n["officers"]) == (
        "夜班", "2026-07-19T20:00:00+08:00", "2026-07-20T08:00:00+08:00", "张带班", ["李值班"])
    h = n["handover"]
    assert (h["state"], h["signed_by"], h["signed_at"], h["acknowledged_by"], h["acknowledged_at"]) == (
        "acknowledged", "李值班", "2026-07-20T07:55:00+08:00", "钱值班", "2026-07-20T08:40:00+08:00")
    assert (h["ack_due_at"], h["late"], h["sign_late"], h["flagged_at"]) == (
        "2026-07-20T08:30:00+08:00", True, False, "2026-07-20T08:40:00+08:00")
    assert "东风水库下游 130 人需转移" in h["text"] and "响应 2026-0001" in h["text"]
    assert d["handover"] is None  # the day shift has not ended
    night_log = [(e["kind"], e["system"], e["source"]) for e in n["log"]]
    assert night_log == [("run_started", True, "系统"), ("call", False, "李值班"), ("handover", True, "系统")]
    assert [(e["kind_zh"], e["text"]) for e in d["log"]] == [
        ("处置", "通知北街街道组织转移"), ("交接班", "接班确认：钱值班，超过接班确认时限")]
    assert all(e["at"].endswith("+08:00") for sh in shifts for e in sh["log"])
    # the handover and the written entries are in the events the report rests on
    scoped = {(e["entity_type"], e["action"]) for e in report["events"]}
    assert {("handover", "handover.drafted"), ("handover", "handover.signed"), ("handover", "handover.acknowledged"),
            ("duty_log_entry", "duty_log.written")} <= scoped

    paths = write_report(report, tmp_path)
    check = subprocess.run([sys.executable, str(data_dir / "tools" / "contracts.py"), "report", str(paths["json"])],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["shifts"] == shifts
    html = paths["html"].read_text(encoding="utf-8")
    assert 'id="shifts"' in html and "值班与交接班（2）" in html
    assert "夜班（2026-07-19 20:00:00 至 2026-07-20 08:00:00）" in html and "接班确认超时" in html
    assert "交班签字：李值班（2026-07-20 07:55:00）" in html and "本班次没有交接班记录" in html
    assert "东风水库下游 130 人需转移" in html and "<th>来源/记录人</th>" in html
    wb = load_workbook(paths["xlsx"])
    rows = list(wb["值班交接"].iter_rows(values_only=True))
    assert rows[0][:4] == ("班次编号", "班次", "开始时间", "结束时间")
    assert [r[0] for r in rows[1:]] == [night, day]
    head = list(rows[0])
    assert rows[1][head.index("交接状态")] == "已确认" and rows[1][head.index("确认超时")] == "是"
    assert rows[2][head.index("交接状态")] == "未起草" and rows[2][head.index("确认超时")] is None
    log = list(wb["值班日志"].iter_rows(values_only=True))
    assert log[0] == ("班次编号", "时间", "类型", "内容", "来源/记录人", "交接")
    assert [(r[0], r[2]) for r in log[1:]] == [(night, "启动响应"), (night, "来电"), (night, "交接班"),
                                               (day, "处置"), (day, "交接班")]
    assert log[2][5] == "是" and log[4][5] == "否"


def test_the_api_report_has_the_shifts_too(client: TestClient, sqlite_runtime: Runtime, region: ModuleType,
                                           login: Callable[..., dict[str, str]]) -> None:
    run_id, night, _day = _run_across_the_change_of_shift(sqlite_runtime, region)
    viewer = login("viewer")
    doc = client.get(f"/audit/runs/{run_id}/report", headers=viewer).json()
    assert doc["shifts"][0]["id"] == night and doc["shifts"][0]["handover"]["late"] is True
    wb = load_workbook(io.BytesIO(client.get(f"/audit/runs/{run_id}/report.xlsx", headers=viewer).content))
    assert {"值班交接", "值班日志"} <= set(wb.sheetnames)
