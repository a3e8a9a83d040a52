"""Tables of the response side: plan edits, response runs, supervision flags, notices.

``ResponseRun.open_thread_id`` equals ``thread_id`` while the run is not closed and is NULL after;
its unique constraint is the database's promise that one warning thread never has two open runs,
even when two instances react to the same update at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base


class PlanDocument(Base):
    """An admin's edit of a hazard's plan; the newest one per hazard is in force (older kept)."""

    __tablename__ = "plan_document"
    __table_args__ = (UniqueConstraint("hazard", "revision", name="uq_plan_document_hazard_revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hazard: Mapped[str] = mapped_column(String(20))
    revision: Mapped[int]
    format: Mapped[str] = mapped_column(String(8))  # yaml | toml | json
    source: Mapped[str] = mapped_column(Text)  # the document as the admin sent it
    plan_version: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime]


class ResponseRun(Base):
    __tablename__ = "response_run"
    __table_args__ = (Index("ix_response_run_state", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # e.g. 2026-0007
    thread_id: Mapped[int] = mapped_column(index=True)  # warning thread served
    open_thread_id: Mapped[int | None] = mapped_column(unique=True)  # = thread_id until closed
    warning_id: Mapped[int]  # latest warning version applied
    hazard: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(10))
    response_level: Mapped[str] = mapped_column(String(4))
    areas: Mapped[dict[str, Any]] = mapped_column(default=dict)
    measures: Mapped[list[Any]] = mapped_column(default=list)
    trigger: Mapped[str] = mapped_column(String(12))  # automatic | decision
    consultation_id: Mapped[int | None] = mapped_column(index=True)
    decision_id: Mapped[int | None]
    plan_version: Mapped[str] = mapped_column(String(40))
    plan_snapshot: Mapped[dict[str, Any]]  # the whole hazard plan, frozen when the run started
    entry_snapshot: Mapped[dict[str, Any]]  # the entry for the current level, from the frozen plan
    state: Mapped[str] = mapped_column(String(10))
    drill: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[dt.datetime]
    started_by: Mapped[str] = mapped_column(String(120))
    closing_at: Mapped[dt.datetime | None]
    closing_reason: Mapped[str | None] = mapped_column(String(200))
    closed_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]


class SupervisionFlag(Base):
    """An overdue or missing thing someone must act on; ``key`` makes raising it idempotent."""

    __tablename__ = "supervision_flag"
    __table_args__ = (Index("ix_supervision_flag_open", "kind", "cleared_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(40))  # run_overdue | judgement_missing | shift_without_leader
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[dt.datetime | None]
    raised_at: Mapped[dt.datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cleared_at: Mapped[dt.datetime | None]
    cleared_reason: Mapped[str | None] = mapped_column(String(200))


class Notice(Base):
    """A message for a person in the system (the leader on duty, a department); the outbox sends later."""

    __tablename__ = "notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(String(40), index=True)
    recipient_role: Mapped[str] = mapped_column(String(40))  # leader_on_duty | duty_officer | department
    recipient_name: Mapped[str | None] = mapped_column(String(80))
    recipient_phone: Mapped[str | None] = mapped_column(String(40))
    department: Mapped[str | None] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(300))  # Chinese
    subject_en: Mapped[str] = mapped_column(String(300))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    read_at: Mapped[dt.datetime | None]
