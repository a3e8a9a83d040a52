"""Console pages of the duty room (值班交接): who is on duty, the shift's duty log, the handover and the roster.

Each action is the JSON API's route of the same name done from a form: the same role constants (imported
from the API modules), the same request schema, the same service call, one commit, then back to a page with
the ✓ line. Who may sign or acknowledge a handover is decided by ``handovers.may_act`` exactly as the API
decides it, so a page can never let through what the API would refuse. A refusal by a service is shown on
the problem page in the user's language instead of a JSON error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from config.errors import ApiError, not_found
from config.fields import RowId
from config.transitions import IllegalTransition
from config.users import Role, User
from config.web import DB, STAFF, ClockDep, SettingsDep, actor_of
from console.rendering import PageUser, attempt, redirect, render, require_role, user_can
from console.security import check_csrf
from responses.contacts import roster_service
from responses.duty import gaps as gap_service
from responses.duty import handovers
from responses.duty import service as duty_service
from responses.duty.core import GAP_FLAG_HORIZON, WRITTEN_KINDS
from responses.duty.models import Handover
from responses.duty.schemas import HandoverAckIn, HandoverSignIn, LogEntryIn
from responses.runs.api import ROSTER_EDITORS, spec_of
from responses.runs.schemas import ShiftIn, ShiftsIn

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(check_csrf)])

Text = Annotated[str, Form()]
M = TypeVar("M", bound=BaseModel)
DUTY = "/console/duty"
KINDS = [k.value for k in WRITTEN_KINDS]
ROSTER_AHEAD = dt.timedelta(days=7)  # the roster panel and the admins' gaps look this far ahead


# ---------------------------------------------------------------------------------------------- helpers


def validated(schema: type[M], **fields: Any) -> M:
    """The API's own request schema filled from a form: the same limits as a JSON body, a 422 page if not."""
    try:
        return schema(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "form"
        raise ApiError(422, "validation_error", f"填写有误：{where}（{first.get('msg', '')}）",
                       f"invalid input: {where} ({first.get('msg', '')})") from None


@contextmanager
def refusals() -> Iterator[None]:
    """The duty domain's refusals worded as the JSON API words them, so ``attempt`` can show them."""
    try:
        yield
    except duty_service.DutyError as exc:
        raise ApiError(exc.status, exc.code, exc.zh, exc.en, exc.details) from None
    except IllegalTransition as exc:
        raise ApiError(409, "illegal_transition", exc.zh, exc.en) from None
    except roster_service.RosterError as exc:
        raise ApiError(exc.status, exc.code, exc.zh, exc.en, exc.details) from None


def _act(request: Request, action: Callable[[], Response], *, back: str = DUTY) -> Response:
    def guarded() -> Response:
        with refusals():
            return action()
    return attempt(request, guarded, back=back)


def local_input(value: str, tz: ZoneInfo, *, field: str) -> dt.datetime | None:
    """A ``datetime-local`` field read as Asia/Shanghai wall time (what the duty room's clocks show)."""
    value = value.strip()
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "validation_error", f"时间格式有误：{field}", f"not a time: {field}") from None
    return when.replace(tzinfo=tz) if when.tzinfo is None else when


def _names(user: User) -> list[str]:
    # The roster writes people by name: the API recognises a user by display name or username, so do we.
    return [user.display_name or "", user.username]


def _name(user: User) -> str:
    return user.display_name or user.username


def _may(session: Session, shift_id: int | None, user: User) -> tuple[bool, list[str]]:
    return handovers.may_act(session, shift_id, user_id=user.id, names=_names(user))


def _member_check(session: Session, shift_id: int | None, user: User, *, zh: str, en: str) -> None:
    ok, allowed = _may(session, shift_id, user)
    if not ok:
        raise ApiError(403, "not_shift_member", zh, en, {"allowed": allowed})


def _handover_or_404(session: Session, handover_id: int, *, lock: bool = False) -> Handover:
    h = handovers.get(session, handover_id, lock=lock)
    if h is None:
        raise not_found("交接班记录", "handover", handover_id)
    return h


def _people(text: str) -> list[dict[str, str | None]]:
    """Officers typed one a line, "姓名 电话" (the phone optional), as the roster's JSON writes them."""
    out: list[dict[str, str | None]] = []
    for line in text.splitlines():
        parts = line.replace("，", " ").replace(",", " ").split()
        if parts:
            out.append({"name": parts[0], "phone": parts[1] if len(parts) > 1 else None})
    return out


