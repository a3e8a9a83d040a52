"""The console's pages for what keeps the response fed and staffed: feeds and quarantine, contacts, plans.

Each action is the JSON API's route in page form: the same roles (the API modules' own constants), the
same service call, one commit, then a redirect that the next page confirms. What a service refuses comes
back as the problem page in the user's language (``attempt``). The pages read only through the
domains' services, so what the duty room sees here is what the API answers for the same role.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from config.errors import ApiError, not_found
from config.fields import RowId
from config.users import Role, User
from config.web import DB, STAFF, ClockDep, SettingsDep, actor_of
from console.board import local
from console.i18n import Lang, text
from console.rendering import (
    PageUser,
    attempt,
    lang_of,
    problem,
    redirect,
    refused,
    render,
    user_can,
)
from console.security import check_csrf
from responses.callouts.api import EDITORS
from responses.contacts import service as contact_service
from responses.contacts.core import DutyRole
from responses.runs import service as run_service
from responses.runs.plans import LEVEL_ORDER, ResponsePlan, parse_text
from warning import service as warning_service
from warning.api import HANDLERS
from warning.changes import listeners_of
from warning.draft import Hazard

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(check_csrf)])

FEEDS = "/console/feeds"
CONTACTS = "/console/contacts"
PLANS = "/console/plans"
PLAN_EDITORS = (Role.ADMIN,)  # PUT /responses/plans/{hazard} admits the admin alone
PAGE_SIZE = 50
NOTE_MAX = 1000  # DismissIn.note
PLAN_MAX = 500_000  # PlanEditIn.source
PLAN_NOTE_MAX = 2000  # PlanEditIn.note
PLAN_FORMATS = ("yaml", "toml", "json")
LEVELS_RED_FIRST = tuple(reversed(LEVEL_ORDER))


def _refusal(status: int, code: str, key: str) -> ApiError:
    """A refusal of the console's own, worded from the catalogue in both languages like a service's."""
    return ApiError(status, code, text(key, "zh"), text(key, "en"))




def _number(value: str | None) -> int | None:
    """A number from the query string; anything else is treated as absent rather than answered with JSON."""
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 12 else None


def _label(prefix: str, code: str | None, lang: Lang) -> str:
    """A code's words when the catalogue has them, else the code itself: a new code still shows."""
    if not code:
        return ""
    key = f"{prefix}.{code}"
    words = text(key, lang)
    return code if words == key else words


# ------------------------------------------------------------------------------------------ feeds


def _feed_rows(session: Session, tz: ZoneInfo) -> list[dict[str, Any]]:
    counts = warning_service.quarantine_counts(session)
    rows = []
    for f in warning_service.all_feeds(session):
        quarantined = int(counts.get(f.id, 0))
        healthy = f.enabled and f.consecutive_failures == 0 and not quarantined  # as GET /feeds/health
        rows.append({
            "name": f.name, "title": f.title or f.name, "adapter": f.adapter, "enabled": f.enabled,
            "state": "off" if not f.enabled else "ok" if healthy else "bad", "healthy": healthy,
            "last_success": local(f.last_success_at, tz), "failures": f.consecutive_failures,
            "last_error": f.last_error or "", "last_error_at": local(f.last_error_at, tz),
            "items_count": f.items_count, "last_item": local(f.last_item_at, tz), "quarantined": quarantined,
        })
    rows.sort(key=lambda r: (r["healthy"], not r["enabled"], r["name"]))  # the board's order: trouble first
    return rows


def _quarantine_rows(session: Session, tz: ZoneInfo, titles: dict[int, str], lang: Lang) -> list[dict[str, Any]]:
    rows = []
    for item in warning_service.quarantined_items(session, limit=200):
        detail = item.detail or ""
        rows.append({
            "id": item.id, "feed": titles.get(item.feed_id, str(item.feed_id)), "reason": item.reason or "",
            "reason_text": _label("admin.reason", item.reason, lang), "detail": detail,
            "detail_short": detail if len(detail) <= 240 else detail[:240] + "…",
            "received": local(item.received_at, tz), "size": item.size, "attempts": item.attempts,
            "content_type": item.content_type or "",
        })
    return rows


@router.get("/feeds", response_class=HTMLResponse)
def feeds_page(request: Request, user: PageUser, session: DB, settings: SettingsDep,
               failed: str = "", item: str = "", created: str = "") -> Response:
    """Feed health for every role (as ``GET /feeds/health``); the quarantined items for staff only."""
    lang = lang_of(request)
    feeds = _feed_rows(session, settings.tz)
    titles = {f.id: f.title or f.name for f in warning_service.all_feeds(session)}
    staff = user_can(user, STAFF)
    items = _quarantine_rows(session, settings.tz, titles, lang) if staff else []
    failed_id = _number(failed)
    still = next((q for q in items if q["id"] == failed_id), None) if failed_id else None
    return render(request, "admin/feeds.html", {
        "user": user, "feeds": feeds, "items": items, "staff": staff, "can_handle": user_can(user, HANDLERS),
        "failed_id": failed_id, "still": still, "reprocessed_id": _number(item), "created": _number(created),
        "quarantined_total": sum(f["quarantined"] for f in feeds), "note_max": NOTE_MAX,
    })


