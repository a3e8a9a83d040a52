"""Writes a report dict as ``report.json``, ``report.html`` (Chinese, self-contained) and ``report.xlsx``.

All three come from the same dict, so they cannot disagree. The HTML page loads nothing from a
network: styles are inline and the charts are inline SVG whose text the browser renders. Findings
(why a warning started no response) lead both the page and the workbook: a report with empty
tables must say first why they are empty.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from responses.audit.charts import answer_distribution_svg, timeline_svg
from responses.audit.findings import CODES
from responses.audit.kpis import township_answer_stats
from responses.audit.shape import (
    KPI_KEYS,
    KPI_ZH,
    NESTED,
    SHIFT_LOG,
    SHIFTS,
    TABLES,
    VALUE_ZH,
    Column,
    parse_iso,
    shift_log_rows,
    shift_rows,
)

_env = Environment(loader=PackageLoader("responses.audit", "templates"), autoescape=select_autoescape(["html", "j2"]),
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def to_json(report: Mapping[str, Any]) -> str:
    """The canonical text of ``report.json``: stable key order from the builder, UTF-8, no ASCII escapes."""
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


def display(value: Any, column: Column) -> str:
    """How a cell reads for a person (the JSON keeps the raw value)."""
    if value is None:
        return "—"
    if column.kind == "time":
        when = parse_iso(value)
        return when.strftime("%Y-%m-%d %H:%M:%S") if when else "—"
    if column.kind == "bool":
        return "是" if value else "否"
    if column.kind == "count":
        return str(len(value)) if isinstance(value, list) else str(value)
    if column.kind == "list":
        return "、".join(str(v) for v in value) if value else "—"
    if column.kind == "float" and isinstance(value, float):
        return f"{value:g}"
    names = VALUE_ZH.get(column.key)
    if names and isinstance(value, str):
        return names.get(value, value)
    return str(value)


def kpi_display(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key == "answer_rate_in_time":
        return f"{value * 100:.1f}%"
    if key.endswith("_s"):
        seconds = float(value)
        return f"{seconds:g} 秒（{seconds / 60:.1f} 分钟）" if seconds >= 60 else f"{seconds:g} 秒"
    return str(value)


def render_html(report: Mapping[str, Any]) -> str:
    tables = []
    for key, (title, columns) in TABLES.items():
        rows = report.get(key) or []
        tables.append({
            "key": key, "title": title, "columns": columns,
            "rows": [[(display(r.get(c.key), c), r.get(c.key) if c.kind == "time" else None) for c in columns]
                     for r in rows],
        })
    nested = []
    for key, (parent, field, title, columns) in NESTED.items():
        rows = [(p.get("id"), child) for p in report.get(parent) or [] for child in p.get(field) or []]
        nested.append({"key": key, "title": title, "columns": columns,
                       "rows": [[str(pid)] + [display(r.get(c.key), c) for c in columns] for pid, r in rows]})
    log_columns = SHIFT_LOG[1][1:]  # the shift is the block's heading
    shifts = [{
        "id": sh.get("id"), "title": _shift_title(sh), "leader": sh.get("leader"),
        "officers": "、".join(sh.get("officers") or []) or "—", "handover": sh.get("handover"),
        "handover_times": {k: display((sh.get("handover") or {}).get(k), Column(k, k, "time"))
                           for k in ("drafted_at", "signed_at", "ack_due_at", "acknowledged_at")},
        "log_columns": log_columns,
        "log": [([display(e.get(c.key), c) for c in log_columns], e) for e in sh.get("log") or []],
    } for sh in report.get("shifts") or []]
    template = _env.get_template("report.html.j2")
    return template.render(
        report=report,
        kpis=[(k, KPI_ZH[k], kpi_display(k, (report.get("kpis") or {}).get(k))) for k in KPI_KEYS],
        timeline=Markup(timeline_svg(report)),  # noqa: S704 - generated here, every text escaped
        answers=Markup(answer_distribution_svg(report)),  # noqa: S704
        townships=township_answer_stats(report),
        tables=tables,
        nested=nested,
        level_zh=VALUE_ZH["level"],
        findings=[{**f, "title": CODES.get(f.get("code", ""), (f.get("code"), f.get("code")))}
                  for f in report.get("findings") or []],
        shifts=shifts,
        has_shifts="shifts" in report,
    )


def _shift_title(sh: Mapping[str, Any]) -> str:
    when = Column("t", "t", "time")
    span = f"{display(sh.get('starts_at'), when)} 至 {display(sh.get('ends_at'), when)}"
    return f"{sh.get('label')}（{span}）" if sh.get("label") else span


def _xlsx_text(value: Any) -> Any:
    """Control characters (typed into a name, pasted from a message) cannot be stored in a worksheet."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # openpyxl is loaded only when a workbook is written

    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value


