"""Supervision (督办): things that should have happened and have not — flagged, and someone told.

- An orange or red warning thread with no response run within the plan's ``run_start_minutes``
  (counted from when the thread first reached orange or red here) is flagged ``run_overdue`` and the
  leader on duty gets a notice; the flag clears when a run starts or the warning ends.
- A consultation's missing judgements at the deadline get a notice to the leader on duty.
- A shift in the coming days without a leader on duty is flagged ``shift_without_leader``.
- A measure order with nobody to reach (no duty person for its unit, no number) is flagged
  ``measure_unassigned`` at once and the duty officer gets a notice; the flag clears when someone
  is assigned or the order ends (the measure service raises and clears it).

Every flag has a unique ``key``, so a sweep that runs twice (or on two instances) raises it once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.eventlog import record
from responses.contacts.roster_service import leaderless_shifts, members, on_duty
from responses.runs.models import Notice, ResponseRun, SupervisionFlag
from warning.draft import Level
from warning.models import Warning

RUN_OVERDUE = "run_overdue"
MEASURE_UNASSIGNED = "measure_unassigned"
SHIFT_WITHOUT_LEADER = "shift_without_leader"
JUDGEMENT_MISSING = "judgement_missing"
SUPERVISED_LEVELS = (Level.ORANGE.value, Level.RED.value)
LIVE_STATUSES = ("actual", "exercise")


def open_flags(session: Session, kind: str | None = None) -> list[SupervisionFlag]:
    stmt = select(SupervisionFlag).where(SupervisionFlag.cleared_at.is_(None)).order_by(SupervisionFlag.id)
    if kind:
        stmt = stmt.where(SupervisionFlag.kind == kind)
    return list(session.execute(stmt).scalars())


def _flag(session: Session, *, key: str, kind: str, subject_type: str, subject_id: object, now: dt.datetime,
          due_at: dt.datetime | None, detail: dict[str, Any]) -> SupervisionFlag | None:
    if session.execute(select(SupervisionFlag.id).where(SupervisionFlag.key == key)).first():
        return None
    flag = SupervisionFlag(key=key, kind=kind, subject_type=subject_type, subject_id=str(subject_id), due_at=due_at,
                           raised_at=now, detail=detail)
    session.add(flag)
    session.flush()
    record(session, now=now, action=f"supervision.{kind}_flagged", entity_type="supervision_flag",
           entity_id=flag.id, actor="rule:supervision",
           payload={"key": key, "subject_type": subject_type, "subject_id": str(subject_id), "due_at": due_at,
                    **detail})
    return flag


def _clear(session: Session, flag: SupervisionFlag, *, reason: str, now: dt.datetime) -> None:
    flag.cleared_at, flag.cleared_reason = now, reason
    record(session, now=now, action=f"supervision.{flag.kind}_cleared", entity_type="supervision_flag",
           entity_id=flag.id, actor="rule:supervision", payload={"key": flag.key, "reason": reason})


def raise_flag(session: Session, *, key: str, kind: str, subject_type: str, subject_id: object, now: dt.datetime,
               due_at: dt.datetime | None, detail: dict[str, Any]) -> SupervisionFlag | None:
    """Raise a flag once (None when its key was raised before); for the services that supervise
    their own rows."""
    return _flag(session, key=key, kind=kind, subject_type=subject_type, subject_id=subject_id, now=now,
                 due_at=due_at, detail=detail)


def clear_flag(session: Session, flag: SupervisionFlag, *, reason: str, now: dt.datetime) -> None:
    _clear(session, flag, reason=reason, now=now)


def open_flags_for(session: Session, kind: str, subject_type: str, subject_id: object) -> list[SupervisionFlag]:
    return list(session.execute(select(SupervisionFlag).where(
        SupervisionFlag.kind == kind, SupervisionFlag.subject_type == subject_type,
        SupervisionFlag.subject_id == str(subject_id), SupervisionFlag.cleared_at.is_(None))
        .order_by(SupervisionFlag.id)).scalars())


def notify_leader_on_duty(session: Session, *, kind: str, subject: str, subject_en: str, entity_type: str,
                          entity_id: object, now: dt.datetime) -> Notice:
    """A notice for whoever leads the current shift; with nobody on the roster it goes to the duty desk."""
    duty = on_duty(session, now)
    leader = duty.leader
    n = Notice(created_at=now, kind=kind, recipient_role="leader_on_duty" if leader else "duty_officer",
               recipient_name=leader.name if leader else None, recipient_phone=leader.phone if leader else None,
               department=None, subject=subject, subject_en=subject_en, entity_type=entity_type,
               entity_id=str(entity_id))
    session.add(n)
    session.flush()
    record(session, now=now, action="notice.created", entity_type="notice", entity_id=n.id, actor="rule:supervision",
           payload={"kind": kind, "to": n.recipient_name or n.recipient_role, "about": f"{entity_type}:{entity_id}",
                    "subject": subject})
    return n


def notify_duty_officer(session: Session, *, kind: str, subject: str, subject_en: str, entity_type: str,
                        entity_id: object, now: dt.datetime) -> Notice:
    """A notice for the duty desk: the work is the duty officer's (phone someone, assign someone),
    as the callout layer's notices of an unanswered callout are."""
    n = Notice(created_at=now, kind=kind, recipient_role="duty_officer", recipient_name=None, recipient_phone=None,
               department=None, subject=subject[:300], subject_en=subject_en[:300], entity_type=entity_type,
               entity_id=str(entity_id))
    session.add(n)
    session.flush()
    record(session, now=now, action="notice.created", entity_type="notice", entity_id=n.id, actor="rule:supervision",
           payload={"kind": kind, "to": "duty_officer", "about": f"{entity_type}:{entity_id}", "subject": subject})
    return n


