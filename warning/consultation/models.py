"""Tables of the consultation (会商研判): the session, each department's judgement, the leader's decisions.

A consultation attaches to a warning *thread* (``thread_id`` = the first Alert's id), so an Update
does not start a new one. Deadlines are columns (``deadline``, and the reminder derived from
``reminder_minutes``) so the sweep job finds what is due after any restart. Judgements and decisions
are never overwritten: a department's second judgement and a revised decision are new rows that
point at what they replace.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base


class Consultation(Base):
    __tablename__ = "consultation"
    __table_args__ = (Index("ix_consultation_state_deadline", "state", "deadline"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(index=True)  # warning.id of the thread's first Alert
    warning_id: Mapped[int]  # the latest warning version seen
    hazard: Mapped[str] = mapped_column(String(20))
    level: Mapped[str | None] = mapped_column(String(10))  # the warning's level (latest version)
    state: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(10))  # before | parallel | manual
    areas: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the warning's affected areas
    invited: Mapped[list[Any]] = mapped_column(default=list)  # department codes
    missing: Mapped[list[Any]] = mapped_column(default=list)  # department codes flagged at the deadline
    opened_at: Mapped[dt.datetime]
    opened_by: Mapped[str] = mapped_column(String(120))
    deadline: Mapped[dt.datetime]
    reminder_minutes: Mapped[int | None]
    reminded_at: Mapped[dt.datetime | None]
    deadline_reached_at: Mapped[dt.datetime | None]
    decided_at: Mapped[dt.datetime | None]
    dismissed_at: Mapped[dt.datetime | None]
    dismissed_by: Mapped[str | None] = mapped_column(String(120))
    dismiss_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[dt.datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(200))
    drill: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[dt.datetime]


class Judgement(Base):
    __tablename__ = "judgement"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    department: Mapped[str] = mapped_column(String(40))  # department code
    author: Mapped[str] = mapped_column(String(120))  # user:NAME
    assessed_level: Mapped[str | None] = mapped_column(String(10))  # blue…red, or None = no warning needed
    trend: Mapped[str] = mapped_column(String(10))  # rising | steady | easing
    areas_add: Mapped[dict[str, Any]] = mapped_column(default=dict)
    areas_remove: Mapped[dict[str, Any]] = mapped_column(default=dict)
    measures: Mapped[list[Any]] = mapped_column(default=list)  # measure kinds recommended
    confidence: Mapped[str] = mapped_column(String(10))  # low | medium | high
    text: Mapped[str] = mapped_column(Text, default="")
    late: Mapped[bool] = mapped_column(default=False)
    recorded_at: Mapped[dt.datetime]
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("judgement.id"))


class Decision(Base):
    __tablename__ = "decision"
    __table_args__ = (UniqueConstraint("consultation_id", "version", name="uq_decision_consultation_id_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    version: Mapped[int]
    final_level: Mapped[str] = mapped_column(String(10))
    response_level: Mapped[str] = mapped_column(String(4))  # I–IV
    areas: Mapped[dict[str, Any]] = mapped_column(default=dict)
    measures: Mapped[list[Any]] = mapped_column(default=list)  # [{kind, title?, targets, deadline_minutes, …}]
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(120))
    decided_at: Mapped[dt.datetime]
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("decision.id"))
