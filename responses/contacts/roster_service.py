"""The duty roster in the database: import, manual entry, "who is on duty now", leaderless shifts.

Supervision alerts, decisions and the escalation to the district leader all ask ``on_duty(now)``.
An import replaces a shift with the same start and end (the old members are logged in the event
log before they go), so re-importing a corrected month is safe.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from config.eventlog import record
from responses.contacts.models import Roster, Shift, ShiftMember
from responses.contacts.roster import Person, RowError, ShiftSpec, parse_rows, read_csv, read_xlsx


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
