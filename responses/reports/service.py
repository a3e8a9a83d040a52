"""Information reports in the database: due reports created from the run's plan snapshot, drafted
from the run's data, edited and marked sent by the duty officer, overdue ones flagged to the leader
on duty. The caller commits.

``sync_reports`` is idempotent (reports are keyed per run): reaching a level makes its initial
phone and written reports due; while the run is open every local follow-up slot up to now, and the
next one, has its report; closing the run makes the final report due and cancels follow-ups that
would fall after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.eventlog import record
from responses.measures import core as mrules
from responses.measures.notices import figures_zh, local_text
from responses.reports import core as sched
from responses.reports.core import DueReport, ReportFacts, ReportKind, ReportState
from responses.reports.drafts import render_report_draft
from responses.reports.models import InfoReport
from responses.runs.core import RunState
from responses.runs.models import ResponseRun, SupervisionFlag
from responses.runs.plans import ReportSchedule
from warning.draft import HAZARD_ZH, Hazard, Level
from warning.models import Warning

OVERDUE_KIND = "report_overdue"
SENT_VIA = ("phone", "written", "fax", "system", "other")


class ReportActionError(Exception):
    def __init__(self, status: int, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.status, self.code, self.zh, self.en = status, code, zh, en


def schedule_of(run: ResponseRun) -> ReportSchedule | None:
    raw = (run.entry_snapshot or {}).get("reports")
    if not raw:
        return None
    return ReportSchedule.model_validate(raw)


def for_run(session: Session, run_id: int) -> list[InfoReport]:
    return list(session.execute(
        select(InfoReport).where(InfoReport.run_id == run_id).order_by(InfoReport.due_at, InfoReport.id)).scalars())


def drafts_of_runs(session: Session, run_ids: Sequence[int]) -> list[InfoReport]:
    """The reports still to be sent (drafts) of several runs in one query, the earliest due first.

    The duty board shows what is due across every open run on each render; one query per run made the
    page's cost grow with the number of runs.
    """
    if not run_ids:
        return []
    return list(session.execute(
        select(InfoReport).where(InfoReport.run_id.in_(list(run_ids)), InfoReport.state == ReportState.DRAFT.value)
        .order_by(InfoReport.due_at, InfoReport.id)).scalars())


def get(session: Session, report_id: int, *, lock: bool = False) -> InfoReport | None:
    stmt = select(InfoReport).where(InfoReport.id == report_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def _event(session: Session, rep: InfoReport, action: str, actor: str, now: dt.datetime,
           payload: dict[str, Any] | None = None) -> None:
    record(session, now=now, action=f"report.{action}", entity_type="info_report", entity_id=rep.id, actor=actor,
           payload={"run_id": rep.run_id, "kind": rep.kind, "seq": rep.seq, "due_at": rep.due_at.isoformat(),
                    "state": rep.state, **(payload or {})})


# ---------------------------------------------------------------------------------------------- drafting


def _calls(session: Session, run_id: int, now: dt.datetime) -> tuple[int, int, int]:
    try:
        from responses.callouts.models import Callout
    except ImportError:
        return 0, 0, 0
    total = session.execute(select(func.count(Callout.id)).where(Callout.run_id == run_id)).scalar_one()
    answered = session.execute(select(func.count(Callout.id)).where(
        Callout.run_id == run_id, Callout.answered_at.is_not(None))).scalar_one()
    late = session.execute(select(func.count(Callout.id)).where(
        Callout.run_id == run_id, Callout.answered_at.is_(None), Callout.deadline_at <= now)).scalar_one()
    return int(total), int(answered), int(late)


def facts(session: Session, run: ResponseRun, kind: ReportKind, seq: int, now: dt.datetime,
          tz: ZoneInfo) -> ReportFacts:
    """Everything a report says, read from the run, its warning, its callouts and its measures."""
    from responses.measures import service as measure_service

    warning = session.get(Warning, run.warning_id)
    hazard_zh = HAZARD_ZH[Hazard(run.hazard)] if run.hazard in Hazard._value2member_map_ else run.hazard
    if warning is not None and warning.event:
        hazard_zh = warning.event
    level_zh = Level(run.level).zh if run.level in Level._value2member_map_ else run.level
    codes = [str(c) for c in (run.areas or {}).get("villages", []) or (run.areas or {}).get("townships", [])]
    areas = list(measure_service.area_names(session, codes).values())
    total, answered, late = _calls(session, run.id, now)
    measures: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    for o in measure_service.for_run(session, run.id):
        gap = mrules.evacuation_gap(o.expected, o.report) if o.kind == "evacuation" and o.report else None
        measures.append({"label": o.label, "unit": o.responsible_unit,
                         "state_zh": mrules.STATE_ZH[mrules.MeasureState(o.state)],
                         "figures_zh": figures_zh({k: v for k, v in (o.report or {}).items() if k != "expected"}),
                         "gap_zh": gap.zh if gap else ""})
        for k, v in (o.report or {}).items():
            if k in mrules.REPORT_ZH and k != "expected" and isinstance(v, int):
                totals[k] = totals.get(k, 0) + v
    return ReportFacts(
        kind=kind, seq=seq, now_local=local_text(now, tz), run_number=run.number, hazard_zh=hazard_zh,
        level_zh=level_zh, response_level=run.response_level,
        warning_headline=(warning.headline or "") if warning else "",
        warning_sent_local=local_text(warning.sent, tz) if warning else "",
        started_local=local_text(run.started_at, tz), areas=areas, calls_total=total, calls_answered=answered,
        calls_overdue=late, measures=measures, figures=totals,
        closed_local=local_text(run.closed_at, tz) if kind is ReportKind.FINAL and run.closed_at else None,
    )


def draft(session: Session, run: ResponseRun, kind: ReportKind, seq: int, now: dt.datetime,
          tz: ZoneInfo) -> tuple[str, str]:
    f = facts(session, run, kind, seq, now, tz)
    return sched.report_title(kind, seq, f.hazard_zh, f.level_zh), render_report_draft(f)


# ---------------------------------------------------------------------------------------------- creating


def _ensure(session: Session, run: ResponseRun, key: str, due: DueReport, *, now: dt.datetime, tz: ZoneInfo,
            actor: str, existing: dict[str, InfoReport]) -> InfoReport | None:
    if key in existing:
        return None
    title, text = draft(session, run, due.kind, due.seq, now, tz)
    rep = InfoReport(run_id=run.id, key=key, kind=due.kind.value, seq=due.seq, level=run.level, due_at=due.due_at,
                     state=ReportState.DRAFT.value, title=title, draft_text=text, text=text, drafted_at=now,
                     drill=bool(run.drill), created_at=now, updated_at=now)
    session.add(rep)
    session.flush()
    existing[key] = rep
    _event(session, rep, "due", actor, now, {"level": run.level, "title": title})
    return rep


def sync_reports(session: Session, run: ResponseRun, *, now: dt.datetime, tz: ZoneInfo,
                 actor: str = "rule:report_schedule") -> list[InfoReport]:
    """Create the reports now due for the run (idempotent); returns the new ones."""
    schedule = schedule_of(run)
    if schedule is None:
        return []
    existing = {r.key: r for r in for_run(session, run.id)}
    created: list[InfoReport] = []

    def add(key: str, due: DueReport) -> None:
        rep = _ensure(session, run, key, due, now=now, tz=tz, actor=actor, existing=existing)
        if rep is not None:
            created.append(rep)

    # Initial reports for each level the run reaches, counted from when it reached it.
    reached_at = run.started_at if not any(k.startswith("initial_phone") for k in existing) else now
    phone, written = sched.initial_reports(schedule, reached_at)
    if f"initial_phone:{run.level}" not in existing and not _reported_higher(existing, run.level):
        add(f"initial_phone:{run.level}", phone)
        add(f"initial_written:{run.level}", written)
    first_written = min((r.due_at for r in existing.values() if r.kind == ReportKind.INITIAL_WRITTEN.value),
                        default=written.due_at)
    state = RunState(run.state)
    if state is not RunState.CLOSED:
        end = max(now, first_written)
        slots = sched.followups_between(schedule, first_written, end, tz)
        nxt = sched.next_followup(schedule, end, tz)
        if nxt is not None:
            slots.append(nxt)
        for slot in slots:
            key = f"followup:{slot.isoformat()}"
            if key not in existing:
                seq = 1 + sum(1 for r in existing.values() if r.kind == ReportKind.FOLLOWUP.value)
                add(key, DueReport(ReportKind.FOLLOWUP, slot, seq))
    elif run.closed_at is not None:
        for r in existing.values():
            if r.kind == ReportKind.FOLLOWUP.value and r.state == ReportState.DRAFT.value and r.due_at > run.closed_at:
                r.state, r.cancelled_reason, r.updated_at = ReportState.CANCELLED.value, "响应已结束 / run closed", now
                _event(session, r, "cancelled", actor, now, {"reason": "run closed"})
        fin = sched.final_report(schedule, run.closed_at)
        if fin is not None:
            add("final", fin)
    return created


def _reported_higher(existing: dict[str, InfoReport], level: str) -> bool:
    """A run revised downward does not owe a new initial report for the lower level."""
    if level not in Level._value2member_map_:
        return False
    rank = Level(level).rank
    for k in existing:
        if k.startswith("initial_phone:"):
            lv = k.split(":", 1)[1]
            if lv in Level._value2member_map_ and Level(lv).rank > rank:
                return True
    return False


def on_run_event(session: Session, run: ResponseRun, action: str, *, actor: str, now: dt.datetime) -> None:
    """Called by the run service after each run event, in the same transaction: reaching a level, or
    closing, makes reports due at once rather than at the next sweep."""
    if action in ("started", "raised", "revised_by_decision", "closed"):
        from responses.measures.service import display_zone

        sync_reports(session, run, now=now, tz=display_zone())


# ---------------------------------------------------------------------------------------------- editing


def edit(session: Session, rep: InfoReport, *, text: str, actor: str, now: dt.datetime) -> InfoReport:
    if rep.state != ReportState.DRAFT.value:
        raise ReportActionError(409, "report_not_draft", "报告已报送或已取消，不能再修改",
                                "the report was sent or cancelled; it cannot be edited")
    if not text.strip():
        raise ReportActionError(400, "empty_text", "报告内容不能为空", "the report text cannot be empty")
    rep.text, rep.edited_at, rep.edited_by, rep.updated_at = text, now, actor, now
    _event(session, rep, "edited", actor, now, {"chars": len(text)})
    return rep


def redraft(session: Session, rep: InfoReport, *, actor: str, now: dt.datetime, tz: ZoneInfo) -> InfoReport:
    """Draft again from the run's current data (an edit already made is replaced; the old one is in the log)."""
    if rep.state != ReportState.DRAFT.value:
        raise ReportActionError(409, "report_not_draft", "报告已报送或已取消，不能重新起草",
                                "the report was sent or cancelled; it cannot be redrafted")
    run = session.get(ResponseRun, rep.run_id)
    assert run is not None
    rep.title, rep.draft_text = draft(session, run, ReportKind(rep.kind), rep.seq, now, tz)
    rep.text, rep.drafted_at, rep.updated_at = rep.draft_text, now, now
    _event(session, rep, "redrafted", actor, now)
    return rep


