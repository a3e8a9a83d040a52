"""``jiaoying report RUN_ID`` for a real run: the same three files as before; an unknown run still fails."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from config.database import make_session_factory, session_scope
from config.eventlog import record
from jiaoying.cli import app
from responses.runs.models import ResponseRun
from warning.models import Warning

T0 = dt.datetime(2026, 7, 20, 2, 0, tzinfo=dt.UTC)


def test_report_of_a_real_run(sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope(make_session_factory(sqlite_engine)) as s:
        w = Warning(sender="cq@cma.gov.cn", identifier="CLI-1", msg_type="alert", status="actual", drill=False,
                    hazard="weather", event="暴雨", level="red", sent=T0, received_at=T0, updated_at=T0, version=1,
                    state="active")
        s.add(w)
        s.flush()
        w.thread_id = w.id
        record(s, now=T0, action="warning.received", entity_type="warning", entity_id=w.id, actor="feed:test")
        run = ResponseRun(number="2026-0042", thread_id=w.id, open_thread_id=w.id, warning_id=w.id, hazard="weather",
                          level="red", response_level="I", trigger="automatic", plan_version="t", plan_snapshot={},
                          entry_snapshot={}, state="active", drill=False, started_at=T0, started_by="rule:test",
                          updated_at=T0)
        s.add(run)
        s.flush()
        run_id = run.id
    monkeypatch.setenv("JIAOYING_ENV", "test")
    monkeypatch.setenv("JIAOYING_DATABASE__URL", str(sqlite_engine.url))
    out_dir = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(run_id), "--out", str(out_dir)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in doc["runs"]] == [run_id] and doc["drill"] is False and doc["findings"] == []
    assert (out_dir / "report.html").is_file() and (out_dir / "report.xlsx").is_file()
    missing = runner.invoke(app, ["report", "424242", "--out", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "找不到响应" in missing.stderr and "Traceback" not in missing.output
    assert not (tmp_path / "none").exists()
