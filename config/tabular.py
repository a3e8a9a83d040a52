"""Reading the spreadsheets people upload (contact lists, duty rosters).

One reader for every import, so one place decides what a hostile or broken workbook does: openpyxl
parses through defusedxml (a project dependency), which refuses entity declarations (XXE, billion
laughs); every failure, at load or while the rows are read, becomes one ``TableFileError`` with a
message in Chinese and English.
"""

from __future__ import annotations

import io
from typing import Any


class TableFileError(ValueError):
    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


def read_xlsx(data: bytes) -> list[list[Any]]:
    """The first sheet's rows, as lists of cell values."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
        finally:
            wb.close()
    except Exception as exc:  # openpyxl and defusedxml raise many kinds; all mean "cannot read this file"
        raise TableFileError(f"无法读取 Excel 文件（{type(exc).__name__}），请另存为标准 .xlsx 后重试",
                             f"cannot read the workbook ({type(exc).__name__}); save it again as a plain .xlsx") \
            from None


def read_csv(data: bytes) -> list[list[str]]:
    """Rows of a CSV in UTF-8 (with or without BOM) or GB18030 (which covers GBK, what Excel saves in China)."""
    import csv

    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise TableFileError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV",
                             "unknown text encoding (use UTF-8 or GBK)")
    return [list(r) for r in csv.reader(io.StringIO(text))]
