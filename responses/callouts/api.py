"""Routers: contacts (list, edit, import, coverage) and callouts (board per run, answers).

Phone numbers are personal data: contacts are for staff only. Boards are readable by every role,
because the leader, analysts and auditors all need to see who has answered.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, UploadFile
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from config.errors import ApiError, errors, not_found
from config.eventlog import record
from config.fields import PHONE_RE, RowId
from config.users import Role, User
from config.web import ALL_ROLES, DB, STAFF, ClockDep, SettingsDep, actor_of, require
from responses.callouts import answers
from responses.callouts import board as callout_board
from responses.callouts import service as svc
from responses.callouts.core import AnswerChannel
from responses.callouts.models import Answer, Callout
from responses.callouts.schemas import AnswerIn, ContactIn, ContactPatch, DutyIn
from responses.contacts import service as csvc
from responses.contacts.core import PhoneError, normalize_phone
from responses.contacts.models import Contact, Duty
from responses.runs.models import ResponseRun

router = APIRouter(prefix="/callouts", tags=["callouts"])
contacts_router = APIRouter(prefix="/contacts", tags=["contacts"])

EDITORS = (Role.ADMIN, Role.DUTY_OFFICER)


def _phone(raw: str | None, field: str) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        number = normalize_phone(raw)
    except PhoneError as exc:
        raise ApiError(422, "bad_phone", f"{field}：{exc.zh}", f"{field}: {exc.en}") from None
    if not PHONE_RE.match(raw):  # the documented pattern: ASCII digits only, as E.164 needs
        raise ApiError(422, "bad_phone", f"{field}：号码只能使用半角数字：{raw}",
                       f"{field}: a number is written with ASCII digits: {raw}")
    return number


def _contact(db: DB, contact_id: int) -> Contact:
    c = db.execute(select(Contact).where(Contact.id == contact_id).options(selectinload(Contact.duties))
                   ).scalar_one_or_none()
    if c is None:
        raise not_found("联系人", "contact", contact_id)
    return c


def _duty(db: DB, d: DutyIn, now: Any) -> Duty:
    try:
        return csvc.new_duty(db, role=d.role, area_code=d.area_code, site_id=d.site_id, department=d.department,
                             active_from=d.active_from, active_to=d.active_to, now=now)
    except csvc.DutyPlaceError as exc:
        errs = exc.errors
        raise ApiError(422, "bad_duty", errs[0].message, errs[0].message_en,
                       details=[e.as_dict() for e in errs]) from None


def _duplicate_phone() -> ApiError:
    return ApiError(409, "phone_taken", "该号码已属于其他联系人", "the number already belongs to another contact")


@contacts_router.get("", dependencies=[require(*STAFF)])
def contacts_list(db: DB, clock: ClockDep, q: str | None = None, role: str | None = None,
                  area_code: str | None = None, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """联系人列表 / contacts, filtered by name or number, role, area."""
    stmt = select(Contact).options(selectinload(Contact.duties))
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Contact.name.like(like), Contact.phone.like(like)))
    if role or area_code:
        sub = select(Duty.contact_id)
        if role:
            sub = sub.where(Duty.role == role)
        if area_code:
            sub = sub.where(Duty.area_code == area_code)
        stmt = stmt.where(Contact.id.in_(sub))
    total = db.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = db.execute(stmt.order_by(Contact.id).limit(max(1, min(limit, 1000))).offset(max(0, offset))).scalars()
    now = clock.now()
    return {"total": total, "items": [csvc.contact_dict(c, now) for c in rows]}


@contacts_router.get("/coverage", dependencies=[require(*STAFF)])
def contacts_coverage(db: DB, clock: ClockDep) -> dict[str, Any]:
    """覆盖情况：没有可联系责任人的村（社区）/ villages with no reachable responsible person."""
    return csvc.coverage_report(db, now=clock.now()).as_dict()


@contacts_router.post("/import", dependencies=[require(*EDITORS)])
def contacts_import(db: DB, clock: ClockDep, settings: SettingsDep, user: User = require(*EDITORS),
                    file: UploadFile = File(...), skip_invalid: bool = Form(False)) -> dict[str, Any]:
    """导入联系人（CSV / XLSX，中文表头）/ import contacts; all or nothing unless skip_invalid."""
    data = file.file.read(csvc.MAX_FILE_BYTES + 1)
    try:
        report = csvc.import_contacts(db, data=data, filename=file.filename or "upload.csv", actor=actor_of(user),
                                      now=clock.now(), tz=settings.tz, skip_invalid=skip_invalid)
    except csvc.ContactFileError as exc:
        raise ApiError(400, "bad_file", exc.zh, exc.en) from None
    db.commit()  # a rejected import is kept too (the file and its report), for inspection
    body = report.as_dict()
    if report.status == "rejected":
        raise ApiError(422, "import_rejected", f"导入未执行：{len(report.errors)} 处错误，见详情；或勾选“跳过错误行”",
                       f"nothing imported: {len(report.errors)} problems, see details", details=body)
    return body


@contacts_router.get("/{contact_id}", dependencies=[require(*STAFF)], responses=errors(404))
def contacts_get(contact_id: RowId, db: DB, clock: ClockDep) -> dict[str, Any]:
    """一个联系人 / one contact with duties."""
    return csvc.contact_dict(_contact(db, contact_id), clock.now())


@contacts_router.post("", status_code=201, dependencies=[require(*EDITORS)], responses=errors(409))
def contacts_create(body: ContactIn, db: DB, clock: ClockDep, user: User = require(*EDITORS)) -> dict[str, Any]:
    """新增联系人 / create a contact with duties."""
    now = clock.now()
    phone = _phone(body.phone, "手机")
    if phone is None:
        raise ApiError(422, "bad_phone", "手机号不能为空", "phone cannot be empty")
    if csvc.find_by_phone(db, phone) is not None:
        raise _duplicate_phone()
    c = Contact(name=body.name, phone=phone, backup_phone=_phone(body.backup_phone, "备用电话"),
                two_way_sms=body.two_way_sms, active=True, active_from=body.active_from, active_to=body.active_to,
                note=body.note, created_at=now, updated_at=now, duties=[])
    for d in body.duties:
        c.duties.append(_duty(db, d, now))
    db.add(c)
    try:
        db.flush()
    except IntegrityError:
        raise _duplicate_phone() from None
    record(db, now=now, action="contact.created", entity_type="contact", entity_id=c.id, actor=actor_of(user),
           payload={"name": c.name, "phone": c.phone, "duties": [[d.role, d.place] for d in c.duties]})
    db.commit()
    return csvc.contact_dict(c, now)


@contacts_router.patch("/{contact_id}", dependencies=[require(*EDITORS)], responses=errors(404, 409))
def contacts_update(contact_id: RowId, body: ContactPatch, db: DB, clock: ClockDep,
                    user: User = require(*EDITORS)) -> dict[str, Any]:
    """修改联系人（停用、换号）/ edit a contact (deactivate, change numbers)."""
    now = clock.now()
    c = _contact(db, contact_id)
    changes: dict[str, Any] = {}
    fields = body.model_dump(exclude_unset=True)
    for key, val in fields.items():
        if key in ("phone", "backup_phone"):
            val = _phone(val, "手机" if key == "phone" else "备用电话")
            if key == "phone" and val is None:
                raise ApiError(422, "bad_phone", "手机号不能为空", "phone cannot be empty")
        if getattr(c, key) != val:
            changes[key] = [getattr(c, key), val]
            setattr(c, key, val)
    if changes:
        c.updated_at = now
        try:
            db.flush()
        except IntegrityError:
            raise _duplicate_phone() from None
        record(db, now=now, action="contact.updated", entity_type="contact", entity_id=c.id, actor=actor_of(user),
               payload={"changes": changes})
        db.commit()
    return csvc.contact_dict(c, now)


@contacts_router.post("/{contact_id}/duties", status_code=201, dependencies=[require(*EDITORS)],
                      responses=errors(404, 409))
def contacts_add_duty(contact_id: RowId, body: DutyIn, db: DB, clock: ClockDep,
                      user: User = require(*EDITORS)) -> dict[str, Any]:
    """增加职务 / add a duty."""
    now = clock.now()
    c = _contact(db, contact_id)
    d = _duty(db, body, now)
    if any(x.role == d.role and x.place == d.place for x in c.duties):
        raise ApiError(409, "duty_exists", "该联系人已有此职务", "the contact already holds this duty")
    c.duties.append(d)
    db.flush()
    record(db, now=now, action="contact.duty_added", entity_type="contact", entity_id=c.id, actor=actor_of(user),
           payload={"duty_id": d.id, "role": d.role, "place": d.place})
    db.commit()
    return csvc.contact_dict(c, now)


@contacts_router.delete("/{contact_id}/duties/{duty_id}", dependencies=[require(*EDITORS)], responses=errors(404))
def contacts_remove_duty(contact_id: RowId, duty_id: RowId, db: DB, clock: ClockDep,
                         user: User = require(*EDITORS)) -> dict[str, Any]:
    """删除职务 / remove a duty."""
    now = clock.now()
    c = _contact(db, contact_id)
    d = next((x for x in c.duties if x.id == duty_id), None)
    if d is None:
        raise not_found("职务", "duty", duty_id)
    c.duties.remove(d)
    db.flush()
    record(db, now=now, action="contact.duty_removed", entity_type="contact", entity_id=c.id, actor=actor_of(user),
           payload={"duty_id": duty_id, "role": d.role, "place": d.place})
    db.commit()
    return csvc.contact_dict(c, now)


# ---------------------------------------------------------------------------------------------- callouts


@router.get("/runs/{run_id}/board", dependencies=[require(*ALL_ROLES)], responses=errors(404))
def callouts_board(run_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep) -> dict[str, Any]:
    """叫应看板：谁、哪些村、状态、应答用时、呼叫记录、升级 / the call-and-answer board of a run."""
    if db.get(ResponseRun, run_id) is None:
        raise not_found("响应", "run", run_id)
    return callout_board.board(db, run_id, now=clock.now(), tz=settings.tz)


@router.post("/runs/{run_id}/start", dependencies=[require(*STAFF)], responses=errors(404, 409))
def callouts_start_run(run_id: RowId, db: DB, clock: ClockDep, user: User = require(*STAFF)) -> dict[str, Any]:
    """为响应补发叫应（已叫过的人不再重复）/ call the run's responsible people not yet called."""
    run = db.get(ResponseRun, run_id)
    if run is None:
        raise not_found("响应", "run", run_id)
    if run.state != "active":
        raise ApiError(409, "run_not_active", "响应不在进行中，不能发起叫应", "the run is not active")
    try:
        created = svc.create_run_callouts(db, run, now=clock.now(), actor=actor_of(user))
    except svc.CalloutError as exc:
        raise ApiError(exc.status, exc.code, exc.zh, exc.en) from None
    db.commit()
    return {"created": len(created), "callouts": [c.id for c in created]}


