"""The call-and-answer board of a run (叫应看板): who was called about which places, when, how they answered."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, and_, case, cast, func, select, true
from sqlalchemy.orm import Session

from responses.callouts import escalation as core
from responses.callouts.escalation import CalloutState
from responses.callouts.models import Answer, Attempt, Callout, Escalation
from responses.messaging.models import OutboxMessage


def _local(when: dt.datetime | None, tz: dt.tzinfo | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(tz).isoformat(timespec="seconds") if tz else when.isoformat(timespec="seconds")


def board(session: Session, run_id: int, *, now: dt.datetime, tz: dt.tzinfo | None = None) -> dict[str, Any]:
    """Per run: who, which areas, state, time to answer, attempts, escalations."""
    callouts = list(session.execute(select(Callout).where(Callout.run_id == run_id)
                                    .order_by(Callout.rank, Callout.id)).scalars())
    ids = [c.id for c in callouts]
    attempts: dict[int, list[Attempt]] = defaultdict(list)
    answers: dict[int, list[Answer]] = defaultdict(list)
    escalations: dict[int, list[Escalation]] = defaultdict(list)
    if ids:
        for a in session.execute(select(Attempt).where(Attempt.callout_id.in_(ids)).order_by(Attempt.seq)).scalars():
            attempts[a.callout_id].append(a)
        for an in session.execute(select(Answer).where(Answer.callout_id.in_(ids)).order_by(Answer.id)).scalars():
            answers[an.callout_id].append(an)
        for e in session.execute(select(Escalation).where(Escalation.run_id == run_id)
                                 .order_by(Escalation.id)).scalars():
            escalations[e.from_callout_id].append(e)
    msgs: dict[int, OutboxMessage] = {}
    msg_ids = [a.message_id for lst in attempts.values() for a in lst if a.message_id]
    for i in range(0, len(msg_ids), 900):
        for m in session.execute(select(OutboxMessage).where(OutboxMessage.id.in_(msg_ids[i:i + 900]))).scalars():
            msgs[m.id] = m
    rows = []
    counts: dict[str, int] = defaultdict(int)
    for c in callouts:
        counts[c.state] += 1
        if c.answer_late:
            counts["late"] += 1
        overdue = c.state == CalloutState.CALLING.value and now > c.deadline_at
        counts["overdue"] += int(overdue)
        rows.append({
            "id": c.id, "name": c.name, "role": c.role, "tier": c.tier, "reason": c.reason,
            "areas": [{"code": a, "name": n} for a, n in zip(c.areas, c.area_names or c.areas, strict=False)],
            "state": c.state, "state_zh": core.STATE_ZH[CalloutState(c.state)], "overdue": overdue,
            "started_at": _local(c.started_at, tz), "deadline_at": _local(c.deadline_at, tz),
            "answered_at": _local(c.answered_at, tz), "late": c.answer_late,
            "seconds_to_answer": int((c.answered_at - c.started_at).total_seconds()) if c.answered_at else None,
            "seconds_left": int((c.deadline_at - now).total_seconds()) if c.state == "calling" else None,
            "next_action_at": _local(c.next_action_at, tz), "escalated_from": c.context.get("from_callouts", []),
            "attempts": [{"seq": a.seq, "channel": a.channel, "number": a.number, "reason": a.reason,
                          "status": (msgs[a.message_id].state if a.message_id in msgs else a.status),
                          "provider_id": a.provider_id or (msgs[a.message_id].provider_id
                                                           if a.message_id in msgs else None),
                          "at": _local(a.created_at, tz)} for a in attempts[c.id]],
            "answers": [{"id": an.id, "channel": an.channel, "kind": an.kind, "late": an.late,
                         "at": _local(an.at, tz), "note": an.note, "report": an.report,
                         "entered_by": an.entered_by} for an in answers[c.id]],
            "escalations": [{"step": e.step, "at": _local(e.at, tz), "to": e.to_callout_ids,
                             "target_missing": e.target_missing, "reason": e.reason} for e in escalations[c.id]],
        })
    return {"run_id": run_id, "now": _local(now, tz), "total": len(callouts), "counts": dict(counts),
            "callouts": rows}


def get_callout(session: Session, callout_id: int, *, lock: bool = False) -> Callout | None:
    return session.get(Callout, callout_id, with_for_update=lock and session.get_bind().dialect.name == "postgresql")


def callouts_for_run(session: Session, run_id: int) -> list[Callout]:
    return list(session.execute(select(Callout).where(Callout.run_id == run_id).order_by(Callout.id)).scalars())


PROGRESS_KEYS = ("answered", "waiting", "overdue", "escalated", "unanswered", "late")


def township_progress(session: Session, run_id: int, *, now: dt.datetime) -> dict[str, dict[str, int]]:
    """Call-and-answer counts per township (12-digit code) of the areas called about, for one run.

    Keys per township: answered, waiting (calling, deadline not passed), overdue (calling, deadline passed),
    escalated, unanswered, late (answered after the deadline). A person called about several townships counts
    in each; one called about a site or about the whole district counts under ``""``.
    """
    return township_progress_of_runs(session, [run_id], now=now).get(run_id, {})


def township_progress_of_runs(session: Session, run_ids: Sequence[int], *,
                              now: dt.datetime) -> dict[int, dict[str, dict[str, int]]]:
    """``township_progress`` of several runs in one query, grouped by the database, spread in Python.

    The board shows every open run on each render, and many people read it at once during a fan-out. Tens
    of thousands of callouts share few area lists (everyone in a village is called about that village; an
    escalation names the silent villages of its township), so the database counts callouts per run, area
    list (as text), state, overdue and late — a group-by on plain columns, no unpacking of JSON per row —
    and each distinct list is turned into its townships here, once. Unpacking every callout's list in SQL and
    keeping distinct (person, township) pairs cost the database a second per render at 20,000 callouts.
    A run without callouts is absent from the result.
    """
    out: dict[int, dict[str, dict[str, int]]] = {}
    if not run_ids:
        return out
    calling = Callout.state == CalloutState.CALLING.value
    overdue = case((and_(calling, Callout.deadline_at < now), 1), else_=0)
    late = case((Callout.answer_late == true(), 1), else_=0)
    areas = cast(Callout.areas, Text)
    rows = session.execute(
        select(Callout.run_id, areas, Callout.state, overdue, late, func.count())
        .where(Callout.run_id.in_(list(run_ids)), Callout.state != CalloutState.CANCELLED.value)
        .group_by(Callout.run_id, areas, Callout.state, overdue, late)).all()
    townships_of: dict[str | None, list[str]] = {}
    township_of_code: dict[str, str] = {}  # a district has a few hundred codes, repeated in many lists
    for run_id, text, state, is_overdue, is_late, n in rows:
        codes = townships_of.get(text)
        if codes is None:
            codes = townships_of[text] = _townships_of_text(text, township_of_code)
        per_run = out.setdefault(int(run_id), {})
        for code in codes:
            _add(per_run.setdefault(code, dict.fromkeys(PROGRESS_KEYS, 0)), str(state), int(n),
                 int(n) * int(is_overdue), int(n) * int(is_late))
    return out


def _townships_of_text(text: str | None, memo: dict[str, str]) -> list[str]:
    """The distinct townships of an area list stored as JSON text, or ``[""]`` when it names none (a site,
    the district, nothing, or anything but a list). ``memo`` keeps each code's township between lists."""
    try:
        areas = json.loads(text) if text is not None else None
    except ValueError:
        areas = None
    if not isinstance(areas, list):
        return [""]
    found = set()
    for code in areas:
        if not isinstance(code, str):
            continue
        township = memo.get(code)
        if township is None:
            township = memo[code] = _township(code)
        if township:
            found.add(township)
    return sorted(found) or [""]


