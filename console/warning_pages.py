"""Console pages for warnings and consultations: the list, a warning's detail, manual entry (接报登记), the
consultations and the forms that move a consultation on (judgement, extension, decision, dismissal).

Each action admits the same roles as its JSON API route (the constants are imported from there or from
``config.web``), validates with the API's own pydantic schema so the same rules apply, calls the same service
function and commits once. Input the schema refuses shows the form again with the user's values and a message
next to the field; a refusal by the domain (a wrong state, an unknown department) shows the problem page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, get_args
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from config.clock import Clock
from config.errors import ApiError, bad_request, not_found
from config.settings import Settings
from config.transitions import IllegalTransition
from config.users import Role, User, find_department
from config.web import DB, STAFF, ClockDep, SettingsDep, actor_of
from console.board import LEVEL_RANK, level_key, local
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
from geo.codes import normalize_code, structural_parent
from responses.contacts import service as contact_service
from responses.runs import service as run_service
from warning import service as warning_service
from warning import threads
from warning.changes import listeners_of
from warning.consultation import service as cs
from warning.consultation.api import DECIDERS, JUDGES
from warning.consultation.core import ConsultationState
from warning.consultation.models import Consultation, Judgement
from warning.consultation.schemas import ConsultationOpen, DecisionIn, DismissIn, ExtendIn, JudgementIn, MeasureIn
from warning.draft import Hazard, Level
from warning.models import Warning, WarningState
from warning.schemas import ManualWarningIn

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(check_csrf)])

# The manual-entry route of the JSON API admits STAFF (``POST /warnings/manual``), opening a consultation too.
ENTRY_ROLES = STAFF
OPENERS = STAFF
EXTENDERS = STAFF  # ``POST /consultations/{id}/extend``

LEVELS = sorted((lv.value for lv in Level), key=lambda v: LEVEL_RANK[v])  # red first
HAZARDS = [h.value for h in Hazard]
CHANNELS = list(get_args(ManualWarningIn.model_fields["channel"].annotation))
STATUSES = list(get_args(ManualWarningIn.model_fields["status"].annotation))
MSG_TYPES = list(get_args(ManualWarningIn.model_fields["msg_type"].annotation))
TRENDS = list(get_args(JudgementIn.model_fields["trend"].annotation))
CONFIDENCES = list(get_args(JudgementIn.model_fields["confidence"].annotation))
RESPONSE_LEVELS = list(get_args(get_args(DecisionIn.model_fields["response_level"].annotation)[0]))
MEASURE_KINDS = [k for k in get_args(MeasureIn.model_fields["kind"].annotation) if k != "custom"]
JUDGING_STATES = (ConsultationState.OPEN.value, ConsultationState.DEADLINE_PASSED.value)
DEFAULT_DEADLINE_MINUTES = 60


# --------------------------------------------------------------------------- shared helpers


def _tz(settings: Settings) -> ZoneInfo:
    return settings.tz


def _who(actor: str | None, lang: Lang) -> str:
    """An actor as people read it: ``user:zhang`` is zhang, ``rule:…`` the response plan; others as stored."""
    if not actor:
        return ""
    if actor.startswith("rule:"):
        return text("consult.by_rule", lang)
    return actor.removeprefix("user:")


def _area_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """Names of area codes, whether they are stored with 9 or 12 digits: the register holds 12."""
    wanted = {c: normalize_code(c) or c for c in codes}
    found = contact_service.area_names(session, set(wanted.values())) if wanted else {}
    return {c: found[full] for c, full in wanted.items() if full in found}


def _named(codes: Iterable[str], names: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"code": c, "name": names.get(c, c)} for c in codes]


def _departments(session: Session, lang: Lang) -> dict[str, str]:
    return {code: (zh if lang == "zh" else en) for code, zh, en in cs.departments(session)}


def _refusal(run: Callable[[], Response], *, what_zh: str, what_en: str, ident: object) -> Callable[[], Response]:
    """The domain's own refusals, turned into the error the problem page shows (as the API's handlers do)."""
    def wrapped() -> Response:
        try:
            return run()
        except cs.NotFound:
            raise not_found(what_zh, what_en, ident) from None
        except IllegalTransition as exc:
            raise ApiError(409, "illegal_transition", exc.zh, exc.en) from None
    return wrapped




def _row_id(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) < 12 else None


def field_errors(exc: ValidationError, lang: Lang) -> dict[str, str]:
    """The schema's complaints per form field, in the reader's language (the first one for each field)."""
    out: dict[str, str] = {}
    for e in exc.errors():
        loc = e.get("loc") or ("",)
        name = str(loc[0])
        if name in out:
            continue
        kind = e.get("type", "")
        ctx = e.get("ctx") or {}
        if kind in ("missing", "string_too_short", "too_short"):
            msg = text("warn.err.required", lang)
        elif kind == "string_too_long":
            msg = text("warn.err.too_long", lang).format(n=ctx.get("max_length", ""))
        elif kind in ("literal_error", "enum"):
            msg = text("warn.err.choose", lang)
        elif kind.startswith(("datetime", "date", "timezone")):
            msg = text("warn.err.time", lang)
        elif kind.startswith(("int", "greater", "less", "float")):
            msg = text("warn.err.number", lang)
        elif kind == "value_error":
            said = str(ctx.get("error") or e.get("msg", ""))
            zh, _, en = said.partition(" / ")
            msg = (zh if lang == "zh" else en or zh).strip()
        else:
            msg = str(e.get("msg", ""))
        out[name] = msg
    return out


def _local_input(raw: str, tz: ZoneInfo) -> str | None:
    """A ``datetime-local`` value (no zone) read in Asia/Shanghai, as the schema wants an offset."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        when = dt.datetime.fromisoformat(raw)
    except ValueError:
        return raw  # left to the schema, which names the field
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.isoformat()