def clear_run_overdue(session: Session, thread_id: int, *, reason: str, now: dt.datetime) -> None:
    flag = session.execute(
        select(SupervisionFlag).where(SupervisionFlag.key == f"{RUN_OVERDUE}:thread:{thread_id}",
                                      SupervisionFlag.cleared_at.is_(None))
    ).scalar_one_or_none()
    if flag is not None:
        _clear(session, flag, reason=reason, now=now)


def sweep_run_overdue(session: Session, now: dt.datetime, run_start_minutes: dict[tuple[str, str], int]) -> list[
        SupervisionFlag]:
    """``run_start_minutes[(hazard, level)]`` comes from the plans in force (the caller looks them up)."""
    heads = session.execute(
        select(Warning).where(Warning.state == "active", Warning.level.in_(SUPERVISED_LEVELS),
                              Warning.status.in_(LIVE_STATUSES))
    ).scalars().all()
    raised: list[SupervisionFlag] = []
    for w in heads:
        thread_id = w.thread_id or w.id
        if session.execute(select(ResponseRun.id).where(ResponseRun.thread_id == thread_id).limit(1)).first():
            continue
        first_high = session.execute(
            select(Warning.received_at, Warning.level).where(
                Warning.thread_id == thread_id, Warning.level.in_(SUPERVISED_LEVELS))
            .order_by(Warning.received_at).limit(1)
        ).first()
        since = first_high[0] if first_high else w.received_at
        minutes = run_start_minutes.get((w.hazard, w.level or ""))
        if minutes is None:
            continue
        due = since + dt.timedelta(minutes=minutes)
        if now < due:
            continue
        lv = Level(w.level)
        flag = _flag(session, key=f"{RUN_OVERDUE}:thread:{thread_id}", kind=RUN_OVERDUE, subject_type="warning",
                     subject_id=thread_id, now=now, due_at=due,
                     detail={"level": w.level, "hazard": w.hazard, "warning_id": w.id, "minutes": minutes})
        if flag is not None:
            head = w.headline or w.event or w.hazard
            n = notify_leader_on_duty(
                session, kind=RUN_OVERDUE, entity_type="warning", entity_id=thread_id, now=now,
                subject=f"督办：{lv.zh}预警“{head}”已超过 {minutes} 分钟未启动响应",
                subject_en=f"Overdue: {lv.value} warning '{head}' has no response after {minutes} minutes")
            flag.detail = {**flag.detail, "notice_id": n.id, "notified": n.recipient_name or n.recipient_role}
            raised.append(flag)
    # a thread that ended or dropped below orange without a run no longer needs one
    for flag in open_flags(session, RUN_OVERDUE):
        thread_id = int(flag.subject_id)
        still = session.execute(
            select(Warning.id).where(Warning.thread_id == thread_id, Warning.state == "active",
                                     Warning.level.in_(SUPERVISED_LEVELS)).limit(1)).first()
        if not still:
            _clear(session, flag, reason="warning ended or lowered", now=now)
    return raised


