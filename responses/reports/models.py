"""The information report table (信息报送): one report up the chain, with its deadline.

``(run_id, key)`` is unique — ``initial_phone``, ``initial_written``, ``followup:<UTC due>``,
``final`` — so creating the due reports is idempotent however often the sync and the sweep run.
``due_at`` is a column: the overdue sweep reads it, and ``overdue_at`` records the flag was raised.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base


class InfoReport(Base):
    __tablename__ = "info_report"
    __table_args__ = (
        UniqueConstraint("run_id", "key", name="uq_info_report_run_id_key"),
        Index("ix_info_report_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("response_run.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(20))  # ReportKind
    seq: Mapped[int] = mapped_column(default=1)  # n-th follow-up
    level: Mapped[str] = mapped_column(String(10))  # the run's level when it became due
    due_at: Mapped[dt.datetime]
    state: Mapped[str] = mapped_column(String(10))  # draft | sent | cancelled
    title: Mapped[str] = mapped_column(String(300))
    draft_text: Mapped[str] = mapped_column(Text, default="")  # what Jiaoying drafted, kept as drafted
    text: Mapped[str] = mapped_column(Text, default="")  # what the duty officer edited (and sent)
    drafted_at: Mapped[dt.datetime]
    edited_at: Mapped[dt.datetime | None]
    edited_by: Mapped[str | None] = mapped_column(String(120))
    sent_at: Mapped[dt.datetime | None]
    sent_by: Mapped[str | None] = mapped_column(String(120))
    sent_via: Mapped[str | None] = mapped_column(String(20))  # phone | written | fax | system | other
    recipient: Mapped[str | None] = mapped_column(String(120))  # e.g. 市应急管理局
    late: Mapped[bool | None]  # sent after due_at
    overdue_at: Mapped[dt.datetime | None]  # flagged to the leader on duty
    cancelled_reason: Mapped[str | None] = mapped_column(String(200))
    drill: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
