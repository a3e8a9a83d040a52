"""The duty roster (值班表), pure part: reading rows from CSV/XLSX into shifts, and checks on them.

A row is one shift: start, end, the leader on duty (带班领导) and the duty officers (值班员). Headers
may be Chinese or English. A bad row is reported with its row number and field and the rest are
still read, so one typo never loses a month's roster.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from config.tabular import TableFileError
from config.tabular import read_csv as read_table_csv
from config.tabular import read_xlsx as read_table_xlsx

HEADERS = {
    "start": ("start", "开始", "开始时间", "starts_at"),
    "end": ("end", "结束", "结束时间", "ends_at"),
    "label": ("label", "班次", "shift"),
    "leader": ("leader", "带班领导"),
    "leader_phone": ("leader_phone", "领导电话", "带班领导电话"),
    "officers": ("officers", "值班员"),
    "officer_phones": ("officer_phones", "值班员电话"),
    "note": ("note", "备注"),
}
_SPLIT = re.compile(r"[、,，;；/]\s*")
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,19}$")
_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class Person:
    name: str
    phone: str | None = None


@dataclass
class ShiftSpec:
    starts_at: dt.datetime
    ends_at: dt.datetime
    leader: Person | None
    officers: list[Person] = field(default_factory=list)
    label: str = ""
    note: str = ""
    row: int | None = None


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str
    message_en: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message, "message_en": self.message_en}


class RosterFileError(Exception):
    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


def _canon(header: str) -> str | None:
    h = header.strip().lower()
    for key, names in HEADERS.items():
        if h in names:
            return key
    return None


def parse_time(value: Any, tz: dt.tzinfo) -> dt.datetime:
    """Local wall time (the display zone) unless the value carries its own offset."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    text = str(value or "").strip()
    if not text:
        raise ValueError("empty")
    try:
        parsed = dt.datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    except ValueError:
        pass
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    raise ValueError(text)


def _split(value: Any) -> list[str]:
    text = str(value or "").strip()
    return [p.strip() for p in _SPLIT.split(text) if p.strip()] if text else []


def _phone_ok(p: str | None) -> bool:
    return p is None or bool(_PHONE.match(p))


def parse_rows(rows: Iterable[Sequence[Any]], tz: dt.tzinfo) -> tuple[list[ShiftSpec], list[RowError]]:
    """The first row is the header; data rows are numbered as a spreadsheet shows them (header = 1)."""
    it = iter(rows)
    try:
        header = next(it)
    except StopIteration:
        raise RosterFileError("值班表为空", "the roster file is empty") from None
    keys = [_canon(str(h or "")) for h in header]
    missing = [k for k in ("start", "end") if k not in keys]
    if missing:
        raise RosterFileError(f"表头缺少列：{'、'.join(HEADERS[k][1] for k in missing)}",
                              f"missing header column(s): {', '.join(missing)}")
    shifts: list[ShiftSpec] = []
    errors: list[RowError] = []
    for n, raw in enumerate(it, start=2):
        if not any(str(c or "").strip() for c in raw):
            continue
        rec = {k: raw[i] if i < len(raw) else None for i, k in enumerate(keys) if k}
        row_errors: list[RowError] = []
        times: dict[str, dt.datetime] = {}
        for k, zh in (("start", "开始时间"), ("end", "结束时间")):
            try:
                times[k] = parse_time(rec.get(k), tz)
            except ValueError:
                row_errors.append(RowError(n, k, f"{zh}无法识别：{rec.get(k)!r}（格式如 2026-07-20 08:00）",
                                           f"unreadable {k} time {rec.get(k)!r} (e.g. 2026-07-20 08:00)"))
        if len(times) == 2 and times["end"] <= times["start"]:
            row_errors.append(RowError(n, "end", "结束时间必须晚于开始时间", "the end must be after the start"))
        leader_name = str(rec.get("leader") or "").strip()
        leader_phone = str(rec.get("leader_phone") or "").strip() or None
        if not _phone_ok(leader_phone):
            row_errors.append(RowError(n, "leader_phone", f"领导电话格式有误：{leader_phone}",
                                       f"bad leader phone {leader_phone!r}"))
        names, phones = _split(rec.get("officers")), _split(rec.get("officer_phones"))
        if phones and len(phones) != len(names):
            row_errors.append(RowError(n, "officer_phones", "值班员与电话数量不一致",
                                       "officer names and phones differ in number"))
        bad_phones = [p for p in phones if not _phone_ok(p)]
        if bad_phones:
            row_errors.append(RowError(n, "officer_phones", f"值班员电话格式有误：{bad_phones}",
                                       f"bad officer phone(s) {bad_phones}"))
        if row_errors:
            errors.extend(row_errors)
            continue
        officers = [Person(nm, phones[i] if i < len(phones) else None) for i, nm in enumerate(names)]
        shifts.append(ShiftSpec(
            starts_at=times["start"], ends_at=times["end"],
            leader=Person(leader_name, leader_phone) if leader_name else None, officers=officers,
            label=str(rec.get("label") or "").strip(), note=str(rec.get("note") or "").strip(), row=n,
        ))
    return shifts, errors


def read_csv(data: bytes) -> list[list[str]]:
    try:
        return read_table_csv(data)
    except TableFileError as exc:
        raise RosterFileError(exc.zh, exc.en) from None


def read_xlsx(data: bytes) -> list[list[Any]]:
    try:
        return read_table_xlsx(data)
    except TableFileError as exc:
        raise RosterFileError(exc.zh, exc.en) from None


def overlapping(shifts: Sequence[ShiftSpec]) -> list[tuple[ShiftSpec, ShiftSpec]]:
    ordered = sorted(shifts, key=lambda s: s.starts_at)
    return [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b.starts_at < a.ends_at]


@dataclass(frozen=True)
class Window:
    starts_at: dt.datetime
    ends_at: dt.datetime


def gaps(windows: Iterable[Window], start: dt.datetime, end: dt.datetime) -> list[Window]:
    """Stretches of [start, end) no shift covers — nobody on duty there."""
    out: list[Window] = []
    cursor = start
    for w in sorted(windows, key=lambda w: w.starts_at):
        if w.ends_at <= cursor:
            continue
        if w.starts_at > cursor:
            out.append(Window(cursor, min(w.starts_at, end)))
        cursor = max(cursor, w.ends_at)
        if cursor >= end:
            break
    if cursor < end:
        out.append(Window(cursor, end))
    return [g for g in out if g.ends_at > g.starts_at]