def _input_value(when: dt.datetime | None, tz: ZoneInfo) -> str:
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


# --------------------------------------------------------------------------- warnings: plain data for templates


def _issuer(w: Warning) -> str:
    info = (w.infos or [{}])[0] if w.infos else {}
    return str(info.get("sender_name") or (w.extra or {}).get("source") or w.sender)


def _warning_row(w: Warning, names: Mapping[str, str], tz: ZoneInfo, lang: Lang) -> dict[str, Any]:
    codes = list((w.affected or {}).get("townships", []))
    return {
        "id": w.id, "level": level_key(w.level), "headline": w.headline or w.event or "",
        "hazard": text(f"hazard.{w.hazard}" if w.hazard else "hazard.none", lang), "event": w.event or "",
        "issuer": _issuer(w), "townships": _named(codes, names), "received": local(w.received_at, tz),
        "sent": local(w.sent, tz), "expires": local(w.expires, tz), "state": w.state, "msg_type": w.msg_type,
        "drill": w.drill, "version": w.version, "manual": w.entry_channel is not None,
    }


def _warning_rows(session: Session, rows: list[Warning], tz: ZoneInfo, lang: Lang) -> list[dict[str, Any]]:
    names = _area_names(session, {c for w in rows for c in (w.affected or {}).get("townships", [])})
    return [_warning_row(w, names, tz, lang) for w in rows]


@router.get("/warnings", response_class=HTMLResponse)
def warnings_list(request: Request, session: DB, settings: SettingsDep, user: PageUser) -> Response:
    lang, tz = lang_of(request), _tz(settings)
    active = _warning_rows(session, warning_service.active_warnings(session), tz, lang)
    active.sort(key=lambda w: w["received"], reverse=True)
    active.sort(key=lambda w: LEVEL_RANK.get(w["level"], 9))  # red first, newest first inside a level
    recent = _warning_rows(session, warning_service.recent_warnings(session, limit=100), tz, lang)
    return render(request, "warnings/list.html", {
        "user": user, "active": active, "recent": recent, "entry_roles": ENTRY_ROLES})


# --------------------------------------------------------------------------- manual entry (接报登记)

MANUAL_TEXT_FIELDS = ("msg_type", "replaces_warning_id", "channel", "source", "caller_name", "caller_unit",
                      "caller_phone", "hazard", "event", "level", "status", "headline", "description",
                      "instruction", "sent", "expires", "area_description")