def _editable(session: Session, shift: Any, *, now: dt.datetime, tz: ZoneInfo) -> dict[str, Any]:
    """A roster row with what its edit form starts from (local ``datetime-local`` values, people as typed)."""
    view = duty_service.shift_view(session, shift, tz)
    ms = roster_service.members(session, shift.id)
    leader = next((m for m in ms if m.role == "leader"), None)
    starts = shift.starts_at if shift.starts_at.tzinfo else shift.starts_at.replace(tzinfo=dt.UTC)
    view.update({
        "started": starts <= now,
        "starts_input": starts.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "ends_input": (shift.ends_at if shift.ends_at.tzinfo else shift.ends_at.replace(tzinfo=dt.UTC))
        .astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "leader_name": leader.name if leader else "", "leader_phone": (leader.phone or "") if leader else "",
        "officers_text": "\n".join(f"{m.name} {m.phone}" if m.phone else m.name for m in ms if m.role == "officer"),
    })
    return view


def _shift_form(start: dt.datetime | None, end: dt.datetime | None, label: str, leader_name: str,
                leader_phone: str, officers: str, note: str = "") -> dict[str, Any]:
    leader = {"name": leader_name.strip(), "phone": leader_phone.strip() or None} if leader_name.strip() else None
    return {"starts_at": start, "ends_at": end, "label": label.strip(), "note": note, "leader": leader,
            "officers": _people(officers)}


# ---------------------------------------------------------------------------------------------- the page


@router.get("/duty", response_class=HTMLResponse)
def duty_page(request: Request, user: PageUser, session: DB, clock: ClockDep, settings: SettingsDep,
              shift: int | None = None, day: str | None = None) -> Response:
    """The duty room: who is on duty, the log of the shift (or another shift or day), handovers, the roster."""
    now = clock.now()
    tz = settings.tz

    def show() -> Response:
        the_day = None
        if day:
            try:
                the_day = dt.date.fromisoformat(day)
            except ValueError:
                raise ApiError(422, "validation_error", "日期须写成 YYYY-MM-DD",
                               "a day is written YYYY-MM-DD") from None
        with refusals():
            log = duty_service.log_view(session, now=now, tz=tz, shift_id=shift, day=the_day)
        current = roster_service.shift_at(session, now)
        current_view = duty_service.shift_view(session, current, tz) if current is not None else None
        rows = (handovers.listing(session, shift_id=current.id, limit=2) if current is not None
                else handovers.listing(session, limit=1))
        # every handover still waiting past its deadline is named too, whichever shift it came from
        rows += [h for h in handovers.late(session, now) if h.id not in {r.id for r in rows}]
        upcoming = [_editable(session, s, now=now, tz=tz)
                    for s in roster_service.shifts_between(session, now, now + ROSTER_AHEAD)]
        is_admin = user_can(user, (Role.ADMIN,))
        export_query = (f"shift={log['shift']['id']}" if log["shift"] is not None
                        else f"day={(log['day'] or now.astimezone(tz).date()).isoformat()}")
        return render(request, "duty/page.html", {
            "user": user, "log": log, "current": current_view,
            "handovers": [handovers.view(session, h, now=now, tz=tz) for h in rows],
            "upcoming": upcoming, "kinds": KINDS,
            "gaps": gap_service.gaps(session, now, GAP_FLAG_HORIZON, tz=tz) if is_admin else None,
            "is_admin": is_admin, "export_query": export_query,
            "viewing_current": shift is None and the_day is None,
            "staff": STAFF, "roster_editors": ROSTER_EDITORS,
            "now_input": now.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        })

    return attempt(request, show, back=DUTY)


# ---------------------------------------------------------------------------------------------- the log