@router.post("/feeds/items/{item_id}/reprocess")
def feeds_reprocess(item_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep) -> Response:
    """``POST /feeds/items/{id}/reprocess``; an item that fails again is shown with its new reason."""
    if (denied := refused(request, user, HANDLERS)) is not None:
        return denied

    def act() -> Response:
        found = warning_service.item_to_handle(session, item_id)
        outcome = warning_service.reprocess_item(session, found, now=clock.now(), actor=actor_of(user),
                                                 listeners=listeners_of(request.app.state.runtime.state))
        session.commit()
        if outcome.state == "processed":
            return redirect(FEEDS, done="admin_reprocessed", item=str(item_id), created=str(len(outcome.created)))
        return redirect(FEEDS, failed=str(item_id))

    return attempt(request, act, back=FEEDS)


@router.post("/feeds/items/{item_id}/dismiss")
def feeds_dismiss(item_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep,
                  note: Annotated[str, Form()] = "") -> Response:
    """``POST /feeds/items/{id}/dismiss`` with the reason the duty officer wrote, kept in the event log."""
    if (denied := refused(request, user, HANDLERS)) is not None:
        return denied

    def act() -> Response:
        reason = note.strip()
        if not reason:
            raise _refusal(422, "note_required", "admin.quarantine.note_required")
        if len(reason) > NOTE_MAX:
            raise _refusal(422, "note_too_long", "admin.quarantine.note_too_long")
        found = warning_service.item_to_handle(session, item_id)
        warning_service.dismiss_item(session, found, now=clock.now(), actor=actor_of(user), note=reason)
        session.commit()
        return redirect(FEEDS, done="admin_dismissed")

    return attempt(request, act, back=FEEDS)


# ------------------------------------------------------------------------------------------ contacts


def _place(duty: Any, areas: dict[str, str], sites: dict[str, str], departments: dict[str, str]) -> dict[str, str]:
    """Where a duty holds, by name, with the code kept for the hover title."""
    if duty.department:
        return {"name": departments.get(duty.department, duty.department), "code": duty.department}
    if duty.site_id:
        return {"name": sites.get(str(duty.site_id), str(duty.site_id)), "code": str(duty.site_id)}
    if duty.area_code:
        return {"name": areas.get(duty.area_code, duty.area_code), "code": duty.area_code}
    return {"name": "", "code": ""}


def _contact_rows(session: Session, contacts: list[Any], now: dt.datetime, lang: Lang) -> list[dict[str, Any]]:
    duties = [d for c in contacts for d in c.duties]
    areas = contact_service.area_names(session, sorted({d.area_code for d in duties if d.area_code}))
    sites = contact_service.site_names(session, [str(d.site_id) for d in duties if d.site_id])
    departments = {code: name for name, code in contact_service.known_departments(session).items() if name != code}
    rows = []
    for c in contacts:
        rows.append({
            "id": c.id, "name": c.name, "phone": c.phone, "backup_phone": c.backup_phone or "",
            "two_way_sms": c.two_way_sms, "active": c.active, "note": c.note or "",
            "duties": [{"role": _label("admin.role", d.role, lang), "place": _place(d, areas, sites, departments),
                        "reachable": contact_service.reachable(c, d, now)} for d in c.duties],
        })
    return rows


def _coverage(session: Session, now: dt.datetime) -> dict[str, Any]:
    """Coverage gaps as ``GET /contacts/coverage`` reports them, villages grouped under their township."""
    report = contact_service.coverage_report(session, now=now)
    cov = report.coverage
    names = report.names
    groups: dict[str, list[dict[str, str]]] = {}
    for code in cov.uncovered_villages:
        groups.setdefault(code[:9] + "000", []).append({"code": code, "name": names.get(code, code)})
    return {
        "ok": cov.ok, "source": report.source, "villages_total": cov.villages_total,
        "uncovered_total": len(cov.uncovered_villages), "district_leaders": cov.district_leaders,
        "townships": [{"code": t, "name": names.get(t, t)} for t in cov.townships_without_chief],
        "groups": [{"code": t, "name": names.get(t, t), "villages": vs} for t, vs in sorted(groups.items())],
    }


