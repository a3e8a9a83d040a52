"""Tables of the intake side: feeds, the raw payloads they deliver, and the warnings made of them.

A ``FeedItem`` is evidence: its bytes are never altered, so a warning can always be traced back to
exactly what the source sent. A ``Warning`` row is one *version* (one CAP message); the versions of
one Alert → Update → Cancel chain share ``thread_id`` (the id of the first Alert), and consultation
and response runs attach to the thread, not to a single version.

Deadlines live here as columns (``expires`` for the expiry sweep, ``held_until`` for an Update or
Cancel waiting for its Alert, ``next_poll_at`` for polling), so a restart loses nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base


class FeedItemState(enum.StrEnum):
    NEW = "new"  # stored, not yet parsed
    PROCESSED = "processed"  # parsed; its warnings (if any) stored
    QUARANTINED = "quarantined"  # could not be read; waits for the duty officer
    DISMISSED = "dismissed"  # the duty officer looked at it and set it aside
    DUPLICATE = "duplicate"  # byte-identical to an earlier payload of the same feed


class WarningState(enum.StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"  # a later Update replaced this version
    CANCELLED = "cancelled"  # a Cancel ended the thread (the Cancel message itself is stored cancelled too)
    EXPIRED = "expired"  # passed its ``expires`` time
    HELD = "held"  # an Update/Cancel whose Alert has not arrived yet


class Feed(Base):
    """A configured source. Secrets in ``headers`` are references (``"env:NAME"``), resolved when polling."""

    __tablename__ = "feed"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")  # display name, Chinese first
    adapter: Mapped[str] = mapped_column(String(20))  # parser format: cap, usgs, cenc, quakeml, firms, hydro, …
    url: Mapped[str | None] = mapped_column(String(1000))  # http(s):// or file:// ; None for push-only feeds
    poll_seconds: Mapped[int] = mapped_column(default=300)  # 0 = never polled (push or manual only)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    default_hazard: Mapped[str | None] = mapped_column(String(20))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)  # adapter settings (thresholds …), ParserContext
    max_bytes: Mapped[int | None] = mapped_column()  # None = the system default
    push_token_hash: Mapped[str | None] = mapped_column(String(64))  # sha256 of the push token, never the token
    source: Mapped[str] = mapped_column(String(20), default="config")  # config (seeded) | api (made by an admin)
    # conditional-request state
    etag: Mapped[str | None] = mapped_column(String(300))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    # polling deadline
    next_poll_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    last_polled_at: Mapped[dt.datetime | None]
    # health
    last_success_at: Mapped[dt.datetime | None]
    last_error_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    items_count: Mapped[int] = mapped_column(default=0)
    last_item_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class FeedItem(Base):
    """One raw payload, verbatim. ``sha256`` is unique per feed: the same bytes twice are recognized."""

    __tablename__ = "feed_item"
    __table_args__ = (
        UniqueConstraint("feed_id", "sha256", name="uq_feed_item_feed_id_sha256"),
        Index("ix_feed_item_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feed.id"), index=True)
    received_at: Mapped[dt.datetime]
    content_type: Mapped[str | None] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(default=0)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # may be a prefix only when refused as oversize (see reason)
    source_url: Mapped[str | None] = mapped_column(String(1000))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("feed_item.id"))  # the Atom/RSS index it came from
    state: Mapped[str] = mapped_column(String(20), default=FeedItemState.NEW.value)
    reason: Mapped[str | None] = mapped_column(String(80))  # machine code: xml_hostile, encoding, oversize, …
    detail: Mapped[str | None] = mapped_column(Text)
    warnings_count: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[list[Any]] = mapped_column(default=list)  # [{"reason", "identifier"}] not-a-warning parts
    processed_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)  # parse attempts (reprocess increments)
    resolved_by: Mapped[str | None] = mapped_column(String(120))  # who dismissed/reprocessed a quarantined item


class Warning(Base):
    """One version of a warning. Identity is (sender, identifier) as in CAP."""

    __tablename__ = "warning"
    __table_args__ = (
        UniqueConstraint("sender", "identifier", name="uq_warning_sender_identifier"),
        Index("ix_warning_state_expires", "state", "expires"),
        Index("ix_warning_state_held_until", "state", "held_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(255))
    identifier: Mapped[str] = mapped_column(String(255))
    msg_type: Mapped[str] = mapped_column(String(10))  # alert | update | cancel
    status: Mapped[str] = mapped_column(String(10))  # actual | exercise | test | system | draft
    drill: Mapped[bool] = mapped_column(default=False)  # status == exercise
    # None only while a Cancel/Update that carried no <info> waits for what it references (held)
    hazard: Mapped[str | None] = mapped_column(String(20), index=True)
    event: Mapped[str | None] = mapped_column(String(200))
    level: Mapped[str | None] = mapped_column(String(10))  # blue | yellow | orange | red
    severity: Mapped[str | None] = mapped_column(String(20))
    urgency: Mapped[str | None] = mapped_column(String(20))
    certainty: Mapped[str | None] = mapped_column(String(20))
    sent: Mapped[dt.datetime]
    effective: Mapped[dt.datetime | None]
    onset: Mapped[dt.datetime | None]
    expires: Mapped[dt.datetime | None]
    headline: Mapped[str | None] = mapped_column(Text)
    infos: Mapped[list[Any]] = mapped_column(default=list)  # [{language, event, headline, description, …}]
    area_description: Mapped[str | None] = mapped_column(Text)
    area_geojson: Mapped[dict[str, Any] | None] = mapped_column()  # WGS84 geometry (circles as polygons)
    # The area as the source gave it: {"description", "polygons", "circles", "points", "geocodes"}; CAP export
    # writes polygons and circles back from here, so nothing is lost to the GeoJSON approximation.
    area_spec: Mapped[dict[str, Any] | None] = mapped_column()
    geocodes: Mapped[list[Any]] = mapped_column(default=list)  # [{name, value}]
    references: Mapped[list[Any]] = mapped_column(default=list)  # [{sender, identifier, sent}]
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source_format: Mapped[str] = mapped_column(String(20), default="")
    affected: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"villages": [...], "townships": [...], "sites"}
    state: Mapped[str] = mapped_column(String(12), default=WarningState.ACTIVE.value)
    version: Mapped[int] = mapped_column(default=1)  # 1 for the Alert, +1 for each later version of the thread
    # Always set once ingest has run: the id of the thread's first Alert (its own id for an Alert or a held one).
    thread_id: Mapped[int | None] = mapped_column(ForeignKey("warning.id"), index=True)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("warning.id"))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("warning.id"))
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feed.id"), index=True)
    feed_item_id: Mapped[int | None] = mapped_column(ForeignKey("feed_item.id"), index=True)
    received_at: Mapped[dt.datetime]
    entered_by: Mapped[str | None] = mapped_column(String(120))  # username, for warnings entered by hand
    entry_channel: Mapped[str | None] = mapped_column(String(20))  # phone | fax | messaging | other (manual)
    held_since: Mapped[dt.datetime | None]
    held_until: Mapped[dt.datetime | None]  # deadline after which a held version is flagged
    flagged_at: Mapped[dt.datetime | None]
    flag_reason: Mapped[str | None] = mapped_column(String(80))
    ended_at: Mapped[dt.datetime | None]  # when it stopped being active (superseded, cancelled, expired)
    updated_at: Mapped[dt.datetime]

    @property
    def is_drill(self) -> bool:
        return self.status == "exercise"
