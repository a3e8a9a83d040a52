"""Tables of call-and-answer (叫应): callouts, their contact tries, answers and escalations.

``Callout.next_action_at`` is the sweep's index: it holds the next moment something must happen
to an open callout (a retry, an escalation) and is NULL once nothing more will; the sweep claims
due rows, so a deadline is a database row and a restart loses none. ``key`` makes creating a
callout idempotent (one per run and person; one per escalation wave and person), and
``(callout_id, seq)`` makes each contact try unique, so a sweep run twice cannot call anyone twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config.database import Base


class Callout(Base):
    __tablename__ = "callout"
    __table_args__ = (
        Index("ix_callout_due", "next_action_at"),
        Index("ix_callout_run_state", "run_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("response_run.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)  # None: roster only
    name: Mapped[str] = mapped_column(String(80))  # as it was when called
    role: Mapped[str] = mapped_column(String(20))
    tier: Mapped[str] = mapped_column(String(16))  # site | village | township | district | leader_on_duty
    rank: Mapped[int]  # 0 village/site, 1 township, 2 district and above
    areas: Mapped[list[Any]] = mapped_column(default=list)  # codes (and site:<id>) this person answers for
    area_names: Mapped[list[Any]] = mapped_column(default=list)
    reason: Mapped[str] = mapped_column(String(20))  # plan | escalation
    level: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(12))
    channels: Mapped[list[Any]] = mapped_column(default=list)  # order from the plan snapshot
    numbers: Mapped[list[Any]] = mapped_column(default=list)  # primary, backup
    two_way_sms: Mapped[bool] = mapped_column(default=False)
    dead_routes: Mapped[list[Any]] = mapped_column(default=list)  # ["sms|+86…"] that failed for good
    answer_minutes: Mapped[int]
    retries_total: Mapped[int]
    retry_interval_minutes: Mapped[int]
    retries_done: Mapped[int] = mapped_column(default=0)
    attempts_made: Mapped[int] = mapped_column(default=0)
    ladder: Mapped[list[Any]] = mapped_column(default=list)  # the plan's escalation steps
    started_at: Mapped[dt.datetime]
    deadline_at: Mapped[dt.datetime]  # answer by this, or it is late
    next_action_at: Mapped[dt.datetime | None]
    answered_at: Mapped[dt.datetime | None]
    answer_late: Mapped[bool | None]
    escalated_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)  # e.g. whom an escalation is about
    drill: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    attempts: Mapped[list[Attempt]] = relationship(back_populates="callout", order_by="Attempt.seq",
                                                   cascade="all, delete-orphan")


class Attempt(Base):
    __tablename__ = "callout_attempt"
    __table_args__ = (UniqueConstraint("callout_id", "seq", name="uq_callout_attempt_callout_id_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    callout_id: Mapped[int] = mapped_column(ForeignKey("callout.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int]  # 1 = the first contact try
    channel: Mapped[str] = mapped_column(String(10))
    number: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str] = mapped_column(String(20))  # first | retry | failover
    message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id", ondelete="SET NULL"), index=True)
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(12))  # queued | sent | delivered | failed | expired
    history: Mapped[list[Any]] = mapped_column(default=list)  # [{at, status, detail}]
    failure_handled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    callout: Mapped[Callout] = relationship(back_populates="attempts")


class Answer(Base):
    __tablename__ = "callout_answer"

    id: Mapped[int] = mapped_column(primary_key=True)
    callout_id: Mapped[int] = mapped_column(ForeignKey("callout.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("callout_attempt.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(12))  # keypress | sms_reply | web | duty_officer
    kind: Mapped[str] = mapped_column(String(16))  # received | need_support
    late: Mapped[bool]
    at: Mapped[dt.datetime]
    from_number: Mapped[str | None] = mapped_column(String(20))
    raw: Mapped[str] = mapped_column(Text, default="")  # digits or reply text, verbatim
    note: Mapped[str] = mapped_column(Text, default="")
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)  # e.g. {"evacuated": 35}
    entered_by: Mapped[str] = mapped_column(String(120))  # person:<id> | user:<name>
    inbound_id: Mapped[int | None]


class Escalation(Base):
    """One step up the ladder for one unanswered callout; unique per (callout, step)."""

    __tablename__ = "callout_escalation"
    __table_args__ = (UniqueConstraint("from_callout_id", "step", name="uq_callout_escalation_from_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("response_run.id", ondelete="CASCADE"), index=True)
    from_callout_id: Mapped[int] = mapped_column(ForeignKey("callout.id", ondelete="CASCADE"))
    to_callout_ids: Mapped[list[Any]] = mapped_column(default=list)
    step: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime]
    reason: Mapped[str] = mapped_column(String(40))  # no_answer | unreachable
    target_missing: Mapped[bool] = mapped_column(default=False)  # nobody to escalate to: duty officer acts
    notice_id: Mapped[int | None]
