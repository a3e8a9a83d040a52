"""Handover notes (交接班) in the database: drafted from the open work, signed by the outgoing officer,
acknowledged by the incoming one, flagged to the leader on duty when nobody acknowledges in time.

Who may sign and acknowledge: the outgoing (incoming) shift's members — its duty officers and its leader on
duty — recognised by the roster's link to their user or by name (the user's display name or username as the
roster writes it). A shift that lists nobody leaves it to any duty-desk user (admin, leader, duty officer),
and so does a missing next shift: the handover is never stuck because the roster is incomplete.

One handover per outgoing shift (a unique column): drafting again returns the one there is, and two
instances drafting at once end with one row — the loser's insert is rolled back to a savepoint and it
reads the winner's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.eventlog import record
from responses.contacts import roster_service
from responses.contacts.models import Shift, ShiftMember
from responses.duty import core
from responses.duty.core import HandoverAction, HandoverState
from responses.duty.models import DutyLogEntry, Handover
from responses.duty.service import DutyError, entry_view, get_shift, next_shift, shift_facts, shift_view
from responses.duty.service import entries as log_entries

UNACK_KIND = "handover_unacknowledged"
MAX_NAMES = 100  # unanswered people listed per run in a handover (the rest are counted)
OPEN_CALLOUT_STATES = ("calling", "escalated", "unanswered")
CLOSED_MEASURES = ("lifted", "cancelled", "waived")
NO_NEXT_SHIFT_WINDOW = dt.timedelta(hours=12)  # reports due this long after the end, when no shift follows


def get(session: Session, handover_id: int, *, lock: bool = False) -> Handover | None:
    stmt = select(Handover).where(Handover.id == handover_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def for_shift(session: Session, shift_id: int) -> Handover | None:
    return session.execute(select(Handover).where(Handover.shift_id == shift_id)).scalar_one_or_none()


def listing(session: Session, *, shift_id: int | None = None, state: str | None = None,
            limit: int = 50) -> list[Handover]:
    stmt = select(Handover).order_by(Handover.drafted_at.desc(), Handover.id.desc()).limit(limit)
    if shift_id is not None:
        stmt = stmt.where((Handover.shift_id == shift_id) | (Handover.next_shift_id == shift_id))
    if state is not None:
        stmt = stmt.where(Handover.state == state)
    return list(session.execute(stmt).scalars())


def late(session: Session, now: dt.datetime, *, limit: int = 20) -> list[Handover]:
    """Handovers past their acknowledgement deadline and not acknowledged, oldest deadline first."""
    return list(session.execute(
        select(Handover).where(Handover.state != HandoverState.ACKNOWLEDGED.value, Handover.ack_due_at <= now)
        .order_by(Handover.ack_due_at, Handover.id).limit(limit)).scalars())


def _event(session: Session, h: Handover, action: str, actor: str, now: dt.datetime,
           payload: dict[str, Any] | None = None) -> None:
    record(session, now=now, action=f"handover.{action}", entity_type="handover", entity_id=h.id, actor=actor,
           payload={"shift_id": h.shift_id, "next_shift_id": h.next_shift_id, "state": h.state, **(payload or {})})


# ---------------------------------------------------------------------------------------------- the facts


def facts(session: Session, shift: Shift, *, now: dt.datetime, tz: ZoneInfo) -> core.HandoverFacts:
    """The open work at ``now``, read from the domains, for the draft."""
    from responses.callouts.escalation import STATE_ZH as CALLOUT_STATE_ZH
    from responses.callouts.escalation import CalloutState
    from responses.callouts.models import Callout
    from responses.contacts import service as contact_service
    from responses.measures import service as measure_service
    from responses.reports import service as report_service
    from responses.reports.core import KIND_ZH as REPORT_KIND_ZH
    from responses.reports.core import ReportKind
    from responses.runs import service as run_service
    from warning import service as warning_service
    from warning.consultation import service as consultation_service

    nxt = next_shift(session, shift)

    def local(when: dt.datetime | None) -> str:
        return core.local_text(when, tz)

    warnings = [{"id": w.id, "level": w.level, "hazard": w.hazard, "event": w.event, "headline": w.headline,
                 "received_local": local(w.received_at), "drill": w.drill}
                for w in warning_service.active_warnings(session)]
    departments = {code: name for name, code in contact_service.known_departments(session).items() if name != code}
    consultations = []
    for c in consultation_service.waiting(session):
        judged = {j.department for j in consultation_service.judgements(session, c.id)}
        consultations.append({"id": c.id, "level": c.level, "hazard": c.hazard, "deadline_local": local(c.deadline),
                              "overdue": now > c.deadline, "drill": c.drill,
                              "missing": [departments.get(d, d) for d in c.invited or [] if d not in judged]})
    reports_until = nxt.ends_at if nxt is not None else shift.ends_at + NO_NEXT_SHIFT_WINDOW
    runs, measures, reports = [], [], []
    for r in sorted(run_service.open_runs(session), key=lambda r: (r.started_at, r.id)):
        calls = list(session.execute(select(Callout.name, Callout.area_names, Callout.state, Callout.answered_at)
                                     .where(Callout.run_id == r.id).order_by(Callout.rank, Callout.id)).tuples())
        open_ = [(n, a, s) for n, a, s, answered in calls if answered is None and s in OPEN_CALLOUT_STATES]
        runs.append({
            "id": r.id, "number": r.number, "level": r.level, "response_level": r.response_level,
            "started_local": local(r.started_at), "state": r.state, "drill": r.drill, "calls": len(calls),
            "answered": sum(1 for *_, answered in calls if answered is not None),
            "unanswered_total": len(open_),
            "unanswered": [{"name": n, "areas": "、".join(str(x) for x in (a or [])[:3]),
                            "state_zh": CALLOUT_STATE_ZH[CalloutState(s)]} for n, a, s in open_[:MAX_NAMES]],
        })
        for m in measure_service.for_run(session, r.id):
            if m.state in CLOSED_MEASURES:
                continue
            v = measure_service.view(m, now)
            deadline = m.lift_deadline if m.state == "lifting" else m.deadline
            measures.append({"id": m.id, "run": r.number, "label": m.label, "state_zh": v["state_zh"],
                             "deadline_local": local(deadline) if deadline else "",
                             "overdue": bool(v["overdue"] or v["lift_overdue"]), "person": m.person_name,
                             "unit": m.responsible_unit, "drill": m.drill})
        for rep in report_service.for_run(session, r.id):
            if rep.state != "draft" or rep.due_at >= reports_until:
                continue
            reports.append({"id": rep.id, "run": r.number, "title": rep.title,
                            "kind_zh": REPORT_KIND_ZH[ReportKind(rep.kind)], "due_local": local(rep.due_at),
                            "overdue": now >= rep.due_at, "drill": rep.drill, "due_at": rep.due_at.isoformat()})
    reports.sort(key=lambda x: str(x["due_at"]))
    titles = {f.id: f.title or f.name for f in warning_service.all_feeds(session)}
    quarantined = [{"id": i.id, "feed": titles.get(i.feed_id, str(i.feed_id)), "reason": i.reason or "",
                    "received_local": local(i.received_at)}
                   for i in warning_service.quarantined_items(session, limit=50)]
    marked = session.execute(select(DutyLogEntry).where(DutyLogEntry.shift_id == shift.id,
                                                        DutyLogEntry.for_handover.is_(True))
                             .order_by(DutyLogEntry.at, DutyLogEntry.id)).scalars()
    log = []
    for e in marked:
        v = entry_view(e)
        log.append({"id": e.id, "at_local": local(e.at), "kind_zh": v["kind_zh"], "text": v["text"],
                    "author": e.author_name})
    return core.HandoverFacts(
        shift=shift_facts(session, shift, tz), next_shift=shift_facts(session, nxt, tz) if nxt else None,
        now_local=local(now), warnings=warnings, consultations=consultations, runs=runs, measures=measures,
        reports=reports, quarantined=quarantined, log=log)


# ---------------------------------------------------------------------------------------------- the steps


def _fill(session: Session, h: Handover, shift: Shift, *, now: dt.datetime, tz: ZoneInfo) -> None:
    draft = core.build_draft(facts(session, shift, now=now, tz=tz))
    nxt = next_shift(session, shift)
    h.next_shift_id = nxt.id if nxt is not None else None
    h.ack_due_at = core.ack_due(shift.ends_at, nxt.starts_at if nxt is not None else None)
    h.sections, h.draft_text, h.text, h.drafted_at, h.updated_at = draft.sections, draft.text, draft.text, now, now


def draft(session: Session, shift: Shift, *, actor: str, now: dt.datetime, tz: ZoneInfo) -> tuple[Handover, bool]:
    """The shift's handover: drafted now from the data, or the one it already has. (handover, created)"""
    existing = for_shift(session, shift.id)
    if existing is not None:
        return existing, False
    if shift.starts_at > now:
        raise DutyError(409, "shift_not_started", "该班次尚未开始，不能起草交接班记录",
                        "the shift has not begun; its handover cannot be drafted yet")
    h = Handover(shift_id=shift.id, state=HandoverState.DRAFT.value, drafted_by=actor, created_at=now,
                 drafted_at=now, updated_at=now, ack_due_at=shift.ends_at + core.ACK_GRACE)
    _fill(session, h, shift, now=now, tz=tz)
    try:
        with session.begin_nested():
            session.add(h)
            session.flush()
    except IntegrityError:  # drafted at the same moment elsewhere (another instance's scheduler)
        again = for_shift(session, shift.id)
        if again is None:
            raise
        return again, False
    _event(session, h, "drafted", actor, now,
           {"ack_due_at": h.ack_due_at.isoformat(), "counts": h.sections.get("counts")})
    return h, True


