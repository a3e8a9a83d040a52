"""Plans in force and response runs: load, start, raise, revise, close. The caller commits.

A run is started at most once per warning thread while open: ``open_run_for_thread`` is checked
first and the unique ``open_thread_id`` column refuses a second one even from a concurrent
instance. A run carries the whole hazard plan as it was when the run started, so raising it later
follows the frozen plan, not whatever the file says by then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.counters import next_value
from config.eventlog import record
from responses.runs import core as machine
from responses.runs import supervision
from responses.runs.core import RunState, RunTransition, Trigger
from responses.runs.models import PlanDocument, ResponseRun
from responses.runs.plans import DEFAULT_PLANS_DIR, PlanEntry, ResponsePlan, entry_from_snapshot, load_dir, parse_text
from warning.consultation.core import normalize_areas, union_areas
from warning.draft import Hazard, Level
from warning.models import Warning

# ---------------------------------------------------------------------------------------------- plans


@lru_cache(maxsize=4)
def _default_plans(directory: str) -> dict[Hazard, ResponsePlan]:
    return load_dir(Path(directory)).plans


def default_plans() -> dict[Hazard, ResponsePlan]:
    return _default_plans(str(DEFAULT_PLANS_DIR))


@lru_cache(maxsize=32)
def _parsed_document(source: str, fmt: str) -> ResponsePlan | None:
    """An admin's plan document, parsed once per text (a parse costs tens of milliseconds).

    Keyed by the text itself, not by a row id or a timestamp: whichever instance writes a new revision,
    the next ``current_plan`` anywhere reads the newest row (one indexed read, the version check) and
    meets a text it has not parsed yet. Nothing can be served for a document it does not describe, even
    across databases. Plans are frozen models, so sharing one between callers is safe.
    """
    return parse_text(source, "plan_document", fmt).plan


def latest_document(session: Session, hazard: str) -> PlanDocument | None:
    return session.execute(
        select(PlanDocument).where(PlanDocument.hazard == hazard).order_by(PlanDocument.revision.desc()).limit(1)
    ).scalar_one_or_none()


def current_plan(session: Session, hazard: str) -> tuple[ResponsePlan | None, str]:
    """The plan in force for a hazard: the newest admin edit, else the shipped default."""
    doc = latest_document(session, hazard)
    if doc is not None:
        plan = _parsed_document(doc.source, doc.format)
        if plan is not None:
            return plan, f"{plan.version}+r{doc.revision}"
    try:
        plan = default_plans().get(Hazard(hazard))
    except ValueError:
        return None, ""
    return plan, (plan.version if plan else "")


def save_plan_document(session: Session, *, hazard: str, source: str, fmt: str, note: str, actor: str,
                       now: dt.datetime) -> tuple[PlanDocument | None, list[dict[str, Any]]]:
    """Validate and store an admin's edit; an invalid document is refused with all its errors."""
    res = parse_text(source, f"{hazard}.{fmt}", fmt)
    errors = [e.as_dict() for e in res.errors]
    if res.plan is not None and res.plan.hazard.value != hazard:
        errors.append({"file": f"{hazard}.{fmt}", "line": None, "path": "hazard", "field": "hazard",
                       "message": f"文档的灾种为 {res.plan.hazard.value}，与地址中的 {hazard} 不符",
                       "message_en": f"the document is for {res.plan.hazard.value}, not {hazard}"})
    if errors or res.plan is None:
        return None, errors
    last = latest_document(session, hazard)
    doc = PlanDocument(hazard=hazard, revision=(last.revision + 1) if last else 1, format=fmt, source=source,
                       plan_version=res.plan.version, note=note, created_by=actor, created_at=now)
    session.add(doc)
    session.flush()
    record(session, now=now, action="plan.edited", entity_type="plan", entity_id=hazard, actor=actor,
           payload={"revision": doc.revision, "plan_version": doc.plan_version, "note": note})
    return doc, []


def plan_source(session: Session, hazard: str) -> tuple[str, str] | None:
    """The text of the plan in force, as an admin edits it, and its format (yaml, toml or json).

    The console's edit form starts from the document ``current_plan`` reads: the newest edit as it was
    written, or else the shipped default file with its comments. None for a hazard with no plan.
    """
    doc = latest_document(session, hazard)
    if doc is not None and _parsed_document(doc.source, doc.format) is not None:
        return doc.source, doc.format
    try:
        path = load_dir(DEFAULT_PLANS_DIR, require_all=False).sources.get(Hazard(hazard))
    except ValueError:
        return None
    if path is None:
        return None
    suffix = Path(path).suffix.lstrip(".").lower()
    return Path(path).read_text(encoding="utf-8"), "yaml" if suffix == "yml" else suffix


# ---------------------------------------------------------------------------------------------- runs


