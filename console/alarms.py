"""The duty room's alarms, derived from the event log: a new red warning, a warning raised to red, and an
escalation that reaches the leader on duty.

An alarm is not a row of its own. It is the event that caused it (its id is the alarm's id), so every process
that writes the log — the server, the sending process, another instance — raises alarms without knowing about
the console, and nothing can raise one that the audit trail does not show. An alarm stays until someone
acknowledges it; the acknowledgement is itself an event (``console.alarm_acknowledged``, entity ``alarm``, the
alarm's id) carrying who (the actor) and when, so it is audited like everything else and hides the banner in
every open browser at once. Only the last day's alarms are shown: an alarm older than a shift has been dealt
with one way or another, and the board shows what is still going on.

The signals, as the domains record them:

- ``warning.activated`` (a new thread is live) or ``warning.updated`` from another level, whose payload says
  ``level: red`` and a status the response engine acts on (actual or exercise; a drill is marked as one). A
  red warning that the engine found outside the district (``run.not_started``, reason ``outside_region``)
  calls nobody here and raises no alarm.
- ``callout.escalated`` with ``step: leader_on_duty``: the callout sweep gave up on someone and is now calling
  the leader on duty from the roster. One sweep that sends several silent callees to the leader makes one
  leader callout (``to_callouts``); their escalations are one alarm, named by the first event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from config.errors import ApiError
from config.eventlog import Event, recent_events, record
from config.web import STAFF
from responses.callouts import board as callout_board
from responses.runs import service as run_service
from responses.runs.engine import LIVE_STATUSES
from warning import service as warning_service

WINDOW = dt.timedelta(hours=24)
ACK_ACTION = "console.alarm_acknowledged"
ACK_ENTITY = "alarm"
# Who may acknowledge: the roles that act on a run in the JSON API (``STAFF``: admin, leader on duty, duty
# officer). A viewer only watches, and an analyst answers for a department's judgement, not for the duty room.
ACK_ROLES = STAFF

RED_NEW = "red_new"
RED_RAISED = "red_raised"
LEADER_ESCALATION = "leader_escalation"
TRIGGER_ACTIONS = ("warning.activated", "warning.updated", "callout.escalated")
LEADER_STEP = "leader_on_duty"
LEVELS = ("red", "orange", "yellow", "blue")


def trigger_of(action: str, payload: dict[str, Any] | None) -> str | None:
    """The kind of alarm one event raises, or ``None``: the rule on its own, on plain data."""
    body = payload or {}
    if action in ("warning.activated", "warning.updated"):
        if body.get("level") != "red" or body.get("status") not in LIVE_STATUSES:
            return None
        if action == "warning.activated":
            return RED_NEW
        return RED_RAISED if body.get("previous_level") != "red" else None
    if action == "callout.escalated" and body.get("step") == LEADER_STEP:
        return LEADER_ESCALATION
    return None


@dataclass
class Alarm:
    """One banner: what happened, when, where to look. Texts are data; the template adds the words."""

    id: int  # the triggering event's id, which the acknowledgement names
    kind: str
    at: dt.datetime
    level: str  # a colour key of the console: red, orange, yellow, blue or none
    drill: bool
    href: str
    subject: str = ""  # the warning's headline, or the run's number
    detail: str = ""  # who did not answer, as the escalation wave names them
    leader: str = ""  # the leader on duty now being called
    events: list[int] = field(default_factory=list)

    def local_time(self, tz: ZoneInfo) -> str:
        return self.at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _outside_threads(session: Session, since: dt.datetime) -> set[str]:
    return {ev.entity_id for ev in recent_events(session, ["run.not_started"], since=since)
            if (ev.payload or {}).get("reason") == "outside_region"}


def acknowledged(session: Session, *, since: dt.datetime) -> set[int]:
    """Ids of the alarms acknowledged since then (an acknowledgement never comes before its alarm)."""
    found: set[int] = set()
    for ev in recent_events(session, [ACK_ACTION], since=since):
        if ev.entity_type == ACK_ENTITY and ev.entity_id.isdigit():
            found.add(int(ev.entity_id))
    return found


ESCALATED = "callout.escalated"


def _to_leader() -> Any:
    return and_(Event.action == ESCALATED, Event.payload["step"].as_string() == LEADER_STEP)


def _candidates(session: Session, since: dt.datetime) -> list[Event]:
    """The rows of the last day that may raise an alarm, oldest first: red-level warning changes and escalations
    to the leader on duty, picked out by the database. A district-wide fan-out writes tens of thousands of
    village escalations a day; loading them all on every banner refresh cost seconds, and the newest of them
    pushed an unacknowledged red warning out of the rows read. ``trigger_of`` still decides."""
    red_warning = and_(Event.action != ESCALATED, Event.payload["level"].as_string() == "red")
    return recent_events(session, TRIGGER_ACTIONS, since=since, where=or_(red_warning, _to_leader()))


def leader_escalated_between(session: Session, first_id: int, last_id: int) -> bool:
    """Whether an escalation to the leader on duty is among the event-log rows ``first_id``…``last_id`` (a range
    on the primary key): the live stream tells pages to fetch the banners for those, not for every escalation."""
    return session.execute(select(Event.id).where(Event.id.between(first_id, last_id), _to_leader())
                           .limit(1)).first() is not None


def raised(session: Session, *, now: dt.datetime) -> list[Alarm]:
    """Every alarm of the last day, acknowledged or not, oldest first."""
    since = now - WINDOW
    events = _candidates(session, since)
    triggers = [(ev, kind) for ev in events if (kind := trigger_of(ev.action, ev.payload))]
    if not triggers:
        return []
    alarms: list[Alarm] = []
    outside: set[str] | None = None
    waves: dict[tuple[int, ...], Alarm] = {}
    for ev, kind in triggers:
        body = ev.payload or {}
        if kind in (RED_NEW, RED_RAISED):
            if outside is None:
                outside = _outside_threads(session, since)
            if str(body.get("thread_id")) in outside:
                continue
            alarms.append(_red_alarm(session, ev, kind, body))
        else:
            wave = tuple(int(i) for i in body.get("to_callouts") or []) or (-ev.id,)
            if wave in waves:
                waves[wave].events.append(ev.id)
                continue
            alarm = _escalation_alarm(session, ev, wave)
            waves[wave] = alarm
            alarms.append(alarm)
    return alarms


def _red_alarm(session: Session, ev: Event, kind: str, body: dict[str, Any]) -> Alarm:
    warning_id = int(body.get("warning_id") or ev.entity_id)
    w = warning_service.get_warning(session, warning_id)
    subject = (w.headline or w.event or "") if w is not None else ""
    return Alarm(id=ev.id, kind=kind, at=_aware(ev.at), level="red", drill=bool(body.get("drill")),
                 href=f"/console/warnings/{warning_id}", subject=subject, events=[ev.id])


def _escalation_alarm(session: Session, ev: Event, wave: tuple[int, ...]) -> Alarm:
    """The wave's leader callout says whom it calls and about whom; the escalated callout is the fallback."""
    source = callout_board.get_callout(session, int(ev.entity_id)) if ev.entity_id.isdigit() else None
    leader = callout_board.get_callout(session, wave[0]) if wave[0] > 0 else None
    known = leader or source
    run = run_service.get_run(session, known.run_id) if known is not None else None
    detail = str((leader.context or {}).get("escalated_from") or "") if leader is not None else ""
    level = known.level if known is not None and known.level in LEVELS else "none"
    return Alarm(id=ev.id, kind=LEADER_ESCALATION, at=_aware(ev.at), level=level,
                 drill=bool(known.drill) if known is not None else False,
                 href=f"/console/runs/{known.run_id}" if known is not None else "/console/runs",
                 subject=run.number if run is not None else "",
                 detail=detail or (source.name if source is not None else ""),
                 leader=leader.name if leader is not None else "", events=[ev.id])