def _received_from(name: str, unit: str, phone: str) -> str:
    """Who called, as the schema's one field keeps it: 姓名（单位） 电话."""
    who = name.strip()
    if unit.strip():
        who = f"{who}（{unit.strip()}）" if who else unit.strip()
    return " ".join(p for p in (who, phone.strip()) if p)


def _area_choices(session: Session) -> list[dict[str, Any]]:
    """The region's townships, each with its villages, to tick by name (the code is the value)."""
    reg = contact_service.area_register(session)
    if reg is None:
        return []
    towns: dict[str, dict[str, Any]] = {
        code: {"code": code, "name": reg.names.get(code, code), "villages": []} for code in reg.townships}
    for code in reg.villages:
        parent = structural_parent(code)
        if parent in towns:
            towns[parent]["villages"].append({"code": code, "name": reg.names.get(code, code)})
    return list(towns.values())


def _entry_page(request: Request, session: Session, user: User, values: dict[str, Any],
                errors: dict[str, str], *, status: int = 200) -> Response:
    replaces = None
    rid = _row_id(str(values.get("replaces_warning_id") or ""))
    if rid is not None:
        w = warning_service.get_warning(session, rid)
        if w is not None:
            replaces = {"id": w.id, "headline": w.headline or w.event or "", "level": level_key(w.level)}
    return render(request, "warnings/new.html", {
        "user": user, "v": values, "errors": errors, "areas": _area_choices(session), "replaces": replaces,
        "levels": LEVELS, "hazards": HAZARDS, "channels": CHANNELS, "statuses": STATUSES, "msg_types": MSG_TYPES,
        "chosen": set(values.get("area_codes") or []),
    }, status=status)


@router.get("/warnings/new", response_class=HTMLResponse)
def warnings_new(request: Request, session: DB, settings: SettingsDep, user: PageUser,
                 replaces: str = "") -> Response:
    if (denied := refused(request, user, ENTRY_ROLES)) is not None:
        return denied
    values: dict[str, Any] = {k: "" for k in MANUAL_TEXT_FIELDS}
    values.update(msg_type="alert", status="actual", area_codes=[])
    rid = _row_id(replaces)
    if rid is not None:
        old = warning_service.get_warning(session, rid)
        if old is not None:  # an update or cancel of a warning starts from what it says now
            values.update(msg_type="update", replaces_warning_id=str(old.id), hazard=old.hazard or "",
                          event=old.event or "", level=old.level or "", source=_issuer(old),
                          headline=old.headline or "", status=old.status if old.status in STATUSES else "actual",
                          expires=_input_value(old.expires, _tz(settings)))
    return _entry_page(request, session, user, values, {})


