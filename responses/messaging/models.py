"""Tables of the messaging layer: the outbox, each message's status history, inbound messages.

A message is a row before it is a request, so a crash never loses one and the audit can show what
was sent, when, through which provider, and what the provider said about it afterwards.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_message_due", "state", "next_try_at"),
        Index("ix_outbox_message_subject", "subject_type", "subject_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    channel: Mapped[str] = mapped_column(String(10))  # sms | voice
    to_number: Mapped[str] = mapped_column(String(20), index=True)  # E.164
    from_number: Mapped[str | None] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text, default="")  # SMS text, or what a call says
    template: Mapped[str | None] = mapped_column(String(60))  # kind of text, for domestic template gateways
    template_id: Mapped[str | None] = mapped_column(String(60))  # a pre-registered domestic template id
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    provider: Mapped[str] = mapped_column(String(30), default="twilio")
    state: Mapped[str] = mapped_column(String(12), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=10)
    next_try_at: Mapped[dt.datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[dt.datetime | None]
    claimed_until: Mapped[dt.datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    provider_status: Mapped[str | None] = mapped_column(String(30))
    error_code: Mapped[str | None] = mapped_column(String(30))
    last_error: Mapped[str | None] = mapped_column(Text)
    validity_until: Mapped[dt.datetime | None]
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class MessageStatus(Base):
    """Append-only history of one message: every state the sender or a provider callback reported,
    including callbacks that arrived out of order and changed nothing."""

    __tablename__ = "message_status"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_message.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime]
    state: Mapped[str] = mapped_column(String(12))  # our state after this report
    provider_status: Mapped[str | None] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(20))  # enqueue | sender | callback | expiry
    applied: Mapped[bool] = mapped_column(default=True)  # False: a stale report that moved nothing
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class InboundMessage(Base):
    """What came back from a person: an SMS reply or a keypress, kept verbatim as evidence."""

    __tablename__ = "inbound_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # sms | keypress
    provider: Mapped[str] = mapped_column(String(30), default="twilio")
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)  # MessageSid / CallSid
    from_number: Mapped[str] = mapped_column(String(20), index=True)
    to_number: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text, default="")  # reply body or the digits pressed
    message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id", ondelete="SET NULL"), index=True)
    received_at: Mapped[dt.datetime]
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    handled: Mapped[bool] = mapped_column(default=False)
    handler_error: Mapped[str | None] = mapped_column(Text)


class ProviderReport(Base):
    """A provider's status callback as it came in, waiting to be applied to its message.

    Storing it is one cheap insert, so the provider's request is answered at once; the reports are applied
    in batches (``responses/messaging/status_reports.py``), one transaction for many, and removed once
    applied (the message's history keeps what each said). One that cannot be applied stays here with its
    error, for inspection.
    """

    __tablename__ = "provider_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(30))
    message_id: Mapped[int | None]  # our id from the callback URL; not a foreign key: unknown ones are kept
    provider_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(30), default="")
    error_code: Mapped[str | None] = mapped_column(String(30))
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[dt.datetime]
    failed_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
