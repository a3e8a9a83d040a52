"""The duty log (值班日志) in the database: the officers' entries, the system's events linked in from the event
log, the window a view covers, and the shifts a response crossed (for the audit report).

Views are plain data (dicts of text, numbers and aware datetimes, Chinese labels included) so a page, an
export and the API all show the same thing. The caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.eventlog import Event, record
from responses.contacts import roster_service
from responses.contacts.models import Shift
from responses.duty import core
from responses.duty.core import EntryKind, EntryTimeError
from responses.duty.models import DutyLogEntry

SYSTEM_SOURCE = "系统"


class DutyError(Exception):
    """A refusal with its HTTP status and both languages, for the API to pass on as it is."""

    def __init__(self, status: int, code: str, zh: str, en: str, details: Any = None) -> None:
        super().__init__(en)
        self.status, self.code, self.zh, self.en, self.details = status, code, zh, en, details


def _window_error(exc: EntryTimeError) -> DutyError:
    return DutyError(422, exc.code, exc.zh, exc.en)


def utc(when: dt.datetime, *, code: str = "bad_window") -> dt.datetime:
    """An aware time in UTC, or a 422 when it lies where the arithmetic cannot follow (year 1, year 9999)."""
    try:
        out = when.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise DutyError(422, code, "时间超出可处理范围", "the time is out of range") from None
    if not (core.EARLIEST <= out < core.LATEST):
        raise DutyError(422, code, "时间超出可查询范围（1970—2200 年）",
                        "the time lies outside the range kept (1970–2200)")
    return out


# ---------------------------------------------------------------------------------------------- shifts


def people(session: Session, shift: Shift) -> tuple[str | None, list[str]]:
    """(leader on duty, duty officers) of a shift, by name."""
    ms = roster_service.members(session, shift.id)
    leader = next((m.name for m in ms if m.role == "leader"), None)
    return leader, [m.name for m in ms if m.role == "officer"]


def shift_view(session: Session, shift: Shift, tz: ZoneInfo) -> dict[str, Any]:
    leader, officers = people(session, shift)
    return {
        "id": shift.id, "label": shift.label, "starts_at": shift.starts_at, "ends_at": shift.ends_at,
        "starts_local": core.local_text(shift.starts_at, tz), "ends_local": core.local_text(shift.ends_at, tz),
        "leader": leader, "officers": officers,
    }


def shift_facts(session: Session, shift: Shift, tz: ZoneInfo) -> core.ShiftFacts:
    leader, officers = people(session, shift)
    return core.ShiftFacts(label=shift.label, starts_local=core.local_text(shift.starts_at, tz),
                           ends_local=core.local_text(shift.ends_at, tz), leader=leader, officers=tuple(officers))


def get_shift(session: Session, shift_id: int) -> Shift | None:
    return session.get(Shift, shift_id)


def next_shift(session: Session, shift: Shift) -> Shift | None:
    """The shift that takes over: the one on duty the moment this one ends."""
    return roster_service.shift_at(session, shift.ends_at)


# ---------------------------------------------------------------------------------------------- writing


def get_entry(session: Session, entry_id: int, *, lock: bool = False) -> DutyLogEntry | None:
    stmt = select(DutyLogEntry).where(DutyLogEntry.id == entry_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def _linked_drill(session: Session, warning_id: int | None, run_id: int | None) -> bool:
    from responses.runs.models import ResponseRun
    from warning.models import Warning

    drill = False
    if warning_id is not None:
        w = session.get(Warning, warning_id)
        if w is None:
            raise DutyError(404, "not_found", f"未找到预警：{warning_id}", f"warning not found: {warning_id}")
        drill = drill or bool(w.drill)
    if run_id is not None:
        run = session.get(ResponseRun, run_id)
        if run is None:
            raise DutyError(404, "not_found", f"未找到响应：{run_id}", f"run not found: {run_id}")
        drill = drill or bool(run.drill)
    return drill


def write_entry(session: Session, *, kind: EntryKind | str, text: str, actor: str, author_name: str,
                now: dt.datetime, at: dt.datetime | None = None, from_name: str | None = None,
                from_unit: str | None = None, from_phone: str | None = None, warning_id: int | None = None,
                run_id: int | None = None, for_handover: bool = False) -> DutyLogEntry:
    """An officer's entry in the log of the shift on duty now, at ``at`` (default now). A call taken earlier is
    back-dated within that shift at most; with nobody on the roster now the entry belongs to no shift and may
    go back ``MAX_BACKDATE_WITHOUT_SHIFT``. Linked warning and run must exist (404 otherwise)."""
    k = EntryKind(kind)
    if k not in core.WRITTEN_KINDS:
        raise DutyError(422, "bad_kind", "只能记录来电、领导批示、处置或记事",
                        "only call, instruction, action or note entries are written")
    if not text.strip():
        raise DutyError(422, "empty_text", "内容不能为空", "the text cannot be empty")
    when = utc(at, code="time_out_of_range") if at is not None else now
    current = roster_service.shift_at(session, now)
    earliest = current.starts_at if current is not None else now - core.MAX_BACKDATE_WITHOUT_SHIFT
    try:
        core.check_entry_time(when, now=now, earliest=earliest)
    except EntryTimeError as exc:
        raise DutyError(422, exc.code, exc.zh, exc.en,
                        {"at": when.isoformat(), "earliest": earliest.isoformat(), "now": now.isoformat()}) from None
    drill = _linked_drill(session, warning_id, run_id)
    entry = DutyLogEntry(
        shift_id=current.id if current is not None else None, at=when, kind=k.value,
        text=text.strip(), from_name=_clean(from_name), from_unit=_clean(from_unit), from_phone=_clean(from_phone),
        warning_id=warning_id, run_id=run_id, for_handover=for_handover, author=actor, author_name=author_name,
        drill=drill, created_at=now, updated_at=now)
    session.add(entry)
    session.flush()
    record(session, now=now, action="duty_log.written", entity_type="duty_log_entry", entity_id=entry.id,
           actor=actor, payload={"shift_id": entry.shift_id, "at": when.isoformat(), "kind": k.value,
                                 "text": entry.text, "from_name": entry.from_name, "from_unit": entry.from_unit,
                                 "from_phone": entry.from_phone, "warning_id": warning_id, "run_id": run_id,
                                 "for_handover": for_handover, "author_name": author_name})
    return entry


def _clean(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


def mark_for_handover(session: Session, entry: DutyLogEntry, value: bool, *, actor: str,
                      now: dt.datetime) -> DutyLogEntry:
    """Mark (or unmark) an entry for the handover; the next draft of its shift's handover carries it."""
    if entry.for_handover != value:
        entry.for_handover, entry.updated_at = value, now
        record(session, now=now, action="duty_log.handover_marked", entity_type="duty_log_entry",
               entity_id=entry.id, actor=actor, payload={"for_handover": value, "shift_id": entry.shift_id})
    return entry