@router.post("/warnings/new", response_class=HTMLResponse)
def warnings_new_submit(
    request: Request, session: DB, settings: SettingsDep, clock: ClockDep, user: PageUser,
    msg_type: Annotated[str, Form()] = "alert", replaces_warning_id: Annotated[str, Form()] = "",
    channel: Annotated[str, Form()] = "", source: Annotated[str, Form()] = "",
    caller_name: Annotated[str, Form()] = "", caller_unit: Annotated[str, Form()] = "",
    caller_phone: Annotated[str, Form()] = "", hazard: Annotated[str, Form()] = "",
    event: Annotated[str, Form()] = "", level: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "actual", headline: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "", instruction: Annotated[str, Form()] = "",
    sent: Annotated[str, Form()] = "", expires: Annotated[str, Form()] = "",
    area_description: Annotated[str, Form()] = "", area_codes: Annotated[list[str] | None, Form()] = None,
) -> Response:
    if (denied := refused(request, user, ENTRY_ROLES)) is not None:
        return denied
    lang, tz = lang_of(request), _tz(settings)
    values: dict[str, Any] = {
        "msg_type": msg_type, "replaces_warning_id": replaces_warning_id, "channel": channel, "source": source,
        "caller_name": caller_name, "caller_unit": caller_unit, "caller_phone": caller_phone, "hazard": hazard,
        "event": event, "level": level, "status": status, "headline": headline, "description": description,
        "instruction": instruction, "sent": sent, "expires": expires, "area_description": area_description,
        "area_codes": [c for c in (area_codes or []) if c],
    }
    payload = {
        "msg_type": msg_type or "alert", "replaces_warning_id": replaces_warning_id.strip() or None,
        "channel": channel, "source": source.strip(), "received_from": _received_from(caller_name, caller_unit,
                                                                                      caller_phone),
        "hazard": hazard, "event": event.strip(), "level": level or None, "status": status or "actual",
        "headline": headline.strip(), "description": description.strip(), "instruction": instruction.strip(),
        "sent": _local_input(sent, tz), "expires": _local_input(expires, tz),
        "area_description": area_description.strip(), "area_codes": values["area_codes"],
    }
    try:
        body = ManualWarningIn.model_validate(payload)
    except ValidationError as exc:
        return _entry_page(request, session, user, values, field_errors(exc, lang), status=422)
    if body.msg_type != "alert" and body.replaces_warning_id is None:  # the API's own rule, with its status
        return _entry_page(request, session, user, values,
                           {"replaces_warning_id": text("warn.err.replaces", lang)}, status=400)

    def enter() -> Response:
        try:
            _outcome, w = warning_service.enter_manual(
                session, body, username=user.username, now=clock.now(),
                listeners=listeners_of(request.app.state.runtime.state))
        except LookupError:
            raise not_found("预警", "Warning", body.replaces_warning_id) from None
        except ValueError as exc:
            session.commit()  # the quarantined evidence is kept, as the API keeps it
            raise bad_request("invalid_area", f"区域无效：{exc}", f"Invalid area: {exc}") from None
        session.commit()
        return redirect(f"/console/warnings/{w.id}", done="warn_entered")

    return attempt(request, enter, back="/console/warnings/new")


# --------------------------------------------------------------------------- one warning


def _version_row(w: Warning, tz: ZoneInfo, current_id: int) -> dict[str, Any]:
    return {"id": w.id, "msg_type": w.msg_type, "level": level_key(w.level), "headline": w.headline or w.event or "",
            "sent": local(w.sent, tz), "received": local(w.received_at, tz), "state": w.state,
            "version": w.version, "current": w.id == current_id}


def _affected(session: Session, w: Warning) -> dict[str, Any]:
    aff = w.affected or {}
    townships, villages = list(aff.get("townships", [])), list(aff.get("villages", []))
    names = _area_names(session, [*townships, *villages])
    sites = [{"id": s.get("id"), "name": s.get("name") or str(s.get("id")), "kind": s.get("kind") or ""}
             for s in aff.get("sites", []) if isinstance(s, dict)]
    return {"townships": _named(townships, names), "villages": _named(villages, names), "sites": sites,
            "unknown": list(aff.get("unknown_geocodes", []) or []), "error": aff.get("error") or ""}


def _consultation_rows(session: Session, rows: Iterable[Consultation], tz: ZoneInfo, now: dt.datetime,
                       departments: Mapping[str, str]) -> list[dict[str, Any]]:
    out = []
    for c in rows:
        judged = {j.department for j in cs.judgements(session, c.id)}
        waiting = c.state in JUDGING_STATES
        out.append({
            "id": c.id, "level": level_key(c.level), "state": c.state, "deadline": local(c.deadline, tz),
            "overdue": waiting and now > c.deadline, "waiting": waiting, "drill": c.drill,
            "missing": [departments.get(d, d) for d in c.invited if d not in judged],
            "invited": [departments.get(d, d) for d in c.invited], "warning_id": c.warning_id,
            "opened": local(c.opened_at, tz), "hazard": c.hazard,
        })
    return out


