"""The intake pipeline against the database: raw payload → feed item → parse → warnings.

Order matters and is the point of this module: the bytes are stored (hashed) *before* anything
reads them, so whatever happens next — a parser bug, hostile XML, a geometry that makes no sense —
the evidence is already kept and the item can be quarantined and reprocessed later. Nothing here
commits: the caller (a request handler or a job) commits once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.errors import conflict, not_found
from config.eventlog import record
from warning import area as area_mod
from warning.changes import Listener, WarningChange
from warning.draft import ParseError, ParseResult, WarningDraft
from warning.models import Feed, FeedItem, FeedItemState, Warning, WarningState
from warning.policy import IntakePolicy, default_feeds, load_policy
from warning.targeting import Targeter
from warning.threads import apply_draft, record_answers, skipped_json

log = logging.getLogger("jiaoying.warning")

Parser = Callable[[bytes, Any], ParseResult]


# --------------------------------------------------------------------------- outcomes


@dataclass
class IngestOutcome:
    item_id: int
    state: str  # the item's state: processed | quarantined | duplicate (payload seen before) | …
    duplicate_payload: bool = False
    reason: str | None = None
    created: list[int] = field(default_factory=list)  # new Warning rows
    duplicates: list[int] = field(default_factory=list)  # existing Warning ids received again
    held: list[int] = field(default_factory=list)
    changes: list[WarningChange] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # CAP documents an Atom/RSS index points to

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id, "state": self.state, "duplicate_payload": self.duplicate_payload,
            "reason": self.reason, "created": self.created, "duplicates": self.duplicates, "held": self.held,
            "changes": [c.to_dict() for c in self.changes], "skipped": self.skipped, "links": self.links,
        }


# --------------------------------------------------------------------------- feeds


def seed_feeds(session: Session, now: dt.datetime) -> int:
    """Add the default feeds that are missing by name; never alters an existing feed. Idempotent."""
    have = set(session.execute(select(Feed.name)).scalars())
    added = 0
    for spec in default_feeds():
        if spec["name"] in have:
            continue
        feed = Feed(
            name=spec["name"], title=spec.get("title", ""), adapter=spec["adapter"], url=spec.get("url"),
            poll_seconds=int(spec.get("poll_seconds", 300)), headers=dict(spec.get("headers", {})),
            enabled=bool(spec.get("enabled", True)), default_hazard=spec.get("default_hazard"),
            max_bytes=spec.get("max_bytes"), options=dict(spec.get("options", {})), source="config",
            created_at=now, updated_at=now,
        )
        session.add(feed)
        session.flush()
        record(session, now=now, action="feed.created", entity_type="feed", entity_id=feed.id, actor="system",
               payload={"name": feed.name, "adapter": feed.adapter, "source": "config"})
        added += 1
    return added


def feed_by_name(session: Session, name: str) -> Feed | None:
    return session.execute(select(Feed).where(Feed.name == name)).scalar_one_or_none()


def feed_limit(feed: Feed, policy: IntakePolicy) -> int:
    return int(feed.max_bytes or policy.max_bytes)


# --------------------------------------------------------------------------- raw first


def sha256_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def store_payload(
    session: Session, *, feed: Feed, body: bytes, content_type: str | None, now: dt.datetime,
    source_url: str | None = None, parent_id: int | None = None, digest: str | None = None,
) -> tuple[FeedItem, bool]:
    """Keep the bytes; ``(item, True)`` when new, ``(existing, False)`` when this feed sent them before."""
    digest = digest or sha256_of(body)
    existing = session.execute(
        select(FeedItem).where(FeedItem.feed_id == feed.id, FeedItem.sha256 == digest)
    ).scalar_one_or_none()
    if existing is not None:
        return existing, False
    item = FeedItem(
        feed_id=feed.id, received_at=now, content_type=(content_type or "")[:200] or None, sha256=digest,
        size=len(body), body=body, source_url=(source_url or "")[:1000] or None, parent_id=parent_id,
        state=FeedItemState.NEW.value, skipped=[], attempts=0, warnings_count=0,
    )
    try:
        with session.begin_nested():
            session.add(item)
            session.flush()
    except IntegrityError:  # the same bytes stored concurrently by another instance
        existing = session.execute(
            select(FeedItem).where(FeedItem.feed_id == feed.id, FeedItem.sha256 == digest)
        ).scalar_one()
        return existing, False
    feed.items_count = (feed.items_count or 0) + 1
    feed.last_item_at = now
    record(session, now=now, action="feed_item.received", entity_type="feed_item", entity_id=item.id,
           actor=f"feed:{feed.name}",
           payload={"feed": feed.name, "sha256": digest, "size": len(body), "content_type": item.content_type,
                    "source_url": item.source_url, "parent_id": parent_id})
    return item, True


def store_refused(
    session: Session, *, feed: Feed, prefix: bytes, content_type: str | None, now: dt.datetime, reason: str,
    detail: str, source_url: str | None = None, size: int | None = None,
) -> FeedItem:
    """Record a payload refused before it was read whole (oversize): the prefix read is kept as evidence."""
    digest = "refused:" + sha256_of(prefix + detail.encode())[:56]
    item, new = store_payload(session, feed=feed, body=prefix, content_type=content_type, now=now,
                              source_url=source_url, digest=digest)
    if new:
        item.size = size if size is not None else len(prefix)
        quarantine(session, item, feed=feed, reason=reason, detail=detail, now=now)
    return item


# --------------------------------------------------------------------------- quarantine


def quarantine(session: Session, item: FeedItem, *, feed: Feed, reason: str, detail: str, now: dt.datetime) -> None:
    item.state = FeedItemState.QUARANTINED.value
    item.reason = reason[:80]
    item.detail = detail[:4000]
    item.processed_at = now
    record(session, now=now, action="feed_item.quarantined", entity_type="feed_item", entity_id=item.id,
           actor=f"feed:{feed.name}", payload={"feed": feed.name, "reason": item.reason, "detail": item.detail})


def dismiss_item(session: Session, item: FeedItem, *, now: dt.datetime, actor: str, note: str = "") -> None:
    item.state = FeedItemState.DISMISSED.value
    item.resolved_by = actor
    record(session, now=now, action="feed_item.dismissed", entity_type="feed_item", entity_id=item.id,
           actor=actor, payload={"reason": item.reason, "note": note})


def item_to_handle(session: Session, item_id: int) -> FeedItem:
    """A quarantined (or dismissed) item, locked, for a reprocess or a dismissal.

    The duty console acts on quarantined items like ``POST /feeds/items/{id}/reprocess`` and ``/dismiss``
    do, but sits above this package and reads no table itself: it gets the item, or the same refusal
    (404 unknown, 409 not in quarantine), from here.
    """
    item = session.get(FeedItem, item_id, with_for_update=True)
    if item is None:
        raise not_found("原始数据", "Feed item", item_id)
    if item.state not in (FeedItemState.QUARANTINED.value, FeedItemState.DISMISSED.value):
        raise conflict("not_quarantined", f"该条数据状态为 {item.state}，不在隔离区",
                       f"Item is {item.state}, not quarantined")
    return item


# --------------------------------------------------------------------------- parse and place


def _parser_for(adapter: str) -> Parser:
    from warning.feeds import get_parser

    return get_parser(adapter)  # type: ignore[no-any-return]


# Site kinds the parsers look at: gauges and their thresholds (hydro), forest blocks (FIRMS hotspots).
PARSER_SITE_KINDS = {"gauge", "hydro_station", "river_section", "reservoir", "station", "forest_block", "forest"}


def parser_context(feed: Feed, session: Session | None = None) -> Any:
    """The feed's options, plus the region's monitored sites so gauge thresholds and forest blocks set
    in geo reach the parsers (options may still add sites of their own)."""
    from geo.service import monitored_sites
    from warning.feeds.common import ParserContext

    config = dict(feed.options or {})
    if feed.default_hazard:
        config.setdefault("default_hazard", feed.default_hazard)
    config.setdefault("feed", feed.name)
    sites = monitored_sites(session, PARSER_SITE_KINDS) if session is not None else []
    return ParserContext(config=config, sites=sites)


def ingest_payload(
    session: Session, *, feed: Feed, body: bytes, content_type: str | None, now: dt.datetime,
    source_url: str | None = None, listeners: Iterable[Listener] = (), parent_id: int | None = None,
    parser: Parser | None = None, targeter: Targeter | None = None, policy: IntakePolicy | None = None,
) -> IngestOutcome:
    """Store, then parse and place. Never raises for bad input: bad input ends quarantined."""
    policy = policy or load_policy()
    limit = feed_limit(feed, policy)
    if len(body) > limit:
        item = store_refused(
            session, feed=feed, prefix=body[: policy.evidence_prefix_bytes], content_type=content_type, now=now,
            reason="oversize", detail=f"{len(body)} bytes > limit {limit}", source_url=source_url, size=len(body),
        )
        return IngestOutcome(item.id, item.state, reason=item.reason)
    item, new = store_payload(session, feed=feed, body=body, content_type=content_type, now=now,
                              source_url=source_url, parent_id=parent_id)
    if not new:
        return IngestOutcome(item.id, "duplicate", duplicate_payload=True, reason=item.reason)
    return process_item(session, item, feed=feed, now=now, listeners=listeners, parser=parser,
                        targeter=targeter, policy=policy, actor=f"feed:{feed.name}")


def process_item(
    session: Session, item: FeedItem, *, feed: Feed, now: dt.datetime, listeners: Iterable[Listener] = (),
    parser: Parser | None = None, targeter: Targeter | None = None, policy: IntakePolicy | None = None,
    actor: str | None = None,
) -> IngestOutcome:
    policy = policy or load_policy()
    actor = actor or f"feed:{feed.name}"
    outcome = IngestOutcome(item.id, item.state)
    item.attempts = (item.attempts or 0) + 1
    try:
        parse = parser or _parser_for(feed.adapter)
        result = parse(bytes(item.body), parser_context(feed, session))
    except ParseError as exc:
        quarantine(session, item, feed=feed, reason=exc.reason, detail=exc.detail or str(exc), now=now)
        outcome.state, outcome.reason = item.state, item.reason
        return outcome
    except Exception as exc:  # an adapter bug: keep the item for reprocessing after the fix
        log.exception("adapter %s failed on feed item %s", feed.adapter, item.id)
        quarantine(session, item, feed=feed, reason="adapter_error", detail=f"{type(exc).__name__}: {exc}",
                   now=now)
        outcome.state, outcome.reason = item.state, item.reason
        return outcome

    # One bad area block costs only itself: it is left out, said on the warning, and the warning flagged.
    for d in result.warnings:
        area_mod.screen(d)

    try:
        with session.begin_nested():
            for draft in result.warnings:
                placed = apply_draft(session, draft, feed=feed, item=item, now=now, listeners=listeners,
                                     targeter=targeter, policy=policy, actor=actor)
                outcome.created += placed.created
                outcome.duplicates += placed.duplicates
                outcome.held += placed.held
                outcome.changes += placed.changes
    except Exception as exc:  # nothing of this item is half-applied: the savepoint is rolled back
        log.exception("storing the warnings of feed item %s failed", item.id)
        quarantine(session, item, feed=feed, reason="store_error", detail=f"{type(exc).__name__}: {exc}", now=now)
        outcome = IngestOutcome(item.id, item.state, reason=item.reason)
        return outcome

    answers = [s for s in result.skipped if s.msg_type in ("ack", "error")]
    if answers:
        record_answers(session, answers, item=item, now=now, actor=actor)
    item.state = FeedItemState.PROCESSED.value
    item.reason = None
    item.detail = None
    item.processed_at = now
    item.warnings_count = len(outcome.created)
    item.skipped = [skipped_json(s) for s in result.skipped]
    outcome.skipped = list(item.skipped)
    outcome.links = [str(u) for u in getattr(result, "links", None) or []]
    outcome.state = item.state
    record(session, now=now, action="feed_item.processed", entity_type="feed_item", entity_id=item.id, actor=actor,
           payload={"warnings": outcome.created, "duplicates": outcome.duplicates, "held": outcome.held,
                    "skipped": outcome.skipped, "links": len(outcome.links)})
    return outcome


def reprocess_item(
    session: Session, item: FeedItem, *, now: dt.datetime, actor: str, listeners: Iterable[Listener] = (),
    parser: Parser | None = None, targeter: Targeter | None = None, policy: IntakePolicy | None = None,
) -> IngestOutcome:
    """Parse a quarantined (or dismissed) item again, typically after an adapter fix."""
    feed = session.get(Feed, item.feed_id)
    assert feed is not None
    before = item.reason
    item.resolved_by = actor
    record(session, now=now, action="feed_item.reprocess_requested", entity_type="feed_item", entity_id=item.id,
           actor=actor, payload={"previous_reason": before})
    if item.reason == "oversize":
        return IngestOutcome(item.id, item.state, reason=item.reason)  # only a prefix was kept
    return process_item(session, item, feed=feed, now=now, listeners=listeners, parser=parser, targeter=targeter,
                        policy=policy, actor=actor)


# --------------------------------------------------------------------------- queries


def quarantined_items(session: Session, *, feed_id: int | None = None, limit: int = 200) -> list[FeedItem]:
    stmt = select(FeedItem).where(FeedItem.state == FeedItemState.QUARANTINED.value)
    if feed_id is not None:
        stmt = stmt.where(FeedItem.feed_id == feed_id)
    return list(session.execute(stmt.order_by(FeedItem.received_at.desc(), FeedItem.id.desc()).limit(limit)).scalars())


def active_warnings(session: Session, *, limit: int = 200) -> list[Warning]:
    """The current head of every live thread, newest first: what the duty desk must have in view."""
    return list(session.execute(
        select(Warning).where(Warning.state == WarningState.ACTIVE.value, Warning.superseded_by_id.is_(None))
        .order_by(Warning.received_at.desc(), Warning.id.desc()).limit(limit)).scalars())


def all_feeds(session: Session) -> list[Feed]:
    return list(session.execute(select(Feed).order_by(Feed.name)).scalars())


def quarantine_counts(session: Session) -> dict[int, int]:
    """Quarantined items per feed id: a feed with any is not healthy until someone looks at them."""
    rows = session.execute(
        select(FeedItem.feed_id, func.count(FeedItem.id))
        .where(FeedItem.state == FeedItemState.QUARANTINED.value).group_by(FeedItem.feed_id)).all()
    return {int(feed_id): int(n) for feed_id, n in rows}


# --------------------------------------------------------------------------- manual entry

MANUAL_FEED = "manual"
MANUAL_SENDER = "manual@jiaoying"


def manual_feed(session: Session, now: dt.datetime) -> Feed:
    feed = feed_by_name(session, MANUAL_FEED)
    if feed is None:
        feed = Feed(name=MANUAL_FEED, title="人工录入 / Manual entry", adapter="manual", poll_seconds=0, headers={},
                    enabled=True, options={}, source="config", created_at=now, updated_at=now)
        session.add(feed)
        session.flush()
    return feed


def enter_manual(
    session: Session, data: Any, *, username: str, now: dt.datetime, listeners: Iterable[Listener] = (),
    targeter: Targeter | None = None, policy: IntakePolicy | None = None,
) -> tuple[IngestOutcome, Warning]:
    """Record what the officer typed as raw evidence (a feed item of the ``manual`` feed), then store
    it as a warning like any other, with who entered it. ``data`` is a ``schemas.ManualWarningIn``."""
    import json

    from config.counters import next_value
    from warning.draft import AreaSpec, Hazard, InfoText, Level, MsgType, Reference, Status

    feed = manual_feed(session, now)
    refs: list[Reference] = []
    if data.msg_type != "alert":
        if data.replaces_warning_id is None:
            raise ValueError("replaces_warning_id")
        old = session.get(Warning, data.replaces_warning_id)
        if old is None:
            raise LookupError(data.replaces_warning_id)
        refs.append(Reference(old.sender, old.identifier, old.sent))
    number = next_value(session, f"manual_warning_{now.year}")
    identifier = f"JY-MANUAL-{now.year}-{number:05d}"
    evidence = {"entered_by": username, "entered_at": now.isoformat(), "identifier": identifier,
                **data.model_dump(mode="json")}
    body = json.dumps(evidence, ensure_ascii=False, sort_keys=True).encode()
    item, _new = store_payload(session, feed=feed, body=body, content_type="application/json", now=now,
                               source_url=f"{data.channel}:{data.received_from}"[:1000])
    draft = WarningDraft(
        identifier=identifier, sender=MANUAL_SENDER, sent=data.sent or now, msg_type=MsgType(data.msg_type),
        status=Status(data.status), hazard=Hazard(data.hazard), event=data.event,
        level=Level(data.level) if data.level else None, effective=data.effective, onset=data.onset,
        expires=data.expires, references=refs,
        infos=[InfoText(language="zh-CN", event=data.event, headline=data.headline,
                        description=data.description or None, instruction=data.instruction or None,
                        sender_name=data.source)],
        areas=[AreaSpec(description=data.area_description or None,
                        polygons=[list(map(tuple, data.polygon))] if data.polygon else [],
                        geocodes=[("GB", c) for c in data.area_codes])],
        source_format="manual",
        extra={"channel": data.channel, "received_from": data.received_from, "source": data.source},
    )
    problems = area_mod.problems(draft.area)
    if problems:
        quarantine(session, item, feed=feed, reason="invalid_geometry", detail="; ".join(problems), now=now)
        raise ValueError("; ".join(problems))
    actor = f"user:{username}"
    placed = apply_draft(session, draft, feed=feed, item=item, now=now, listeners=listeners, targeter=targeter,
                         policy=policy, actor=actor, entered_by=username, entry_channel=data.channel)
    item.state = FeedItemState.PROCESSED.value
    item.processed_at = now
    item.attempts = 1
    item.warnings_count = len(placed.created)
    outcome = IngestOutcome(item.id, item.state, created=placed.created, duplicates=placed.duplicates,
                            held=placed.held, changes=placed.changes)
    w = session.get(Warning, placed.created[0])
    assert w is not None
    return outcome, w


# --------------------------------------------------------------------------- for the console's pages


def get_warning(session: Session, warning_id: int) -> Warning | None:
    """One version by id, for pages that sit above this package and may not query its tables themselves."""
    return session.get(Warning, warning_id)


def recent_warnings(session: Session, *, limit: int = 100) -> list[Warning]:
    """The heads of threads that are no longer active (ended, cancelled, held), newest first.

    The warnings page lists these under the active ones, so a duty officer can still open what ended
    an hour ago; ``active_warnings`` gives the others.
    """
    return list(session.execute(
        select(Warning).where(Warning.state != WarningState.ACTIVE.value, Warning.superseded_by_id.is_(None))
        .order_by(Warning.received_at.desc(), Warning.id.desc()).limit(limit)).scalars())


def cap_document(session: Session, w: Warning, *, tz: dt.tzinfo | str) -> bytes:
    """The warning as the CAP 1.2 document ``GET /warnings/{id}/cap`` serves, for a page that shows it.

    A reference without its sent time gets it from the stored message it names, as CAP requires one;
    the ORM object is not touched, so showing the document never writes.
    """
    from warning.cap_export import warning_to_cap

    refs = []
    for r in w.references or []:
        if not r.get("sent"):
            known = session.execute(select(Warning.sent).where(Warning.sender == r.get("sender"),
                                                               Warning.identifier == r.get("identifier"))).scalar()
            r = {**r, "sent": known.isoformat() if isinstance(known, dt.datetime) else None}
        refs.append(r)

    class _View:
        references = refs

        def __getattr__(self, name: str) -> Any:
            return getattr(w, name)

    return warning_to_cap(_View(), tz=tz)
