"""The measure order table: one protective measure ordered by a run, followed until it is lifted.

``key`` (run, plan rule, responsible unit) makes creating orders idempotent, so the sync that runs
after every run change, and the sweep that catches up after a restart, never order twice.
``deadline`` and ``lift_deadline`` are the overdue sweep's index; ``overdue_at`` / ``lift_overdue_at``
record that the flag was raised, so a second sweep raises nothing more.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base


class MeasureOrder(Base):
    __tablename__ = "measure_order"
    __table_args__ = (
        UniqueConstraint("run_id", "key", name="uq_measure_order_run_id_key"),
        Index("ix_measure_order_run_state", "run_id", "state"),
        Index("ix_measure_order_state_deadline", "state", "deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("response_run.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(20))  # MeasureKind
    label: Mapped[str] = mapped_column(String(200))  # Chinese name; a custom kind's title from the plan
    level: Mapped[str] = mapped_column(String(10))  # the run's level when ordered
    rule_index: Mapped[int | None]  # position in the plan entry's measures; None for a manual order
    # scope
    area_codes: Mapped[list[Any]] = mapped_column(default=list)
    area_names: Mapped[list[Any]] = mapped_column(default=list)
    site_ids: Mapped[list[Any]] = mapped_column(default=list)
    site_names: Mapped[list[Any]] = mapped_column(default=list)
    site_kinds: Mapped[list[Any]] = mapped_column(default=list)
    sectors: Mapped[list[Any]] = mapped_column(default=list)
    expected: Mapped[int | None]  # people on the sites' evacuation lists (避险转移人数)
    # who answers for it
    responsible_unit: Mapped[str] = mapped_column(String(120))
    unit_kind: Mapped[str] = mapped_column(String(12))  # department | township
    unit_area_code: Mapped[str | None] = mapped_column(String(12))  # the township, when the unit is one
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"), index=True)
    person_name: Mapped[str | None] = mapped_column(String(80))
    person_phone: Mapped[str | None] = mapped_column(String(20))
    channels: Mapped[list[Any]] = mapped_column(default=list)  # from the run's plan snapshot, as for callouts
    # progress
    state: Mapped[str] = mapped_column(String(14))
    deadline: Mapped[dt.datetime]
    ordered_at: Mapped[dt.datetime]
    ordered_by: Mapped[str] = mapped_column(String(120))
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_via: Mapped[str | None] = mapped_column(String(16))  # keypress | sms_reply | web | phone …
    started_at: Mapped[dt.datetime | None]
    carried_out_at: Mapped[dt.datetime | None]
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reported_by: Mapped[str | None] = mapped_column(String(120))
    overdue: Mapped[bool] = mapped_column(default=False)
    overdue_at: Mapped[dt.datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)  # of a rejection, cancellation, reassignment or waiver
    # lifting
    lift_ordered_at: Mapped[dt.datetime | None]
    lift_ordered_by: Mapped[str | None] = mapped_column(String(120))
    lift_reason: Mapped[str | None] = mapped_column(Text)
    lift_deadline: Mapped[dt.datetime | None]
    lift_acknowledged_at: Mapped[dt.datetime | None]
    lift_acknowledged_via: Mapped[str | None] = mapped_column(String(16))
    lifted_at: Mapped[dt.datetime | None]
    lift_overdue_at: Mapped[dt.datetime | None]
    state_before_lift: Mapped[str | None] = mapped_column(String(14))
    ended_at: Mapped[dt.datetime | None]  # lifted, cancelled or waived
    drill: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
