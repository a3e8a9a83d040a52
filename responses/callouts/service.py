"""Call-and-answer in the database: create a run's callouts, sweep their deadlines, fail over, follow the run.
The caller commits (one commit per request or per sweep batch). Answers are in ``answers.py``, the board in
``board.py``.

Every try is an outbox row written in the same transaction as the ``Attempt`` that names it, so
a crash between the two is impossible and the sender delivers it later. The sweep claims due
callouts (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite's ``BEGIN IMMEDIATE`` write lock), asks
the pure core (``escalation``) what the moment calls for, and writes the outcome; the callout's
``next_action_at`` then no longer makes it due, so a second sweep — or a second instance — finds
nothing to do.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Engine, and_, bindparam, func, insert, select
from sqlalchemy.orm import Session, selectinload

from config import bulk
from config.eventlog import record
from config.settings import Settings
from geo.models import HazardSite
from responses.callouts import escalation as core
from responses.callouts.core import (
    DutyRef,
    call_text,
    place_names,
    plan_callouts,
    step_areas,
)
from responses.callouts.escalation import CalloutState, Transition
from responses.callouts.models import Attempt, Callout, Escalation
from responses.contacts.models import Contact, Duty
from responses.contacts.service import area_register, reachable
from responses.messaging import outbox
from responses.messaging.models import OutboxMessage
from responses.runs.models import Notice, ResponseRun

log = logging.getLogger("jiaoying.callouts")

SUBJECT = "callout_attempt"
# Call outcomes that say nothing about the number: the person did not pick up. The next retry
# slot handles them; only a refused or unreachable number fails over at once.
NOT_ANSWERED_STATUSES = frozenset({"busy", "no-answer", "canceled"})


class CalloutError(ValueError):
    def __init__(self, status: int, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.status, self.code, self.zh, self.en = status, code, zh, en


# ---------------------------------------------------------------------------------------------- helpers


def view_of(c: Callout) -> core.CalloutView:
    last = c.attempts[-1] if c.attempts else None
    return core.CalloutView(
        state=CalloutState(c.state), tier=c.tier, started_at=c.started_at, deadline_at=c.deadline_at,
        next_action_at=c.next_action_at, retries_total=c.retries_total, retries_done=c.retries_done,
        retry_interval=dt.timedelta(minutes=c.retry_interval_minutes), channels=tuple(c.channels),
        numbers=tuple(c.numbers), ladder=tuple(c.ladder), dead_routes=tuple(c.dead_routes),
        last_route=core.route_key(last.channel, last.number) if last else None,
    )


def apply_decision(c: Callout, d: core.Decision, now: dt.datetime) -> None:
    c.state = d.state.value
    c.next_action_at = d.next_action_at
    c.retries_done = d.retries_done
    if list(c.dead_routes) != list(d.dead_routes):  # unchanged JSON is not rewritten by the batch UPDATE
        c.dead_routes = list(d.dead_routes)
    c.updated_at = now
    if d.state in (CalloutState.ANSWERED, CalloutState.CANCELLED) and c.closed_at is None:
        c.closed_at = now


@dataclass
class SendContext:
    """What the words of a try need, loaded once per batch."""

    runs: dict[int, ResponseRun] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # area code or site:<id|key> → name
    events: dict[int, str | None] = field(default_factory=dict)
    site_areas: dict[str, str | None] = field(default_factory=dict)  # site id or key → its area code

    def run(self, session: Session, run_id: int) -> ResponseRun:
        run = self.runs.get(run_id)
        if run is None:
            run = session.get(ResponseRun, run_id)
            if run is None:
                raise CalloutError(404, "run_not_found", f"未找到响应 {run_id}", f"run {run_id} not found")
            self.runs[run_id] = run
        return run

    def event(self, session: Session, run: ResponseRun) -> str | None:
        if run.warning_id not in self.events:
            try:
                from warning.models import Warning

                w = session.get(Warning, run.warning_id)
                self.events[run.warning_id] = w.event if w is not None else None
            except Exception:  # a warning without an event text is called by its hazard
                self.events[run.warning_id] = None
        return self.events[run.warning_id]


def _context(session: Session) -> SendContext:
    """Names for the texts and where each hazard site lies, read once per batch (a region holds
    few sites; a monitor's duty may name a site by id or by key, so both are kept)."""
    reg = area_register(session)
    ctx = SendContext(names=dict(reg.names) if reg else {})
    for sid, key, name, area in session.execute(
            select(HazardSite.id, HazardSite.key, HazardSite.name, HazardSite.area_code)).all():
        for ref in (str(sid), str(key)):
            ctx.names[f"site:{ref}"] = str(name)
            ctx.site_areas[ref] = str(area) if area else None
    return ctx


def _send(session: Session, c: Callout, route: str, reason: str, now: dt.datetime, ctx: SendContext) -> Attempt:
    channel, number = core.split_route(route)
    run = ctx.run(session, c.run_id)
    seq = c.attempts_made + 1
    body = call_text(channel=channel, hazard=run.hazard, level=c.level, event=ctx.event(session, run),
                     places=c.areas, names=ctx.names, answer_minutes=c.answer_minutes,
                     two_way_sms=c.two_way_sms, escalated_from=str(c.context.get("escalated_from", "")),
                     drill=c.drill)
    att = Attempt(seq=seq, channel=channel, number=number, reason=reason, status="queued",
                  history=[{"at": now.isoformat(), "status": "queued", "reason": reason}], created_at=now,
                  updated_at=now)
    c.attempts.append(att)
    session.flush()
    c.attempts_made = seq
    msg = outbox.enqueue(
        session, now=now, channel=channel, to=number, body=body, idempotency_key=f"callout:{c.id}:try:{seq}",
        template=f"callout_{channel}", params={"callout_id": c.id, "attempt_id": att.id, "seq": seq,
                                               **template_params(c, run, ctx, session)},
        validity_until=c.next_action_at, subject_type=SUBJECT, subject_id=att.id, actor=f"rule:callout:{reason}",
    )
    att.message_id = msg.id
    return att


def _send_many(session: Session, items: Sequence[tuple[Callout, str, str]], now: dt.datetime,
               ctx: SendContext) -> list[Attempt]:
    """``_send`` for several callouts (callout, route, reason each): the attempts in one flush, the messages in
    one ``enqueue_many``; the same rows, keys and events."""
    atts: list[Attempt] = []
    for c, route, reason in items:
        channel, number = core.split_route(route)
        seq = c.attempts_made + 1
        att = Attempt(seq=seq, channel=channel, number=number, reason=reason, status="queued",
                      history=[{"at": now.isoformat(), "status": "queued", "reason": reason}], created_at=now,
                      updated_at=now)
        c.attempts.append(att)
        c.attempts_made = seq
        atts.append(att)
    if not atts:
        return atts
    session.flush()  # the attempts' ids, which the messages name
    msgs: list[outbox.NewMessage] = []
    for (c, _route, reason), att in zip(items, atts, strict=True):
        run = ctx.run(session, c.run_id)
        body = call_text(channel=att.channel, hazard=run.hazard, level=c.level, event=ctx.event(session, run),
                         places=c.areas, names=ctx.names, answer_minutes=c.answer_minutes,
                         two_way_sms=c.two_way_sms, escalated_from=str(c.context.get("escalated_from", "")),
                         drill=c.drill)
        msgs.append(outbox.NewMessage(
            channel=att.channel, to=att.number, body=body, idempotency_key=f"callout:{c.id}:try:{att.seq}",
            template=f"callout_{att.channel}", params={"callout_id": c.id, "attempt_id": att.id, "seq": att.seq,
                                                       **template_params(c, run, ctx, session)},
            validity_until=c.next_action_at, subject_type=SUBJECT, subject_id=att.id, actor=f"rule:callout:{reason}"))
    for att, msg_id in zip(atts, outbox.enqueue_many(session, msgs, now=now), strict=True):
        att.message_id = msg_id
    return atts


def template_params(c: Callout, run: ResponseRun, ctx: SendContext, session: Session) -> dict[str, str]:
    """The short named values a registered SMS / voice template takes (a domestic provider sends a template and
    these, not the text): what warning, which places, how many minutes to answer, and for an escalation who
    did not answer. Each is kept short; the notifier clips to the provider's limits."""
    from responses.callouts.core import _HAZARD_ZH, _LEVEL_ZH

    event = ctx.event(session, run)
    warning = f"{_LEVEL_ZH.get(c.level, c.level)}{event or _HAZARD_ZH.get(run.hazard, run.hazard)}预警"
    escalated_from = str(c.context.get("escalated_from", ""))
    params = {"kind": "escalation" if escalated_from else "callout",
              "warning": f"（演练）{warning}" if c.drill else warning,
              "areas": place_names(c.areas, ctx.names) or "相关区域", "minutes": str(c.answer_minutes)}
    if escalated_from:
        params["missed"] = escalated_from
    return params


# ---------------------------------------------------------------------------------------------- creating


def _plan_calls(run: ResponseRun) -> dict[str, Any]:
    calls = (run.entry_snapshot or {}).get("calls")
    if not calls:
        raise CalloutError(409, "no_call_rules", "响应的预案快照中没有叫应规则",
                           "the run's plan snapshot has no call rules")
    return calls


def create_run_callouts(session: Session, run: ResponseRun, *, now: dt.datetime, actor: str = "system",
                        timings: dict[str, float] | None = None,
                        send_rate: float | None | str = "configured") -> list[Callout]:
    """``start_run_callouts``, then the callouts it made loaded with their attempts (for callers that show or
    inspect them; the run start itself needs only the ids)."""
    ids = start_run_callouts(session, run, now=now, actor=actor, timings=timings, send_rate=send_rate)
    if not ids:
        return []
    by_id: dict[int, Callout] = {}
    for i in range(0, len(ids), 900):
        by_id.update((c.id, c) for c in session.execute(
            select(Callout).where(Callout.id.in_(ids[i:i + 900])).options(selectinload(Callout.attempts))).scalars())
    return [by_id[i] for i in ids]


class _Phases:
    """Wall time per phase of a run start, added into ``timings`` when the caller asks (the bench does)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.t = time.perf_counter()

    def lap(self, phase: str) -> None:
        if self.timings is not None:
            t = time.perf_counter()
            self.timings[phase] = self.timings.get(phase, 0.0) + t - self.t
            self.t = t


# First tries leave at the provider account's pace, so in a large fan-out the last callee's message goes out
# minutes after the first. The wiring sets the configured rate (messages per second, None = no limit) for its
# database; a database nobody set it for is assumed to send at the settings' default rate.
DEFAULT_SEND_RATE = 10.0
_SEND_RATE: dict[str, float | None] = {}


def set_send_rate(rate: float | None, engine: Engine) -> None:
    """The account's configured rate, for the queue margin of run starts on ``engine``'s database (kept per
    database, so runtimes of one process with different settings do not share it)."""
    if rate is not None and rate <= 0:
        raise ValueError("send rate must be positive (or None for no limit)")
    _SEND_RATE[str(engine.url)] = rate


def _configured_rate(session: Session) -> float | None:
    return _SEND_RATE.get(str(session.get_bind().engine.url), DEFAULT_SEND_RATE)


def send_rate_of(settings: Settings) -> float | None:
    """The configured rate first tries leave at: the account of the provider that carries SMS, the channel
    plans call first."""
    provider = settings.provider_for("sms")
    return (settings.aliyun if provider == "aliyun" else settings.twilio).messages_per_second


def queue_margin(position: int, rate: float | None) -> dt.timedelta:
    """How much later than a message queued now the one ``position`` places back in the queue can be expected
    to go out at ``rate`` messages per second, in whole minutes (the answer window's unit): nothing for the
    first minute's worth, so a run the provider sends within a minute keeps its deadlines exactly."""
    if not rate or position <= 0:
        return dt.timedelta(0)
    return dt.timedelta(minutes=int(position / (rate * 60)))


def start_run_callouts(session: Session, run: ResponseRun, *, now: dt.datetime, actor: str = "system",
                       timings: dict[str, float] | None = None, send_rate: float | None | str = "configured",
                       ) -> list[int]:
    """One callout per responsible person for the run's areas, with its first try queued; returns their ids.
    Idempotent: people who already have a callout in this run are not called again, so calling
    this after the run's areas grew calls only the newcomers.

    Written in bulk (a district-wide red warning calls tens of thousands of people inside the request that
    starts the run): callouts, first attempts, outbox messages, their status history and event-log entries
    go in a few multi-row INSERTs each, ids read back in order, instead of an ORM flush per row. The rows are
    the ones the per-row path (``_new_callout`` + ``core.start`` + ``_send``) writes, ids and event seqs in the
    same order.

    One transaction, with the run event that started it (the caller's): a crash mid-start leaves neither the
    run's start nor any callout, and the start is redone whole. Committing the callouts in chunks, so the
    sender could begin while the rest are written, was weighed and not done: a restart between chunks would
    leave an active run calling only part of its people (the run hook is not replayed on restart), and in bulk
    a district of 20,000 starts in seconds, so there is little to gain.

    Queue margin: a large fan-out's first tries leave at the account's rate, so the callee ``position`` places
    back in the queue (the messages already waiting, then this run's in id order, the order the sender claims
    them) is called ``queue_margin`` later. Their provisional deadline — when a try never accepted is given up
    on — and their message's validity move by that margin: the tail of a fan-out neither expires nor
    escalates before its turn to be sent comes. Once the provider accepts the try, the window runs from the
    acceptance (``on_attempts_accepted``) as for everyone. ``send_rate`` overrides the configured rate."""
    ph = _Phases(timings)
    rate = _configured_rate(session) if send_rate == "configured" else cast("float | None", send_rate)
    calls = _plan_calls(run)
    # the columns the plan and the callouts need, not ORM objects: a district's duties are tens of thousands
    duties = session.execute(
        select(Contact.id, Contact.name, Contact.phone, Contact.backup_phone, Contact.two_way_sms, Contact.active,
               Contact.active_from, Contact.active_to, Duty.role, Duty.place, Duty.active_from, Duty.active_to)
        .join(Contact, Duty.contact_id == Contact.id)).tuples().all()
    contacts: dict[int, Contact] = {}
    refs: list[DutyRef] = []
    for cid, name, phone, backup, two_way, active, c_from, c_to, role, place, d_from, d_to in duties:
        c = cast(Contact, SimpleNamespace(id=cid, name=name, phone=phone, backup_phone=backup, two_way_sms=two_way,
                                          active=active, active_from=c_from, active_to=c_to))
        if reachable(c, cast(Duty, SimpleNamespace(active_from=d_from, active_to=d_to)), now):
            contacts[cid] = c
            refs.append(DutyRef(cid, role, place))
    planned = plan_callouts(calls.get("tiers") or {}, run.areas or {}, refs)
    have = set(session.execute(select(Callout.contact_id).where(Callout.run_id == run.id,
                                                                Callout.reason == "plan")).scalars())
    ctx = _context(session)
    ctx.runs[run.id] = run
    ph.lap("plan (duties, areas, who)")
    made: list[tuple[Callout, str | None]] = []
    for p in planned:
        if p.contact_id in have:
            continue
        person = contacts[p.contact_id]
        # a plain namespace, not an ORM object: the same fields and decision, without the instrumentation
        # that costs more than the rest of a callout's creation together
        c = cast(Callout, SimpleNamespace(attempts=[], **_callout_fields(
            run_id=run.id, key=f"run:{run.id}:contact:{person.id}", contact=person, name=person.name,
            numbers=[n for n in (person.phone, person.backup_phone) if n], role=p.role, tier=p.tier,
            areas=p.places, reason="plan", level=run.level, calls=calls, now=now, drill=run.drill,
            names=ctx.names)))
        d = core.start(view_of(c), now)
        apply_decision(c, d, now)
        if d.send:
            c.attempts_made = 1
        made.append((c, d.send))
    if not made:
        return []
    if rate:
        ahead = int(session.execute(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.state.in_(("queued", "claimed")))).scalar() or 0)
        position = ahead
        for c, route in made:
            if not route:
                continue
            margin = queue_margin(position, rate)
            if margin:
                c.deadline_at += margin
                c.next_action_at = c.deadline_at
            position += 1
    table: Any = Callout.__table__
    cols = [col.key for col in table.columns if col.key != "id"]
    rows = [{k: vars(c)[k] for k in cols} for c, _send_to in made]
    ph.lap("callouts (decide)")
    session.flush()  # anything the session holds goes first, as a flush before ours would have sent it
    ids = bulk.insert_rows(session, table, rows)
    for (c, _send_to), cid in zip(made, ids, strict=True):
        c.id = cid
    ph.lap("callouts (insert)")
    _send_first(session, [(c, route) for c, route in made if route], now, ctx, ph)
    record(session, now=now, action="callouts.created", entity_type="response_run", entity_id=run.id,
           actor=actor, payload={"count": len(made), "level": run.level,
                                 "callouts": [[c.id, c.contact_id, c.tier, c.areas] for c, _r in made]})
    ph.lap("event (callouts.created)")
    return ids


def _send_first(session: Session, items: list[tuple[Callout, str]], now: dt.datetime, ctx: SendContext,
                ph: _Phases) -> None:
    """The first try of callouts just inserted (transient objects carrying their ids): ``_send``'s attempt,
    message and attempt→message link for all of them, in bulk."""
    if not items:
        return
    at_table: Any = Attempt.__table__
    history = [{"at": now.isoformat(), "status": "queued", "reason": "first"}]
    att_rows = []
    for c, route in items:
        channel, number = core.split_route(route)
        att_rows.append(dict(callout_id=c.id, seq=1, channel=channel, number=number, reason="first",
                             message_id=None, provider_id=None, status="queued", history=history,
                             failure_handled=False, created_at=now, updated_at=now))
    # the attempts' ids first (the messages name them), the rows after the messages (they name those)
    att_ids = bulk.reserve_ids(session, at_table, len(att_rows))
    ph.lap("attempts (ids)")
    msgs: list[outbox.NewMessage] = []
    for (c, _route), att, att_id in zip(items, att_rows, att_ids, strict=True):
        run = ctx.run(session, c.run_id)
        channel = str(att["channel"])
        body = call_text(channel=channel, hazard=run.hazard, level=c.level, event=ctx.event(session, run),
                         places=c.areas, names=ctx.names, answer_minutes=c.answer_minutes,
                         two_way_sms=c.two_way_sms, escalated_from=str(c.context.get("escalated_from", "")),
                         drill=c.drill)
        msgs.append(outbox.NewMessage(
            channel=channel, to=str(att["number"]), body=body, idempotency_key=f"callout:{c.id}:try:1",
            template=f"callout_{channel}", params={"callout_id": c.id, "attempt_id": att_id, "seq": 1,
                                                   **template_params(c, run, ctx, session)},
            validity_until=c.next_action_at, subject_type=SUBJECT, subject_id=att_id, actor="rule:callout:first"))
    ph.lap("messages (texts)")
    msg_ids = outbox.enqueue_many(session, msgs, now=now)
    ph.lap("messages (insert, history, events)")
    for att, att_id, msg_id in zip(att_rows, att_ids, msg_ids, strict=True):
        att["id"], att["message_id"] = att_id, msg_id
    bulk.append_rows(session, at_table, att_rows)
    ph.lap("attempts (insert)")


def _new_callout(*, run_id: int, key: str, contact: Contact | None, name: str, numbers: list[str], role: str,
                 tier: str, areas: list[str], reason: str, level: str, calls: dict[str, Any], now: dt.datetime,
                 drill: bool, names: dict[str, str], context: dict[str, Any] | None = None) -> Callout:
    return Callout(**_callout_fields(run_id=run_id, key=key, contact=contact, name=name, numbers=numbers, role=role,
                                     tier=tier, areas=areas, reason=reason, level=level, calls=calls, now=now,
                                     drill=drill, names=names, context=context), attempts=[])


def _callout_fields(*, run_id: int, key: str, contact: Contact | None, name: str, numbers: list[str], role: str,
                    tier: str, areas: list[str], reason: str, level: str, calls: dict[str, Any], now: dt.datetime,
                    drill: bool, names: dict[str, str], context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every column of a new callout (the id aside): the ORM path builds a ``Callout`` of them, the bulk
    path inserts them as they are."""
    # The deadline set here is provisional: when the first try is accepted by the provider,
    # ``on_attempts_accepted`` moves it to acceptance + window. Provisional = creation + window (a run
    # start adds its fan-out's queue margin, ``queue_margin``): a try never accepted (provider down,
    # number failing) is swept exactly when it would have been had the call gone out at its turn, so
    # retries, failover and escalation are not delayed.
    answer = int(calls["answer_minutes"])
    retries = calls.get("retries") or {"count": 0, "interval_minutes": 1}
    return dict(
        key=key, run_id=run_id, contact_id=contact.id if contact else None, name=name, role=role, tier=tier,
        rank=core.RANK_OF_TIER[tier], areas=list(areas), area_names=[names.get(a, a) for a in areas],
        reason=reason, level=level, state=CalloutState.CALLING.value, channels=list(calls["channels"]),
        numbers=numbers, two_way_sms=bool(contact.two_way_sms) if contact else False, dead_routes=[],
        answer_minutes=answer, retries_total=int(retries["count"]),
        retry_interval_minutes=int(retries["interval_minutes"]), retries_done=0, attempts_made=0,
        ladder=list(calls.get("escalation") or []), started_at=now, deadline_at=now + dt.timedelta(minutes=answer),
        next_action_at=now + dt.timedelta(minutes=answer), answered_at=None, answer_late=None, escalated_at=None,
        closed_at=None, drill=drill, context=context or {}, created_at=now, updated_at=now,
    )


# ---------------------------------------------------------------------------------------------- accepted


_WAITING_ON_FIRST_TRY = (CalloutState.CALLING.value, 1, 0)  # state, attempts_made, retries_done
_ACCEPT_STMTS: dict[str, tuple[Any, Any]] = {}


def _accept_statements(dialect: str) -> tuple[Any, Any]:
    """The hook's SELECT and UPDATE, built once: it runs on every sender flush, where building
    and cache-keying the expressions would cost as much as running them."""
    if dialect not in _ACCEPT_STMTS:
        state, made, retried = _WAITING_ON_FIRST_TRY
        waiting = and_(Callout.state == state, Callout.attempts_made == made, Callout.retries_done == retried,
                       Callout.answered_at.is_(None), Callout.next_action_at == Callout.deadline_at)
        q = (select(Attempt.id, Callout.id, Callout.run_id, Callout.answer_minutes, Callout.started_at,
                    Callout.deadline_at)
             .join(Callout, Attempt.callout_id == Callout.id)
             .where(Attempt.id.in_(bindparam("ids", expanding=True)), Attempt.seq == 1, waiting)
             .order_by(Callout.id))
        if dialect == "postgresql":  # the sweep skips what we hold; answers and failovers wait for our commit
            q = q.with_for_update(of=Callout)
        table = Callout.__table__
        upd = (table.update()
               .where(table.c.id == bindparam("b_id"), table.c.state == state, table.c.attempts_made == made,
                      table.c.retries_done == retried)
               .values(started_at=bindparam("b_at", type_=table.c.started_at.type),
                       deadline_at=bindparam("b_dl", type_=table.c.deadline_at.type),
                       next_action_at=bindparam("b_dl", type_=table.c.next_action_at.type),
                       updated_at=bindparam("b_now", type_=table.c.updated_at.type)))
        _ACCEPT_STMTS[dialect] = (q, upd)
    return _ACCEPT_STMTS[dialect]


def on_attempts_accepted(session: Session, items: Sequence[outbox.Accepted], now: dt.datetime) -> int:
    """Acceptance hook (the sender's transaction): the answer window runs from the moment the
    person's first try was accepted by the provider, not from when the callout was created — with
    a provider rate limit the last of a large run is called long after the first, and must not lose
    that time. A callout still waiting on that first try (calling, one attempt, no retry, no answer)
    gets ``deadline = accepted_at + window`` and ``started_at`` (the report's "called at") =
    ``accepted_at``; ``next_action_at`` follows the deadline. Anything later (a retry, a failover, an
    answer, an escalation) keeps its own timing. Idempotent: ``accepted_at`` is the message's first
    acceptance, so a repeated acceptance writes nothing. Returns how many callouts moved."""
    when: dict[int, dt.datetime] = {}
    for it in items:
        if it.subject_type == SUBJECT and it.subject_id and it.subject_id.isdigit():
            when[int(it.subject_id)] = it.accepted_at
    if not when:
        return 0
    q, upd = _accept_statements(session.get_bind().dialect.name)
    conn = session.connection()
    ids = sorted(when)
    rows: list[Any] = []
    for i in range(0, len(ids), 900):
        rows += conn.execute(q, {"ids": ids[i:i + 900]}).all()
    moved: list[dict[str, Any]] = []
    for att_id, cid, run_id, minutes, started, deadline in rows:
        at = when[att_id]
        new = at + dt.timedelta(minutes=minutes)
        if new != deadline or at != started:
            moved.append({"b_id": cid, "b_at": at, "b_dl": new, "b_now": now, "run": run_id, "was": deadline})
    if not moved:
        return 0
    conn.execute(upd, [{k: m[k] for k in ("b_id", "b_at", "b_dl", "b_now")} for m in moved])
    by_run: dict[int, list[list[Any]]] = defaultdict(list)
    for m in moved:
        by_run[m["run"]].append([m["b_id"], m["b_at"].isoformat(), m["b_dl"].isoformat(), m["was"].isoformat()])
    for run_id in sorted(by_run):  # one entry per run and batch: the fan-out's hot path
        record(session, now=now, action="callouts.call_accepted", entity_type="response_run", entity_id=run_id,
               actor="system", payload={"fields": ["callout", "accepted_at", "deadline", "provisional_deadline"],
                                        "callouts": by_run[run_id]})
    return len(moved)


def install(state: dict[str, Any]) -> None:
    """Register the acceptance hook on a runtime's state (idempotent); senders built from that
    state call it."""
    hooks = outbox.accepted_hooks_of(state)
    if on_attempts_accepted not in hooks:
        hooks.append(on_attempts_accepted)


def _calls_of(c: Callout) -> dict[str, Any]:
    return {"answer_minutes": c.answer_minutes, "channels": c.channels, "escalation": c.ladder,
            "retries": {"count": c.retries_total, "interval_minutes": c.retry_interval_minutes}}


# ---------------------------------------------------------------------------------------------- sweep


@dataclass
class SweepStats:
    due: int = 0
    retries: int = 0
    escalated: int = 0
    exhausted: int = 0
    failovers: int = 0
    skipped_retries: int = 0
    new_callouts: int = 0

    def add(self, other: SweepStats) -> None:
        for k, v in other.__dict__.items():
            setattr(self, k, getattr(self, k) + v)


def _claim_due(session: Session, now: dt.datetime, limit: int) -> list[Callout]:
    # attempts come in one query for the whole batch: the decision needs each callout's last try
    q = (select(Callout).where(Callout.state == CalloutState.CALLING.value, Callout.next_action_at <= now)
         .order_by(Callout.next_action_at, Callout.id).limit(limit).options(selectinload(Callout.attempts)))
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return list(session.execute(q).scalars())


def sweep_batch(session: Session, *, now: dt.datetime, limit: int = 500) -> SweepStats:
    """One batch of due callouts: retry, or escalate (grouped by whom they escalate to). The caller
    commits; call again until ``due`` is 0."""
    stats = SweepStats()
    stats.failovers += handle_failed_attempts(session, now=now, limit=limit)
    due = _claim_due(session, now, limit)
    stats.due = len(due)
    if not due:  # the common idle tick: two indexed queries and nothing else
        return stats
    ctx = _context(session)
    giving_up: list[tuple[Callout, core.Decision]] = []
    for c in due:
        d = core.on_due(view_of(c), now)
        if d.noop:
            continue
        stats.skipped_retries += d.skipped_retries
        if d.transition is Transition.RETRY:
            apply_decision(c, d, now)
            assert d.send is not None
            att = _send(session, c, d.send, "retry", now, ctx)
            stats.retries += 1
            record(session, now=now, action="callout.retried", entity_type="callout", entity_id=c.id,
                   actor="rule:callout_deadline",
                   payload={"attempt": att.seq, "channel": att.channel, "retries_done": c.retries_done,
                            "skipped": d.skipped_retries, "next_action_at": c.next_action_at})
        else:
            giving_up.append((c, d))
    if giving_up:
        esc, exh, made = _escalate(session, giving_up, now=now, ctx=ctx)
        stats.escalated += esc
        stats.exhausted += exh
        stats.new_callouts += made
    session.flush()
    return stats


def sweep(session_factory: Any, *, now: dt.datetime, limit: int = 500, max_batches: int = 1000) -> SweepStats:
    """Sweep until nothing is due, one transaction per batch (a crash loses at most the batch in hand)."""
    from config.database import session_scope

    total = SweepStats()
    for _ in range(max_batches):
        with session_scope(session_factory) as s:
            st = sweep_batch(s, now=now, limit=limit)
        total.add(st)
        if st.due < limit and not st.failovers:
            break
    return total


@dataclass
class _Target:
    contact: Contact | None
    name: str
    numbers: list[str]
    role: str

    @property
    def key(self) -> str:
        return f"contact:{self.contact.id}" if self.contact else f"phone:{self.numbers[0]}"


_ROLE_OF_STEP = {"village": "village_head", "township": "township_chief"}


def _targets(session: Session, step: str, c: Callout, now: dt.datetime,
             cache: dict[tuple[str, str], list[_Target]], ctx: SendContext) -> list[_Target]:
    """Who answers at ``step`` above this callout (never the callee themself). A hazard site is
    placed by its area in the geo register, so a monitor's callout climbs to the site's village
    head and township chief."""
    if step in _ROLE_OF_STEP:
        codes = step_areas(step, c.areas, ctx.site_areas)
        key = (step, ",".join(codes))
        if key not in cache:
            cache[key] = _duty_targets(session, _ROLE_OF_STEP[step], codes, now)
    elif step == "district":
        key = (step, "")
        if key not in cache:
            cache[key] = _duty_targets(session, "district_leader", None, now)
    elif step == "leader_on_duty":
        key = (step, "")
        if key not in cache:
            cache[key] = _leader_on_duty(session, now)
    else:  # nothing is below a site
        return []
    return [t for t in cache[key] if not (t.contact is not None and t.contact.id == c.contact_id)]


def _duty_targets(session: Session, role: str, codes: Sequence[str] | None, now: dt.datetime) -> list[_Target]:
    q = select(Duty, Contact).join(Contact, Duty.contact_id == Contact.id).where(Duty.role == role)
    if codes is not None:
        if not codes:
            return []
        q = q.where(Duty.area_code.in_(list(codes)))
    seen: dict[int, _Target] = {}
    for d, person in session.execute(q.order_by(Contact.id)).all():
        if reachable(person, d, now) and person.id not in seen:
            seen[person.id] = _Target(person, person.name, [n for n in (person.phone, person.backup_phone) if n],
                                      role)
    return list(seen.values())


def _leader_on_duty(session: Session, now: dt.datetime) -> list[_Target]:
    """The leader on duty from the roster; a number that matches a contact uses that person's numbers."""
    from responses.contacts.roster_service import on_duty

    leader = on_duty(session, now).leader
    if leader is None or not leader.phone:
        return []
    from responses.contacts.core import PhoneError, normalize_phone

    try:
        phone = normalize_phone(leader.phone)
    except PhoneError:
        return []
    person = session.execute(
        select(Contact).where((Contact.phone == phone) | (Contact.backup_phone == phone)).limit(1)
    ).scalar_one_or_none()
    numbers = [phone] + ([n for n in (person.phone, person.backup_phone) if n and n != phone] if person else [])
    return [_Target(person, leader.name, numbers, "leader_on_duty")]


def _escalate(session: Session, items: list[tuple[Callout, core.Decision]], *, now: dt.datetime,
              ctx: SendContext) -> tuple[int, int, int]:
    """Give up on these callouts: each goes to the nearest step with someone on it; all that go to
    the same person in this batch become ONE callout naming all their areas."""
    cache: dict[tuple[str, str], list[_Target]] = {}
    groups: dict[tuple[int, str, str], list[Callout]] = defaultdict(list)
    targets_of: dict[tuple[int, str, str], _Target] = {}
    decided: list[tuple[Callout, core.Decision, str | None, list[str]]] = []
    for c, d in items:
        missing: list[str] = []
        chosen: str | None = None
        for step in d.escalate_to:
            found = _targets(session, step, c, now, cache, ctx)
            if found:
                chosen = step
                for t in found:
                    gk = (c.run_id, step, t.key)
                    groups[gk].append(c)
                    targets_of[gk] = t
                break
            missing.append(step)
        decided.append((c, d, chosen, missing))
    made: dict[tuple[int, str, str], Callout] = {}
    keys = {gk: f"esc:{gk[0]}:{gk[1]}:{gk[2]}:{min(s.id for s in sources)}" for gk, sources in groups.items()}
    existing: dict[str, Callout] = {}
    wanted = list(keys.values())
    for i in range(0, len(wanted), 500):
        existing.update((e.key, e) for e in session.execute(
            select(Callout).where(Callout.key.in_(wanted[i:i + 500]))).scalars())
    fresh: list[tuple[tuple[int, str, str], Callout]] = []
    for gk, sources in groups.items():
        run_id, step, tkey = gk
        t = targets_of[gk]
        key = keys[gk]
        if key in existing:
            made[gk] = existing[key]
            continue
        areas = sorted({a for s in sources for a in s.areas})
        who = "、".join(f"{s.name}（{place_names(s.areas, ctx.names, 2)}）" for s in sources[:3])
        if len(sources) > 3:
            who += f"等{len(sources)}人"
        proto = sources[0]
        c = _new_callout(run_id=run_id, key=key, contact=t.contact, name=t.name, numbers=t.numbers, role=t.role,
                         tier=step, areas=areas, reason="escalation", level=proto.level, calls=_calls_of(proto),
                         now=now, drill=proto.drill, names=ctx.names,
                         context={"escalated_from": who, "from_callouts": [s.id for s in sources]})
        session.add(c)
        fresh.append((gk, c))
    # the new callouts, their first tries and messages in a few statements: a sweep in a district-wide fan-out
    # escalates to every township at once, and a round trip per callout kept each batch's commit seconds away
    session.flush()
    sends: list[tuple[Callout, str, str]] = []
    for gk, c in fresh:
        st = core.start(view_of(c), now)
        apply_decision(c, st, now)
        if st.send:
            sends.append((c, st.send, "first"))
        made[gk] = c
    _send_many(session, sends, now, ctx)
    # the duty officer's notices (one per callout) in one multi-row INSERT, their ids read back
    # by callout (each callout is in the batch once), so the escalation rows and events can name them
    notice_rows = []
    for c, d, chosen, _missing in decided:
        trans = Transition.EXHAUST if chosen is None else Transition.ESCALATE
        apply_decision(c, core.Decision(trans, core.apply(c.state, trans), None, retries_done=d.retries_done,
                                dead_routes=d.dead_routes, notes=d.notes), now)
        if chosen is not None:
            c.escalated_at = now
        notice_rows.append(_notice(c, now, exhausted=chosen is None, ctx=ctx, step=chosen))
    notice_of = {str(eid): int(nid) for nid, eid in session.execute(
        insert(Notice).returning(Notice.id, Notice.entity_id), notice_rows)}
    to_of: dict[int, set[int]] = defaultdict(set)
    for gk, sources in groups.items():
        for s in sources:
            to_of[s.id].add(made[gk].id)
    escalated = exhausted = 0
    esc_rows: list[dict[str, Any]] = []
    for c, d, chosen, missing in decided:
        reason = str(d.notes.get("reason", "no_answer"))
        notice_id = notice_of[str(c.id)]
        esc_rows += [dict(run_id=c.run_id, from_callout_id=c.id, to_callout_ids=[], step=step, at=now, reason=reason,
                          target_missing=True, notice_id=None) for step in missing]
        if chosen is None:
            record(session, now=now, action="callout.unanswered", entity_type="callout", entity_id=c.id,
                   actor="rule:callout_deadline",
                   payload={"reason": d.notes.get("reason"), "missing_steps": missing, "notice_id": notice_id,
                            "skipped_retries": d.skipped_retries})
            exhausted += 1
            continue
        to_ids = sorted(to_of[c.id])
        esc_rows.append(dict(run_id=c.run_id, from_callout_id=c.id, to_callout_ids=to_ids, step=chosen, at=now,
                             reason=reason, target_missing=False, notice_id=notice_id))
        record(session, now=now, action="callout.escalated", entity_type="callout", entity_id=c.id,
               actor="rule:callout_deadline",
               payload={"step": chosen, "to_callouts": to_ids, "missing_steps": missing,
                        "reason": d.notes.get("reason"), "skipped_retries": d.skipped_retries})
        escalated += 1
    if esc_rows:
        session.execute(insert(Escalation), esc_rows)
    session.flush()
    return escalated, exhausted, len([m for m in made.values() if m.created_at == now])


_STEP_ZH = {"township": "镇（街道）负责人", "district": "区领导", "leader_on_duty": "带班领导"}


def _notice(c: Callout, now: dt.datetime, *, exhausted: bool, ctx: SendContext,
            step: str | None = None) -> dict[str, Any]:
    """The duty officer's notice about one callout, as a row for the batch's one INSERT."""
    where = place_names(c.areas, ctx.names, 3)
    if exhausted:
        zh = f"叫应无人应答：{c.name}（{where}）未应答，且无上级可升级，请值班员电话确认"
        en = f"Callout unanswered: {c.name} did not answer and nobody is left to escalate to; phone them"
    else:
        zh = f"叫应升级：{c.name}（{where}）未在时限内应答，已升级至{_STEP_ZH.get(step or '', step)}"
        en = f"Callout escalated: {c.name} did not answer in time; escalated to {step}"
    return dict(created_at=now, kind="callout_unanswered" if exhausted else "callout_escalated",
                recipient_role="duty_officer", recipient_name=None, recipient_phone=None, department=None,
                subject=zh[:300], subject_en=en[:300], entity_type="callout", entity_id=str(c.id), read_at=None)


# ---------------------------------------------------------------------------------------------- failures


def _sync_attempt(att: Attempt, msg: OutboxMessage, now: dt.datetime) -> bool:
    """Copy the message's state onto the attempt; True when it changed."""
    changed = False
    if msg.provider_id and att.provider_id != msg.provider_id:
        att.provider_id = msg.provider_id
        changed = True
    if att.status != msg.state and msg.state not in ("claimed",):
        att.status = msg.state
        att.history = [*att.history, {"at": now.isoformat(), "status": msg.state,
                                      "provider_status": msg.provider_status, "error": msg.last_error}]
        changed = True
    if changed:
        att.updated_at = now
    return changed


def _is_route_failure(msg: OutboxMessage) -> bool:
    return msg.state == "failed" and (msg.provider_status or "").lower() not in NOT_ANSWERED_STATUSES


def handle_failed_attempts(session: Session, *, now: dt.datetime, limit: int = 500) -> int:
    """Tries whose message failed for good (invalid or blocked number): fail over at once."""
    q = (select(Attempt, OutboxMessage).join(OutboxMessage, Attempt.message_id == OutboxMessage.id)
         .where(Attempt.failure_handled.is_(False), OutboxMessage.state.in_(("failed", "expired")))
         .order_by(Attempt.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(of=Attempt, skip_locked=True)
    rows = session.execute(q).all()
    n = 0
    ctx: SendContext | None = None
    for att, msg in rows:
        att.failure_handled = True
        _sync_attempt(att, msg, now)
        if not _is_route_failure(msg):
            continue
        ctx = ctx or _context(session)
        if _fail_over(session, att, now=now, ctx=ctx):
            n += 1
    return n


def _fail_over(session: Session, att: Attempt, *, now: dt.datetime, ctx: SendContext) -> bool:
    c = session.get(Callout, att.callout_id, with_for_update=session.get_bind().dialect.name == "postgresql")
    if c is None:
        return False
    d = core.on_send_failed(view_of(c), now, core.route_key(att.channel, att.number))
    if d.noop:
        c.dead_routes = list(d.dead_routes)
        return False
    if d.transition is Transition.FAILOVER:
        apply_decision(c, d, now)
        assert d.send is not None
        new = _send(session, c, d.send, "failover", now, ctx)
        record(session, now=now, action="callout.failed_over", entity_type="callout", entity_id=c.id,
               actor="rule:send_failure",
               payload={"failed_attempt": att.seq, "failed_route": core.route_key(att.channel, att.number),
                        "attempt": new.seq, "channel": new.channel, "number": new.number})
        return True
    c.dead_routes = list(d.dead_routes)
    _escalate(session, [(c, d)], now=now, ctx=ctx)
    return True


def on_message_final(session: Session, msg: OutboxMessage) -> None:
    """Status handler for the webhook layer: a provider callback ended a message."""
    if msg.subject_type != SUBJECT or not msg.subject_id:
        return
    att = session.get(Attempt, int(msg.subject_id))
    if att is None:
        return
    now = msg.finished_at or msg.delivered_at or msg.created_at
    _sync_attempt(att, msg, now)
    if msg.state in ("failed", "expired") and not att.failure_handled:
        att.failure_handled = True
        if _is_route_failure(msg):
            _fail_over(session, att, now=now, ctx=_context(session))


# ---------------------------------------------------------------------------------------------- run end


CALLING_ACTIONS = frozenset({"started", "raised", "areas_extended", "revised_by_decision", "reactivated"})
STOPPING_ACTIONS = frozenset({"closing", "closed"})


def on_run_event(session: Session, run: ResponseRun, action: str, *, actor: str, now: dt.datetime) -> None:
    """Hook called by the run service after each run event, in its transaction: a started (or
    grown) run calls its responsible people; a run that ends stops calling. Under a savepoint: a
    failure here is logged and never loses the run event itself."""
    if action not in CALLING_ACTIONS and action not in STOPPING_ACTIONS:
        return
    try:
        with session.begin_nested():
            if action in CALLING_ACTIONS and run.state == "active":
                start_run_callouts(session, run, now=now, actor=actor)
            elif action in STOPPING_ACTIONS:
                cancel_run_callouts(session, run.id, now=now, actor=actor)
    except Exception as exc:  # logged for the duty officer; the run goes on
        log.exception("callout hook failed for run %s (%s)", run.id, action, extra={"run_id": run.id})
        record(session, now=now, action="callouts.hook_failed", entity_type="response_run", entity_id=run.id,
               actor="system", payload={"run_action": action, "error": f"{type(exc).__name__}: {exc}"[:500]})


def cancel_run_callouts(session: Session, run_id: int, *, now: dt.datetime, actor: str) -> int:
    """The run ended: stop every callout still calling. Escalated and unanswered ones stay open to
    a late answer; answers already in stay as they are."""
    rows = session.execute(select(Callout).where(
        Callout.run_id == run_id, Callout.state == CalloutState.CALLING.value)).scalars().all()
    for c in rows:
        d = core.on_cancel(view_of(c), now)
        if not d.noop:
            apply_decision(c, d, now)
    if rows:
        record(session, now=now, action="callouts.cancelled", entity_type="response_run", entity_id=run_id,
               actor=actor, payload={"callouts": [c.id for c in rows]})
    session.flush()
    return len(rows)