def redraft(session: Session, h: Handover, *, actor: str, now: dt.datetime, tz: ZoneInfo) -> Handover:
    """Draft again from the current data; the text edited so far is replaced (it stays in the event log)."""
    h.state = core.apply(h.state, HandoverAction.REDRAFT).value
    shift = get_shift(session, h.shift_id)
    assert shift is not None
    before = h.text
    _fill(session, h, shift, now=now, tz=tz)
    _event(session, h, "redrafted", actor, now, {"previous_text": before, "counts": h.sections.get("counts")})
    return h


def _members(session: Session, shift_id: int | None) -> list[ShiftMember]:
    return roster_service.members(session, shift_id) if shift_id is not None else []


def may_act(session: Session, shift_id: int | None, *, user_id: int | None, names: Sequence[str]) -> tuple[
        bool, list[str]]:
    """Whether a user is a member of the shift (by the roster's link or by name); a shift that lists nobody,
    or no shift, admits any duty-desk user. Returns (allowed, the members' names)."""
    ms = _members(session, shift_id)
    if not ms:
        return True, []
    wanted = {n.strip() for n in names if n and n.strip()}
    ok = any((user_id is not None and m.user_id == user_id) or m.name.strip() in wanted for m in ms)
    return ok, [m.name for m in ms]