def pending(session: Session, *, now: dt.datetime) -> list[Alarm]:
    """The alarms to show: raised in the last day and not acknowledged, newest first."""
    alarms = raised(session, now=now)
    if not alarms:
        return []
    done = acknowledged(session, since=now - WINDOW - dt.timedelta(hours=1))
    return sorted((a for a in alarms if a.id not in done), key=lambda a: a.id, reverse=True)


def acknowledge(session: Session, alarm_id: int, *, actor: str, now: dt.datetime) -> bool:
    """Record that ``actor`` has seen this alarm; ``False`` when someone already had (nothing is recorded twice
    for a banner already gone). An id that is no alarm of the last day is refused, so the log holds no
    acknowledgement of nothing. The caller commits."""
    alarm = next((a for a in raised(session, now=now) if a.id == alarm_id), None)
    if alarm is None:
        raise ApiError(404, "alarm_not_found", f"未找到警报 {alarm_id}（或已超过 24 小时）",
                       f"alarm {alarm_id} not found (or older than 24 hours)")
    if alarm_id in acknowledged(session, since=alarm.at - dt.timedelta(hours=1)):
        return False
    record(session, now=now, action=ACK_ACTION, entity_type=ACK_ENTITY, entity_id=alarm_id, actor=actor,
           payload={"kind": alarm.kind, "events": alarm.events, "href": alarm.href})
    return True