def _warning_page(request: Request, session: Session, settings: Settings, now: dt.datetime, user: User,
                  warning_id: int, *, errors: dict[str, str] | None = None,
                  values: dict[str, Any] | None = None, status: int = 200) -> Response:
    lang, tz = lang_of(request), _tz(settings)
    w = warning_service.get_warning(session, warning_id)
    if w is None:
        return problem(request, not_found("预警", "Warning", warning_id), back="/console/warnings")
    thread_id = w.thread_id or w.id
    departments = _departments(session, lang)
    consultations = _consultation_rows(session, cs.for_thread(session, thread_id), tz, now, departments)
    live = next((c for c in consultations if c["waiting"]), None)
    runs = [{"id": r.id, "number": r.number, "level": level_key(r.level), "response_level": r.response_level,
             "state": r.state, "started": local(r.started_at, tz), "drill": r.drill}
            for r in run_service.runs_for_thread(session, thread_id)]
    info = (w.infos or [{}])[0] if w.infos else {}
    extra = w.extra or {}
    is_head = w.superseded_by_id is None and w.state == WarningState.ACTIVE.value
    row = _warning_row(w, {}, tz, lang)
    return render(request, "warnings/detail.html", {
        "user": user, "w": row, "identifier": w.identifier, "sender": w.sender,
        "description": info.get("description") or "", "instruction": info.get("instruction") or "",
        "area_description": w.area_description or "", "onset": local(w.onset, tz),
        "effective": local(w.effective, tz), "entered_by": w.entered_by or "", "channel": w.entry_channel or "",
        "received_from": str(extra.get("received_from") or ""), "flag": w.flag_reason or "",
        "versions": [_version_row(v, tz, w.id) for v in threads.thread_versions(session, thread_id)],
        "affected": _affected(session, w),
        "cap": warning_service.cap_document(session, w, tz=tz).decode("utf-8", errors="replace"),
        "consultations": consultations, "runs": runs,
        "can_open": is_head and live is None and user_can(user, OPENERS),
        "can_enter_update": is_head and user_can(user, ENTRY_ROLES),
        "departments": departments, "errors": errors or {},
        "v": values or {"departments": [], "deadline_minutes": str(DEFAULT_DEADLINE_MINUTES),
                        "reminder_minutes": ""},
    }, status=status)


@router.get("/warnings/{warning_id}", response_class=HTMLResponse)
def warning_detail(warning_id: str, request: Request, session: DB, settings: SettingsDep, clock: ClockDep,
                   user: PageUser) -> Response:
    wid = _row_id(warning_id)
    if wid is None:
        return problem(request, not_found("预警", "Warning", warning_id), back="/console/warnings")
    return _warning_page(request, session, settings, clock.now(), user, wid)


@router.post("/warnings/{warning_id}/consultation", response_class=HTMLResponse)
def warning_open_consultation(
    warning_id: str, request: Request, session: DB, settings: SettingsDep, clock: ClockDep, user: PageUser,
    departments: Annotated[list[str] | None, Form()] = None, deadline_minutes: Annotated[str, Form()] = "",
    reminder_minutes: Annotated[str, Form()] = "",
) -> Response:
    """Mirrors ``POST /consultations``: STAFF open one for an active warning, mode ``manual``."""
    if (denied := refused(request, user, OPENERS)) is not None:
        return denied
    back = f"/console/warnings/{warning_id}"
    wid = _row_id(warning_id)
    if wid is None:
        return problem(request, not_found("预警", "Warning", warning_id), back="/console/warnings")
    values = {"departments": [d for d in departments or [] if d], "deadline_minutes": deadline_minutes,
              "reminder_minutes": reminder_minutes}
    try:
        body = ConsultationOpen.model_validate({
            "warning_id": wid, "departments": values["departments"], "deadline_minutes": deadline_minutes.strip(),
            "reminder_minutes": reminder_minutes.strip() or None})
    except ValidationError as exc:
        return _warning_page(request, session, settings, clock.now(), user, wid,
                             errors=field_errors(exc, lang_of(request)), values=values, status=422)

    def open_one() -> Response:
        w = warning_service.get_warning(session, wid)
        if w is None:
            raise not_found("预警", "warning", wid)
        if w.state != WarningState.ACTIVE.value:
            raise ApiError(409, "warning_not_active", "该预警已不在生效状态，不能发起会商",
                           "the warning is not active; no consultation can be opened")
        codes = [_department_code(session, d) for d in body.departments]
        c = cs.open_consultation(session, warning=w, invited=codes, deadline_minutes=body.deadline_minutes,
                                 reminder_minutes=body.reminder_minutes, mode="manual", actor=actor_of(user),
                                 now=clock.now())
        session.commit()
        return redirect(f"/console/consultations/{c.id}", done="consult_opened")

    return attempt(request, _refusal(open_one, what_zh="预警", what_en="warning", ident=wid), back=back)


