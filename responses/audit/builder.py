"""Builds the audit report dict from the database: the records, the event log, nothing typed in.

Scope is a set of response runs (by id, or every run of one warning thread). Drill records never
mix with real ones: a report is either all drill or all real, and selecting by thread or "all" only
takes drill runs when asked to. Per-row flags (``late``, ``overdue``) are judged with the same pure
rule the KPIs use, at ``as_of``.

A drill also names the warning threads it fed (``warning_threads``): a warning that started no
response is still reported, with its consultation, and a finding (``findings``) says why nothing
started. A report with no runs has empty run, callout, measure and report tables, and its KPIs
follow their definitions: counts 0, times and rates null.

``shifts`` (added to the fixed keys, which stay) lists the duty shifts the runs crossed: who was on duty,
the handover the shift wrote (signed and acknowledged by whom and when, late or not) and its duty log, the
officers' entries and the system's, so an audit can follow the response across a change of shift.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from config.eventlog import Event, verify
from config.users import Department
from responses.audit.findings import Finding, PlanLevel, no_response_finding
from responses.audit.kpis import compute_kpis, missed
from responses.audit.shape import SCHEMA, VALUE_ZH, iso, parse_iso, township_of
from responses.callouts.models import Answer, Callout, Escalation
from responses.duty.handovers import shifts_crossed
from responses.measures.models import MeasureOrder
from responses.reports.models import InfoReport
from responses.runs.models import ResponseRun
from warning.consultation.models import Consultation, Decision, Judgement
from warning.models import Warning


class ReportScopeError(ValueError):
    """The runs asked for cannot make one report (none found, or drill and real mixed)."""

    def __init__(self, zh: str, en: str) -> None:
        self.zh, self.en = zh, en
        super().__init__(f"{zh} / {en}")


def _tz_name(tz: dt.tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


def select_runs(session: Session, *, run_ids: Sequence[int] | None = None, thread_id: int | None = None,
                drill: bool | None = None) -> list[ResponseRun]:
    """The runs a report covers. ``drill`` filters (None = whatever the ids name; with no ids, real runs)."""
    stmt = select(ResponseRun).order_by(ResponseRun.id)
    if run_ids is not None:
        stmt = stmt.where(ResponseRun.id.in_(list(run_ids)))
    if thread_id is not None:
        stmt = stmt.where(ResponseRun.thread_id == thread_id)
    if drill is not None:
        stmt = stmt.where(ResponseRun.drill.is_(drill))
    elif run_ids is None:
        stmt = stmt.where(ResponseRun.drill.is_(False))
    runs = list(session.execute(stmt).scalars())
    if run_ids is not None:
        missing = sorted(set(run_ids) - {r.id for r in runs})
        if missing:
            raise ReportScopeError(f"找不到响应 {missing}", f"no such run(s): {missing}")
    if len({r.drill for r in runs}) > 1:
        raise ReportScopeError("演练与实际响应不能合并在一份报告中，请分别生成",
                               "drill and real runs cannot share one report; make one for each")
    return runs


def build_report(
    session: Session,
    *,
    now: dt.datetime,
    tz: dt.tzinfo,
    run_ids: Sequence[int] | None = None,
    thread_id: int | None = None,
    drill: bool | None = None,
    as_of: dt.datetime | None = None,
    title: str | None = None,
    scenario: dict[str, Any] | None = None,
    warning_threads: Sequence[int] | None = None,
    extra_findings: Sequence[Finding] = (),
) -> dict[str, Any]:
    """The report for the runs in scope. ``now`` stamps it; ``as_of`` (default ``now``) judges open deadlines.

    ``warning_threads`` adds warning threads whether or not they started a run (a drill passes every
    thread it fed); given, even an empty list, a report with no runs is made rather than refused.
    ``extra_findings`` come after the builder's own (the drill's inputs that produced no warning).
    """
    as_of = as_of or now
    runs = select_runs(session, run_ids=run_ids, thread_id=thread_id, drill=drill)
    if not runs and thread_id is None and warning_threads is None:
        raise ReportScopeError("没有可报告的响应", "no runs to report on")
    threads = sorted({r.thread_id for r in runs} | ({thread_id} if thread_id is not None else set())
                     | set(warning_threads or ()))
    is_drill = runs[0].drill if runs else bool(drill)
    run_id_list = [r.id for r in runs]

    def t(v: dt.datetime | None) -> str | None:
        return iso(v, tz)

    # -- warnings, one row per thread, its versions inside
    versions = list(session.execute(
        select(Warning).where(Warning.thread_id.in_(threads)).order_by(Warning.thread_id, Warning.version,
                                                                        Warning.id)).scalars())
    by_thread: dict[int, list[Warning]] = {}
    for w in versions:
        by_thread.setdefault(w.thread_id or w.id, []).append(w)
    warnings = []
    for th in threads:
        vs = by_thread.get(th, [])
        if not vs:
            continue
        first, last = vs[0], vs[-1]
        levels = [v.level for v in vs if v.level]
        warnings.append({
            "id": th, "identifier": first.identifier, "sender": first.sender, "hazard": first.hazard,
            "event": first.event, "level": levels[-1] if levels else None,
            "received_at": t(min(v.received_at for v in vs)), "status": first.status,
            "versions": [{"id": v.id, "identifier": v.identifier, "msg_type": v.msg_type, "status": v.status,
                          "level": v.level, "sent": t(v.sent), "received_at": t(v.received_at), "state": v.state}
                         for v in vs],
            "msg_type": last.msg_type, "state": last.state, "headline": last.headline or first.headline,
            "ended_at": t(last.ended_at),
        })

    # -- consultations of those threads
    dept_names = dict(session.execute(select(Department.code, Department.name)).tuples().all())
    consults = list(session.execute(
        select(Consultation).where(Consultation.thread_id.in_(threads)).order_by(Consultation.id)).scalars())
    if is_drill is not None:
        consults = [c for c in consults if c.drill == is_drill]
    consultations = []
    for c in consults:
        judgements = list(session.execute(
            select(Judgement).where(Judgement.consultation_id == c.id).order_by(Judgement.recorded_at,
                                                                                 Judgement.id)).scalars())
        decision = session.execute(select(Decision).where(Decision.consultation_id == c.id)
                                   .order_by(Decision.version.desc()).limit(1)).scalar_one_or_none()
        consultations.append({
            "id": c.id, "warning_id": c.thread_id, "opened_at": t(c.opened_at), "deadline": t(c.deadline),
            "decided_at": t(c.decided_at), "decision_level": decision.final_level if decision else None,
            "judgements": [{"department": dept_names.get(j.department, j.department), "at": t(j.recorded_at),
                            "level": j.assessed_level, "late": j.late, "department_code": j.department}
                           for j in judgements],
            "missing": [dept_names.get(d, d) for d in c.missing or []],
            "invited": [dept_names.get(d, d) for d in c.invited or []],
            "state": c.state,
        })

    # -- runs
    run_rows = [{
        "id": r.id, "warning_id": r.thread_id, "level": r.level, "trigger": r.trigger,
        "started_at": t(r.started_at), "closed_at": t(r.closed_at), "number": r.number,
        "response_level": r.response_level, "state": r.state, "warning_version_id": r.warning_id,
        "consultation_id": r.consultation_id, "drill": r.drill,
    } for r in runs]

    # -- callouts, their answers and escalations
    callouts = list(session.execute(
        select(Callout).where(Callout.run_id.in_(run_id_list)).order_by(Callout.id)).scalars()) if runs else []
    ids = [c.id for c in callouts]
    first_answer: dict[int, Answer] = {}
    for a in _in_chunks(session, Answer, Answer.callout_id, ids, order=(Answer.at, Answer.id)):
        first_answer.setdefault(a.callout_id, a)
    escalation_rows = list(_in_chunks(session, Escalation, Escalation.from_callout_id, ids,
                                      order=(Escalation.at, Escalation.id)))
    known = set(ids)
    escalated_to: dict[int, list[int]] = {}
    escalated_from: dict[int, int] = {}
    for e in escalation_rows:
        for to in e.to_callout_ids or []:
            if to in known:
                escalated_to.setdefault(e.from_callout_id, []).append(to)
                escalated_from.setdefault(to, e.from_callout_id)
    by_id = {c.id: c for c in callouts}
    callout_rows = []
    for c in callouts:
        ans = first_answer.get(c.id)
        answered_at = c.answered_at or (ans.at if ans else None)
        codes = [a for a in c.areas or [] if isinstance(a, str) and a.isdigit()]
        callout_rows.append({
            "id": c.id, "run_id": c.run_id, "person": c.name, "phone": (c.numbers or [None])[0], "role": c.role,
            "tier": c.tier, "areas": list(c.areas or []), "called_at": t(c.started_at), "deadline": t(c.deadline_at),
            "answered_at": t(answered_at), "answer_channel": ans.channel if ans else None,
            "late": missed(c.deadline_at, answered_at, as_of), "attempts": c.attempts_made,
            "escalated_to": escalated_to.get(c.id, []), "state": c.state,
            "township": township_of(codes[0]) if codes else None,
            "answer_s": (answered_at - c.started_at).total_seconds() if answered_at else None,
            "escalated_from": escalated_from.get(c.id), "reason": c.reason, "area_names": list(c.area_names or []),
        })
    escalations = []
    for e in escalation_rows:
        src = by_id.get(e.from_callout_id)
        targets = [x for x in e.to_callout_ids or [] if x in known] or [None]
        for to in targets:
            dst = by_id.get(to) if to is not None else None
            escalations.append({
                "from_callout": e.from_callout_id, "to_callout": to, "at": t(e.at),
                "from_person": src.name if src else None, "to_person": dst.name if dst else None,
                "to_role": dst.role if dst else None, "reason": e.reason, "step": e.step,
                "target_missing": e.target_missing,
            })

    # -- measures and information reports
    measures = [{
        "id": m.id, "run_id": m.run_id, "kind": m.kind, "areas": list(m.area_codes or []),
        "ordered_at": t(m.ordered_at), "deadline": t(m.deadline), "carried_out_at": t(m.carried_out_at),
        "lifted_at": t(m.lifted_at),
        "overdue": m.state not in ("cancelled", "waived") and missed(m.deadline, m.carried_out_at, as_of),
        "title": m.label, "state": m.state, "responsible_unit": m.responsible_unit,
        "lift_ordered_at": t(m.lift_ordered_at),
    } for m in (session.execute(select(MeasureOrder).where(MeasureOrder.run_id.in_(run_id_list))
                                .order_by(MeasureOrder.id)).scalars() if runs else [])]
    reports = [{
        "id": r.id, "run_id": r.run_id, "kind": r.kind, "due_at": t(r.due_at), "sent_at": t(r.sent_at),
        "overdue": r.state != "cancelled" and missed(r.due_at, r.sent_at, as_of), "state": r.state,
        "title": r.title,
    } for r in (session.execute(select(InfoReport).where(InfoReport.run_id.in_(run_id_list))
                                .order_by(InfoReport.due_at, InfoReport.id)).scalars() if runs else [])]

    # -- the shifts the runs crossed: who was on duty, the handover, the duty log
    shifts = _shifts(session, runs, warnings, as_of=as_of, tz=tz)

    # -- the event log: proof it is intact, and the entries this report rests on
    scope: dict[str, set[str]] = {
        "warning": {str(v.id) for v in versions},
        "consultation": {str(c.id) for c in consults},
        "response_run": {str(i) for i in run_id_list},
        "callout": {str(i) for i in ids},
        "measure_order": {str(m["id"]) for m in measures},
        "info_report": {str(r["id"]) for r in reports},
        "handover": {str(sh["handover"]["id"]) for sh in shifts if sh["handover"]},
        "duty_log_entry": {str(e["id"]) for sh in shifts for e in sh["log"] if not e["system"]},
    }
    events = _events_in_scope(session, scope)
    check = verify(session)

    area_codes = {row["township"] for row in callout_rows if row["township"]}
    area_codes |= {a for row in callout_rows for a in row["areas"]}
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "title": title or _title(warnings, is_drill),
        "drill": is_drill,
        "timezone": _tz_name(tz),
        "generated_at": t(now),
        "as_of": t(as_of),
        "scope": {"run_ids": run_id_list, "thread_ids": threads},
        "scenario": scenario,
        "area_names": _area_names(session, area_codes),
        "event_log": {"ok": check.ok, "checked": check.checked, "bad_seq": check.bad_seq, "reason": check.reason,
                      "events_in_scope": len(events)},
        "warnings": warnings,
        "consultations": consultations,
        "runs": run_rows,
        "callouts": callout_rows,
        "escalations": escalations,
        "measures": measures,
        "reports": reports,
        "shifts": shifts,
        "events": [{"seq": e.seq, "at": t(e.at), "action": e.action, "entity_type": e.entity_type,
                    "entity_id": e.entity_id, "actor": e.actor} for e in events],
    }
    report["kpis"] = compute_kpis(report)
    quiet = [th for th in threads if th in by_thread and th not in {r.thread_id for r in runs}]
    report["findings"] = [f.as_dict() for f in _why_no_response(session, quiet, by_thread, consults, as_of, tz)]
    report["findings"] += [f.as_dict() for f in extra_findings]
    return report


def _shifts(session: Session, runs: Sequence[ResponseRun], warnings: Sequence[dict[str, Any]], *,
            as_of: dt.datetime, tz: dt.tzinfo) -> list[dict[str, Any]]:
    """Each shift a run crossed (from its start to its close, or ``as_of``), with its people, its handover and its
    log (the officers' entries and the system's); with no run, the shifts from the first warning to ``as_of``."""
    windows = [(r.started_at, r.closed_at or as_of) for r in runs]
    if not windows and warnings:
        received = [when for w in warnings if (when := parse_iso(w.get("received_at"))) is not None]
        windows = [(min(received), as_of)] if received else []
    if not windows:
        return []
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(_tz_name(tz))

    def t(v: dt.datetime | None) -> str | None:
        return iso(v, tz)

    out = []
    for sh in shifts_crossed(session, windows, as_of=as_of, tz=zone):
        h = sh["handover"]
        out.append({
            "id": sh["id"], "label": sh["label"], "starts_at": t(sh["starts_at"]), "ends_at": t(sh["ends_at"]),
            "leader": sh["leader"], "officers": sh["officers"],
            "handover": None if h is None else {
                "id": h["id"], "state": h["state"], "state_zh": h["state_zh"], "text": h["text"], "edited": h["edited"],
                "drafted_at": t(h["drafted_at"]), "drafted_by": h["drafted_by"], "signed_by": h["signed_by"],
                "signed_at": t(h["signed_at"]), "sign_late": h["sign_late"], "ack_due_at": t(h["ack_due_at"]),
                "acknowledged_by": h["acknowledged_by"], "acknowledged_at": t(h["acknowledged_at"]),
                "ack_note": h["ack_note"], "late": h["late"], "flagged_at": t(h["flagged_at"]),
                "next_shift_id": h["next_shift_id"]},
            "log": [{"id": e["id"], "system": e["system"], "event_seq": e["event_seq"], "at": t(e["at"]),
                     "kind": e["kind"], "kind_zh": e["kind_zh"], "text": e["text"], "source": e["source"],
                     "for_handover": e["for_handover"], "run_id": e["run_id"], "warning_id": e["warning_id"]}
                    for e in sh["log"]],
        })
    return out


def _why_no_response(session: Session, threads: Sequence[int], by_thread: dict[int, list[Warning]],
                     consults: Sequence[Consultation], as_of: dt.datetime, tz: dt.tzinfo) -> list[Finding]:
    """One finding per warning thread that started no run, from the records the engine acted on."""
    from responses.runs.engine import outside_region
    from responses.runs.service import current_plan

    out = []
    for th in threads:
        vs = by_thread[th]
        level = next((v.level for v in reversed(vs) if v.level), None)
        hazard = next((v.hazard for v in vs if v.hazard), None)
        plan_level: PlanLevel | None = None
        plan_missing = False
        if hazard and level:
            plan, version = current_plan(session, hazard)
            plan_missing = plan is None
            if plan is not None:
                entry = plan.entry(level)
                plan_level = PlanLevel(plan.title, plan.title_en, version, level, entry.response_level,
                                       entry.consultation.mode.value)
        mine = [c for c in consults if c.thread_id == th]
        placed = [v for v in vs if v.state != "held"]
        outside = bool(placed) and not mine and all(outside_region(v.area_spec, v.affected) for v in placed)
        out.append(no_response_finding(vs, consultation=mine[-1] if mine else None, plan=plan_level,
                                       plan_missing=plan_missing, outside=outside, as_of=as_of, tz=tz))
    return out


def _title(warnings: list[dict[str, Any]], drill: bool) -> str:
    if warnings:
        w = warnings[0]
        level = VALUE_ZH["level"].get(w["level"] or "", "")
        name = f"{w['event'] or VALUE_ZH['hazard'].get(w['hazard'], w['hazard'])}{level}预警"
    else:
        name = "响应"
    return f"{name}{'演练' if drill else ''}时效审计报告"


def _in_chunks(session: Session, model: Any, column: Any, ids: Sequence[int], *, order: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(ids), 500):
        out += list(session.execute(select(model).where(column.in_(ids[i:i + 500])).order_by(*order)).scalars())
    return out


def _events_in_scope(session: Session, scope: dict[str, set[str]]) -> list[Event]:
    pairs = [(etype, eid) for etype, eids in scope.items() for eid in sorted(eids)]
    out: dict[int, Event] = {}
    for i in range(0, len(pairs), 400):
        chunk = pairs[i:i + 400]
        for e in session.execute(select(Event).where(tuple_(Event.entity_type, Event.entity_id).in_(chunk))).scalars():
            out[e.seq] = e
    return [out[k] for k in sorted(out)]


def _area_names(session: Session, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    try:
        from geo.models import Area
    except ImportError:  # the geo domain is optional for a report
        return {}
    rows = session.execute(select(Area.code, Area.name).where(Area.code.in_(sorted(codes)))).tuples().all()
    return {code: name for code, name in sorted(rows)}