def _cell(value: Any, column: Column) -> Any:
    """A workbook cell: times as local date-times (Excel cannot hold an offset), lists joined, flags 是/否."""
    return _xlsx_text(_cell_value(value, column))


def _cell_value(value: Any, column: Column) -> Any:
    if value is None:
        return None
    if column.kind == "time":
        when = parse_iso(value)
        return when.replace(tzinfo=None) if when else None
    if column.kind == "bool":
        return "是" if value else "否"
    if column.kind == "count":
        return len(value) if isinstance(value, list) else value
    if column.kind == "list":
        return "、".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_xlsx(report: Mapping[str, Any], path: Path | IO[bytes]) -> None:
    """The workbook, to a file path or a binary stream (the API answers with it without touching disk)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    findings = report.get("findings") or []
    if findings:  # first, and the sheet that opens: it says why the tables after it are empty
        sheet = wb.active
        sheet.title = "结论"
        sheet.append(["结论 / Findings", "代码 / code", "预警编号 / warning", "说明", "Explanation"])
        for f in findings:
            zh, en = CODES.get(f.get("code", ""), (f.get("code"), f.get("code")))
            sheet.append([f"{zh} / {en}", f.get("code"), f.get("warning_id"), f.get("message"), f.get("message_en")])
        for letter, width in (("A", 30), ("B", 30), ("C", 12), ("D", 80), ("E", 80)):
            sheet.column_dimensions[letter].width = width
        for row in sheet.iter_rows(min_row=2):
            for cell in row:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
        ws = wb.create_sheet("指标")
    else:
        ws = wb.active
        ws.title = "指标"
    ws.append(["指标", "键", "数值"])
    for key in KPI_KEYS:
        ws.append([KPI_ZH[key], key, (report.get("kpis") or {}).get(key)])
    info = wb.create_sheet("说明")
    info.append(["项目", "内容"])
    event_log = report.get("event_log") or {}
    for label, value in (
        ("标题", report.get("title")),
        ("演练", "是" if report.get("drill") else "否"),
        ("时区", report.get("timezone")),
        ("统计截止", report.get("as_of")),
        ("生成时间", report.get("generated_at")),
        ("事件日志校验", "完整" if event_log.get("ok") else f"异常：{event_log.get('reason')}"),
        ("事件日志条数", event_log.get("checked")),
        ("格式", report.get("schema")),
    ):
        info.append([label, _xlsx_text(value)])
    sheets: list[tuple[str, tuple[Column, ...], list[list[Any]]]] = []
    for key, (title, columns) in TABLES.items():
        sheets.append((title, columns, [[_cell(r.get(c.key), c) for c in columns] for r in report.get(key) or []]))
    for _key, (parent, field, title, columns) in NESTED.items():
        parent_col = Column("parent_id", "所属编号", "int")
        rows = [[p.get("id")] + [_cell(child.get(c.key), c) for c in columns]
                for p in report.get(parent) or [] for child in p.get(field) or []]
        sheets.append((title, (parent_col, *columns), rows))
    if "shifts" in report:
        for (title, columns), rows in ((SHIFTS, shift_rows(report)), (SHIFT_LOG, shift_log_rows(report))):
            sheets.append((title, columns, [[_cell(r.get(c.key), c) for c in columns] for r in rows]))
    for title, columns, rows in sheets:
        sheet = wb.create_sheet(title)
        sheet.append([c.zh for c in columns])
        for row in rows:
            sheet.append(row)
        for i, c in enumerate(columns, start=1):
            letter = get_column_letter(i)
            sheet.column_dimensions[letter].width = 20 if c.kind == "time" else max(10, min(40, 2 * len(c.zh) + 4))
            if c.kind == "time":
                for cell in sheet[letter][1:]:
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
        sheet.freeze_panes = "A2"
    for sheet in wb.worksheets:
        for cell in sheet[1]:
            cell.font = Font(bold=True)
    # A fixed creation time keeps the workbook reproducible for the same report.
    created = parse_iso(report.get("generated_at")) if report.get("generated_at") else None
    wb.properties.created = (created or dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    wb.properties.modified = wb.properties.created
    wb.properties.creator = "Jiaoying"
    wb.save(path)  # openpyxl writes through zipfile, which takes a stream as well as a path


def xlsx_bytes(report: Mapping[str, Any]) -> bytes:
    buf = io.BytesIO()
    write_xlsx(report, buf)
    return buf.getvalue()


def write_report(report: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write the three files into ``out_dir`` (created if needed); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "html": out_dir / "report.html", "xlsx": out_dir / "report.xlsx"}
    paths["json"].write_text(to_json(report), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    write_xlsx(report, paths["xlsx"])
    return paths