def sign(session: Session, h: Handover, *, actor: str, name: str, now: dt.datetime,
         text: str | None = None) -> Handover:
    """The outgoing officer signs, with the text as edited (or as drafted)."""
    if text is not None and not text.strip():
        raise DutyError(422, "empty_text", "交接班内容不能为空", "the handover text cannot be empty")
    h.state = core.apply(h.state, HandoverAction.SIGN).value
    if text is not None:
        h.text = text
    shift = get_shift(session, h.shift_id)
    nxt = next_shift(session, shift) if shift is not None else None
    if shift is not None:  # the roster may have changed since the draft: the deadline follows it
        h.next_shift_id = nxt.id if nxt is not None else None
        h.ack_due_at = core.ack_due(shift.ends_at, nxt.starts_at if nxt is not None else None)
    h.signed_at, h.signed_by, h.signed_by_name, h.updated_at = now, actor, name, now
    _event(session, h, "signed", actor, now, {
        "name": name, "text": h.text, "edited": h.text != h.draft_text, "ack_due_at": h.ack_due_at.isoformat(),
        "after_shift_end": shift is not None and now > shift.ends_at,
        "shift_label": shift.label if shift is not None else ""})
    return h


def acknowledge(session: Session, h: Handover, *, actor: str, name: str, now: dt.datetime,
                note: str | None = None) -> Handover:
    """The incoming officer acknowledges; the unacknowledged flag, if raised, clears."""
    from responses.runs import supervision

    h.state = core.apply(h.state, HandoverAction.ACKNOWLEDGE).value
    late = core.ack_late(h.ack_due_at, now, now)
    h.acknowledged_at, h.acknowledged_by, h.acknowledged_by_name = now, actor, name
    h.ack_note, h.updated_at = (note.strip() or None) if note else None, now
    _event(session, h, "acknowledged", actor, now, {"name": name, "note": h.ack_note, "late": late,
                                                     "ack_due_at": h.ack_due_at.isoformat()})
    for flag in supervision.open_flags_for(session, UNACK_KIND, "handover", h.id):
        supervision.clear_flag(session, flag, reason="handover acknowledged", now=now)
    return h


