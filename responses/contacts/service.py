"""Contacts in the database: import (CSV / XLSX, Chinese headers), edits, coverage. The caller commits.

An import validates every row first and reports every problem. By default it is all or nothing:
one bad row and nothing changes (the file and its report are still kept, so the row can be
inspected); ``skip_invalid`` imports the valid rest. Importing the same file twice changes
nothing: people are matched by phone number and duties by (person, role, place).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from config.eventlog import record
from config.tabular import TableFileError, read_csv, read_xlsx
from config.users import Department
from geo.models import Area, HazardSite
from responses.contacts.core import (
    Coverage,
    DutyRole,
    DutyView,
    ParsedRows,
    RowError,
    active_at,
    area_level,
    check_place,
    coverage,
    map_header,
    normalize_phone,
    parse_rows,
    place_of,
    resolve_department,
)
from responses.contacts.models import Contact, ContactImport, Duty

DEMO_CONTACTS = Path(__file__).resolve().parents[2] / "config" / "defaults" / "contacts" / "demo_contacts.csv"
MAX_FILE_BYTES = 10 * 1024 * 1024


class ContactFileError(ValueError):
    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


# ---------------------------------------------------------------------------------------------- areas


@dataclass(frozen=True)
class AreaRegister:
    """The district's areas as the geo register holds them: code → level, code → name."""

    levels: dict[str, str]
    names: dict[str, str]
    source: str
    context: frozenset[str] = frozenset()  # neighbouring areas shown on the map, not managed here

    @property
    def villages(self) -> list[str]:
        return sorted(c for c, lv in self.levels.items() if lv == "village" and c not in self.context)

    @property
    def townships(self) -> list[str]:
        return sorted(c for c, lv in self.levels.items() if lv == "township" and c not in self.context)


def area_register(session: Session) -> AreaRegister | None:
    """The areas in the database (geo's register); None when no register is loaded."""
    rows = session.execute(select(Area.code, Area.level, Area.name, Area.context)).all()
    if not rows:
        return None
    return AreaRegister({str(c): str(lv) for c, lv, _, _ in rows}, {str(c): str(n) for c, _, n, _ in rows}, "geo",
                        frozenset(str(c) for c, _, _, ctx in rows if ctx))


def known_sites(session: Session) -> dict[str, str] | None:
    """Every way a contact list may name a site (its id or its key) → the site's id.

    Runs list the sites they reach by id, so a duty is stored at ``site:<id>`` however the file named
    the site: a monitor imported by key (GH-1) is then called like one imported by id.
    """
    rows = session.execute(select(HazardSite.id, HazardSite.key)).all()
    if not rows:
        return None
    out: dict[str, str] = {}
    for sid, key in rows:
        out[str(sid)] = str(sid)
        if key:
            out.setdefault(str(key), str(sid))
    return out


def known_departments(session: Session) -> dict[str, str]:
    """Each department's name and code → its code: a contact list or a plan may write either."""
    out: dict[str, str] = {}
    for code, name in session.execute(select(Department.code, Department.name)).all():
        out[str(code)] = str(code)
        out[str(name)] = str(code)
    return out


def area_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    reg = area_register(session)
    if reg is None:
        return {}
    return {c: reg.names[c] for c in codes if c in reg.names}


# ---------------------------------------------------------------------------------------------- files


def read_table(data: bytes, filename: str) -> tuple[list[Any], list[list[Any]]]:
    """Header and rows of a CSV (UTF-8 with or without BOM, or GB18030) or XLSX file."""
    if len(data) > MAX_FILE_BYTES:
        raise ContactFileError("文件过大（上限 10 MiB）", "file too large (10 MiB at most)")
    suffix = Path(filename).suffix.lower()
    if suffix in (".xlsx", ".xlsm") or data[:2] == b"PK":
        try:
            rows = read_xlsx(data)
        except TableFileError as exc:
            raise ContactFileError(exc.zh, exc.en) from None
    elif suffix in (".csv", ".txt", ""):
        try:
            rows = read_csv(data)
        except TableFileError as exc:
            raise ContactFileError(exc.zh, exc.en) from None
    else:
        raise ContactFileError(f"不支持的文件类型 {suffix}（请用 CSV 或 XLSX）", f"unsupported file type {suffix}")
    while rows and all(c is None or str(c).strip() == "" for c in rows[0]):
        rows.pop(0)
    if not rows:
        raise ContactFileError("文件是空的", "the file is empty")
    return rows[0], rows[1:]