@router.post("/duty/log")
def duty_log_write(request: Request, user: PageUser, session: DB, clock: ClockDep, settings: SettingsDep,
                   kind: Text = "", text: Text = "", at: Text = "", from_name: Text = "", from_unit: Text = "",
                   from_phone: Text = "", for_handover: Text = "") -> Response:
    """Write an entry in the current shift's log; mirrors ``POST /duty/log``."""
    require_role(user, STAFF)

    def act() -> Response:
        body = validated(LogEntryIn, kind=kind, text=text, at=local_input(at, settings.tz, field="at"),
                         from_name=from_name or None, from_unit=from_unit or None, from_phone=from_phone or None,
                         for_handover=bool(for_handover))
        duty_service.write_entry(
            session, kind=body.kind, text=body.text, at=body.at, from_name=body.from_name,
            from_unit=body.from_unit, from_phone=body.from_phone, for_handover=body.for_handover,
            actor=actor_of(user), author_name=_name(user), now=clock.now())
        session.commit()
        return redirect(DUTY, done="dutyroom_logged")

    return _act(request, act)


@router.post("/duty/log/{entry_id}/handover")
def duty_log_mark(entry_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep,
                  for_handover: Text = "1") -> Response:
    """Mark (or unmark) an entry for the handover; mirrors ``POST /duty/log/{id}/handover``."""
    require_role(user, STAFF)

    def act() -> Response:
        entry = duty_service.get_entry(session, entry_id, lock=True)
        if entry is None:
            raise not_found("值班日志记录", "log entry", entry_id)
        value = for_handover == "1"
        duty_service.mark_for_handover(session, entry, value, actor=actor_of(user), now=clock.now())
        session.commit()
        return redirect(DUTY, done="dutyroom_marked" if value else "dutyroom_unmarked")

    return _act(request, act)


# ---------------------------------------------------------------------------------------------- handovers


@router.post("/duty/handovers")
def duty_handover_draft(request: Request, user: PageUser, session: DB, clock: ClockDep,
                        settings: SettingsDep) -> Response:
    """Draft the current shift's handover, or open the one it has; mirrors ``POST /duty/handovers``."""
    require_role(user, STAFF)

    def act() -> Response:
        now = clock.now()
        shift = roster_service.shift_at(session, now)
        if shift is None:
            raise ApiError(409, "no_current_shift", "当前没有在班的班次（值班表未排），无法起草交接班记录",
                           "no shift is on duty now (nothing on the roster); there is nothing to hand over")
        h, created = handovers.draft(session, shift, actor=actor_of(user), now=now, tz=settings.tz)
        session.commit()
        return redirect(f"{DUTY}/handovers/{h.id}", done="dutyroom_drafted" if created else "dutyroom_existing")

    return _act(request, act)


@router.get("/duty/handovers/{handover_id}", response_class=HTMLResponse)
def duty_handover_page(handover_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep,
                       settings: SettingsDep) -> Response:
    """One handover: its sections, the text to edit and sign, or the acknowledgement."""

    def show() -> Response:
        h = _handover_or_404(session, handover_id)
        view = handovers.view(session, h, now=clock.now(), tz=settings.tz)
        staff = user_can(user, STAFF)
        may_sign, outgoing = _may(session, h.shift_id, user)
        may_ack, incoming = _may(session, h.next_shift_id, user)
        return render(request, "duty/handover.html", {
            "user": user, "h": view, "outgoing": outgoing, "incoming": incoming,
            "can_sign": staff and may_sign and "sign" in view["allowed_actions"],
            "can_ack": staff and may_ack and "acknowledge" in view["allowed_actions"],
        })

    return attempt(request, show, back=DUTY)


@router.post("/duty/handovers/{handover_id}/sign")
def duty_handover_sign(handover_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep,
                       text: Text = "") -> Response:
    """The outgoing officer signs with the text as edited; mirrors ``POST /duty/handovers/{id}/sign``."""
    require_role(user, STAFF)
    back = f"{DUTY}/handovers/{handover_id}"

    def act() -> Response:
        body = validated(HandoverSignIn, text=text.replace("\r\n", "\n") if text.strip() else None)
        h = _handover_or_404(session, handover_id, lock=True)
        _member_check(session, h.shift_id, user, zh="只有交班班次的值班人员可以签字",
                      en="only the outgoing shift's members sign")
        handovers.sign(session, h, actor=actor_of(user), name=_name(user), now=clock.now(), text=body.text)
        session.commit()
        return redirect(back, done="dutyroom_signed")

    return _act(request, act, back=back)