def _import_view(session: Session, import_id: int | None, lang: Lang) -> dict[str, Any] | None:
    if import_id is None:
        return None
    report = contact_service.import_report(session, import_id)
    if report is None:
        return None
    errors = [{"row": e.row, "field": _label("admin.field", e.field, lang),
               "message": e.message if lang == "zh" else e.message_en,
               "other": e.message_en if lang == "zh" else e.message} for e in report.errors]
    return {"id": report.import_id, "status": report.status, "rows_total": report.rows_total,
            "rows_ok": report.rows_ok, "rows_bad": len({e.row for e in report.errors if e.row > 1}),
            "contacts_added": report.contacts_added, "duties_added": report.duties_added, "errors": errors}


@router.get("/contacts", response_class=HTMLResponse)
def contacts_page(request: Request, user: PageUser, session: DB, clock: ClockDep, q: str = "", role: str = "",
                  offset: str = "", import_id: Annotated[str, Query(alias="import")] = "") -> Response:
    """Contacts are personal data: like ``GET /contacts`` and its coverage, the page is for staff."""
    if (denied := refused(request, user, STAFF)) is not None:
        return denied
    lang = lang_of(request)
    now = clock.now()
    role = role if role in {r.value for r in DutyRole} else ""
    start = _number(offset) or 0
    total, contacts = contact_service.search_contacts(session, q=q or None, role=role or None,
                                                      limit=PAGE_SIZE, offset=start)
    return render(request, "admin/contacts.html", {
        "user": user, "q": q, "role": role, "roles": [r.value for r in DutyRole], "total": total,
        "contacts": _contact_rows(session, contacts, now, lang), "offset": start, "page_size": PAGE_SIZE,
        "coverage": _coverage(session, now), "report": _import_view(session, _number(import_id), lang),
        "can_import": user_can(user, EDITORS),
    })


@router.post("/contacts/import")
def contacts_import(request: Request, user: PageUser, session: DB, clock: ClockDep, settings: SettingsDep,
                    file: Annotated[UploadFile | None, File()] = None,
                    skip_invalid: Annotated[bool, Form()] = False) -> Response:
    """``POST /contacts/import``: all or nothing unless rows with errors are to be skipped; the report follows.

    A rejected file is committed too (the file and its report are kept, as the API keeps them), and the
    report is shown on the contacts page, so a reload of it never uploads the file again.
    """
    if (denied := refused(request, user, EDITORS)) is not None:
        return denied

    def act() -> Response:
        if file is None or not file.filename:
            raise _refusal(400, "no_file", "admin.import.no_file")
        data = file.file.read(contact_service.MAX_FILE_BYTES + 1)
        try:
            report = contact_service.import_contacts(session, data=data, filename=file.filename,
                                                     actor=actor_of(user), now=clock.now(), tz=settings.tz,
                                                     skip_invalid=skip_invalid)
        except contact_service.ContactFileError as exc:
            raise ApiError(400, "bad_file", exc.zh, exc.en) from None
        session.commit()
        query = {"import": str(report.import_id)}
        if report.status != "rejected":
            query["done"] = "admin_imported"
        return redirect(CONTACTS, **query)

    return attempt(request, act, back=CONTACTS)


# ------------------------------------------------------------------------------------------ plans


def _plan_view(plan: ResponsePlan, version: str, edited: Any, lang: Lang,
               departments: dict[str, str]) -> dict[str, Any]:
    """A plan as the duty room reads it: per level, red first, what it orders and by when."""
    levels = []
    for lv in LEVELS_RED_FIRST:
        e = plan.levels[lv]
        c = e.calls
        levels.append({
            "level": lv.value, "response_level": e.response_level, "run_start": e.run_start_minutes,
            "consultation": {
                "mode": e.consultation.mode.value,
                "departments": [departments.get(d, d) for d in e.consultation.departments],
                "deadline": e.consultation.deadline_minutes, "reminder": e.consultation.reminder_minutes,
            },
            "calls": {
                "answer": c.answer_minutes, "retries": c.retries.count, "interval": c.retries.interval_minutes,
                "channels": [ch.value for ch in c.channels],
                "tiers": [{"tier": tier.value, "roles": [r.value for r in roles]} for tier, roles in c.tiers.items()],
                "escalation": [s.value for s in c.escalation],
            },
            "measures": [{
                "kind": m.kind.value, "title": m.title or "", "deadline": m.deadline_minutes,
                "unit": m.responsible_unit, "area_levels": list(m.targets.area_levels),
                "site_kinds": list(m.targets.site_kinds),
            } for m in e.measures],
            "reports": {
                "phone": e.reports.initial_phone_minutes, "written": e.reports.written_minutes,
                "followups": list(e.reports.followups_local), "final": e.reports.final_on_closure,
            },
        })
    return {
        "hazard": plan.hazard.value, "title": plan.title if lang == "zh" else (plan.title_en or plan.title),
        "other_title": plan.title_en if lang == "zh" else plan.title, "version": version,
        "notes": plan.notes, "source": "edited" if edited is not None else "default",
        "revision": edited.revision if edited is not None else None, "levels": levels,
    }


