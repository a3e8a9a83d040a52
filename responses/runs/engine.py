"""The response engine: what warnings and decisions set in motion, per the plan in force.

- A new or raised warning: the plan entry for its hazard and level says whether a run starts at
  once (red always does; ``parallel`` and ``skip`` too) and whether a consultation opens. A warning
  whose area reaches nothing of the region starts neither (``run.not_started`` is logged).
- A leader's decision starts the run (or revises the one already running).
- An update with a higher level raises the open run along its frozen plan; new areas extend it.
- A Cancel or expiry moves the open run to ``closing`` and closes a consultation still judging.

The warning service calls ``on_warning_change`` inside its own transaction; consultation decisions
call ``on_decision``. Both are registered by the wiring in ``jiaoying``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from config.eventlog import record
from responses.runs import service, supervision
from responses.runs.core import RunState, Trigger, start_rule
from warning.changes import ChangeKind, WarningChange
from warning.consultation import service as consultation_service
from warning.consultation.models import Consultation, Decision
from warning.draft import Level
from warning.models import Warning

LIVE_STATUSES = ("actual", "exercise")  # test, system and draft messages never start a response
ACTOR = "rule:response_plan"


def on_warning_change(session: Session, change: WarningChange, now: dt.datetime) -> None:
    if change.status not in LIVE_STATUSES:
        return
    kind = ChangeKind(change.kind)
    if kind in (ChangeKind.CANCELLED, ChangeKind.EXPIRED):
        _warning_ended(session, change.thread_id, kind.value, now)
        return
    warning = session.get(Warning, change.warning_id)
    if warning is None or not warning.level:
        return
    level = Level(warning.level)
    thread_id = change.thread_id
    run = service.open_run_for_thread(session, thread_id, lock=True)
    consultation = consultation_service.follow_warning(session, warning, now=now)
    if run is not None:
        if RunState(run.state) is RunState.CLOSING:
            service.reactivate(session, run, warning_id=warning.id, actor=ACTOR, now=now)
        if not service.raise_run(session, run, level=level, warning=warning, actor=ACTOR, now=now):
            service.extend_areas(session, run, warning.affected, warning_id=warning.id, actor=ACTOR, now=now)
        return
    if consultation is None and outside_region(warning.area_spec, warning.affected):
        record(session, now=now, action="run.not_started", entity_type="warning", entity_id=thread_id, actor=ACTOR,
               payload={"reason": "outside_region", "hazard": warning.hazard, "level": level.value})
        return
    plan, _version = service.current_plan(session, warning.hazard)
    if plan is None:
        record(session, now=now, action="run.no_plan", entity_type="warning", entity_id=thread_id, actor=ACTOR,
               payload={"hazard": warning.hazard, "level": level.value})
        return
    entry = plan.entry(level)
    rule = start_rule(entry.consultation.mode.value, level)
    if rule.start_run:
        run, _created = service.start_run(session, warning=warning, level=level, areas=warning.affected,
                                          trigger=Trigger.AUTOMATIC, actor=ACTOR, now=now)
    if rule.open_consultation and consultation is None and entry.consultation.departments:
        consultation = consultation_service.open_consultation(
            session, warning=warning, invited=entry.consultation.departments,
            deadline_minutes=entry.consultation.deadline_minutes or 60,
            reminder_minutes=entry.consultation.reminder_minutes,
            mode="parallel" if rule.start_run else "before", actor=ACTOR, now=now)
    if run is not None and consultation is not None:
        service.set_consultation(session, run, consultation.id, now)


def outside_region(area_spec: dict[str, Any] | None, affected: dict[str, Any] | None) -> bool:
    """The warning names an area, it was matched, and it reaches no village, township or site of the region.

    A provincial or national feed carries every county's warnings; one drawn over a neighbouring county
    calls nobody here. A warning with no area at all, or whose matching failed, is not "outside": the
    duty officer must still see it start, so those keep the plan's ordinary course.
    """
    spec = area_spec or {}
    if not any(spec.get(k) for k in ("polygons", "circles", "points", "geocodes")):
        return False
    found = affected or {}
    if found.get("error"):
        return False
    return not any(found.get(k) for k in ("villages", "townships", "sites"))


def _warning_ended(session: Session, thread_id: int, why: str, now: dt.datetime) -> None:
    run = service.open_run_for_thread(session, thread_id, lock=True)
    reason = {"cancelled": "warning cancelled", "expired": "warning expired"}.get(why, why)
    if run is not None:
        service.begin_closing(session, run, reason=reason, actor=f"rule:warning_{why}", now=now)
    for c in consultation_service.close_for_thread(session, thread_id, reason=reason, now=now):
        supervision.clear_missing_judgements(session, c.id, reason=reason, now=now)
    supervision.clear_run_overdue(session, thread_id, reason=reason, now=now)


def on_decision(session: Session, consultation: Consultation, decision: Decision, now: dt.datetime) -> None:
    """The leader's decision starts the run, or revises the run already going for this thread."""
    warning = session.get(Warning, consultation.warning_id)
    if warning is None:
        return
    measures = decision.measures
    run = service.open_run_for_thread(session, consultation.thread_id, lock=True)
    if run is None:
        service.start_run(session, warning=warning, level=decision.final_level, areas=decision.areas,
                          trigger=Trigger.DECISION, actor=decision.decided_by, now=now,
                          consultation_id=consultation.id, decision_id=decision.id,
                          response_level=decision.response_level, measures=measures)
    else:
        service.apply_decision(session, run, level=decision.final_level, response_level=decision.response_level,
                               areas=decision.areas, measures=measures, decision_id=decision.id,
                               consultation_id=consultation.id, actor=decision.decided_by, now=now)
    supervision.clear_missing_judgements(session, consultation.id, reason="decided", now=now)


def install(state: dict[str, Any]) -> None:
    """Register the engine on a runtime's state (idempotent): warning changes and decisions reach it."""
    from warning.changes import LISTENERS_KEY

    for key, fn in ((LISTENERS_KEY, on_warning_change),
                    (consultation_service.DECISION_LISTENERS_KEY, on_decision)):
        registered = state.setdefault(key, [])
        if fn not in registered:
            registered.append(fn)