# ---------------------------------------------------------------------------------------------- reading


def written_entries(session: Session, start: dt.datetime, end: dt.datetime, *,
                    shift_id: int | None = None) -> list[DutyLogEntry]:
    stmt = select(DutyLogEntry).order_by(DutyLogEntry.at, DutyLogEntry.id)
    if shift_id is not None:
        stmt = stmt.where(DutyLogEntry.shift_id == shift_id)
    else:
        stmt = stmt.where(DutyLogEntry.at >= start, DutyLogEntry.at < end)
    return list(session.execute(stmt).scalars())


def _ids(events: Iterable[Event], entity_type: str) -> list[int]:
    return sorted({int(e.entity_id) for e in events if e.entity_type == entity_type and e.entity_id.isdigit()})


def _facts(session: Session, events: Sequence[Event]) -> dict[tuple[str, str], dict[str, Any]]:
    """What the log says about each event's subject, looked up once per subject."""
    from responses.callouts.models import Callout
    from responses.reports.models import InfoReport
    from responses.runs.models import ResponseRun
    from warning.consultation.models import Consultation
    from warning.models import Warning

    out: dict[tuple[str, str], dict[str, Any]] = {}

    def load(entity_type: str, model: Any, fields: Any) -> None:
        ids = _ids(events, entity_type)
        for i in range(0, len(ids), 500):
            for row in session.execute(select(model).where(model.id.in_(ids[i:i + 500]))).scalars():
                out[(entity_type, str(row.id))] = {"id": row.id, **fields(row)}

    load("warning", Warning, lambda w: {"headline": w.headline, "event": w.event, "level": w.level,
                                        "msg_type": w.msg_type, "drill": w.drill, "thread_id": w.thread_id})
    load("consultation", Consultation, lambda c: {"drill": c.drill, "thread_id": c.thread_id})
    load("response_run", ResponseRun, lambda r: {"number": r.number, "drill": r.drill,
                                                 "response_level": r.response_level, "thread_id": r.thread_id})
    load("callout", Callout, lambda c: {"name": c.name, "area_names": list(c.area_names or []), "drill": c.drill,
                                        "run_id": c.run_id})
    load("info_report", InfoReport, lambda r: {"title": r.title, "drill": r.drill, "run_id": r.run_id})
    return out


