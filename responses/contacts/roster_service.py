"""The duty roster in the database: import, manual entry, edits, "who is on duty now", leaderless shifts.

Supervision alerts, decisions and the escalation to the district leader all ask ``on_duty(now)``.
An import replaces a shift with the same start and end (the old members are logged in the event
log before they go), so re-importing a corrected month is safe.

Editing and removing one shift keep the record of who was on duty: a shift that has ended cannot be
changed, a shift on duty keeps its start (its end and its people may change), and only a shift that has not
begun can be removed — so a shift's duty log and its handover, which exist only once it has begun, are
never orphaned by the roster. An edit may not make the shift overlap another.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from config.eventlog import record
from responses.contacts.models import Roster, Shift, ShiftMember
from responses.contacts.roster import Person, RowError, ShiftSpec, parse_rows, read_csv, read_xlsx

RosterFollower = Callable[..., object]  # called as fn(session, now=..., actor=...) after a change, flushed
_followers: list[RosterFollower] = []


def follow(fn: RosterFollower) -> None:
    """Tell ``fn`` of every change to the roster from now on, in the same transaction (idempotent): what
    depends on who takes over from whom — a handover waiting for its incoming shift — lives above contacts."""
    if fn not in _followers:
        _followers.append(fn)


def _changed(session: Session, now: dt.datetime, actor: str) -> None:
    session.flush()
    for fn in list(_followers):
        fn(session, now=now, actor=actor)


class RosterError(Exception):
    """A refused roster edit with its HTTP status and both languages, for the API and the console to show."""

    def __init__(self, status: int, code: str, zh: str, en: str, details: Any = None) -> None:
        super().__init__(en)
        self.status, self.code, self.zh, self.en, self.details = status, code, zh, en, details


@dataclass(frozen=True)
class OnDuty:
    shift: Shift | None
    leader: ShiftMember | None
    officers: list[ShiftMember]


def members(session: Session, shift_id: int) -> list[ShiftMember]:
    return list(session.execute(
        select(ShiftMember).where(ShiftMember.shift_id == shift_id).order_by(ShiftMember.id)).scalars())


def shift_at(session: Session, when: dt.datetime) -> Shift | None:
    """The shift covering ``when``; if two overlap, the most recently entered one wins."""
    return session.execute(
        select(Shift).where(Shift.starts_at <= when, Shift.ends_at > when)
        .order_by(Shift.updated_at.desc(), Shift.id.desc()).limit(1)
    ).scalar_one_or_none()


def on_duty(session: Session, now: dt.datetime) -> OnDuty:
    shift = shift_at(session, now)
    if shift is None:
        return OnDuty(None, None, [])
    ms = members(session, shift.id)
    leader = next((m for m in ms if m.role == "leader"), None)
    return OnDuty(shift, leader, [m for m in ms if m.role == "officer"])


def upsert_shift(session: Session, spec: ShiftSpec, *, roster_id: int | None, actor: str,
                 now: dt.datetime) -> Shift:
    shift = session.execute(
        select(Shift).where(Shift.starts_at == spec.starts_at, Shift.ends_at == spec.ends_at)
    ).scalar_one_or_none()
    before = None
    if shift is None:
        shift = Shift(roster_id=roster_id, starts_at=spec.starts_at, ends_at=spec.ends_at, label=spec.label,
                      note=spec.note, created_at=now, updated_at=now)
        session.add(shift)
        session.flush()
    else:
        before = [{"role": m.role, "name": m.name, "phone": m.phone} for m in members(session, shift.id)]
        session.execute(delete(ShiftMember).where(ShiftMember.shift_id == shift.id))
        shift.roster_id, shift.label, shift.note, shift.updated_at = roster_id, spec.label, spec.note, now
    people: list[tuple[str, Person]] = ([("leader", spec.leader)] if spec.leader else []) + [
        ("officer", p) for p in spec.officers]
    for role, p in people:
        session.add(ShiftMember(shift_id=shift.id, role=role, name=p.name, phone=p.phone))
    session.flush()
    record(session, now=now, action="roster.shift_saved", entity_type="shift", entity_id=shift.id, actor=actor,
           payload={"starts_at": spec.starts_at, "ends_at": spec.ends_at, "leader": spec.leader.name if spec.leader
                    else None, "officers": [p.name for p in spec.officers], "replaced": before})
    return shift


def import_file(session: Session, *, data: bytes, filename: str, tz: dt.tzinfo, actor: str, now: dt.datetime,
                name: str | None = None) -> Roster:
    """Import a CSV or XLSX roster; the raw file and every row error are kept on the ``Roster`` row.

    Raises ``RosterFileError`` only when nothing can be read at all (unknown type, no header)."""
    from responses.contacts.roster import RosterFileError

    lower = filename.lower()
    if lower.endswith(".xlsx"):
        kind, rows = "xlsx", read_xlsx(data)
    elif lower.endswith((".csv", ".txt")):
        kind, rows = "csv", read_csv(data)
    else:
        raise RosterFileError("只支持 CSV 或 XLSX 文件", "only CSV or XLSX files are accepted")
    specs, errors = parse_rows(rows, tz)
    return _save_batch(session, specs, errors, source=kind, filename=filename, raw=data, actor=actor, now=now,
                       name=name or filename)


def save_api_batch(session: Session, specs: list[ShiftSpec], *, actor: str, now: dt.datetime,
                   name: str = "API") -> Roster:
    return _save_batch(session, specs, [], source="api", filename=None, raw=None, actor=actor, now=now, name=name)


def _save_batch(session: Session, specs: list[ShiftSpec], errors: Iterable[RowError], *, source: str,
                filename: str | None, raw: bytes | None, actor: str, now: dt.datetime, name: str) -> Roster:
    errs = [e.as_dict() for e in errors]
    roster = Roster(name=name, source=source, filename=filename, raw=raw,
                    sha256=hashlib.sha256(raw).hexdigest() if raw is not None else None, rows_ok=len(specs),
                    errors=errs, imported_at=now, imported_by=actor)
    session.add(roster)
    session.flush()
    for spec in specs:
        upsert_shift(session, spec, roster_id=roster.id, actor=actor, now=now)
    record(session, now=now, action="roster.imported", entity_type="roster", entity_id=roster.id, actor=actor,
           payload={"source": source, "filename": filename, "rows_ok": len(specs), "errors": errs})
    _changed(session, now, actor)
    return roster


def shifts_between(session: Session, start: dt.datetime, end: dt.datetime) -> list[Shift]:
    return list(session.execute(
        select(Shift).where(Shift.ends_at > start, Shift.starts_at < end).order_by(Shift.starts_at)).scalars())


def leaderless_shifts(session: Session, now: dt.datetime, days: int) -> list[Shift]:
    """Shifts in the next ``days`` days (and the current one) with no leader on duty."""
    out = []
    for s in shifts_between(session, now, now + dt.timedelta(days=days)):
        if not any(m.role == "leader" for m in members(session, s.id)):
            out.append(s)
    return out


# ---------------------------------------------------------------------------------------------- edits


def get_shift(session: Session, shift_id: int, *, lock: bool = False) -> Shift | None:
    stmt = select(Shift).where(Shift.id == shift_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _local(when: dt.datetime, tz: ZoneInfo) -> str:
    return _aware(when).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _content(session: Session, shift: Shift) -> dict[str, Any]:
    return {"starts_at": _aware(shift.starts_at), "ends_at": _aware(shift.ends_at), "label": shift.label,
            "note": shift.note, "members": [{"role": m.role, "name": m.name, "phone": m.phone}
                                            for m in members(session, shift.id)]}


def _past(shift: Shift, now: dt.datetime, tz: ZoneInfo) -> RosterError:
    return RosterError(409, "shift_ended",
                       f"该班次（{_local(shift.starts_at, tz)}—{_local(shift.ends_at, tz)}）已结束，值班记录须保留，"
                       "不能修改或删除",
                       "this shift has ended; the record of who was on duty stays and cannot be changed",
                       {"shift_id": shift.id})


def check_window(session: Session, starts_at: dt.datetime, ends_at: dt.datetime, *, tz: ZoneInfo,
                 ignore_id: int | None = None) -> None:
    """Refuse an empty or reversed window, and one overlapping another shift (named in the message)."""
    if ends_at <= starts_at:
        raise RosterError(422, "bad_window", "结束时间必须晚于开始时间", "the end must be after the start")
    stmt = select(Shift).where(Shift.ends_at > starts_at, Shift.starts_at < ends_at).order_by(Shift.starts_at)
    if ignore_id is not None:
        stmt = stmt.where(Shift.id != ignore_id)
    clash = list(session.execute(stmt.limit(5)).scalars())
    if clash:
        spans = "、".join(f"{c.label + ' ' if c.label else ''}{_local(c.starts_at, tz)}—{_local(c.ends_at, tz)}"
                         for c in clash)
        raise RosterError(409, "shift_overlap",
                          f"与已排班次重叠：{spans}。请先调整或删除那个班次，或改用不重叠的时间",
                          f"overlaps shift(s) {', '.join(str(c.id) for c in clash)} already on the roster; "
                          "change or remove them first, or choose times that do not overlap",
                          {"overlaps": [c.id for c in clash]})


def update_shift(session: Session, shift: Shift, spec: ShiftSpec, *, actor: str, now: dt.datetime,
                 tz: ZoneInfo) -> Shift:
    """Change a shift that has not ended: times, label, note and people. The previous content goes to the
    event log. A shift on duty keeps its start and may not end before ``now``."""
    starts, ends = _aware(shift.starts_at), _aware(shift.ends_at)
    if ends <= now:
        raise _past(shift, now, tz)
    if starts <= now and spec.starts_at != starts:
        raise RosterError(409, "shift_started",
                          f"该班次已于 {_local(starts, tz)} 开始，开始时间不能修改（当班记录须保留）；"
                          "如需提前交班，请修改结束时间",
                          "this shift is on duty: its start cannot change (the record stays); change its end "
                          "to hand over earlier", {"shift_id": shift.id})
    if starts > now and spec.starts_at < now:
        raise RosterError(422, "start_in_past", "开始时间不能早于当前时间（已过去的值班不能补改）",
                          "the start cannot be in the past (past duty is not rewritten)")
    if spec.ends_at <= now:
        raise RosterError(422, "end_in_past", "结束时间不能早于当前时间；班次结束后请勿删改",
                          "the end cannot be in the past")
    check_window(session, spec.starts_at, spec.ends_at, tz=tz, ignore_id=shift.id)
    before = _content(session, shift)
    session.execute(delete(ShiftMember).where(ShiftMember.shift_id == shift.id))
    shift.starts_at, shift.ends_at, shift.label, shift.note = spec.starts_at, spec.ends_at, spec.label, spec.note
    shift.updated_at = now
    people: list[tuple[str, Person]] = ([("leader", spec.leader)] if spec.leader else []) + [
        ("officer", p) for p in spec.officers]
    for role, p in people:
        session.add(ShiftMember(shift_id=shift.id, role=role, name=p.name, phone=p.phone))
    session.flush()
    record(session, now=now, action="roster.shift_updated", entity_type="shift", entity_id=shift.id, actor=actor,
           payload={"before": before, "after": _content(session, shift)})
    _changed(session, now, actor)
    return shift


def remove_shift(session: Session, shift: Shift, *, actor: str, now: dt.datetime, tz: ZoneInfo) -> None:
    """Remove a shift that has not begun; what it was goes to the event log."""
    if _aware(shift.ends_at) <= now:
        raise _past(shift, now, tz)
    if _aware(shift.starts_at) <= now:
        raise RosterError(409, "shift_started",
                          f"该班次已于 {_local(shift.starts_at, tz)} 开始，不能删除：当班的值班日志和交接班记录"
                          "须保留。如需提前交班，请修改结束时间；如需换人，请修改值班人员",
                          "this shift is on duty and cannot be removed (its duty log and handover stay); "
                          "change its end to hand over earlier, or its people to swap someone",
                          {"shift_id": shift.id})
    before = _content(session, shift)
    shift_id = shift.id
    session.execute(delete(ShiftMember).where(ShiftMember.shift_id == shift_id))
    session.delete(shift)
    session.flush()
    record(session, now=now, action="roster.shift_removed", entity_type="shift", entity_id=shift_id, actor=actor,
           payload={"before": before})
    _changed(session, now, actor)