def mark_sent(session: Session, rep: InfoReport, *, via: str, actor: str, now: dt.datetime,
              recipient: str | None = None, text: str | None = None) -> InfoReport:
    if rep.state != ReportState.DRAFT.value:
        raise ReportActionError(409, "report_not_draft", "报告已报送或已取消",
                                "the report was already sent or cancelled")
    if via not in SENT_VIA:
        raise ReportActionError(400, "bad_via", f"报送方式应为：{'、'.join(SENT_VIA)}",
                                f"via must be one of {', '.join(SENT_VIA)}")
    if text is not None:
        edit(session, rep, text=text, actor=actor, now=now)
    rep.state, rep.sent_at, rep.sent_by, rep.sent_via = ReportState.SENT.value, now, actor, via
    rep.recipient, rep.late, rep.updated_at = recipient, now > rep.due_at, now
    _event(session, rep, "sent", actor, now, {"via": via, "recipient": recipient, "late": rep.late})
    flag = session.execute(select(SupervisionFlag).where(
        SupervisionFlag.key == f"{OVERDUE_KIND}:info_report:{rep.id}", SupervisionFlag.cleared_at.is_(None))
    ).scalar_one_or_none()
    if flag is not None:
        flag.cleared_at, flag.cleared_reason = now, "report sent"
        record(session, now=now, action=f"supervision.{OVERDUE_KIND}_cleared", entity_type="supervision_flag",
               entity_id=flag.id, actor=actor, payload={"key": flag.key})
    return rep


