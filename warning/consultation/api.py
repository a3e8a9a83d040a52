"""Consultation API: open, judge, extend, decide, revise, dismiss — each with its role check.

An analyst records judgements only for their own department; only a leader (or an admin) decides
or dismisses. A move the workflow does not allow answers 409 with what is allowed instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from config.errors import ApiError, errors, not_found
from config.fields import RowId
from config.users import Department, Role, User, find_department
from config.web import ALL_ROLES, DB, STAFF, ClockDep, actor_of, require
from warning.consultation import service as cs
from warning.consultation.models import Consultation
from warning.consultation.schemas import (
    ConsultationDetail,
    ConsultationOpen,
    ConsultationOut,
    DecisionIn,
    DecisionOut,
    DismissIn,
    ExtendIn,
    JudgementIn,
    JudgementOut,
)
from warning.models import Warning

router = APIRouter(prefix="/consultations", tags=["consultations"])

DECIDERS = (Role.ADMIN, Role.LEADER)
JUDGES = (*STAFF, Role.ANALYST)


def _load(db: DB, consultation_id: int) -> Consultation:
    try:
        return cs.get(db, consultation_id)
    except cs.NotFound:
        raise not_found("会商", "consultation", consultation_id) from None


def _detail(db: DB, c: Consultation) -> ConsultationDetail:
    out = ConsultationDetail.model_validate(c, from_attributes=True)
    out.judgements = [JudgementOut.model_validate(j) for j in cs.judgements(db, c.id)]
    out.judgement_history = [JudgementOut.model_validate(j) for j in cs.judgements(db, c.id, current_only=False)]
    out.decisions = [DecisionOut.model_validate(d) for d in cs.decisions(db, c.id)]
    return out


def _department_code(db: DB, key: str) -> str:
    dept = find_department(db, key)
    if dept is None:
        raise ApiError(400, "unknown_department", f"未知部门：{key}", f"unknown department: {key}")
    return dept.code


@router.get("", response_model=list[ConsultationOut], dependencies=[require(*ALL_ROLES)])
def consultations_list(db: DB, state: str | None = None, limit: int = 100) -> Any:
    stmt = select(Consultation).order_by(Consultation.id.desc()).limit(min(max(limit, 1), 500))
    if state:
        stmt = stmt.where(Consultation.state == state)
    return list(db.execute(stmt).scalars())


@router.get("/{consultation_id}", response_model=ConsultationDetail, dependencies=[require(*ALL_ROLES)],
            responses=errors(404))
def consultations_get(consultation_id: RowId, db: DB) -> Any:
    return _detail(db, _load(db, consultation_id))


@router.post("", response_model=ConsultationDetail, status_code=201, responses=errors(404, 409))
def consultations_open(body: ConsultationOpen, db: DB, clock: ClockDep, user: User = require(*STAFF)) -> Any:
    warning = db.get(Warning, body.warning_id)
    if warning is None:
        raise not_found("预警", "warning", body.warning_id)
    if warning.state != "active":
        raise ApiError(409, "warning_not_active", "该预警已不在生效状态，不能发起会商",
                       "the warning is not active; no consultation can be opened")
    codes = [_department_code(db, d) for d in body.departments]
    c = cs.open_consultation(db, warning=warning, invited=codes, deadline_minutes=body.deadline_minutes,
                             reminder_minutes=body.reminder_minutes, mode="manual", actor=actor_of(user),
                             now=clock.now())
    db.commit()
    return _detail(db, c)


@router.post("/{consultation_id}/judgements", response_model=JudgementOut, status_code=201,
             responses=errors(404, 409))
def consultations_judge(consultation_id: RowId, body: JudgementIn, db: DB, clock: ClockDep,
                        user: User = require(*JUDGES)) -> Any:
    code = _department_code(db, body.department)
    if Role(user.role) is Role.ANALYST:
        own = db.get(Department, user.department_id) if user.department_id else None
        if own is None or own.code != code:
            raise ApiError(403, "not_your_department",
                           f"部门研判人员只能录入本部门（{own.name if own else '未绑定部门'}）的研判意见",
                           "an analyst may record judgements only for their own department",
                           {"allowed": [own.code] if own else []})
    _load(db, consultation_id)
    data = cs.JudgementInput(
        department=code, assessed_level=body.assessed_level, trend=body.trend, confidence=body.confidence,
        text=body.text, areas_add=body.areas_add.model_dump() if body.areas_add else None,
        areas_remove=body.areas_remove.model_dump() if body.areas_remove else None, measures=body.measures)
    j = cs.record_judgement(db, consultation_id, data, actor=actor_of(user), now=clock.now())
    db.commit()
    return j


@router.post("/{consultation_id}/extend", response_model=ConsultationOut, responses=errors(404, 409))
def consultations_extend(consultation_id: RowId, body: ExtendIn, db: DB, clock: ClockDep,
                         user: User = require(*STAFF)) -> Any:
    _load(db, consultation_id)
    c = cs.extend(db, consultation_id, minutes=body.minutes, actor=actor_of(user), now=clock.now())
    db.commit()
    return c


@router.post("/{consultation_id}/decisions", response_model=DecisionOut, status_code=201,
             responses=errors(404, 409))
def consultations_decide(consultation_id: RowId, body: DecisionIn, request: Request, db: DB, clock: ClockDep,
                         user: User = require(*DECIDERS)) -> Any:
    _load(db, consultation_id)
    data = cs.DecisionInput(
        final_level=body.final_level, response_level=body.response_level,
        areas=body.areas.model_dump() if body.areas else None,
        measures=[m.model_dump(mode="json") for m in body.measures] if body.measures is not None else None,
        reason=body.reason)
    listeners = cs.decision_listeners_of(request.app.state.runtime.state)
    d = cs.decide(db, consultation_id, data, actor=actor_of(user), now=clock.now(), listeners=listeners)
    db.commit()
    return d


@router.post("/{consultation_id}/dismiss", response_model=ConsultationOut, responses=errors(404, 409))
def consultations_dismiss(consultation_id: RowId, body: DismissIn, db: DB, clock: ClockDep,
                          user: User = require(*DECIDERS)) -> Any:
    _load(db, consultation_id)
    c = cs.dismiss(db, consultation_id, reason=body.reason, actor=actor_of(user), now=clock.now())
    db.commit()
    return c