# ---------------------------------------------------------------------------------------------- the sweep


def sweep(session: Session, now: dt.datetime, tz: ZoneInfo, *, actor: str = "rule:handover") -> dict[str, list[int]]:
    """Draft the handovers of shifts about to end (``DRAFT_BEFORE_END``) that have none, then flag those
    not acknowledged ``ACK_GRACE`` into the next shift to the leader on duty. Idempotent."""
    from responses.runs import supervision

    drafted: list[int] = []
    ending = session.execute(
        select(Shift).outerjoin(Handover, Handover.shift_id == Shift.id)
        .where(Handover.id.is_(None), Shift.ends_at <= now + core.DRAFT_BEFORE_END,
               Shift.ends_at > now - core.DRAFT_LOOKBACK, Shift.starts_at <= now)
        .order_by(Shift.ends_at, Shift.id)).scalars().all()
    for shift in ending:
        h, created = draft(session, shift, actor=actor, now=now, tz=tz)
        if created:
            drafted.append(h.id)
    flagged: list[int] = []
    late = session.execute(
        select(Handover).where(Handover.state != HandoverState.ACKNOWLEDGED.value, Handover.ack_due_at <= now,
                               Handover.unack_flagged_at.is_(None))
        .order_by(Handover.ack_due_at, Handover.id).with_for_update()).scalars().all()
    for h in late:
        shift = get_shift(session, h.shift_id)
        label = _label(shift, tz)
        h.unack_flagged_at, h.updated_at = now, now
        state_zh = "未签字、未确认" if h.state == HandoverState.DRAFT.value else "已签字、未确认"
        flag = supervision.raise_flag(
            session, key=f"{UNACK_KIND}:handover:{h.id}", kind=UNACK_KIND, subject_type="handover", subject_id=h.id,
            now=now, due_at=h.ack_due_at,
            detail={"shift_id": h.shift_id, "next_shift_id": h.next_shift_id, "state": h.state, "shift": label,
                    "to": "leader_on_duty"})
        if flag is not None:
            n = supervision.notify_leader_on_duty(
                session, kind=UNACK_KIND, entity_type="handover", entity_id=h.id, now=now,
                subject=f"督办：{label}的交接班记录{state_zh}（接班 {int(core.ACK_GRACE.total_seconds() // 60)} 分钟"
                        f"时限 {core.local_text(h.ack_due_at, tz)} 已过）",
                subject_en=f"Handover of shift {h.shift_id} not acknowledged by {h.ack_due_at.isoformat()}")
            flag.detail = {**flag.detail, "notice_id": n.id, "notified": n.recipient_name or n.recipient_role}
            flagged.append(h.id)
    return {"drafted": drafted, "flagged": flagged}


