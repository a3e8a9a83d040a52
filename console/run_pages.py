"""Console pages of response runs (响应): the list, and one run's callouts, measures and information reports.

Every action on a run page is the JSON API's route of the same name done from a form: the same role
constants (imported from the API modules, so the two can never drift apart), the same schema, the same
service call, one commit, then back to the run's page at the part that changed. A refusal by a service (a
state that does not allow the step, a missing reason, a figure that is not a number) shows the service's
own words on the problem page instead of a JSON error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from config.errors import ApiError, not_found
from config.fields import RowId
from config.transitions import IllegalTransition
from config.users import User
from config.web import DB, STAFF, ClockDep, SettingsDep, actor_of
from console.board import LEVEL_RANK, level_key, local
from console.map_pages import allow_tiles
from console.rendering import PageUser, attempt, problem, redirect, refused, render, user_can
from console.security import check_csrf
from responses.audit.api import AUDITORS
from responses.callouts import answers as callout_answers
from responses.callouts import board as callout_board
from responses.callouts import service as callout_service
from responses.callouts.core import AnswerChannel
from responses.callouts.schemas import AnswerIn
from responses.contacts import service as contact_service
from responses.measures import core as measure_rules
from responses.measures import service as measure_service
from responses.measures.api import LEADER_ACTIONS
from responses.measures.api import LEADERS as MEASURE_LEADERS
from responses.measures.core import MeasureAction
from responses.measures.schemas import MeasureActionIn
from responses.reports import service as report_service
from responses.reports.schemas import ReportSentIn, ReportTextIn
from responses.runs import service as run_service
from responses.runs.api import LEADERS as RUN_LEADERS
from responses.runs.core import IllegalRunTransition, RunState, RunTransition
from responses.runs.schemas import RunCloseIn, RunClosingIn

if TYPE_CHECKING:
    from responses.runs.models import ResponseRun

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(check_csrf)])

Text = Annotated[str, Form()]

# Callouts that still wait for a word from the person: the duty officer may confirm them by phone.
OPEN_CALLOUTS = frozenset({"calling", "escalated", "unanswered"})
# Worst first: past the deadline, nobody left to call, passed up the ladder, still calling, answered, cancelled.
CALLOUT_ORDER = {"overdue": 0, "unanswered": 1, "escalated": 2, "calling": 3, "answered": 4, "cancelled": 5}
CLOSED_LIST_LIMIT = 20

# Each measure action's form: which fields it asks for, whether it asks "are you sure?" first, and whether it
# is an everyday step (shown at once) or an exception (behind "more actions").
_VIA = ("phone", "sms", "voice", "web", "other")
_FORMS: dict[MeasureAction, dict[str, Any]] = {
    MeasureAction.ACKNOWLEDGE: {"via": True},
    MeasureAction.START: {"via": True},
    MeasureAction.REPORT_PROGRESS: {"via": True, "figure": True, "note": "report"},
    MeasureAction.CARRY_OUT: {"via": True, "figure": True, "note": "report", "confirm": True},
    MeasureAction.ORDER_LIFT: {"reason": True, "confirm": True},
    MeasureAction.ACKNOWLEDGE_LIFT: {"via": True},
    MeasureAction.CONFIRM_LIFTED: {"via": True, "note": "report", "confirm": True},
    MeasureAction.REJECT: {"via": True, "reason": True, "more": True},
    MeasureAction.REASSIGN: {"unit": True, "reason": True, "more": True},
    MeasureAction.CANCEL: {"reason": True, "confirm": True, "more": True},
    MeasureAction.WAIVE: {"reason": True, "confirm": True, "more": True},
}


# ---------------------------------------------------------------------------------------------- refusals


@contextmanager
def refusals() -> Iterator[None]:
    """The domains' refusals that are not ``ApiError``s, worded as the JSON API words them.

    The API turns these into its error body in its exception handlers; a page needs them as ``ApiError`` so
    ``attempt`` can show them, with the same status and code.
    """
    try:
        yield
    except IllegalTransition as exc:
        raise ApiError(409, "illegal_transition", exc.zh, exc.en) from None
    except measure_rules.ReportError as exc:
        raise ApiError(400, "bad_report", exc.zh, exc.en) from None
    except (callout_service.CalloutError, report_service.ReportActionError) as exc:
        raise ApiError(exc.status, exc.code, exc.zh, exc.en) from None


M = TypeVar("M", bound=BaseModel)


def validated(schema: type[M], **fields: Any) -> M:
    """The API's own request schema, filled from a form: the same limits as a JSON body, a 422 page if not."""
    try:
        return schema(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "form"
        raise ApiError(422, "validation_error", f"填写有误：{where}（{first.get('msg', '')}）",
                       f"invalid input: {where} ({first.get('msg', '')})") from None


def back_to(run_id: int, anchor: str, done: str) -> Response:
    """303 to the run's page with the ✓ line, scrolled to the part that changed (the fragment after the query)."""
    response = redirect(f"/console/runs/{run_id}", done=done)
    response.headers["location"] += f"#{anchor}"
    return response




def _run_or_404(session: Session, run_id: int, *, lock: bool = False) -> ResponseRun:
    run = run_service.get_run(session, run_id, lock=lock)
    if run is None:
        raise not_found("响应", "response run", run_id)
    return run


# ---------------------------------------------------------------------------------------------- reading


def _when(iso: str | None) -> str:
    """A board time (ISO text already in the display zone) as the page shows it, with seconds: calls are
    minutes apart and the deadline is five minutes away."""
    if not iso:
        return ""
    return dt.datetime.fromisoformat(iso).strftime("%m-%d %H:%M:%S")


def _took(seconds: int | None) -> str:
    if seconds is None:
        return ""
    minutes, rest = divmod(max(0, seconds), 60)
    return f"{minutes}:{rest:02d}"


def _run_row(run: ResponseRun, totals: dict[str, int], tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": run.id, "number": run.number, "level": level_key(run.level), "hazard": run.hazard,
        "response_level": run.response_level, "state": run.state, "drill": run.drill,
        "started": local(run.started_at, tz), "closed": local(run.closed_at, tz), "totals": totals,
        "trouble": totals["overdue"] + totals["unanswered"],
    }


def runs_list(session: Session, *, now: dt.datetime, tz: ZoneInfo) -> dict[str, list[dict[str, Any]]]:
    """Open runs red first (the newest first inside a level), then the most recently closed ones."""
    open_runs = run_service.open_runs(session)
    closed = run_service.closed_runs(session, limit=CLOSED_LIST_LIMIT)
    totals = callout_board.run_totals(session, [r.id for r in [*open_runs, *closed]], now=now)
    rows = [_run_row(r, totals[r.id], tz) for r in open_runs]
    rows.sort(key=lambda r: LEVEL_RANK.get(r["level"], 9))  # stable: newest first stays inside a level
    return {"open": rows, "closed": [_run_row(r, totals[r.id], tz) for r in closed]}


def _callouts(session: Session, run_id: int, *, now: dt.datetime, tz: ZoneInfo) -> dict[str, Any]:
    board = callout_board.board(session, run_id, now=now, tz=tz)
    names = {c["id"]: c["name"] for c in board["callouts"]}
    rows = []
    for c in board["callouts"]:
        rows.append({
            **c,
            "open": c["state"] in OPEN_CALLOUTS,
            "sort": CALLOUT_ORDER["overdue" if c["overdue"] else c["state"]] if c["state"] in CALLOUT_ORDER else 9,
            "started": _when(c["started_at"]), "deadline": _when(c["deadline_at"]),
            "answered": _when(c["answered_at"]), "took": _took(c["seconds_to_answer"]),
            "attempts": [{**a, "at": _when(a["at"])} for a in c["attempts"]],
            "answers": [{**a, "at": _when(a["at"])} for a in c["answers"]],
            "escalations": [{**e, "at": _when(e["at"]), "to_names": [names.get(i, f"#{i}") for i in e["to"]]}
                            for e in c["escalations"]],
            "from_names": [names.get(i, f"#{i}") for i in c["escalated_from"]],
        })
    rows.sort(key=lambda c: c["sort"])  # stable: the ladder's order (tier, then id) inside each group
    progress = callout_board.township_progress(session, run_id, now=now)
    area_names = contact_service.area_names(session, [code for code in progress if code])
    townships = [{"code": code, "name": area_names.get(code, code) if code else "", **counts,
                  "trouble": counts["overdue"] + counts["unanswered"] + counts["escalated"]}
                 for code, counts in sorted(progress.items(), key=lambda kv: (kv[0] == "", kv[0]))]
    return {"rows": rows, "townships": townships, "total": board["total"]}


def _measure_forms(view: dict[str, Any], user: User) -> list[dict[str, Any]]:
    """The actions the measure's state allows that this user's role may take, each with its form's fields."""
    figure = measure_rules.REQUIRED_FIGURE.get(measure_rules.MeasureKind(view["kind"]))
    out = []
    for name in view["allowed_actions"]:
        action = MeasureAction(name)
        roles = MEASURE_LEADERS if action in LEADER_ACTIONS else STAFF
        if not user_can(user, roles):
            continue
        spec = _FORMS.get(action, {})
        out.append({
            "action": action.value, "via": bool(spec.get("via")), "reason": bool(spec.get("reason")),
            "unit": bool(spec.get("unit")), "note": spec.get("note"), "confirm": bool(spec.get("confirm")),
            "more": bool(spec.get("more")),
            "figure": figure if spec.get("figure") else None,
            "figure_required": action is MeasureAction.CARRY_OUT and figure is not None,
        })
    return out


def _measures(session: Session, run_id: int, user: User, *, now: dt.datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    rows = []
    for order in measure_service.for_run(session, run_id):
        v = measure_service.view(order, now)
        lifting = v["state"] == "lifting"
        deadline = v["lift_deadline"] if lifting else v["deadline"]
        final = v["state"] in {s.value for s in measure_rules.FINAL}
        overdue = bool(v["overdue"] or v["lift_overdue"])
        figures = {k: n for k, n in (v["report"] or {}).items() if k in measure_rules.REPORT_ZH}
        rows.append({
            **v, "final": final, "overdue": overdue and not final, "lifting": lifting,
            "places": [{"code": c, "name": n} for c, n in zip(v["area_codes"], v["area_names"], strict=False)],
            "sites": v["site_names"], "deadline_text": "" if final else local(deadline, tz),
            "figures": figures, "report_note": (v["report"] or {}).get("note", ""),
            "lifted_text": local(v["lifted_at"], tz), "forms": [] if final else _measure_forms(v, user),
            "sort": (not (overdue and not final), final, deadline or now, v["id"]),
        })
    rows.sort(key=lambda m: m["sort"])
    return rows


def _reports(session: Session, run_id: int, *, now: dt.datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    rows = []
    for rep in report_service.for_run(session, run_id):
        v = report_service.view(rep, now, tz)
        rows.append({**v, "due": local(v["due_at"], tz), "sent": local(v["sent_at"], tz),
                     "overdue": bool(v["overdue"]) and v["state"] == "draft"})
    rows.sort(key=lambda r: (r["state"] != "draft", not r["overdue"], r["due_at"], r["id"]))
    return rows


def run_page(session: Session, run: ResponseRun, user: User, *, now: dt.datetime, tz: ZoneInfo) -> dict[str, Any]:
    """Everything one run's page shows, as plain data with its times already in the display zone."""
    callouts = _callouts(session, run.id, now=now, tz=tz)
    return {
        "id": run.id, "number": run.number, "level": level_key(run.level), "hazard": run.hazard,
        "response_level": run.response_level, "state": run.state, "drill": run.drill, "trigger": run.trigger,
        "warning_id": run.warning_id, "started": local(run.started_at, tz),
        "closing": local(run.closing_at, tz), "closing_reason": run.closing_reason or "",
        "closed": local(run.closed_at, tz), "callouts": callouts["rows"], "townships": callouts["townships"],
        "callout_total": callouts["total"], "measures": _measures(session, run.id, user, now=now, tz=tz),
        "reports": _reports(session, run.id, now=now, tz=tz),
    }


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, user: PageUser, session: DB, settings: SettingsDep, clock: ClockDep) -> Response:
    data = runs_list(session, now=clock.now(), tz=settings.tz)
    return render(request, "runs/list.html", {"user": user, "runs": data})


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_detail(run_id: RowId, request: Request, user: PageUser, session: DB, settings: SettingsDep,
               clock: ClockDep) -> Response:
    run = run_service.get_run(session, run_id)
    if run is None:
        return problem(request, not_found("响应", "response run", run_id), back="/console/runs")
    data = run_page(session, run, user, now=clock.now(), tz=settings.tz)
    response = render(request, "runs/detail.html", {
        "user": user, "run": data, "via_options": _VIA, "sent_via_options": report_service.SENT_VIA,
        "staff": STAFF, "leaders": RUN_LEADERS, "auditors": AUDITORS,
    })
    return allow_tiles(response, settings)  # the page's map panel may draw the intranet tiles


# ---------------------------------------------------------------------------------------------- acting


def _act(request: Request, run_id: int, action: Callable[[], Response]) -> Response:
    """Run a page action with the domains' refusals shown on the problem page, which leads back to the run."""
    def guarded() -> Response:
        with refusals():
            return action()
    return attempt(request, guarded, back=f"/console/runs/{run_id}")


@router.post("/runs/{run_id}/callouts/{callout_id}/answer")
def confirm_callout(run_id: RowId, callout_id: RowId, request: Request, user: PageUser, session: DB,
                    clock: ClockDep, note: Text = "", kind: Text = "received") -> Response:
    """电话确认: the duty officer reached the person by phone; mirrors ``POST /callouts/{id}/answers``."""
    if (denied := refused(request, user, STAFF)) is not None:
        return denied

    def act() -> Response:
        body = validated(AnswerIn, channel=AnswerChannel.DUTY_OFFICER, kind=kind, note=note)
        if not body.note.strip():
            raise ApiError(422, "note_required", "电话确认必须填写说明（与谁通话、对方怎么说）",
                           "a phone-confirmed answer needs a note (who was reached, what they said)")
        callout = callout_board.get_callout(session, callout_id, lock=True)
        if callout is None or callout.run_id != run_id:
            raise not_found("叫应", "callout", callout_id)
        callout_answers.record_answer(session, callout, now=clock.now(), channel=body.channel, kind=body.kind,
                                      entered_by=actor_of(user), note=body.note, report=body.report)
        session.commit()
        return back_to(run_id, f"callout-{callout_id}", "runpage_answered")

    return _act(request, run_id, act)


@router.post("/runs/{run_id}/measures/{measure_id}/{action}")
def measure_action(run_id: RowId, measure_id: RowId, action: str, request: Request, user: PageUser, session: DB,
                   clock: ClockDep, settings: SettingsDep, reason: Text = "", note: Text = "", via: Text = "",
                   unit: Text = "", figure: Text = "") -> Response:
    """One step of a measure; mirrors ``POST /measures/{id}/actions/{action}`` (leaders' steps for leaders)."""
    if (denied := refused(request, user, STAFF)) is not None:
        return denied
    try:
        step = MeasureAction(action)
    except ValueError:
        return problem(request, not_found("措施操作", "measure action", action), back=f"/console/runs/{run_id}")
    if step in LEADER_ACTIONS and (denied := refused(request, user, MEASURE_LEADERS)) is not None:
        return denied

    def act() -> Response:
        order = measure_service.get(session, measure_id, lock=True)
        if order is None or order.run_id != run_id:
            raise not_found("措施", "measure", measure_id)
        spec = _FORMS.get(step, {})
        report: dict[str, Any] | None = None
        if spec.get("note") == "report" or spec.get("figure"):
            report = {}
            key = measure_rules.REQUIRED_FIGURE.get(measure_rules.MeasureKind(order.kind))
            if spec.get("figure") and key and figure.strip():
                report[key] = _whole_number(figure, key)
            if spec.get("note") == "report" and note.strip():
                report["note"] = note.strip()
        body = validated(MeasureActionIn, reason=reason.strip() or None, report=report, via=via or None,
                         note=None if spec.get("note") == "report" else (note.strip() or None),
                         unit=unit.strip() or None)
        measure_service.transition(session, order, step, actor=actor_of(user), now=clock.now(), reason=body.reason,
                                   report=body.report, via=body.via, note=body.note, unit=body.unit,
                                   tz=settings.tz)
        session.commit()
        return back_to(run_id, f"measure-{measure_id}", "runpage_measure")

    return _act(request, run_id, act)


def _whole_number(raw: str, key: str) -> int:
    """A figure typed into the form; anything but digits is refused in the measure rules' own words."""
    value = raw.strip()
    if not value.lstrip("-").isdigit():
        label = measure_rules.REPORT_ZH.get(key, key)
        raise ApiError(400, "bad_report", f"“{label}”应为不小于 0 的整数", f"{key} must be a whole number ≥ 0")
    return int(value)


@router.post("/runs/{run_id}/reports/{report_id}/text")
def report_text(run_id: RowId, report_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep,
                text: Text = "") -> Response:
    """Edit a report's draft; mirrors ``PUT /reports/{id}/text``."""
    if (denied := refused(request, user, STAFF)) is not None:
        return denied

    def act() -> Response:
        body = validated(ReportTextIn, text=text)
        rep = report_service.get(session, report_id, lock=True)
        if rep is None or rep.run_id != run_id:
            raise not_found("信息报告", "report", report_id)
        report_service.edit(session, rep, text=body.text, actor=actor_of(user), now=clock.now())
        session.commit()
        return back_to(run_id, f"report-{report_id}", "runpage_report_text")

    return _act(request, run_id, act)


@router.post("/runs/{run_id}/reports/{report_id}/sent")
def report_sent(run_id: RowId, report_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep,
                via: Text = "", recipient: Text = "") -> Response:
    """Record that a report went out, how and to whom; mirrors ``POST /reports/{id}/sent``."""
    if (denied := refused(request, user, STAFF)) is not None:
        return denied

    def act() -> Response:
        body = validated(ReportSentIn, via=via, recipient=recipient.strip() or None)
        rep = report_service.get(session, report_id, lock=True)
        if rep is None or rep.run_id != run_id:
            raise not_found("信息报告", "report", report_id)
        report_service.mark_sent(session, rep, via=body.via, actor=actor_of(user), now=clock.now(),
                                 recipient=body.recipient, text=body.text)
        session.commit()
        return back_to(run_id, f"report-{report_id}", "runpage_report_sent")

    return _act(request, run_id, act)


@router.post("/runs/{run_id}/closing")
def run_closing(run_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep,
                reason: Text = "") -> Response:
    """The leader winds the response down (measures are lifted next); mirrors ``POST /responses/runs/{id}/closing``."""
    if (denied := refused(request, user, RUN_LEADERS)) is not None:
        return denied

    def act() -> Response:
        body = validated(RunClosingIn, reason=reason.strip())
        run = _run_or_404(session, run_id, lock=True)
        if RunState(run.state) is not RunState.ACTIVE:
            raise IllegalRunTransition(RunTransition.BEGIN_CLOSING, RunState(run.state))
        run_service.begin_closing(session, run, reason=body.reason, actor=actor_of(user), now=clock.now())
        session.commit()
        return back_to(run_id, "run", "runpage_closing")

    return _act(request, run_id, act)


@router.post("/runs/{run_id}/close")
def run_close(run_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep,
              note: Text = "") -> Response:
    """The leader ends the response once every measure is lifted or waived.

    Mirrors ``POST /responses/runs/{id}/close``: the measures' guard refuses while any is still in force.
    """
    if (denied := refused(request, user, RUN_LEADERS)) is not None:
        return denied

    def act() -> Response:
        body = validated(RunCloseIn, note=note.strip())
        run = _run_or_404(session, run_id, lock=True)
        run_service.close_run(session, run, actor=actor_of(user), now=clock.now(), note=body.note)
        session.commit()
        return back_to(run_id, "run", "runpage_closed")

    return _act(request, run_id, act)
