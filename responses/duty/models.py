"""Tables of the duty room: the officers' log entries and the handover notes.

Only what people write is stored here. The system's part of a duty log (warnings received, decisions, runs,
escalations to the leader, reports sent) stays in the event log and is read from there when the log is shown.

``handover.shift_id`` is unique: one handover per outgoing shift, so the scheduler's draft and an officer's
draft (or two instances' schedulers) can never make two. ``ack_due_at`` is a column, so the flag for an
unacknowledged handover is a query after a restart, and ``unack_flagged_at`` records that it was raised.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base


class DutyLogEntry(Base):
    __tablename__ = "duty_log_entry"
    __table_args__ = (Index("ix_duty_log_entry_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("shift.id", ondelete="SET NULL"), index=True)
    at: Mapped[dt.datetime]  # when it happened (back-dated for a call taken earlier)
    kind: Mapped[str] = mapped_column(String(20))  # call | instruction | action | note
    text: Mapped[str] = mapped_column(Text)
    from_name: Mapped[str | None] = mapped_column(String(80))  # the caller, or who gave the instruction
    from_unit: Mapped[str | None] = mapped_column(String(120))
    from_phone: Mapped[str | None] = mapped_column(String(40))  # as told, not a number Jiaoying dials
    warning_id: Mapped[int | None]  # links, checked when written; no foreign key (warnings live below)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("response_run.id", ondelete="SET NULL"))
    for_handover: Mapped[bool] = mapped_column(default=False)
    author: Mapped[str] = mapped_column(String(120))  # actor, e.g. user:zhang
    author_name: Mapped[str] = mapped_column(String(80))  # as the log shows it
    drill: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class Handover(Base):
    __tablename__ = "handover"
    __table_args__ = (Index("ix_handover_state_ack_due", "state", "ack_due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shift.id", ondelete="CASCADE"), unique=True)
    next_shift_id: Mapped[int | None] = mapped_column(ForeignKey("shift.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(14))  # draft | signed | acknowledged
    sections: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the draft's content as data
    draft_text: Mapped[str] = mapped_column(Text, default="")  # as Jiaoying drafted it
    text: Mapped[str] = mapped_column(Text, default="")  # as the outgoing officer edited (and signed) it
    drafted_at: Mapped[dt.datetime]
    drafted_by: Mapped[str] = mapped_column(String(120))
    signed_at: Mapped[dt.datetime | None]
    signed_by: Mapped[str | None] = mapped_column(String(120))
    signed_by_name: Mapped[str | None] = mapped_column(String(80))
    ack_due_at: Mapped[dt.datetime]
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(120))
    acknowledged_by_name: Mapped[str | None] = mapped_column(String(80))
    ack_note: Mapped[str | None] = mapped_column(Text)
    unack_flagged_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
