"""Uploaded workbooks: a hostile or broken one is refused with a clear message, nothing is read from disk."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from config.tabular import TableFileError, read_xlsx
from responses.contacts.roster import RosterFileError
from responses.contacts.roster import read_xlsx as roster_xlsx
from responses.contacts.service import ContactFileError, read_table


def _workbook() -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "手机", "职务", "村/社区代码"])
    ws.append(["演示村长", "+8612300000001", "村长", "140502001001"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _with_sheet_prefix(data: bytes, doctype: str) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = body.decode()
                head, rest = text.split("?>", 1) if text.startswith("<?xml") else ("", text)
                text = (head + "?>" if head else "") + doctype + rest.replace("演示村长", "&x;")
                body = text.encode()
            z.writestr(item, body)
    return out.getvalue()


def test_a_plain_workbook_reads() -> None:
    rows = read_xlsx(_workbook())
    assert rows[0][:2] == ["姓名", "手机"] and rows[1][0] == "演示村长"


@pytest.mark.parametrize("kind", ["xxe", "billion_laughs"])
def test_hostile_workbooks_are_refused_everywhere(tmp_path: Path, kind: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    if kind == "xxe":
        doctype = f'<!DOCTYPE w [<!ENTITY x SYSTEM "file://{secret}">]>'
    else:
        doctype = ('<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                   '<!ENTITY x "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>')
    data = _with_sheet_prefix(_workbook(), doctype)
    with pytest.raises(TableFileError) as err:
        read_xlsx(data)
    assert "Excel" in err.value.zh and "TOP-SECRET" not in str(err.value)
    with pytest.raises(ContactFileError):
        read_table(data, "contacts.xlsx")
    with pytest.raises(RosterFileError):
        roster_xlsx(data)


def test_a_broken_workbook_is_refused() -> None:
    with pytest.raises(TableFileError):
        read_xlsx(b"PK\x03\x04 not really a zip")