def _department_code(session: Session, key: str) -> str:
    dept = find_department(session, key)
    if dept is None:
        raise ApiError(400, "unknown_department", f"未知部门：{key}", f"unknown department: {key}")
    return dept.code


# --------------------------------------------------------------------------- consultations


@router.get("/consultations", response_class=HTMLResponse)
def consultations_list(request: Request, session: DB, settings: SettingsDep, clock: ClockDep,
                       user: PageUser) -> Response:
    lang, tz, now = lang_of(request), _tz(settings), clock.now()
    departments = _departments(session, lang)
    waiting_rows = cs.waiting(session)
    waiting = _consultation_rows(session, waiting_rows, tz, now, departments)
    waiting.sort(key=lambda c: (not c["overdue"], LEVEL_RANK.get(c["level"], 9)))  # overdue first, then red
    seen = {c.id for c in waiting_rows}
    recent = _consultation_rows(session, [c for c in cs.recent(session, limit=50) if c.id not in seen], tz, now,
                                departments)
    headlines = _headlines(session, [*waiting, *recent])
    return render(request, "warnings/consultations.html", {
        "user": user, "waiting": waiting, "recent": recent, "headlines": headlines})


def _headlines(session: Session, rows: Iterable[Mapping[str, Any]]) -> dict[int, str]:
    out: dict[int, str] = {}
    for r in rows:
        wid = int(r["warning_id"])
        if wid not in out:
            w = warning_service.get_warning(session, wid)
            out[wid] = (w.headline or w.event or "") if w is not None else ""
    return out


def _judgement_row(j: Judgement, tz: ZoneInfo, departments: Mapping[str, str], lang: Lang) -> dict[str, Any]:
    return {"id": j.id, "department": departments.get(j.department, j.department), "code": j.department,
            "author": _who(j.author, lang), "recorded": local(j.recorded_at, tz),
            "level": level_key(j.assessed_level) if j.assessed_level else "", "trend": j.trend,
            "confidence": j.confidence, "text": j.text or "", "measures": list(j.measures or []), "late": j.late}


def _consultation_page(request: Request, session: Session, settings: Settings, now: dt.datetime, user: User,
                       consultation_id: int, *, errors: dict[str, dict[str, str]] | None = None,
                       values: dict[str, dict[str, Any]] | None = None, status: int = 200) -> Response:
    lang, tz = lang_of(request), _tz(settings)
    try:
        c = cs.get(session, consultation_id)
    except cs.NotFound:
        return problem(request, not_found("会商", "consultation", consultation_id), back="/console/consultations")
    departments = _departments(session, lang)
    current = {j.department: _judgement_row(j, tz, departments, lang) for j in cs.judgements(session, c.id)}
    current_ids = {j["id"] for j in current.values()}
    history = [_judgement_row(j, tz, departments, lang)
               for j in cs.judgements(session, c.id, current_only=False) if j.id not in current_ids]
    invited = [{"code": d, "name": departments.get(d, d), "judgement": current.get(d),
                "flagged": d in (c.missing or [])} for d in c.invited]
    decisions = [{"version": d.version, "level": level_key(d.final_level), "response_level": d.response_level,
                  "reason": d.reason or "", "by": _who(d.decided_by, lang), "at": local(d.decided_at, tz)}
                 for d in cs.decisions(session, c.id)]
    w = warning_service.get_warning(session, c.warning_id)
    warning = _warning_row(w, _area_names(session, (w.affected or {}).get("townships", [])), tz, lang) if w else None
    judging = c.state in JUDGING_STATES
    own = user.department.code if user.department is not None else None
    analyst = Role(user.role) is Role.ANALYST
    if not judging or not user_can(user, JUDGES):
        judge_for: list[dict[str, str]] = []
    elif analyst:
        judge_for = [{"code": own, "name": departments.get(own, own)}] if own in c.invited else []
    else:
        judge_for = [{"code": d, "name": departments.get(d, d)} for d in c.invited]
    area_codes = [*(c.areas or {}).get("townships", []), *(c.areas or {}).get("villages", [])]
    names = _area_names(session, area_codes)
    runs = [{"id": r.id, "number": r.number, "state": r.state, "level": level_key(r.level)}
            for r in run_service.runs_for_thread(session, c.thread_id)]
    return render(request, "warnings/consultation.html", {
        "user": user, "c": {
            "id": c.id, "state": c.state, "mode": c.mode, "level": level_key(c.level), "drill": c.drill,
            "hazard": text(f"hazard.{c.hazard}" if c.hazard else "hazard.none", lang),
            "opened": local(c.opened_at, tz), "opened_by": _who(c.opened_by, lang), "deadline": local(c.deadline, tz),
            "overdue": judging and now > c.deadline, "dismiss_reason": c.dismiss_reason or "",
            "close_reason": c.close_reason or "", "decided": local(c.decided_at, tz),
            "townships": _named((c.areas or {}).get("townships", []), names),
            "villages": _named((c.areas or {}).get("villages", []), names),
        },
        "warning": warning, "invited": invited, "history": history, "decisions": decisions, "runs": runs,
        "judge_for": judge_for, "analyst_outside": analyst and judging and own not in c.invited,
        "can_extend": judging and user_can(user, EXTENDERS),
        "can_decide": (judging or c.state == ConsultationState.DECIDED.value) and user_can(user, DECIDERS),
        "revising": c.state == ConsultationState.DECIDED.value,
        "can_dismiss": judging and user_can(user, DECIDERS),
        "levels": LEVELS, "trends": TRENDS, "confidences": CONFIDENCES, "response_levels": RESPONSE_LEVELS,
        "measure_kinds": MEASURE_KINDS, "errors": errors or {}, "v": values or {},
    }, status=status)


