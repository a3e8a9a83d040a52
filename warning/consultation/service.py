"""Loading and saving consultations; every step goes through the pure machine and into the event log.

The caller commits (one commit per request or job). ``warning`` does not know response plans or
runs: whoever opens a consultation passes the invited departments and the deadline, and a decision
is announced to the decision listeners the wiring registered (the response engine starts or
revises the run there) inside the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.eventlog import record
from warning.consultation import core as machine
from warning.consultation.core import ConsultationState, IllegalTransition
from warning.consultation.models import Consultation, Decision, Judgement
from warning.draft import Level
from warning.models import Warning

DECISION_LISTENERS_KEY = "decision_listeners"

DecisionListener = Callable[[Session, Consultation, Decision, dt.datetime], None]


def decision_listeners_of(state: dict[str, Any] | Any) -> tuple[DecisionListener, ...]:
    found = state.get(DECISION_LISTENERS_KEY) if isinstance(state, dict) else getattr(
        state, DECISION_LISTENERS_KEY, None)
    return tuple(found or ())


class NotFound(Exception):
    pass


def get(session: Session, consultation_id: int, *, lock: bool = False) -> Consultation:
    stmt = select(Consultation).where(Consultation.id == consultation_id)
    if lock:
        stmt = stmt.with_for_update()
    c = session.execute(stmt).scalar_one_or_none()
    if c is None:
        raise NotFound(consultation_id)
    return c


def live_for_thread(session: Session, thread_id: int) -> Consultation | None:
    return session.execute(
        select(Consultation).where(
            Consultation.thread_id == thread_id,
            Consultation.state.in_([ConsultationState.OPEN.value, ConsultationState.DEADLINE_PASSED.value]),
        ).order_by(Consultation.id.desc()).limit(1)
    ).scalar_one_or_none()


def waiting(session: Session, *, limit: int = 100) -> list[Consultation]:
    """Consultations still waiting for judgements or for the leader's decision, the oldest deadline first."""
    return list(session.execute(
        select(Consultation).where(
            Consultation.state.in_([ConsultationState.OPEN.value, ConsultationState.DEADLINE_PASSED.value]))
        .order_by(Consultation.deadline, Consultation.id).limit(limit)).scalars())


def _event(session: Session, c: Consultation, action: str, actor: str, now: dt.datetime,
           payload: dict[str, Any] | None = None) -> None:
    record(session, now=now, action=f"consultation.{action}", entity_type="consultation", entity_id=c.id,
           actor=actor, payload={"thread_id": c.thread_id, "state": c.state, **(payload or {})})


def open_consultation(session: Session, *, warning: Warning, invited: Iterable[str], deadline_minutes: int,
                      reminder_minutes: int | None, mode: str, actor: str, now: dt.datetime) -> Consultation:
    """Open one for the warning's thread; a live one already there is returned (never two at once)."""
    thread_id = warning.thread_id or warning.id
    existing = live_for_thread(session, thread_id)
    if existing is not None:
        return existing
    invited = list(dict.fromkeys(invited))
    if not invited:
        raise IllegalTransition(machine.T.JUDGE, ConsultationState.OPEN, "会商至少需要邀请一个部门",
                                "a consultation needs at least one invited department")
    c = Consultation(
        thread_id=thread_id, warning_id=warning.id, hazard=warning.hazard, level=warning.level,
        state=ConsultationState.OPEN.value, mode=mode, areas=machine.normalize_areas(warning.affected),
        invited=invited, missing=[], opened_at=now, opened_by=actor,
        deadline=now + dt.timedelta(minutes=deadline_minutes), reminder_minutes=reminder_minutes,
        drill=bool(warning.drill), updated_at=now,
    )
    session.add(c)
    session.flush()
    _event(session, c, "opened", actor, now, {"warning_id": warning.id, "mode": mode, "invited": invited,
                                              "deadline": c.deadline, "level": c.level})
    return c


def judgements(session: Session, consultation_id: int, *, current_only: bool = True) -> list[Judgement]:
    rows = list(session.execute(
        select(Judgement).where(Judgement.consultation_id == consultation_id).order_by(Judgement.id)).scalars())
    if not current_only:
        return rows
    latest: dict[str, Judgement] = {}
    for j in rows:
        latest[j.department] = j
    return list(latest.values())