def sweep_overdue(session: Session, now: dt.datetime, tz: ZoneInfo, *, limit: int = 500) -> list[InfoReport]:
    """Reports still in draft at their deadline: flagged once, the leader on duty told."""
    from responses.runs import supervision

    late = list(session.execute(
        select(InfoReport).where(InfoReport.state == ReportState.DRAFT.value, InfoReport.overdue_at.is_(None),
                                 InfoReport.due_at <= now)
        .order_by(InfoReport.due_at, InfoReport.id).limit(limit).with_for_update()).scalars())
    for rep in late:
        rep.overdue_at, rep.updated_at = now, now
        _event(session, rep, "overdue", "rule:report_deadline", now)
        key = f"{OVERDUE_KIND}:info_report:{rep.id}"
        if not session.execute(select(SupervisionFlag.id).where(SupervisionFlag.key == key)).first():
            flag = SupervisionFlag(key=key, kind=OVERDUE_KIND, subject_type="info_report", subject_id=str(rep.id),
                                   due_at=rep.due_at, raised_at=now,
                                   detail={"run_id": rep.run_id, "kind": rep.kind, "seq": rep.seq})
            session.add(flag)
            session.flush()
            record(session, now=now, action=f"supervision.{OVERDUE_KIND}_flagged", entity_type="supervision_flag",
                   entity_id=flag.id, actor="rule:report_deadline", payload={"key": key, "report_id": rep.id})
        kind_zh = sched.KIND_ZH[ReportKind(rep.kind)]
        supervision.notify_leader_on_duty(
            session, kind=OVERDUE_KIND,
            subject=f"信息报送超时：{rep.title}（{kind_zh}，应于 {local_text(rep.due_at, tz)} 前报送）",
            subject_en=f"Information report overdue: {rep.kind} #{rep.seq}, due {rep.due_at.isoformat()}",
            entity_type="info_report", entity_id=rep.id, now=now)
    return late