def follow_roster(session: Session, *, now: dt.datetime, actor: str) -> list[int]:
    """Point each handover still waiting for its incoming officer at the shift that now takes over, with the
    deadline that follows from it: the roster's follower (``jiaoying/wiring.py``), run in the transaction of
    every roster change, which may come after the draft or the signature. A removed
    incoming shift unlinks the handover in the database (the roster's event log row says so); a shift put in its
    place, or moved to cover the change of shift, then takes it over here, and an outgoing shift's new end moves
    the deadline. Only handovers not yet flagged: a flag raised keeps the deadline it was raised on."""
    moved: list[int] = []
    waiting = session.execute(
        select(Handover).where(Handover.state != HandoverState.ACKNOWLEDGED.value,
                               Handover.unack_flagged_at.is_(None))
        .order_by(Handover.id).with_for_update()).scalars().all()
    for h in waiting:
        shift = get_shift(session, h.shift_id)
        if shift is None:
            continue
        nxt = next_shift(session, shift)
        next_id = nxt.id if nxt is not None else None
        due = core.ack_due(shift.ends_at, nxt.starts_at if nxt is not None else None)
        if next_id == h.next_shift_id and _aware(due) == _aware(h.ack_due_at):
            continue
        before = {"next_shift_id": h.next_shift_id, "ack_due_at": _aware(h.ack_due_at).isoformat()}
        h.next_shift_id, h.ack_due_at, h.updated_at = next_id, due, now
        _event(session, h, "next_shift_changed", actor, now,
               {"before": before, "next_shift_id": next_id, "ack_due_at": _aware(due).isoformat()})
        moved.append(h.id)
    return moved


def _label(shift: Shift | None, tz: ZoneInfo) -> str:
    if shift is None:
        return "已删除的班次"
    when = f"{core.local_text(shift.starts_at, tz)}—{core.local_text(shift.ends_at, tz, with_date=False)}"
    return f"{shift.label}（{when}）" if shift.label else when


def next_due(session: Session, now: dt.datetime) -> dt.datetime | None:
    """The next moment the sweep has something to do (a draft to make, a flag to raise); for a drill's clock."""
    times = [
        session.execute(select(func.min(Shift.ends_at)).outerjoin(Handover, Handover.shift_id == Shift.id)
                        .where(Handover.id.is_(None), Shift.ends_at > now + core.DRAFT_BEFORE_END)).scalar(),
        session.execute(select(func.min(Handover.ack_due_at)).where(
            Handover.state != HandoverState.ACKNOWLEDGED.value, Handover.unack_flagged_at.is_(None),
            Handover.ack_due_at > now)).scalar(),
    ]
    out = []
    if times[0] is not None:
        out.append(_aware(times[0]) - core.DRAFT_BEFORE_END)
    if times[1] is not None:
        out.append(_aware(times[1]))
    return min(out) if out else None


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------------------------------------- views


def view(session: Session, h: Handover, *, now: dt.datetime, tz: ZoneInfo) -> dict[str, Any]:
    shift = get_shift(session, h.shift_id)
    nxt = get_shift(session, h.next_shift_id) if h.next_shift_id is not None else None
    state = HandoverState(h.state)
    return {
        "id": h.id, "shift_id": h.shift_id, "next_shift_id": h.next_shift_id,
        "shift": shift_view(session, shift, tz) if shift is not None else None,
        "next_shift": shift_view(session, nxt, tz) if nxt is not None else None,
        "state": state.value, "state_zh": core.STATE_ZH[state],
        "allowed_actions": [a.value for a in core.MACHINE.allowed(state)],
        "sections": h.sections, "draft_text": h.draft_text, "text": h.text, "edited": h.text != h.draft_text,
        "drafted_at": h.drafted_at, "drafted_local": core.local_text(h.drafted_at, tz), "drafted_by": h.drafted_by,
        "signed_at": h.signed_at, "signed_local": core.local_text(h.signed_at, tz), "signed_by": h.signed_by,
        "signed_by_name": h.signed_by_name,
        "ack_due_at": h.ack_due_at, "ack_due_local": core.local_text(h.ack_due_at, tz),
        "acknowledged_at": h.acknowledged_at, "acknowledged_local": core.local_text(h.acknowledged_at, tz),
        "acknowledged_by": h.acknowledged_by, "acknowledged_by_name": h.acknowledged_by_name, "ack_note": h.ack_note,
        "overdue": core.unacknowledged(state, h.ack_due_at, now),
        "late": core.ack_late(h.ack_due_at, h.acknowledged_at, now) if h.acknowledged_at else None,
        "flagged_at": h.unack_flagged_at,
    }