def judged_departments(session: Session, consultation_ids: Iterable[int]) -> dict[int, set[str]]:
    """The departments that have recorded a judgement, per consultation, in one query.

    The duty board names the departments still missing for every waiting consultation on each render;
    asking ``judgements`` once per consultation made that cost grow with the number waiting.
    """
    ids = list(consultation_ids)
    out: dict[int, set[str]] = {i: set() for i in ids}
    if not ids:
        return out
    for cid, department in session.execute(
            select(Judgement.consultation_id, Judgement.department)
            .where(Judgement.consultation_id.in_(ids)).distinct()):
        out[int(cid)].add(str(department))
    return out


@dataclass
class JudgementInput:
    department: str
    assessed_level: str | None
    trend: str
    confidence: str
    text: str = ""
    areas_add: dict[str, Any] | None = None
    areas_remove: dict[str, Any] | None = None
    measures: list[str] | None = None


def record_judgement(session: Session, consultation_id: int, data: JudgementInput, *, actor: str,
                     now: dt.datetime) -> Judgement:
    c = get(session, consultation_id, lock=True)
    step = machine.judge(c.state, department=data.department, invited=c.invited, deadline=c.deadline, now=now)
    previous = next((j for j in judgements(session, c.id) if j.department == data.department), None)
    j = Judgement(
        consultation_id=c.id, department=data.department, author=actor, assessed_level=data.assessed_level,
        trend=data.trend, areas_add=machine.normalize_areas(data.areas_add),
        areas_remove=machine.normalize_areas(data.areas_remove), measures=list(data.measures or []),
        confidence=data.confidence, text=data.text, late=step.late, recorded_at=now,
        supersedes_id=previous.id if previous else None,
    )
    session.add(j)
    c.state, c.updated_at = step.state.value, now
    if data.department in (c.missing or []):
        c.missing = [d for d in c.missing if d != data.department]
    session.flush()
    _event(session, c, "judgement_recorded", actor, now, {
        "judgement_id": j.id, "department": j.department, "assessed_level": j.assessed_level, "trend": j.trend,
        "confidence": j.confidence, "late": j.late, "supersedes_id": j.supersedes_id})
    return j


@dataclass(frozen=True)
class SweepResult:
    reminded: list[tuple[int, tuple[str, ...]]]  # (consultation id, departments still missing)
    flagged: list[tuple[int, tuple[str, ...]]]  # (consultation id, departments missing at the deadline)


def sweep(session: Session, now: dt.datetime) -> SweepResult:
    """Reminders before and flags at the deadline; each happens once (columns record that it did)."""
    reminded: list[tuple[int, tuple[str, ...]]] = []
    flagged: list[tuple[int, tuple[str, ...]]] = []
    rows = session.execute(
        select(Consultation).where(Consultation.state == ConsultationState.OPEN.value)
        .order_by(Consultation.deadline).with_for_update()
    ).scalars()
    for c in rows:
        judged = [j.department for j in judgements(session, c.id)]
        if now >= c.deadline:
            step = machine.reach_deadline(c.state, deadline=c.deadline, now=now, invited=c.invited, judged=judged)
            c.state, c.missing, c.deadline_reached_at, c.updated_at = step.state.value, list(step.missing), now, now
            _event(session, c, "deadline_reached", "rule:consultation_deadline", now,
                   {"missing": list(step.missing), "judged": judged})
            for dept in step.missing:
                _event(session, c, "judgement_missing", "rule:consultation_deadline", now, {"department": dept})
            flagged.append((c.id, step.missing))
        elif machine.reminder_due(c.state, deadline=c.deadline, reminder_minutes=c.reminder_minutes,
                                  reminded=c.reminded_at is not None, now=now):
            missing = machine.missing_departments(c.invited, judged)
            c.reminded_at = now
            _event(session, c, "reminder_sent", "rule:consultation_reminder", now,
                   {"missing": list(missing), "deadline": c.deadline})
            reminded.append((c.id, missing))
    session.flush()
    return SweepResult(reminded, flagged)


def extend(session: Session, consultation_id: int, *, minutes: int, actor: str, now: dt.datetime) -> Consultation:
    c = get(session, consultation_id, lock=True)
    new_deadline = max(c.deadline, now) + dt.timedelta(minutes=minutes)
    step = machine.extend(c.state, deadline=c.deadline, new_deadline=new_deadline, now=now)
    old = c.deadline
    c.state, c.deadline, c.deadline_reached_at, c.reminded_at, c.updated_at = (
        step.state.value, new_deadline, None, None, now)
    _event(session, c, "deadline_extended", actor, now, {"from": old, "to": new_deadline})
    return c


def decisions(session: Session, consultation_id: int) -> list[Decision]:
    return list(session.execute(
        select(Decision).where(Decision.consultation_id == consultation_id).order_by(Decision.version)).scalars())