def view(rep: InfoReport, now: dt.datetime, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": rep.id, "run_id": rep.run_id, "kind": rep.kind, "kind_zh": sched.KIND_ZH[ReportKind(rep.kind)],
        "seq": rep.seq, "level": rep.level, "due_at": rep.due_at, "due_local": local_text(rep.due_at, tz),
        "state": rep.state, "state_zh": sched.STATE_ZH[ReportState(rep.state)], "title": rep.title,
        "text": rep.text, "draft_text": rep.draft_text, "edited": rep.text != rep.draft_text,
        "edited_by": rep.edited_by, "sent_at": rep.sent_at, "sent_by": rep.sent_by, "sent_via": rep.sent_via,
        "recipient": rep.recipient, "late": rep.late,
        "overdue": rep.overdue_at is not None or sched.is_overdue(rep.state, rep.due_at, now),
        "overdue_at": rep.overdue_at, "cancelled_reason": rep.cancelled_reason, "drill": rep.drill,
    }


def open_runs_for_reports(session: Session, now: dt.datetime, *, closed_within: dt.timedelta) -> list[ResponseRun]:
    """Runs that may owe reports: open ones, and ones closed recently (their final report)."""
    return list(session.execute(
        select(ResponseRun).where((ResponseRun.state != RunState.CLOSED.value)
                                  | (ResponseRun.closed_at >= now - closed_within))
        .order_by(ResponseRun.id)).scalars())

