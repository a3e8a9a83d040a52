"""Answers (应) to callouts: by keypress, SMS reply, web or the duty officer, each recorded with its channel.

An answer stops the callout's timeline whatever state it is in; a late one is kept and marked late. An
inbound reply or keypress finds its callout by the number it came from (``handle_inbound``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.eventlog import record
from responses.callouts import escalation as core
from responses.callouts.core import AnswerChannel, AnswerKind, ParsedAnswer, parse_keypress, parse_reply
from responses.callouts.escalation import CalloutState, Transition
from responses.callouts.models import Answer, Attempt, Callout
from responses.callouts.service import SUBJECT, CalloutError, apply_decision, view_of


def record_answer(session: Session, c: Callout, *, now: dt.datetime, channel: AnswerChannel, kind: AnswerKind,
                  entered_by: str, raw: str = "", note: str = "", report: dict[str, Any] | None = None,
                  attempt_id: int | None = None, from_number: str | None = None,
                  inbound_id: int | None = None) -> Answer:
    """An answer stops the callout's timeline; a late one (after the deadline, even after the
    escalation) is kept and marked late."""
    if c.state == CalloutState.CANCELLED.value:
        raise CalloutError(409, "callout_cancelled", "该叫应已取消（响应已结束），不能再应答",
                           "the callout was cancelled (the run closed)")
    d = core.on_answer(view_of(c), now)
    ans = Answer(callout_id=c.id, attempt_id=attempt_id, channel=channel.value, kind=kind.value, late=bool(d.late),
                 at=now, from_number=from_number, raw=raw[:2000], note=note[:2000], report=report or {},
                 entered_by=entered_by, inbound_id=inbound_id)
    session.add(ans)
    first = d.transition is Transition.ANSWER
    if first:
        was = c.state
        apply_decision(c, d, now)
        c.answered_at, c.answer_late = now, bool(d.late)
        if was != CalloutState.CALLING.value:
            c.next_action_at = None
    session.flush()
    record(session, now=now, action="callout.answered" if first else "callout.answered_again",
           entity_type="callout", entity_id=c.id, actor=entered_by,
           payload={"answer_id": ans.id, "channel": channel.value, "kind": kind.value, "late": bool(d.late),
                    "seconds": int((now - c.started_at).total_seconds()), "note": note[:500],
                    "report": report or {}, "raw": raw[:200]})
    return ans


def _answerable_for_number(session: Session, number: str) -> list[Callout]:
    return list(session.execute(
        select(Callout).join(Attempt, Attempt.callout_id == Callout.id)
        .where(Attempt.number == number, Callout.state != CalloutState.CANCELLED.value)
        .order_by(Callout.started_at.desc(), Callout.id.desc())
    ).scalars().unique())


_WAITING_FOR_ANSWER = (CalloutState.CALLING.value, CalloutState.ESCALATED.value, CalloutState.UNANSWERED.value)


def has_unanswered(session: Session, number: str) -> bool:
    """Whether a callout tried on this number still waits for its answer (late answers included)."""
    return session.execute(
        select(Callout.id).join(Attempt, Attempt.callout_id == Callout.id)
        .where(Attempt.number == number, Callout.state.in_(_WAITING_FOR_ANSWER)).limit(1)
    ).first() is not None


def handle_inbound(session: Session, answer: Any) -> Answer | None:
    """Answer handler for the webhook layer (an ``InboundAnswer``): a keypress answers the call it
    was pressed in; an SMS reply answers that person's most recent unanswered callout (else the one
    the reply points at, as a further answer)."""
    now: dt.datetime = answer.received_at
    att: Attempt | None = None
    if answer.subject_type == SUBJECT and answer.subject_id:
        att = session.get(Attempt, int(answer.subject_id))
    if answer.kind == "keypress":
        parsed: ParsedAnswer | None = parse_keypress(answer.text)
        channel = AnswerChannel.KEYPRESS
    else:
        parsed = parse_reply(answer.text)
        channel = AnswerChannel.SMS_REPLY
    if parsed is None:
        return None
    target: Callout | None = None
    if answer.kind == "keypress" and att is not None:
        target = session.get(Callout, att.callout_id)
    else:
        candidates = _answerable_for_number(session, answer.from_number)
        open_ = [c for c in candidates if c.state != CalloutState.ANSWERED.value]
        if att is not None:
            pointed = next((c for c in open_ if c.id == att.callout_id), None)
            target = pointed or (open_[0] if open_ else session.get(Callout, att.callout_id))
        else:
            target = open_[0] if open_ else (candidates[0] if candidates else None)
    if target is None:
        return None
    attempt_id = att.id if att is not None and att.callout_id == target.id else None
    return record_answer(session, target, now=now, channel=channel, kind=parsed.kind, raw=answer.text,
                         report=parsed.report, attempt_id=attempt_id, from_number=answer.from_number,
                         inbound_id=answer.inbound_id, entered_by=f"phone:{answer.from_number}")