def system_entries(session: Session, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """The system's events in [start, end) that belong in a duty log, as log entries (read, never copied)."""
    events = [e for e in session.execute(
        select(Event).where(Event.action.in_(list(core.SYSTEM_ACTIONS)), Event.at >= start, Event.at < end)
        .order_by(Event.seq)).scalars()
        if core.system_kind(e.action, e.payload or {}) is not None]
    facts = _facts(session, events)
    out = []
    for e in events:
        payload = e.payload or {}
        kind = core.system_kind(e.action, payload)
        assert kind is not None
        f = {"id": e.entity_id, **facts.get((e.entity_type, e.entity_id), {})}
        if e.entity_type == "warning":
            warning_id: int | None = int(e.entity_id)
        else:
            warning_id = f.get("thread_id") if e.entity_type in ("consultation", "response_run") else None
        run_id = (int(e.entity_id) if e.entity_type == "response_run" else f.get("run_id") or payload.get("run_id"))
        out.append(_entry(
            id=None, system=True, event_seq=e.seq, at=e.at, kind=kind, text=core.system_text(e.action, payload, f),
            source=SYSTEM_SOURCE, author=e.actor, for_handover=False, warning_id=warning_id, run_id=run_id,
            action=e.action, entity_type=e.entity_type, entity_id=e.entity_id, drill=bool(f.get("drill"))))
    return out


def _entry(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": None, "system": False, "event_seq": None, "at": None, "kind": "", "text": "",
                            "body": None, "from_name": None, "from_unit": None, "from_phone": None, "source": "",
                            "author": "", "for_handover": False, "warning_id": None, "run_id": None,
                            "shift_id": None, "action": None, "entity_type": None, "entity_id": None, "drill": False}
    base.update(values)
    base["kind_zh"] = core.KIND_ZH[EntryKind(base["kind"])]
    return base


def entry_view(entry: DutyLogEntry) -> dict[str, Any]:
    return _entry(
        id=entry.id, at=entry.at, kind=EntryKind(entry.kind),
        text=core.written_text(entry.kind, entry.text, from_name=entry.from_name, from_unit=entry.from_unit,
                               from_phone=entry.from_phone),
        body=entry.text, from_name=entry.from_name, from_unit=entry.from_unit, from_phone=entry.from_phone,
        source=entry.author_name, author=entry.author, for_handover=entry.for_handover, warning_id=entry.warning_id,
        run_id=entry.run_id, shift_id=entry.shift_id, entity_type="duty_log_entry", entity_id=str(entry.id),
        drill=entry.drill)


def entries(session: Session, start: dt.datetime, end: dt.datetime, *, shift_id: int | None = None,
            tz: ZoneInfo) -> list[dict[str, Any]]:
    """Written and system entries of a window (a shift's written ones by the shift), in time order."""
    rows = [entry_view(e) for e in written_entries(session, start, end, shift_id=shift_id)]
    rows += system_entries(session, start, end)
    rows.sort(key=lambda r: (r["at"], 0 if r["system"] else 1, r["event_seq"] or r["id"] or 0))
    for r in rows:
        r["at_local"] = core.local_text(r["at"], tz)
        r["kind"] = str(r["kind"])
    return rows


def resolve_window(session: Session, *, now: dt.datetime, tz: ZoneInfo, shift_id: int | None = None,
                   day: dt.date | None = None, start: dt.datetime | None = None,
                   end: dt.datetime | None = None) -> tuple[Shift | None, dt.datetime, dt.datetime, dt.date | None]:
    """(shift, start, end, day) of a log view: one shift, one local day, or from/to; by default the current
    shift, or today (Asia/Shanghai) when no shift is on duty now."""
    given = sum(x is not None for x in (shift_id, day)) + (start is not None or end is not None)
    if given > 1:
        raise DutyError(422, "bad_window", "shift、day 与 from/to 只能给出一种",
                        "give one of shift, day or from/to")
    if shift_id is not None:
        shift = get_shift(session, shift_id)
        if shift is None:
            raise DutyError(404, "not_found", f"未找到班次：{shift_id}", f"shift not found: {shift_id}")
        return shift, shift.starts_at, shift.ends_at, None
    if start is not None or end is not None:
        if start is None or end is None:
            raise DutyError(422, "bad_window", "from 与 to 须同时给出", "give both from and to")
        s, e = utc(start), utc(end)
        try:
            core.check_window(s, e)
        except EntryTimeError as exc:
            raise _window_error(exc) from None
        return None, s, e, None
    if day is None:
        current = roster_service.shift_at(session, now)
        if current is not None:
            return current, current.starts_at, current.ends_at, None
        day = now.astimezone(tz).date()
    try:
        s, e = core.day_window(day, tz)
    except EntryTimeError as exc:
        raise _window_error(exc) from None
    return None, s, e, day


def log_view(session: Session, *, now: dt.datetime, tz: ZoneInfo, shift_id: int | None = None,
             day: dt.date | None = None, start: dt.datetime | None = None,
             end: dt.datetime | None = None) -> dict[str, Any]:
    """One duty log as a page or an export shows it: the window, its shift (if it is one), the entries."""
    shift, s, e, the_day = resolve_window(session, now=now, tz=tz, shift_id=shift_id, day=day, start=start, end=end)
    rows = entries(session, s, e, shift_id=shift.id if shift is not None else None, tz=tz)
    if shift is not None:
        title = f"值班日志 {core.local_text(shift.starts_at, tz)} 至 {core.local_text(shift.ends_at, tz)}" + (
            f"（{shift.label}）" if shift.label else "")
    elif the_day is not None:
        title = f"值班日志 {the_day.isoformat()}"
    else:
        title = f"值班日志 {core.local_text(s, tz)} 至 {core.local_text(e, tz)}"
    return {
        "title": title, "shift": shift_view(session, shift, tz) if shift is not None else None,
        "day": the_day, "from": s, "to": e, "from_local": core.local_text(s, tz), "to_local": core.local_text(e, tz),
        "generated_at": now, "generated_local": core.local_text(now, tz), "entries": rows,
    }
