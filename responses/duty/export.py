"""A duty log as a printable page and as a workbook, from the same view the API answers with.

Headers are the duty room's (时间、类型、内容、来源/记录人、交接): the printout is what gets filed and signed.
The page is self-contained (inline styles, no script) so it prints the same with no network.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

HEADERS = ("时间", "类型", "内容", "来源/记录人", "交接")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_env = Environment(loader=PackageLoader("responses.duty", "templates"), autoescape=select_autoescape(["html", "j2"]),
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _row(e: Mapping[str, Any]) -> list[str]:
    return [e["at_local"], e["kind_zh"], e["text"], e["source"], "是" if e["for_handover"] else ""]


def render_html(view: Mapping[str, Any]) -> str:
    return _env.get_template("log.html.j2").render(view=view, headers=HEADERS,
                                                   rows=[(_row(e), e) for e in view["entries"]])


def _text(value: Any) -> Any:
    """Control characters (pasted into a note) cannot be stored in a worksheet."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value


def xlsx_bytes(view: Mapping[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    ws.title = "值班日志"
    ws.append([_text(view["title"])])
    shift = view.get("shift")
    if shift:
        people = "；".join(p for p in (f"带班领导：{shift['leader']}" if shift.get("leader") else "",
                                      f"值班员：{'、'.join(shift['officers'])}" if shift.get("officers") else "") if p)
        ws.append([_text(people or "值班表未列人员")])
    ws.append([f"导出时间：{view['generated_local']}"])
    ws.append(list(HEADERS))
    header_row = ws.max_row
    for e in view["entries"]:
        ws.append([_text(v) for v in _row(e)])
    for cell in ws[header_row]:
        cell.font = Font(bold=True)
    ws["A1"].font = Font(bold=True, size=14)
    for letter, width in (("A", 18), ("B", 14), ("C", 80), ("D", 16), ("E", 6)):
        ws.column_dimensions[letter].width = width
    for row in ws.iter_rows(min_row=header_row + 1):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    generated = view["generated_at"]
    wb.properties.created = wb.properties.modified = generated.replace(tzinfo=None)  # reproducible for one view
    wb.properties.creator = "Jiaoying"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