def parse_file(data: bytes, filename: str, *, register: AreaRegister | None, sites: Mapping[str, str] | None,
               tz: dt.tzinfo, departments: dict[str, str] | None = None) -> ParsedRows:
    header, body = read_table(data, filename)
    mapping, header_errors = map_header(header)
    if header_errors:
        return ParsedRows([], header_errors, len(body))
    records = [{fld: (r[i] if i < len(r) else None) for i, fld in mapping.items()} for r in body]
    return parse_rows(records, known_areas=register.levels if register else None, known_sites=sites, tz=tz,
                      known_departments=departments)


# ---------------------------------------------------------------------------------------------- import


@dataclass
class ImportReport:
    import_id: int | None
    status: str  # applied | rejected | partial | unchanged
    rows_total: int
    rows_ok: int
    contacts_added: int = 0
    contacts_updated: int = 0
    duties_added: int = 0
    errors: list[RowError] = field(default_factory=list)
    area_check: str = "geo"  # geo | format_only (no area register loaded)

    def as_dict(self) -> dict[str, Any]:
        return {"import_id": self.import_id, "status": self.status, "rows_total": self.rows_total,
                "rows_ok": self.rows_ok, "contacts_added": self.contacts_added,
                "contacts_updated": self.contacts_updated, "duties_added": self.duties_added,
                "area_check": self.area_check, "errors": [e.as_dict() for e in self.errors]}


def import_contacts(session: Session, *, data: bytes, filename: str, actor: str, now: dt.datetime,
                    tz: dt.tzinfo, skip_invalid: bool = False, demo: bool = False) -> ImportReport:
    register = area_register(session)
    sites = known_sites(session)
    fmt = "xlsx" if Path(filename).suffix.lower() in (".xlsx", ".xlsm") or data[:2] == b"PK" else "csv"
    parsed = parse_file(data, filename, register=register, sites=sites, tz=tz, departments=known_departments(session))
    report = ImportReport(None, "applied", parsed.total, len(parsed.rows), errors=parsed.errors,
                          area_check="geo" if register else "format_only")
    imp = ContactImport(filename=Path(filename).name[:300], format=fmt, sha256=hashlib.sha256(data).hexdigest(),
                        raw=data, status="applied", rows_total=parsed.total, rows_ok=len(parsed.rows),
                        errors=[e.as_dict() for e in parsed.errors], imported_at=now, imported_by=actor)
    session.add(imp)
    session.flush()
    report.import_id = imp.id
    if parsed.errors and not skip_invalid:
        imp.status = report.status = "rejected"
        record(session, now=now, action="contacts.import_rejected", entity_type="contact_import", entity_id=imp.id,
               actor=actor, payload={"filename": imp.filename, "errors": len(parsed.errors), "rows": parsed.total})
        return report
    by_phone = {c.phone: c for c in session.execute(select(Contact).options(selectinload(Contact.duties))).scalars()}
    for row in parsed.rows:
        contact = by_phone.get(row.phone)
        if contact is None:
            contact = Contact(name=row.name, phone=row.phone, backup_phone=row.backup_phone,
                              two_way_sms=row.two_way_sms, active=True, demo=demo, note=row.note,
                              created_at=now, updated_at=now, duties=[])
            session.add(contact)
            by_phone[row.phone] = contact
            report.contacts_added += 1
        else:
            changed = False
            for attr, val in (("name", row.name), ("backup_phone", row.backup_phone or contact.backup_phone),
                              ("two_way_sms", row.two_way_sms or contact.two_way_sms)):
                if getattr(contact, attr) != val:
                    setattr(contact, attr, val)
                    changed = True
            if changed:
                contact.updated_at = now
                report.contacts_updated += 1
        site_id = sites.get(row.site, row.site) if sites and row.site else row.site
        place = place_of(row.role, row.area_code, site_id, row.department)
        if any(d.role == row.role.value and d.place == place for d in contact.duties):
            continue
        contact.duties.append(Duty(role=row.role.value, area_code=row.area_code, site_id=site_id,
                                   department=row.department, place=place, active_from=row.active_from,
                                   active_to=row.active_to, import_id=imp.id, created_at=now))
        report.duties_added += 1
    session.flush()
    if parsed.errors:
        imp.status = report.status = "partial"
    elif not report.contacts_added and not report.duties_added and not report.contacts_updated:
        imp.status = report.status = "unchanged"
    imp.contacts_added, imp.duties_added = report.contacts_added, report.duties_added
    record(session, now=now, action="contacts.imported", entity_type="contact_import", entity_id=imp.id,
           actor=actor, payload={"filename": imp.filename, "status": imp.status, "rows": parsed.total,
                                 "contacts_added": report.contacts_added, "duties_added": report.duties_added,
                                 "contacts_updated": report.contacts_updated, "skipped": len(parsed.bad_rows)})
    return report