@router.get("/{callout_id}", dependencies=[require(*ALL_ROLES)], responses=errors(404))
def callouts_get(callout_id: RowId, db: DB, clock: ClockDep, settings: SettingsDep) -> dict[str, Any]:
    """一条叫应的详情 / one callout with attempts, answers, escalations."""
    c = db.get(Callout, callout_id)
    if c is None:
        raise not_found("叫应", "callout", callout_id)
    b = callout_board.board(db, c.run_id, now=clock.now(), tz=settings.tz)
    return next(r for r in b["callouts"] if r["id"] == c.id)


@router.post("/{callout_id}/answers", status_code=201, dependencies=[require(*STAFF)], responses=errors(404, 409))
def callouts_answer(callout_id: RowId, body: AnswerIn, db: DB, clock: ClockDep,
                    user: User = require(*STAFF)) -> dict[str, Any]:
    """值班员录入应答（电话确认须填写说明）/ a duty officer enters an answer (phone-confirmed needs a note)."""
    if body.channel not in (AnswerChannel.DUTY_OFFICER, AnswerChannel.WEB):
        raise ApiError(422, "channel_not_manual", "语音按键和短信回复由系统自动记录，不能手工录入",
                       "keypress and SMS-reply answers come from the provider, not from this form")
    if body.channel is AnswerChannel.DUTY_OFFICER and not body.note.strip():
        raise ApiError(422, "note_required", "电话确认必须填写说明（与谁通话、对方怎么说）",
                       "a phone-confirmed answer needs a note (who was reached, what they said)")
    c = callout_board.get_callout(db, callout_id, lock=True)
    if c is None:
        raise not_found("叫应", "callout", callout_id)
    try:
        ans: Answer = answers.record_answer(db, c, now=clock.now(), channel=body.channel, kind=body.kind,
                                        entered_by=actor_of(user), note=body.note, report=body.report)
    except svc.CalloutError as exc:
        raise ApiError(exc.status, exc.code, exc.zh, exc.en) from None
    db.commit()
    return {"id": ans.id, "callout_id": c.id, "channel": ans.channel, "kind": ans.kind, "late": ans.late,
            "state": c.state}
