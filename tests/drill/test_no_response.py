"""A drill whose warning starts no response ends in a report that says why, and the command exits 0.

Three real causes, each a small scenario in ``data/``: the warning had expired before it was
injected; its area lies outside the region (a neighbouring county's warning); and a yellow warning,
for which the weather plan says "consult first": no decision is taken, so nothing starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape
from openpyxl import load_workbook
from typer.testing import CliRunner

from jiaoying.cli import app
from responses.audit.kpis import compute_kpis

DATA = Path(__file__).resolve().parent / "data"


def contract(data_dir: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(data_dir / "tools" / "contracts.py"), "report", str(path)],
                          capture_output=True, text=True, check=False)


def drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str) -> tuple[Any, dict[str, Any], Path]:
    monkeypatch.setenv("JIAOYING_ENV", "test")
    out_dir = tmp_path / "out"
    result = CliRunner().invoke(app, ["drill", "run", str(DATA / scenario), "--out", str(out_dir)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for name in ("report.json", "report.html", "report.xlsx"):
        assert (out_dir / name).is_file(), name
    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    return result, report, out_dir


def check_nothing_ran(report: dict[str, Any], out_dir: Path, data_dir: Path) -> dict[str, Any]:
    """The shared part: the fixed shape holds, nothing ran, the KPIs are the documented 0 / null."""
    checked = contract(data_dir, out_dir / "report.json")
    assert checked.returncode == 0, checked.stdout
    assert report["drill"] is True
    for table in ("runs", "callouts", "escalations", "measures", "reports"):
        assert report[table] == [], table
    assert report["kpis"] == compute_kpis(report)
    k = report["kpis"]
    assert k["callouts"] == k["answered"] == k["escalations"] == k["measures_overdue"] == 0
    assert k["warning_to_first_call_s"] is None and k["answer_rate_in_time"] is None
    assert k["median_answer_s"] is None and k["p90_answer_s"] is None
    [warning] = report["warnings"]
    assert warning["status"] == "exercise"
    [finding] = report["findings"]
    assert finding["warning_id"] == warning["id"]
    assert finding["message"] and finding["message_en"]
    # the page and the workbook lead with it, in Chinese with the English after
    html = (out_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="findings"' in html
    assert str(escape(finding["message"])) in html and str(escape(finding["message_en"])) in html
    assert html.index('id="findings"') < html.index('id="kpis"')
    wb = load_workbook(out_dir / "report.xlsx")
    assert wb.sheetnames[0] == "结论"
    rows = list(wb["结论"].iter_rows(min_row=2, values_only=True))
    assert rows[0][1] == finding["code"] and rows[0][3] == finding["message"] and rows[0][4] == finding["message_en"]
    return finding


def test_warning_expired_before_injection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    result, report, out_dir = drill(tmp_path, monkeypatch, "expired-on-arrival.yaml")
    # the command says so, Chinese first: expired at 02:20, injected at 02:30
    err = result.stderr
    assert "已过期" in err and "already expired" in err
    assert err.index("已过期") < err.index("already expired")
    assert "02:20" in err and "02:30" in err and "expired-on-arrival.xml" in err
    finding = check_nothing_ran(report, out_dir, data_dir)
    assert finding["code"] == "expired_on_arrival"
    assert "接收时已过期" in finding["message"] and "expired on arrival" in finding["message_en"]
    assert finding["details"]["expires"] == "2026-07-20T02:20:00+08:00"
    assert finding["details"]["received_at"] == "2026-07-20T02:30:00+08:00"
    assert report["warnings"][0]["state"] == "expired"
    assert report["consultations"] == []


def test_warning_outside_the_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    result, report, out_dir = drill(tmp_path, monkeypatch, "outside-region.yaml")
    assert "已过期" not in result.stderr
    finding = check_nothing_ran(report, out_dir, data_dir)
    assert finding["code"] == "outside_region"
    assert "不涉及本辖区" in finding["message"] and "no area" in finding["message_en"]
    assert finding["details"]["area_description"] == "阳城县中部"
    # a red warning, yet nobody here is called and no consultation opens; the event log says why
    assert report["warnings"][0]["level"] == "red"
    assert report["consultations"] == []
    assert "run.not_started" in {e["action"] for e in report["events"]}


def test_yellow_warning_waits_for_a_decision_nobody_takes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          data_dir: Path) -> None:
    _result, report, out_dir = drill(tmp_path, monkeypatch, "yellow-no-decision.yaml")
    finding = check_nothing_ran(report, out_dir, data_dir)
    assert finding["code"] == "consultation_first_no_decision"
    d = finding["details"]
    assert (d["level"], d["response_level"], d["consultation_mode"]) == ("yellow", "III", "before")
    assert d["plan"] == "城区气象灾害应急预案（默认）"
    assert "黄色预警（III 级响应）" in finding["message"] and "先会商后响应" in finding["message"]
    assert "未作决策" in finding["message"] and "no decision" in finding["message_en"]
    # the consultation it had is in the report, with the judgements that came
    [c] = report["consultations"]
    assert c["state"] == "deadline_passed" and c["decided_at"] is None
    assert [j["department"] for j in c["judgements"]] == ["气象局", "水利局"]
    assert d["consultation_id"] == c["id"]


def test_invalid_scenario_still_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIAOYING_ENV", "test")
    bad = tmp_path / "bad.yaml"
    bad.write_text((DATA / "outside-region.yaml").read_text(encoding="utf-8").replace("behaviour:", "behavior:"),
                   encoding="utf-8")
    (tmp_path / "outside-region.xml").write_bytes((DATA / "outside-region.xml").read_bytes())
    (tmp_path / "contacts.csv").write_bytes((DATA / "contacts.csv").read_bytes())
    result = CliRunner().invoke(app, ["drill", "run", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "behavior" in result.stderr and "未知字段" in result.stderr
    assert not (tmp_path / "out" / "report.json").exists()