@router.get("/consultations/{consultation_id}", response_class=HTMLResponse)
def consultation_detail(consultation_id: str, request: Request, session: DB, settings: SettingsDep,
                        clock: ClockDep, user: PageUser) -> Response:
    cid = _row_id(consultation_id)
    if cid is None:
        return problem(request, not_found("会商", "consultation", consultation_id), back="/console/consultations")
    return _consultation_page(request, session, settings, clock.now(), user, cid)


def _consultation_action(
    request: Request, session: Session, settings: Settings, clock: Clock, user: User, consultation_id: str, *,
    form: str, values: dict[str, Any], validate: Callable[[], Any], act: Callable[[Any, int], str],
) -> Response:
    """The shape every consultation form shares: validate with the API's schema, act, commit once, go back.

    ``act`` calls the service and returns the ``done`` key; invalid input shows the page again with the
    user's values under the form that was sent (422).
    """
    cid = _row_id(consultation_id)
    back = f"/console/consultations/{consultation_id}"
    if cid is None:
        return problem(request, not_found("会商", "consultation", consultation_id), back="/console/consultations")
    try:
        body = validate()
    except ValidationError as exc:
        return _consultation_page(request, session, settings, clock.now(), user, cid,
                                  errors={form: field_errors(exc, lang_of(request))}, values={form: values},
                                  status=422)

    def run() -> Response:
        cs.get(session, cid)  # an unknown id answers 404 before anything else, as the API's ``_load``
        done = act(body, cid)
        session.commit()
        return redirect(back, done=done)

    return attempt(request, _refusal(run, what_zh="会商", what_en="consultation", ident=cid), back=back)