def seed_demo_contacts(session: Session, *, now: dt.datetime, tz: dt.tzinfo) -> ImportReport | None:
    """Load the shipped fake list once (idempotent: a second run adds nothing and stores no import)."""
    if session.execute(select(Contact.id).where(Contact.demo.is_(True)).limit(1)).first() is not None:
        return None
    data = DEMO_CONTACTS.read_bytes()
    return import_contacts(session, data=data, filename=DEMO_CONTACTS.name, actor="system", now=now, tz=tz,
                           skip_invalid=True, demo=True)


# ---------------------------------------------------------------------------------------------- coverage


def reachable(contact: Contact, duty: Duty, now: dt.datetime) -> bool:
    return (contact.active and active_at(contact.active_from, contact.active_to, now)
            and active_at(duty.active_from, duty.active_to, now) and bool(contact.phone or contact.backup_phone))


def duty_views(session: Session, now: dt.datetime) -> list[DutyView]:
    rows = session.execute(select(Duty, Contact).join(Contact, Duty.contact_id == Contact.id)).all()
    return [DutyView(c.id, DutyRole(d.role), d.area_code, reachable(c, d, now)) for d, c in rows]


def duties_at(session: Session, *, area_codes: Iterable[str] = (), site_ids: Iterable[str] = (),
              now: dt.datetime) -> list[tuple[Contact, Duty, bool]]:
    """The duties held for these areas or hazard sites, each with its person and whether they are reachable now.

    The console's map shows who answers for a village when it is clicked (its heads and grid workers, the
    monitors of its sites, the chief of its township); it sits above this package and reads no table itself.
    Ordered as a duty officer reads them: village first, then sites, then the township, and by name.
    """
    areas = sorted({str(a) for a in area_codes if a})
    sites = sorted({str(s) for s in site_ids if s})
    if not areas and not sites:
        return []
    rows = session.execute(select(Duty, Contact).join(Contact, Duty.contact_id == Contact.id)
                           .where(Duty.area_code.in_(areas) | Duty.site_id.in_(sites))).all()
    order = {role.value: i for i, role in enumerate((DutyRole.VILLAGE_HEAD, DutyRole.GRID_WORKER,
                                                      DutyRole.SITE_MONITOR, DutyRole.TOWNSHIP_CHIEF))}
    found = [(c, d, reachable(c, d, now)) for d, c in rows]
    return sorted(found, key=lambda row: (order.get(row[1].role, 9), row[0].name, row[1].id))


@dataclass
class CoverageReport:
    coverage: Coverage
    names: dict[str, str]
    source: str  # geo | duties (no register: only the areas named by duties are known)

    def as_dict(self) -> dict[str, Any]:
        c = self.coverage
        return {
            "ok": c.ok, "source": self.source, "villages_total": c.villages_total,
            "uncovered_villages": [{"code": v, "name": self.names.get(v, "")} for v in c.uncovered_villages],
            "townships_without_chief": [{"code": t, "name": self.names.get(t, "")}
                                        for t in c.townships_without_chief],
            "district_leaders": c.district_leaders,
        }


def coverage_report(session: Session, *, now: dt.datetime) -> CoverageReport:
    views = duty_views(session, now)
    reg = area_register(session)
    if reg is not None:
        villages, townships, names, source = reg.villages, reg.townships, reg.names, "geo"
    else:
        codes = {v.area_code for v in views if v.area_code}
        villages = sorted(c for c in codes if area_level(c) == "village")
        townships = sorted({c for c in codes if area_level(c) == "township"} | {v[:9] + "000" for v in villages})
        names, source = {}, "duties"
    return CoverageReport(coverage(villages, townships, views), names, source)