def open_run_for_thread(session: Session, thread_id: int, *, lock: bool = False) -> ResponseRun | None:
    stmt = select(ResponseRun).where(ResponseRun.open_thread_id == thread_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def runs_for_thread(session: Session, thread_id: int) -> list[ResponseRun]:
    return list(session.execute(
        select(ResponseRun).where(ResponseRun.thread_id == thread_id).order_by(ResponseRun.id)).scalars())


def _event(session: Session, run: ResponseRun, action: str, actor: str, now: dt.datetime,
           payload: dict[str, Any] | None = None) -> None:
    record(session, now=now, action=f"run.{action}", entity_type="response_run", entity_id=run.id, actor=actor,
           payload={"number": run.number, "thread_id": run.thread_id, "state": run.state, "level": run.level,
                    **(payload or {})})
    _follow_run(session, run, action, actor, now)


# ------------------------------------------------------------------------------------------ followers
# What follows a run — its callouts, measure orders and information reports — lives in packages above this
# one. They register here (``follow``, ``guard_close``), once, through the wiring (``jiaoying/wiring.py``),
# and are told of every run event in the run's own transaction, in the order registered.

RunFollower = Callable[..., None]  # (session, run, action, *, actor, now)
CloseGuard = Callable[[Session, ResponseRun], None]  # raises an ApiError (409) to refuse closing
_followers: list[RunFollower] = []
_close_guards: list[CloseGuard] = []


def follow(fn: RunFollower) -> None:
    """Tell ``fn`` of every run event from now on (idempotent)."""
    if fn not in _followers:
        _followers.append(fn)


def guard_close(fn: CloseGuard) -> None:
    """Ask ``fn`` before a run closes (idempotent); it raises to refuse, naming what is still open."""
    if fn not in _close_guards:
        _close_guards.append(fn)


def _follow_run(session: Session, run: ResponseRun, action: str, actor: str, now: dt.datetime) -> None:
    for fn in _followers:
        fn(session, run, action, actor=actor, now=now)


def resolve_measures(entry: PlanEntry, measures: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A decision's measures, or the plan entry's when the decision said "as the plan says"."""
    if measures is None or any(m.get("from_plan") for m in measures):
        return [m.model_dump(mode="json") for m in entry.measures]
    return list(measures)


def start_run(session: Session, *, warning: Warning, level: Level | str, areas: dict[str, Any] | None,
              trigger: Trigger, actor: str, now: dt.datetime, consultation_id: int | None = None,
              decision_id: int | None = None, response_level: str | None = None,
              measures: list[dict[str, Any]] | None = None) -> tuple[ResponseRun | None, bool]:
    """Start a run for the warning's thread → (run, created). If one is open, it is returned unchanged."""
    thread_id = warning.thread_id or warning.id
    existing = open_run_for_thread(session, thread_id, lock=True)
    if existing is not None:
        return existing, False
    plan, version = current_plan(session, warning.hazard)
    if plan is None:
        record(session, now=now, action="run.no_plan", entity_type="warning", entity_id=thread_id, actor=actor,
               payload={"hazard": warning.hazard, "level": str(level)})
        return None, False
    lv = Level(level)
    entry = plan.entry(lv)
    year = now.year
    run = ResponseRun(
        number=f"{year}-{next_value(session, f'response_run:{year}'):04d}",
        thread_id=thread_id, open_thread_id=thread_id, warning_id=warning.id, hazard=warning.hazard,
        level=lv.value, response_level=response_level or entry.response_level,
        areas=normalize_areas(areas if areas is not None else warning.affected),
        measures=resolve_measures(entry, measures), trigger=trigger.value, consultation_id=consultation_id,
        decision_id=decision_id, plan_version=version, plan_snapshot=plan.model_dump(mode="json"),
        entry_snapshot=entry.model_dump(mode="json"), state=RunState.ACTIVE.value, drill=bool(warning.drill),
        started_at=now, started_by=actor, updated_at=now,
    )
    session.add(run)
    session.flush()
    _event(session, run, "started", actor, now, {
        "trigger": run.trigger, "warning_id": warning.id, "response_level": run.response_level,
        "areas": run.areas, "plan_version": version, "consultation_id": consultation_id,
        "decision_id": decision_id})
    supervision.clear_run_overdue(session, thread_id, reason=f"run {run.number} started", now=now)
    return run, True


def set_consultation(session: Session, run: ResponseRun, consultation_id: int, now: dt.datetime) -> None:
    if run.consultation_id is None:
        run.consultation_id, run.updated_at = consultation_id, now
        _event(session, run, "consultation_linked", "system", now, {"consultation_id": consultation_id})


def raise_run(session: Session, run: ResponseRun, *, level: Level | str, warning: Warning, actor: str,
              now: dt.datetime) -> bool:
    """A higher warning level raises the run along its frozen plan; the same or lower changes nothing."""
    lv = Level(level)
    if lv.rank <= Level(run.level).rank:
        return False
    new_state = machine.raise_to(run.state, run.level, lv)
    entry = entry_from_snapshot(run.plan_snapshot, lv)
    before = {"level": run.level, "response_level": run.response_level}
    run.state, run.level, run.response_level = new_state.value, lv.value, entry.response_level
    run.entry_snapshot = entry.model_dump(mode="json")
    run.measures = resolve_measures(entry, None)
    run.warning_id, run.updated_at = warning.id, now
    run.areas = union_areas(run.areas, warning.affected)
    _event(session, run, "raised", actor, now, {"before": before, "warning_id": warning.id,
                                                "response_level": run.response_level})
    return True


def extend_areas(session: Session, run: ResponseRun, areas: dict[str, Any] | None, *, warning_id: int,
                 actor: str, now: dt.datetime) -> bool:
    added = machine.areas_added(run.areas, union_areas(run.areas, areas))
    run.warning_id, run.updated_at = warning_id, now
    if not added:
        return False
    run.state = machine.apply(run.state, RunTransition.EXTEND_AREAS).value
    run.areas = union_areas(run.areas, areas)
    _event(session, run, "areas_extended", actor, now, {"added": added, "warning_id": warning_id})
    return True


def apply_decision(session: Session, run: ResponseRun, *, level: Level | str, response_level: str,
                   areas: dict[str, Any], measures: list[dict[str, Any]] | None, decision_id: int,
                   consultation_id: int, actor: str, now: dt.datetime) -> None:
    """A (revised) decision sets the run's level, areas and measures — also downward, by a person's word."""
    if RunState(run.state) is RunState.CLOSING:
        run.state = machine.apply(run.state, RunTransition.REACTIVATE).value
        _event(session, run, "reactivated", actor, now, {"decision_id": decision_id})
    state = machine.apply(run.state, RunTransition.REVISE)
    entry = entry_from_snapshot(run.plan_snapshot, level)
    before = {"level": run.level, "response_level": run.response_level, "areas": run.areas}
    run.state, run.level, run.response_level = state.value, Level(level).value, response_level
    run.areas = normalize_areas(areas)
    run.entry_snapshot = entry.model_dump(mode="json")
    run.measures = resolve_measures(entry, measures)
    run.decision_id, run.updated_at = decision_id, now
    if run.consultation_id is None:
        run.consultation_id = consultation_id
    _event(session, run, "revised_by_decision", actor, now, {"before": before, "decision_id": decision_id,
                                                             "response_level": response_level})


def begin_closing(session: Session, run: ResponseRun, *, reason: str, actor: str, now: dt.datetime) -> bool:
    if RunState(run.state) is not RunState.ACTIVE:
        return False
    run.state = machine.apply(run.state, RunTransition.BEGIN_CLOSING).value
    run.closing_at, run.closing_reason, run.updated_at = now, reason, now
    _event(session, run, "closing", actor, now, {"reason": reason})
    return True


def reactivate(session: Session, run: ResponseRun, *, warning_id: int, actor: str, now: dt.datetime) -> None:
    run.state = machine.apply(run.state, RunTransition.REACTIVATE).value
    run.closing_at, run.closing_reason, run.warning_id, run.updated_at = None, None, warning_id, now
    _event(session, run, "reactivated", actor, now, {"warning_id": warning_id})


def close_run(session: Session, run: ResponseRun, *, actor: str, now: dt.datetime, note: str = "") -> None:
    for guard in _close_guards:  # measures: every order lifted or waived first (409 naming the open ones)
        guard(session, run)
    run.state = machine.apply(run.state, RunTransition.CLOSE).value
    run.closed_at, run.open_thread_id, run.updated_at = now, None, now
    _event(session, run, "closed", actor, now, {"note": note})


def open_runs(session: Session, *, limit: int = 100) -> list[ResponseRun]:
    """Runs not yet closed (active or closing), newest first."""
    return list(session.execute(
        select(ResponseRun).where(ResponseRun.state != RunState.CLOSED.value)
        .order_by(ResponseRun.started_at.desc(), ResponseRun.id.desc()).limit(limit)).scalars())


def closed_runs(session: Session, *, limit: int = 20) -> list[ResponseRun]:
    """Runs already closed, the most recently closed first.

    The console lists them under the open ones so that a finished response, and its audit report, stays
    one click away for the shift that has to write it up.
    """
    return list(session.execute(
        select(ResponseRun).where(ResponseRun.state == RunState.CLOSED.value)
        .order_by(ResponseRun.closed_at.desc(), ResponseRun.id.desc()).limit(limit)).scalars())


def get_run(session: Session, run_id: int, *, lock: bool = False) -> ResponseRun | None:
    stmt = select(ResponseRun).where(ResponseRun.id == run_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()
