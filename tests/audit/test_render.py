"""report.json keeps the fixed shape; report.xlsx matches it sheet by sheet; report.html is self-contained."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from responses.audit.render import write_report
from responses.audit.shape import KPI_KEYS, NESTED, TABLES


def check_contract(data_dir: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(data_dir / "tools" / "contracts.py"), "report", str(path)],
                          capture_output=True, text=True, check=False)


def test_json_holds_the_contract(sample_report: dict[str, Any], tmp_path: Path, data_dir: Path) -> None:
    paths = write_report(sample_report, tmp_path)
    result = check_contract(data_dir, paths["json"])
    assert result.returncode == 0, result.stdout
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc == sample_report
    for table in ("warnings", "callouts", "measures"):
        for row in doc[table]:
            for key, value in row.items():
                if key.endswith("_at") and value is not None:
                    assert value.endswith("+08:00"), (table, key, value)


def test_contract_check_catches_a_missing_field(sample_report: dict[str, Any], tmp_path: Path,
                                                 data_dir: Path) -> None:
    del sample_report["callouts"][0]["escalated_to"]
    paths = write_report(sample_report, tmp_path)
    result = check_contract(data_dir, paths["json"])
    assert result.returncode == 1 and "escalated_to" in result.stdout


def _expected_cell(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "time":
        return dt.datetime.fromisoformat(value).replace(tzinfo=None)
    if kind == "bool":
        return "是" if value else "否"
    if kind == "count":
        return len(value)
    if kind == "list":
        return "、".join(str(v) for v in value) if value else None  # an empty string cell reads back as None
    return value


def test_xlsx_sheets_match_json(sample_report: dict[str, Any], tmp_path: Path) -> None:
    paths = write_report(sample_report, tmp_path)
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    wb = load_workbook(paths["xlsx"])
    kpi_rows = list(wb["指标"].iter_rows(min_row=2, values_only=True))
    assert [r[1] for r in kpi_rows] == list(KPI_KEYS)
    assert {r[1]: r[2] for r in kpi_rows} == doc["kpis"]
    for key, (title, columns) in TABLES.items():
        sheet = wb[title]
        rows = list(sheet.iter_rows(values_only=True))
        assert list(rows[0]) == [c.zh for c in columns]
        assert len(rows) - 1 == len(doc[key]), title
        for got, want in zip(rows[1:], doc[key], strict=True):
            assert list(got) == [_expected_cell(want.get(c.key), c.kind) for c in columns], (title, want.get("id"))
    for _key, (parent, field, title, columns) in NESTED.items():
        rows = list(wb[title].iter_rows(min_row=2, values_only=True))
        want = [(p["id"], child) for p in doc[parent] for child in p[field]]
        assert [r[0] for r in rows] == [pid for pid, _ in want]
        for got, (_, child) in zip(rows, want, strict=True):
            assert list(got[1:]) == [_expected_cell(child.get(c.key), c.kind) for c in columns]


def test_html_is_self_contained_with_charts(sample_report: dict[str, Any], tmp_path: Path) -> None:
    html = write_report(sample_report, tmp_path)["html"].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page must load nothing remote"
    assert "<script" not in html
    assert html.count("<svg") >= 2
    assert "事件时间线" in html and "各乡镇（街道）应答用时分布" in html
    assert "钟家庄街道" in html  # township names, not codes, label the distribution
    assert "演练" in html


def test_same_report_gives_same_files(sample_report: dict[str, Any], tmp_path: Path) -> None:
    a = write_report(sample_report, tmp_path / "a")
    b = write_report(sample_report, tmp_path / "b")
    for kind in ("json", "html"):
        assert a[kind].read_bytes() == b[kind].read_bytes()


def test_report_without_runs_leads_with_its_finding(no_run_report: dict[str, Any], tmp_path: Path,
                                                     data_dir: Path) -> None:
    paths = write_report(no_run_report, tmp_path)
    result = check_contract(data_dir, paths["json"])
    assert result.returncode == 0, result.stdout
    [finding] = no_run_report["findings"]
    html = paths["html"].read_text(encoding="utf-8")
    # the finding comes first, in Chinese with its English, and says what the empty KPIs mean
    assert html.index('id="findings"') < html.index('id="kpis"') < html.index('id="charts"')
    assert finding["message"] in html and "预警接收时已过期" in html and "expired on arrival" in html
    assert html.index(finding["message"]) < html.index("The warning had already expired")
    assert "本报告没有启动的响应" in html
    # the charts are drawn from what there is: the warning on the timeline, no answers to distribute
    assert html.count("<svg") == 2 and "预警 #1" in html and "本报告没有叫应记录" in html
    wb = load_workbook(paths["xlsx"])
    assert wb.sheetnames[:2] == ["结论", "指标"] and wb.active.title == "结论"
    [row] = list(wb["结论"].iter_rows(min_row=2, values_only=True))
    assert row[:3] == ("预警接收时已过期 / expired on arrival", "expired_on_arrival", 1)
    assert row[3] == finding["message"] and row[4] == finding["message_en"]
    kpis = {r[1]: r[2] for r in wb["指标"].iter_rows(min_row=2, values_only=True)}
    assert kpis == no_run_report["kpis"] and kpis["callouts"] == 0 and kpis["median_answer_s"] is None
    for title, _columns in TABLES.values():
        assert wb[title].max_row == (2 if title == "预警" else 1), title


def test_report_with_nothing_at_all_renders(no_run_report: dict[str, Any], tmp_path: Path, data_dir: Path) -> None:
    """An input that produced no warning: every table empty, and neither chart has anything to draw."""
    report = {**no_run_report, "warnings": [], "scope": {"run_ids": [], "thread_ids": []}}
    report["findings"] = [{"code": "input_without_warning", "warning_id": None, "message": "输入 bad.xml 未产生预警",
                           "message_en": "The input bad.xml produced no warning", "details": {}}]
    paths = write_report(report, tmp_path)
    assert check_contract(data_dir, paths["json"]).returncode == 0
    html = paths["html"].read_text(encoding="utf-8")
    assert "本报告没有可绘制的时间记录" in html and "本报告没有叫应记录" in html
    assert "输入 bad.xml 未产生预警" in html and "预警 / warning #" not in html
    assert load_workbook(paths["xlsx"])["结论"].max_row == 2


def test_report_with_runs_has_no_findings_sheet(sample_report: dict[str, Any], tmp_path: Path) -> None:
    html = write_report({**sample_report, "findings": []}, tmp_path)["html"].read_text(encoding="utf-8")
    assert 'id="findings"' not in html and "本报告没有启动的响应" not in html
    assert load_workbook(tmp_path / "report.xlsx").sheetnames[0] == "指标"