# ---------------------------------------------------------------------------------------------- edits


def contact_dict(c: Contact, now: dt.datetime | None = None) -> dict[str, Any]:
    return {
        "id": c.id, "name": c.name, "phone": c.phone, "backup_phone": c.backup_phone, "two_way_sms": c.two_way_sms,
        "active": c.active, "active_from": c.active_from, "active_to": c.active_to, "demo": c.demo, "note": c.note,
        "duties": [{"id": d.id, "role": d.role, "area_code": d.area_code, "site_id": d.site_id,
                    "department": d.department, "active_from": d.active_from, "active_to": d.active_to,
                    "reachable": reachable(c, d, now) if now else None} for d in c.duties],
    }


class DutyPlaceError(ValueError):
    """A duty entered through the API that does not fit its role; every problem is in ``errors``."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(errors[0].message_en)
        self.errors = errors


def new_duty(session: Session, *, role: DutyRole, area_code: str | None, site_id: str | None,
             department: str | None, active_from: dt.datetime | None, active_to: dt.datetime | None,
             now: dt.datetime) -> Duty:
    """A duty checked as an import row is (the same rules), its department stored by code."""
    reg = area_register(session)
    depts = known_departments(session)
    sites = known_sites(session)
    errs = check_place(0, role, area_code, site_id, reg.levels if reg else None, sites,
                       department=department, known_departments=depts)
    if errs:
        raise DutyPlaceError(errs)
    if sites and site_id:
        site_id = sites.get(site_id, site_id)
    dept = resolve_department(department, depts) if role is DutyRole.DEPARTMENT_DUTY else None
    return Duty(role=role.value, area_code=area_code, site_id=site_id, department=dept,
                place=place_of(role, area_code, site_id, dept), active_from=active_from, active_to=active_to,
                created_at=now)


def find_by_phone(session: Session, number: str) -> Contact | None:
    try:
        e164 = normalize_phone(number)
    except ValueError:
        e164 = number
    return session.execute(
        select(Contact).where((Contact.phone == e164) | (Contact.backup_phone == e164)).order_by(Contact.id).limit(1)
    ).scalar_one_or_none()


# ---------------------------------------------------------------------------------------------- pages


def search_contacts(session: Session, *, q: str | None = None, role: str | None = None,
                    area_code: str | None = None, limit: int = 100, offset: int = 0) -> tuple[int, list[Contact]]:
    """Contacts by name or number, role and area, with their duties, and how many match in all.

    ``GET /contacts`` filters this way; the duty console's contacts page asks here instead of reading
    the tables, so both find the same people for the same search.
    """
    stmt = select(Contact).options(selectinload(Contact.duties))
    if q and q.strip():
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Contact.name.like(like), Contact.phone.like(like)))
    if role or area_code:
        sub = select(Duty.contact_id)
        if role:
            sub = sub.where(Duty.role == role)
        if area_code:
            sub = sub.where(Duty.area_code == area_code)
        stmt = stmt.where(Contact.id.in_(sub))
    total = int(session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())
    rows = session.execute(stmt.order_by(Contact.id).limit(max(1, min(limit, 1000))).offset(max(0, offset))).scalars()
    return total, list(rows)


def site_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """Site id → name, so a monitor's duty is shown by the site's name rather than its number."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    numbers = [int(i) for i in wanted if i.isdigit()]
    rows = session.execute(select(HazardSite.id, HazardSite.name).where(HazardSite.id.in_(numbers))).all()
    return {str(sid): str(name) for sid, name in rows}


def import_report(session: Session, import_id: int) -> ImportReport | None:
    """The report of an import already stored, read back from what was kept of it.

    After an upload the console shows the report on a page of its own (so a reload does not send the
    file again); the rows' problems are the ones ``import_contacts`` kept. How many contacts were
    updated is not kept, so it reads 0.
    """
    imp = session.get(ContactImport, import_id)
    if imp is None:
        return None
    errors = [RowError(int(e.get("row", 0)), str(e.get("field", "")), str(e.get("message", "")),
                       str(e.get("message_en", ""))) for e in imp.errors or []]
    return ImportReport(imp.id, imp.status, imp.rows_total, imp.rows_ok, contacts_added=imp.contacts_added,
                        duties_added=imp.duties_added, errors=errors)