def _departments(session: Session) -> dict[str, str]:
    return {code: name for name, code in contact_service.known_departments(session).items() if name != code}


def _plan_for(session: Session, hazard: Hazard, lang: Lang) -> dict[str, Any] | None:
    plan, version = run_service.current_plan(session, hazard.value)  # as GET /responses/plans/{hazard}
    if plan is None:
        return None
    return _plan_view(plan, version, run_service.latest_document(session, hazard.value), lang, _departments(session))


def _hazard(value: str) -> Hazard | None:
    try:
        return Hazard(value)
    except ValueError:
        return None


@router.get("/plans", response_class=HTMLResponse)
def plans_page(request: Request, user: PageUser, session: DB) -> Response:
    """Every hazard's plan in force, each level in one line; every role reads plans (``GET /responses/plans``)."""
    lang = lang_of(request)
    plans = [p for hz in Hazard if (p := _plan_for(session, hz, lang)) is not None]
    return render(request, "admin/plans.html", {"user": user, "plans": plans})


def _plan_page(request: Request, user: User, session: Session, hazard: Hazard, *, source: str | None = None,
               fmt: str | None = None, note: str = "", errors: list[dict[str, Any]] | None = None,
               status: int = 200) -> Response:
    lang = lang_of(request)
    plan = _plan_for(session, hazard, lang)
    if plan is None:
        return problem(request, not_found("灾种预案", "plan for hazard", hazard.value), back=PLANS)
    can_edit = user_can(user, PLAN_EDITORS)
    if can_edit and source is None:
        found = run_service.plan_source(session, hazard.value)
        source, fmt = found if found is not None else ("", "yaml")
    shown = [{"line": e.get("line"), "path": e.get("path") or "",
              "message": e.get("message", "") if lang == "zh" else e.get("message_en", ""),
              "other": e.get("message_en", "") if lang == "zh" else e.get("message", "")} for e in errors or []]
    return render(request, "admin/plan.html", {
        "user": user, "plan": plan, "can_edit": can_edit, "source": source or "", "fmt": fmt or "yaml",
        "formats": PLAN_FORMATS, "note": note, "errors": shown, "note_max": PLAN_NOTE_MAX,
    }, status=status)


@router.get("/plans/{hazard}", response_class=HTMLResponse)
def plan_page(hazard: str, request: Request, user: PageUser, session: DB) -> Response:
    """One plan in full; for admins the document itself in an edit form."""
    hz = _hazard(hazard)
    if hz is None:
        return problem(request, not_found("灾种预案", "plan for hazard", hazard), back=PLANS)
    return _plan_page(request, user, session, hz)


def _form_error(key: str) -> dict[str, Any]:
    return {"line": None, "path": "", "message": text(key, "zh"), "message_en": text(key, "en")}


def _check(source: str, fmt: str, note: str) -> list[dict[str, Any]]:
    """``POST /responses/plans/check`` on the form's text, with the limits ``PlanEditIn`` sets on the body."""
    if len(note) > PLAN_NOTE_MAX:
        return [_form_error("admin.plans.edit.note_too_long")]
    if not source.strip():
        return [_form_error("admin.plans.edit.empty")]
    if len(source) > PLAN_MAX:
        return [_form_error("admin.plans.edit.too_long")]
    return [e.as_dict() for e in parse_text(source, f"plan.{fmt}", fmt).errors]


@router.post("/plans/{hazard}", response_class=HTMLResponse)
def plan_save(hazard: str, request: Request, user: PageUser, session: DB, clock: ClockDep,
              source: Annotated[str, Form()] = "", format: Annotated[str, Form()] = "yaml",  # noqa: A002
              note: Annotated[str, Form()] = "") -> Response:
    """``PUT /responses/plans/{hazard}`` from the form: checked first; with errors, nothing is saved and the
    text comes back as typed, the errors above it."""
    if (denied := refused(request, user, PLAN_EDITORS)) is not None:
        return denied
    hz = _hazard(hazard)
    if hz is None:
        return problem(request, not_found("灾种预案", "plan for hazard", hazard), back=PLANS)
    source = source.replace("\r\n", "\n")  # a textarea sends CRLF; the document is kept as typed otherwise
    note = note.strip()
    errors = _check(source, format, note)
    if not errors:
        doc, errors = run_service.save_plan_document(session, hazard=hz.value, source=source, fmt=format,
                                                     note=note, actor=actor_of(user), now=clock.now())
        if doc is not None:
            session.commit()
            return redirect(f"{PLANS}/{hz.value}", done="admin_plan_saved")
    return _plan_page(request, user, session, hz, source=source, fmt=format, note=note, errors=errors, status=422)
