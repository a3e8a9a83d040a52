"""Tables of responsible people (责任人) and their duties, the imports that brought them in, and the duty roster.

A phone number belongs to one person (unique), so an SMS reply or a keypress finds its sender;
a duty's ``place`` (an area code, ``site:<id>`` or ``dept:<code>``) makes "same person, same role,
same place" unique even though area, site and department are each optional.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config.database import Base


class Contact(Base):
    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    phone: Mapped[str] = mapped_column(String(20), unique=True)  # E.164
    backup_phone: Mapped[str | None] = mapped_column(String(20), index=True)
    two_way_sms: Mapped[bool] = mapped_column(default=False)  # the number can answer by SMS reply
    active: Mapped[bool] = mapped_column(default=True)
    active_from: Mapped[dt.datetime | None]
    active_to: Mapped[dt.datetime | None]
    demo: Mapped[bool] = mapped_column(default=False)  # from the shipped fake list; reaches nobody
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    duties: Mapped[list[Duty]] = relationship(back_populates="contact", cascade="all, delete-orphan",
                                              order_by="Duty.id")


class Duty(Base):
    __tablename__ = "duty"
    __table_args__ = (
        UniqueConstraint("contact_id", "role", "place", name="uq_duty_contact_role_place"),
        Index("ix_duty_role_area", "role", "area_code"),
        Index("ix_duty_role_department", "role", "department"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    area_code: Mapped[str | None] = mapped_column(String(12))
    site_id: Mapped[str | None] = mapped_column(String(64), index=True)
    department: Mapped[str | None] = mapped_column(String(40))  # a department's code (department_duty)
    place: Mapped[str] = mapped_column(String(80))  # area code, "site:<id>" or "dept:<code>"
    active_from: Mapped[dt.datetime | None]
    active_to: Mapped[dt.datetime | None]
    import_id: Mapped[int | None] = mapped_column(ForeignKey("contact_import.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime]

    contact: Mapped[Contact] = relationship(back_populates="duties")


class ContactImport(Base):
    """One import of a contact list; the file is kept verbatim so a rejected row can be inspected."""

    __tablename__ = "contact_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(300))
    format: Mapped[str] = mapped_column(String(8))  # csv | xlsx
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(12))  # applied | rejected | partial
    rows_total: Mapped[int] = mapped_column(default=0)
    rows_ok: Mapped[int] = mapped_column(default=0)
    contacts_added: Mapped[int] = mapped_column(default=0)
    duties_added: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)
    imported_at: Mapped[dt.datetime]
    imported_by: Mapped[str] = mapped_column(String(120))


# --- The duty roster (值班表): who is on duty when, from imports or the API.


class Roster(Base):
    """One import (or API batch) of shifts; the raw file is kept so a bad row can be inspected."""

    __tablename__ = "roster"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(10))  # csv | xlsx | api
    filename: Mapped[str | None] = mapped_column(String(300))
    sha256: Mapped[str | None] = mapped_column(String(64))
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    rows_ok: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)  # [{row, field, message, message_en}]
    imported_at: Mapped[dt.datetime]
    imported_by: Mapped[str] = mapped_column(String(120))


class Shift(Base):
    __tablename__ = "shift"
    __table_args__ = (
        UniqueConstraint("starts_at", "ends_at", name="uq_shift_starts_at_ends_at"),
        Index("ix_shift_window", "starts_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    roster_id: Mapped[int | None] = mapped_column(ForeignKey("roster.id"), index=True)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    label: Mapped[str] = mapped_column(String(80), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class ShiftMember(Base):
    __tablename__ = "shift_member"

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shift.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10))  # leader | officer
    name: Mapped[str] = mapped_column(String(80))
    phone: Mapped[str | None] = mapped_column(String(40))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