def notify_missing_judgements(session: Session, consultation_id: int, missing: tuple[str, ...],
                              now: dt.datetime) -> SupervisionFlag | None:
    if not missing:
        return None
    flag = _flag(session, key=f"{JUDGEMENT_MISSING}:consultation:{consultation_id}", kind=JUDGEMENT_MISSING,
                 subject_type="consultation", subject_id=consultation_id, now=now, due_at=now,
                 detail={"missing": list(missing)})
    if flag is not None:
        notify_leader_on_duty(
            session, kind=JUDGEMENT_MISSING, entity_type="consultation", entity_id=consultation_id, now=now,
            subject=f"会商 #{consultation_id} 已到研判时限，缺少部门意见：{'、'.join(missing)}",
            subject_en=f"Consultation #{consultation_id} reached its deadline; missing: {', '.join(missing)}")
    return flag


def remind_departments(session: Session, consultation_id: int, departments: tuple[str, ...], deadline: dt.datetime,
                       now: dt.datetime, tz: dt.tzinfo = dt.UTC) -> list[Notice]:
    """One notice per department still silent before the deadline (the sweep calls this once)."""
    out = []
    due = deadline.astimezone(tz).strftime("%m-%d %H:%M")
    for dept in departments:
        n = Notice(created_at=now, kind="judgement_reminder", recipient_role="department", recipient_name=None,
                   recipient_phone=None, department=dept,
                   subject=f"提醒：会商 #{consultation_id} 研判意见请于 {due} 前提交",
                   subject_en=f"Reminder: consultation #{consultation_id} judgement due by {due}",
                   entity_type="consultation", entity_id=str(consultation_id))
        session.add(n)
        out.append(n)
    session.flush()
    for n in out:
        record(session, now=now, action="notice.created", entity_type="notice", entity_id=n.id,
               actor="rule:consultation_reminder", payload={"kind": n.kind, "to": n.department,
                                                            "about": f"consultation:{consultation_id}"})
    return out


def clear_missing_judgements(session: Session, consultation_id: int, *, reason: str, now: dt.datetime) -> None:
    flag = session.execute(
        select(SupervisionFlag).where(SupervisionFlag.key == f"{JUDGEMENT_MISSING}:consultation:{consultation_id}",
                                      SupervisionFlag.cleared_at.is_(None))).scalar_one_or_none()
    if flag is not None:
        _clear(session, flag, reason=reason, now=now)


def sweep_leaderless_shifts(session: Session, now: dt.datetime, days: int = 3) -> list[SupervisionFlag]:
    raised = []
    lacking = leaderless_shifts(session, now, days)
    for s in lacking:
        flag = _flag(session, key=f"{SHIFT_WITHOUT_LEADER}:shift:{s.id}", kind=SHIFT_WITHOUT_LEADER,
                     subject_type="shift", subject_id=s.id, now=now, due_at=s.starts_at,
                     detail={"starts_at": s.starts_at.isoformat(), "ends_at": s.ends_at.isoformat()})
        if flag is not None:
            raised.append(flag)
    lacking_ids = {str(s.id) for s in lacking}
    for flag in open_flags(session, SHIFT_WITHOUT_LEADER):
        if flag.subject_id in lacking_ids:
            continue
        if any(m.role == "leader" for m in members(session, int(flag.subject_id))):
            _clear(session, flag, reason="leader assigned", now=now)
    return raised