@dataclass
class DecisionInput:
    final_level: str
    response_level: str | None = None
    areas: dict[str, Any] | None = None  # None = the warning's areas with the judgements' additions/removals
    measures: list[dict[str, Any]] | None = None  # None = the plan's measures for the final level
    reason: str = ""


def default_areas(session: Session, c: Consultation) -> dict[str, list[str]]:
    js = judgements(session, c.id)
    return machine.apply_judged_areas(c.areas, [j.areas_add for j in js], [j.areas_remove for j in js])


def _announce(session: Session, c: Consultation, d: Decision, now: dt.datetime,
              listeners: Iterable[DecisionListener]) -> None:
    for fn in listeners:
        fn(session, c, d, now)


def decide(session: Session, consultation_id: int, data: DecisionInput, *, actor: str, now: dt.datetime,
           listeners: Iterable[DecisionListener] = ()) -> Decision:
    """The leader's decision (first, or a revision with its reason); the old version is kept."""
    c = get(session, consultation_id, lock=True)
    prior = decisions(session, c.id)
    step = machine.revise(c.state, reason=data.reason) if prior else machine.decide(c.state)
    level = Level(data.final_level)
    d = Decision(
        consultation_id=c.id, version=len(prior) + 1, final_level=level.value,
        response_level=data.response_level or level.roman,
        areas=machine.normalize_areas(data.areas) if data.areas is not None else default_areas(session, c),
        measures=list(data.measures) if data.measures is not None else [{"from_plan": True}],
        reason=data.reason, decided_by=actor, decided_at=now, supersedes_id=prior[-1].id if prior else None,
    )
    session.add(d)
    c.state, c.decided_at, c.updated_at = step.state.value, c.decided_at or now, now
    session.flush()
    _event(session, c, "decision_revised" if prior else "decided", actor, now, {
        "decision_id": d.id, "version": d.version, "final_level": d.final_level,
        "response_level": d.response_level, "areas": d.areas, "reason": d.reason, "supersedes_id": d.supersedes_id})
    _announce(session, c, d, now, listeners)
    return d


def dismiss(session: Session, consultation_id: int, *, reason: str, actor: str, now: dt.datetime) -> Consultation:
    c = get(session, consultation_id, lock=True)
    step = machine.dismiss(c.state, reason=reason)
    c.state, c.dismissed_at, c.dismissed_by, c.dismiss_reason, c.updated_at = (
        step.state.value, now, actor, reason, now)
    _event(session, c, "dismissed", actor, now, {"reason": reason})
    return c


def follow_warning(session: Session, warning: Warning, *, now: dt.datetime) -> Consultation | None:
    """A new version of the thread: the live consultation now looks at it (level, areas)."""
    c = live_for_thread(session, warning.thread_id or warning.id)
    if c is None:
        return None
    before = {"warning_id": c.warning_id, "level": c.level}
    c.warning_id, c.level, c.updated_at = warning.id, warning.level, now
    c.areas = machine.union_areas(c.areas, warning.affected)
    _event(session, c, "warning_updated", "rule:warning_update", now,
           {"before": before, "warning_id": warning.id, "level": warning.level})
    return c


def close_for_thread(session: Session, thread_id: int, *, reason: str, now: dt.datetime) -> list[Consultation]:
    closed = []
    while (c := live_for_thread(session, thread_id)) is not None:
        step = machine.close(c.state)
        c.state, c.closed_at, c.close_reason, c.updated_at = step.state.value, now, reason, now
        _event(session, c, "closed", "rule:warning_ended", now, {"reason": reason})
        session.flush()
        closed.append(c)
    return closed


def for_thread(session: Session, thread_id: int) -> list[Consultation]:
    """Every consultation of a warning thread, the newest first: a warning's page shows them all."""
    return list(session.execute(
        select(Consultation).where(Consultation.thread_id == thread_id).order_by(Consultation.id.desc())).scalars())


def recent(session: Session, *, limit: int = 100) -> list[Consultation]:
    """The latest consultations whatever their state, for the list under the waiting ones."""
    return list(session.execute(select(Consultation).order_by(Consultation.id.desc()).limit(limit)).scalars())


def departments(session: Session) -> list[tuple[str, str, str]]:
    """``(code, 中文名, English name)`` of every department one may invite, in the district list's order.

    Pages show departments by name in the reader's language and post their codes.
    """
    from config.users import Department

    rows = session.execute(select(Department.code, Department.name, Department.name_en).order_by(Department.id))
    return [(str(code), str(name), str(name_en or name)) for code, name, name_en in rows]