def progress_totals_of_runs(session: Session, run_ids: Sequence[int], *,
                            now: dt.datetime) -> dict[int, dict[str, int]]:
    """Per run, the people called by state, with the same keys as ``township_progress``, each person once.

    Adding up the townships counts a person called about two townships twice; a run's headline figures
    (how many are past their deadline right now) must count people. A run without callouts is absent.
    """
    out: dict[int, dict[str, int]] = {}
    if not run_ids:
        return out
    calling = Callout.state == CalloutState.CALLING.value
    rows = session.execute(
        select(Callout.run_id, Callout.state, func.count(),
               func.sum(case((and_(calling, Callout.deadline_at < now), 1), else_=0)),
               func.sum(case((Callout.answer_late == true(), 1), else_=0)))
        .where(Callout.run_id.in_(list(run_ids)), Callout.state != CalloutState.CANCELLED.value)
        .group_by(Callout.run_id, Callout.state)).all()
    for run_id, state, n, overdue, late in rows:
        _add(out.setdefault(int(run_id), dict.fromkeys(PROGRESS_KEYS, 0)), str(state), int(n), int(overdue),
             int(late))
    return out


def _add(counts: dict[str, int], state: str, n: int, overdue: int, late: int) -> None:
    """Count ``n`` callouts of one state: calling ones are waiting or, past their deadline, overdue."""
    if state == CalloutState.CALLING.value:
        counts["overdue"] += overdue
        counts["waiting"] += n - overdue
    else:
        counts[state] = counts.get(state, 0) + n
    counts["late"] += late


def run_totals(session: Session, run_ids: list[int], *, now: dt.datetime) -> dict[int, dict[str, int]]:
    """Call-and-answer counts per run, each person once (in ``township_progress`` a person called about two
    townships counts in both), for a whole list of runs at once rather than one query per run.

    Keys: total (cancelled callouts left out), answered, waiting, overdue, escalated, unanswered, late — the
    same meaning as in ``township_progress``. A run without callouts gets zeros.
    """
    keys = ("total", "answered", "waiting", "overdue", "escalated", "unanswered", "late")
    out = {rid: dict.fromkeys(keys, 0) for rid in run_ids}
    for i in range(0, len(run_ids), 900):
        rows = session.execute(
            select(Callout.run_id, Callout.state, Callout.deadline_at, Callout.answer_late)
            .where(Callout.run_id.in_(run_ids[i:i + 900]), Callout.state != CalloutState.CANCELLED.value)).all()
        for run_id, state, deadline, late in rows:
            counts = out[run_id]
            key = ("overdue" if now > deadline else "waiting") if state == CalloutState.CALLING.value else state
            counts["total"] += 1
            counts[key] = counts.get(key, 0) + 1
            counts["late"] += int(bool(late))
    return out


def _township(code: Any) -> str:
    """The township of a statistical code (digits 7–9 not 000), else ``""`` (a site, the district)."""
    if not isinstance(code, str) or not code.isdigit() or len(code) < 9 or code[6:9] == "000":
        return ""
    return code[:9].ljust(12, "0")