@router.post("/consultations/{consultation_id}/judgement", response_class=HTMLResponse)
def consultation_judge(
    consultation_id: str, request: Request, session: DB, settings: SettingsDep, clock: ClockDep, user: PageUser,
    department: Annotated[str, Form()] = "", assessed_level: Annotated[str, Form()] = "",
    trend: Annotated[str, Form()] = "", confidence: Annotated[str, Form()] = "",
    judgement_text: Annotated[str, Form(alias="text")] = "",
    measures: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Mirrors ``POST /consultations/{id}/judgements``: JUDGES; an analyst only for their own department."""
    if (denied := refused(request, user, JUDGES)) is not None:
        return denied
    values = {"department": department, "assessed_level": assessed_level, "trend": trend,
              "confidence": confidence, "text": judgement_text, "measures": [m for m in measures or [] if m]}

    def validate() -> JudgementIn:
        data: dict[str, Any] = {"trend": trend, "confidence": confidence, "text": judgement_text,
                                "measures": values["measures"]}
        if department.strip():
            data["department"] = department.strip()
        if assessed_level:  # left unchosen it is missing; "none" is the judgement that no warning is needed
            data["assessed_level"] = None if assessed_level == "none" else assessed_level
        return JudgementIn.model_validate(data)

    def act(body: JudgementIn, cid: int) -> str:
        code = _department_code(session, body.department)
        if Role(user.role) is Role.ANALYST:
            own = user.department
            if own is None or own.code != code:
                raise ApiError(403, "not_your_department",
                               f"部门研判人员只能录入本部门（{own.name if own else '未绑定部门'}）的研判意见",
                               "an analyst may record judgements only for their own department",
                               {"allowed": [own.code] if own else []})
        data = cs.JudgementInput(department=code, assessed_level=body.assessed_level, trend=body.trend,
                                 confidence=body.confidence, text=body.text, measures=body.measures)
        cs.record_judgement(session, cid, data, actor=actor_of(user), now=clock.now())
        return "consult_judged"

    return _consultation_action(request, session, settings, clock, user, consultation_id, form="judgement",
                                values=values, validate=validate, act=act)


@router.post("/consultations/{consultation_id}/extend", response_class=HTMLResponse)
def consultation_extend(consultation_id: str, request: Request, session: DB, settings: SettingsDep,
                        clock: ClockDep, user: PageUser, minutes: Annotated[str, Form()] = "") -> Response:
    """Mirrors ``POST /consultations/{id}/extend``: STAFF."""
    if (denied := refused(request, user, EXTENDERS)) is not None:
        return denied

    def act(body: ExtendIn, cid: int) -> str:
        cs.extend(session, cid, minutes=body.minutes, actor=actor_of(user), now=clock.now())
        return "consult_extended"

    return _consultation_action(request, session, settings, clock, user, consultation_id, form="extend",
                                values={"minutes": minutes},
                                validate=lambda: ExtendIn.model_validate({"minutes": minutes.strip()}), act=act)


@router.post("/consultations/{consultation_id}/decision", response_class=HTMLResponse)
def consultation_decide(
    consultation_id: str, request: Request, session: DB, settings: SettingsDep, clock: ClockDep, user: PageUser,
    final_level: Annotated[str, Form()] = "", response_level: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Mirrors ``POST /consultations/{id}/decisions``: DECIDERS; the plan's areas and measures apply."""
    if (denied := refused(request, user, DECIDERS)) is not None:
        return denied

    def act(body: DecisionIn, cid: int) -> str:
        data = cs.DecisionInput(final_level=body.final_level, response_level=body.response_level, areas=None,
                                measures=None, reason=body.reason)
        listeners = cs.decision_listeners_of(request.app.state.runtime.state)
        d = cs.decide(session, cid, data, actor=actor_of(user), now=clock.now(), listeners=listeners)
        return "consult_revised" if d.version > 1 else "consult_decided"

    return _consultation_action(
        request, session, settings, clock, user, consultation_id, form="decision",
        values={"final_level": final_level, "response_level": response_level, "reason": reason},
        validate=lambda: DecisionIn.model_validate({"final_level": final_level,
                                                    "response_level": response_level or None,
                                                    "reason": reason.strip()}), act=act)


@router.post("/consultations/{consultation_id}/dismiss", response_class=HTMLResponse)
def consultation_dismiss(consultation_id: str, request: Request, session: DB, settings: SettingsDep,
                         clock: ClockDep, user: PageUser, reason: Annotated[str, Form()] = "") -> Response:
    """Mirrors ``POST /consultations/{id}/dismiss``: DECIDERS, with a reason."""
    if (denied := refused(request, user, DECIDERS)) is not None:
        return denied

    def act(body: DismissIn, cid: int) -> str:
        cs.dismiss(session, cid, reason=body.reason, actor=actor_of(user), now=clock.now())
        return "consult_dismissed"

    return _consultation_action(request, session, settings, clock, user, consultation_id, form="dismiss",
                                values={"reason": reason},
                                validate=lambda: DismissIn.model_validate({"reason": reason.strip()}), act=act)