def board_rows(session: Session, *, now: dt.datetime, current_shift_id: int | None,
               tz: ZoneInfo) -> list[dict[str, Any]]:
    """The handovers the board names, in one query: every one past its acknowledgement deadline and not
    acknowledged (flagged, or about to be at the sweep's next tick), and the current shift's own or incoming
    one while it waits for a signature or an acknowledgement. Overdue first, then by deadline."""
    waiting = Handover.state != HandoverState.ACKNOWLEDGED.value
    near = Handover.ack_due_at <= now
    if current_shift_id is not None:
        near = near | (Handover.shift_id == current_shift_id) | (Handover.next_shift_id == current_shift_id)
    rows = session.execute(select(Handover, Shift).join(Shift, Shift.id == Handover.shift_id)
                           .where(waiting, near).order_by(Handover.ack_due_at, Handover.id).limit(20)).tuples()
    out = []
    for h, shift in rows:
        overdue = core.unacknowledged(h.state, _aware(h.ack_due_at), now)
        out.append({
            "id": h.id, "state": h.state, "overdue": overdue, "flagged": h.unack_flagged_at is not None,
            "shift": _label(shift, tz), "ack_due_local": core.local_text(h.ack_due_at, tz, with_date=False),
            "outgoing": h.shift_id == current_shift_id,
        })
    out.sort(key=lambda r: not r["overdue"])
    return out


def audit_view(session: Session, h: Handover, as_of: dt.datetime) -> dict[str, Any]:
    """The handover as the audit report shows it, judged at ``as_of``; times stay aware datetimes."""
    shift = get_shift(session, h.shift_id)
    return {
        "id": h.id, "state": h.state, "state_zh": core.STATE_ZH[HandoverState(h.state)], "text": h.text,
        "edited": h.text != h.draft_text, "drafted_at": h.drafted_at, "drafted_by": h.drafted_by,
        "signed_at": h.signed_at, "signed_by": h.signed_by_name or h.signed_by,
        "sign_late": bool(shift is not None and h.signed_at is not None and h.signed_at > shift.ends_at),
        "ack_due_at": h.ack_due_at, "acknowledged_at": h.acknowledged_at,
        "acknowledged_by": h.acknowledged_by_name or h.acknowledged_by, "ack_note": h.ack_note,
        "late": core.ack_late(h.ack_due_at, h.acknowledged_at, as_of), "flagged_at": h.unack_flagged_at,
        "next_shift_id": h.next_shift_id,
    }


# ---------------------------------------------------------------------------------------------- the audit


def shifts_crossed(session: Session, windows: Sequence[tuple[dt.datetime, dt.datetime]],
                   *, as_of: dt.datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The shifts that overlap any of ``windows`` (a run from its start to its close, or ``as_of``), each with
    its people, its handover (judged at ``as_of``) and its log, for the audit report's "shifts" section."""
    seen: dict[int, Shift] = {}
    for start, end in windows:
        for s in roster_service.shifts_between(session, start, max(end, start + dt.timedelta(seconds=1))):
            seen.setdefault(s.id, s)
    out = []
    for shift in sorted(seen.values(), key=lambda s: (s.starts_at, s.id)):
        row = shift_view(session, shift, tz)
        h = for_shift(session, shift.id)
        row["handover"] = audit_view(session, h, as_of) if h is not None else None
        row["log"] = log_entries(session, shift.starts_at, shift.ends_at, shift_id=shift.id, tz=tz)
        out.append(row)
    return out