@router.post("/duty/handovers/{handover_id}/ack")
def duty_handover_ack(handover_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep,
                      note: Text = "") -> Response:
    """The incoming officer acknowledges; mirrors ``POST /duty/handovers/{id}/ack``."""
    require_role(user, STAFF)
    back = f"{DUTY}/handovers/{handover_id}"

    def act() -> Response:
        body = validated(HandoverAckIn, note=note or None)
        h = _handover_or_404(session, handover_id, lock=True)
        _member_check(session, h.next_shift_id, user, zh="只有接班班次的值班人员可以确认",
                      en="only the incoming shift's members acknowledge")
        handovers.acknowledge(session, h, actor=actor_of(user), name=_name(user), now=clock.now(), note=body.note)
        session.commit()
        return redirect(back, done="dutyroom_acknowledged")

    return _act(request, act, back=back)


# ---------------------------------------------------------------------------------------------- the roster


@router.post("/duty/roster/shifts")
def duty_roster_add(request: Request, user: PageUser, session: DB, clock: ClockDep, settings: SettingsDep,
                    starts_at: Text = "", ends_at: Text = "", label: Text = "", leader_name: Text = "",
                    leader_phone: Text = "", officers: Text = "") -> Response:
    """Add (or replace, same start and end) one shift; mirrors ``POST /responses/roster/shifts``."""
    require_role(user, ROSTER_EDITORS)

    def act() -> Response:
        start = local_input(starts_at, settings.tz, field="starts_at")
        end = local_input(ends_at, settings.tz, field="ends_at")
        body = validated(ShiftsIn, name="console", shifts=[
            _shift_form(start, end, label, leader_name, leader_phone, officers)])
        specs = [spec_of(s) for s in body.shifts]
        roster_service.save_api_batch(session, specs, actor=actor_of(user), now=clock.now(), name=body.name)
        session.commit()
        return redirect(DUTY, done="dutyroom_shift_saved")

    return _act(request, act)


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _unchanged(typed: dt.datetime | None, stored: dt.datetime) -> dt.datetime | None:
    """The form shows minutes: a time left as shown keeps its stored seconds, so an untouched field never
    moves a shift (or makes it overlap its neighbour by the seconds cut off)."""
    if typed is not None and typed == stored.replace(second=0, microsecond=0):
        return stored
    return typed


def _shift_or_404(session: Session, shift_id: int) -> Any:
    shift = roster_service.get_shift(session, shift_id, lock=True)
    if shift is None:
        raise not_found("班次", "shift", shift_id)
    return shift


@router.post("/duty/roster/shifts/{shift_id}")
def duty_roster_edit(shift_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep,
                     settings: SettingsDep, starts_at: Text = "", ends_at: Text = "", label: Text = "",
                     leader_name: Text = "", leader_phone: Text = "", officers: Text = "") -> Response:
    """Change a shift that has not ended; mirrors ``PUT /responses/roster/shifts/{id}``. A shift on duty keeps
    its start whatever the (disabled) field sent, the note is kept as it is (the form does not show it)."""
    require_role(user, ROSTER_EDITORS)

    def act() -> Response:
        now = clock.now()
        shift = _shift_or_404(session, shift_id)
        was_start, was_end = _utc(shift.starts_at), _utc(shift.ends_at)
        start = _unchanged(local_input(starts_at, settings.tz, field="starts_at"), was_start)
        if was_start <= now:
            start = was_start
        end = _unchanged(local_input(ends_at, settings.tz, field="ends_at"), was_end)
        body = validated(ShiftIn, **_shift_form(start, end, label, leader_name, leader_phone, officers,
                                                note=shift.note))
        roster_service.update_shift(session, shift, spec_of(body), actor=actor_of(user), now=now, tz=settings.tz)
        session.commit()
        return redirect(DUTY, done="dutyroom_shift_updated")

    return _act(request, act)


@router.post("/duty/roster/shifts/{shift_id}/remove")
def duty_roster_remove(shift_id: RowId, request: Request, user: PageUser, session: DB, clock: ClockDep,
                       settings: SettingsDep) -> Response:
    """Remove a shift that has not begun; mirrors ``DELETE /responses/roster/shifts/{id}``."""
    require_role(user, ROSTER_EDITORS)

    def act() -> Response:
        shift = _shift_or_404(session, shift_id)
        roster_service.remove_shift(session, shift, actor=actor_of(user), now=clock.now(), tz=settings.tz)
        session.commit()
        return redirect(DUTY, done="dutyroom_shift_removed")

    return _act(request, act)
