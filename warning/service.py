"""The intake pipeline against the database: raw payload → feed item → parse → warnings.

Order matters and is the point of this module: the bytes are stored (hashed) *before* anything
reads them, so whatever happens next — a parser bug, hostile XML, a geometry that makes no sense —
the evidence is already kept and the item can be quarantined and reprocessed later. Nothing here
commits: the caller (a request handler or a job) commits once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.eventlog import record
from warning import area as area_mod
from warning import versions
from warning.changes import ChangeKind, Listener, WarningChange
from warning.draft import ParseError, ParseResult, WarningDraft
from warning.models import Feed, FeedItem, FeedItemState, Warning, WarningState
from warning.policy import IntakePolicy, default_feeds, load_policy
from warning.targeting import Targeter, geo_targeter

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
    item.skipped = [_skipped_json(s) for s in result.skipped]
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


# --------------------------------------------------------------------------- versions


@dataclass
class Placed:
    created: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    changes: list[WarningChange] = field(default_factory=list)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _known(w: Warning) -> versions.Known:
    assert w.thread_id is not None
    return versions.Known(w.id, w.sender, w.identifier, w.msg_type, w.sent, w.state, w.thread_id, w.version,
                          w.superseded_by_id)


def warning_from_draft(draft: WarningDraft, *, now: dt.datetime, affected: dict[str, Any]) -> Warning:
    infos = [dataclasses.asdict(i) for i in draft.infos]
    area = draft.area
    extra = _jsonable(draft.extra)
    if draft.area_problems:
        extra["area_problems"] = list(draft.area_problems)
    return Warning(
        sender=draft.sender[:255], identifier=draft.identifier[:255], msg_type=draft.msg_type.value,
        status=draft.status.value, drill=draft.status.value == "exercise",
        hazard=draft.hazard.value if draft.hazard is not None else None,
        event=(draft.event or None) and draft.event[:200], level=draft.level.value if draft.level else None,
        severity=draft.severity, urgency=draft.urgency, certainty=draft.certainty, sent=draft.sent,
        effective=draft.effective, onset=draft.onset, expires=draft.expires, headline=draft.headline,
        infos=infos, area_description=area.description, area_geojson=area_mod.to_geojson(area),
        area_spec=area_mod.to_dict(area, draft.areas),
        geocodes=[{"name": n, "value": v} for n, v in area.geocodes],
        references=[{"sender": r.sender, "identifier": r.identifier, "sent": _iso(r.sent)} for r in draft.references],
        parameters={k: list(v) for k, v in draft.parameters.items()}, extra=extra,
        source_format=draft.source_format, affected=affected, state=WarningState.HELD.value, version=1,
        received_at=now, updated_at=now,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def apply_draft(
    session: Session, draft: WarningDraft, *, feed: Feed | None, item: FeedItem | None, now: dt.datetime,
    listeners: Iterable[Listener] = (), targeter: Targeter | None = None, policy: IntakePolicy | None = None,
    actor: str = "system", entered_by: str | None = None, entry_channel: str | None = None,
) -> Placed:
    """Store one draft as a Warning version and link it into its thread (or hold it)."""
    policy = policy or load_policy()
    listeners = tuple(listeners)
    placed = Placed()
    existing = _by_key(session, draft.sender, draft.identifier)
    if existing is not None:
        _record_duplicate(session, existing, item=item, now=now, actor=actor)
        placed.duplicates.append(existing.id)
        return placed
    affected = (targeter or geo_targeter)(session, draft.areas)
    w = warning_from_draft(draft, now=now, affected=affected)
    w.feed_id = feed.id if feed else None
    w.feed_item_id = item.id if item else None
    w.entered_by = entered_by
    w.entry_channel = entry_channel
    try:
        with session.begin_nested():
            session.add(w)
            session.flush()
    except IntegrityError:  # the same (sender, identifier) stored concurrently
        again = _by_key(session, draft.sender, draft.identifier)
        assert again is not None
        _record_duplicate(session, again, item=item, now=now, actor=actor)
        placed.duplicates.append(again.id)
        return placed
    w.thread_id = w.id
    placed.created.append(w.id)
    record(session, now=now, action="warning.received", entity_type="warning", entity_id=w.id, actor=actor,
           payload={"sender": w.sender, "identifier": w.identifier, "msg_type": w.msg_type, "status": w.status,
                    "hazard": w.hazard, "level": w.level, "feed_item_id": w.feed_item_id, "entered_by": entered_by,
                    "affected": {k: len(v) for k, v in affected.items() if isinstance(v, list)}})
    if draft.area_problems:
        flag(session, w, "area_invalid", now=now, actor=actor, detail={"problems": draft.area_problems})
    _place(session, w, now=now, listeners=listeners, policy=policy, actor=actor, placed=placed)
    return placed


def flag(session: Session, w: Warning, reason: str, *, now: dt.datetime, actor: str = "system",
         detail: dict[str, Any] | None = None) -> None:
    """Put a warning in front of the duty officer, with why (several reasons accumulate)."""
    reasons = [r for r in (w.flag_reason or "").split(",") if r]
    if reason not in reasons:
        reasons.append(reason)
    w.flag_reason = ",".join(reasons)[:80]
    w.flagged_at = w.flagged_at or now
    w.updated_at = now
    record(session, now=now, action="warning.flagged", entity_type="warning", entity_id=w.id, actor=actor,
           payload={"reason": reason, **(detail or {})})


def _skipped_json(s: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"reason": s.reason, "identifier": s.identifier}
    if s.msg_type:
        out.update(msg_type=s.msg_type, sender=s.sender,
                   references=[{"sender": r.sender, "identifier": r.identifier, "sent": _iso(r.sent)}
                               for r in s.references])
    return out


def record_answers(session: Session, answers: Sequence[Any], *, item: FeedItem | None, now: dt.datetime,
                   actor: str) -> None:
    """CAP Ack and Error messages, recorded against the warnings they name (the event log of each), or
    against the feed item when they name none that is known — never dropped."""
    for a in answers:
        payload = {"msg_type": a.msg_type, "sender": a.sender, "identifier": a.identifier, "note": a.note,
                   "feed_item_id": item.id if item else None}
        matched = False
        for r in a.references:
            ref = _by_key(session, r.sender, r.identifier)
            if ref is None:
                continue
            matched = True
            record(session, now=now, action=f"warning.{a.msg_type}_received", entity_type="warning",
                   entity_id=ref.id, actor=actor, payload=payload)
        if not matched:
            record(session, now=now, action=f"feed_item.{a.msg_type}_unmatched", entity_type="feed_item",
                   entity_id=item.id if item else None, actor=actor,
                   payload={**payload, "references": [[r.sender, r.identifier] for r in a.references]})


def _by_key(session: Session, sender: str, identifier: str) -> Warning | None:
    return session.execute(
        select(Warning).where(Warning.sender == sender[:255], Warning.identifier == identifier[:255])
    ).scalar_one_or_none()


def _record_duplicate(session: Session, w: Warning, *, item: FeedItem | None, now: dt.datetime, actor: str) -> None:
    record(session, now=now, action="warning.duplicate_received", entity_type="warning", entity_id=w.id,
           actor=actor, payload={"sender": w.sender, "identifier": w.identifier,
                                 "feed_item_id": item.id if item else None})


def _referenced(session: Session, w: Warning) -> list[Warning]:
    keys = versions.reference_keys(w.references or [])
    out: list[Warning] = []
    for sender, identifier in keys:
        ref = _by_key(session, sender, identifier)
        if ref is not None and ref.id != w.id and ref.state != WarningState.HELD.value:
            out.append(ref)
    return out


def _referencing(session: Session, w: Warning, *, held: bool) -> list[Warning]:
    """Stored versions whose references name ``w`` (a text prefilter on the JSON, then an exact check)."""
    pattern = "%" + w.identifier.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    stmt = select(Warning).where(cast(Warning.references, String).like(pattern, escape="\\"), Warning.id != w.id)
    stmt = stmt.where(Warning.state == WarningState.HELD.value) if held else stmt.where(
        Warning.state != WarningState.HELD.value)
    rows = session.execute(stmt).scalars().all()
    key = (w.sender, w.identifier)
    return [r for r in rows if key in versions.reference_keys(r.references or [])]


def _thread(session: Session, thread_id: int) -> list[Warning]:
    return list(session.execute(select(Warning).where(Warning.thread_id == thread_id)).scalars())


def _place(
    session: Session, w: Warning, *, now: dt.datetime, listeners: Sequence[Listener], policy: IntakePolicy,
    actor: str, placed: Placed,
) -> None:
    referenced = _referenced(session, w)
    later = _referencing(session, w, held=False)
    thread_id = None
    if referenced:
        thread_id = max(referenced, key=lambda r: (r.sent, r.id)).thread_id
    elif later:
        thread_id = later[0].thread_id
    thread_rows = _thread(session, thread_id) if thread_id is not None else []
    decision = versions.decide(w.msg_type, w.sent, [_known(r) for r in referenced],
                               [_known(r) for r in thread_rows if r.id != w.id], [_known(r) for r in later])
    head = session.get(Warning, decision.head.id) if decision.head else None
    if head is not None and w.hazard is None:
        _carry_over(session, w, head, now=now, actor=actor)
    expired = versions.is_expired(w.expires, now)
    was_held = w.held_since is not None

    if decision.action is versions.Action.HOLD:
        w.state = WarningState.HELD.value
        w.thread_id = w.id
        w.held_since = w.held_since or now
        w.held_until = w.held_until or versions.hold_deadline(now, policy.hold_timeout)
        placed.held.append(w.id)
        record(session, now=now, action="warning.held", entity_type="warning", entity_id=w.id, actor=actor,
               payload={"msg_type": w.msg_type, "references": w.references, "held_until": _iso(w.held_until)})
        return

    w.held_until = None
    if decision.action is versions.Action.NEW_THREAD:
        w.thread_id = w.id
        w.version = 1
        w.state = WarningState.EXPIRED.value if expired else WarningState.ACTIVE.value
        if expired:
            w.ended_at = now
            record(session, now=now, action="warning.expired", entity_type="warning", entity_id=w.id, actor=actor,
                   payload={"expires": _iso(w.expires), "on_arrival": True})
        else:
            _change(session, ChangeKind.NEW, w, None, now=now, listeners=listeners, placed=placed)
    elif decision.action is versions.Action.STALE:
        assert head is not None and head.thread_id is not None
        w.thread_id = head.thread_id
        w.version = max(r.version for r in _thread(session, head.thread_id)) + 1
        w.state = WarningState.SUPERSEDED.value if w.msg_type != "cancel" else WarningState.CANCELLED.value
        w.superseded_by_id = head.id
        w.ended_at = now
        record(session, now=now, action="warning.stale_received", entity_type="warning", entity_id=w.id,
               actor=actor, payload={"thread_id": w.thread_id, "head_id": head.id})
    else:
        assert head is not None and head.thread_id is not None
        w.thread_id = head.thread_id
        w.version = max(r.version for r in _thread(session, head.thread_id)) + 1
        w.supersedes_id = head.id
        head.superseded_by_id = w.id
        head.updated_at = now
        if head.state == WarningState.ACTIVE.value:
            head.state = (WarningState.CANCELLED if decision.action is versions.Action.CANCEL
                          else WarningState.SUPERSEDED).value
            head.ended_at = now
        if decision.action is versions.Action.CANCEL:
            w.state = WarningState.CANCELLED.value
            w.ended_at = now
            _change(session, ChangeKind.CANCELLED, w, head, now=now, listeners=listeners, placed=placed)
        elif expired:
            w.state = WarningState.EXPIRED.value
            w.ended_at = now
            _change(session, ChangeKind.EXPIRED, w, head, now=now, listeners=listeners, placed=placed)
        else:
            w.state = WarningState.ACTIVE.value
            _change(session, ChangeKind.UPDATED, w, head, now=now, listeners=listeners, placed=placed)
    w.updated_at = now
    if was_held:
        record(session, now=now, action="warning.held_resolved", entity_type="warning", entity_id=w.id, actor=actor,
               payload={"thread_id": w.thread_id, "state": w.state, "held_since": _iso(w.held_since)})
    session.flush()
    # Anything waiting for this message can now be placed, oldest first.
    for waiting in sorted(_referencing(session, w, held=True), key=lambda r: (r.sent, r.id)):
        if waiting.state == WarningState.HELD.value:
            _place(session, waiting, now=now, listeners=listeners, policy=policy, actor=actor, placed=placed)


# What an Update that carried no <info> takes from the version it replaces: everything it would have said.
_CARRIED = ("level", "event", "headline", "infos", "severity", "urgency", "certainty", "effective", "onset",
            "expires", "area_description", "area_geojson", "area_spec", "geocodes", "parameters", "affected")


def _carry_over(session: Session, w: Warning, head: Warning, *, now: dt.datetime, actor: str) -> None:
    """A Cancel or Update whose own content named no hazard takes it from the warning it references.

    A Cancel keeps its own (empty) texts but shows what it cancels (level, event, headline, areas). An
    Update with no ``<info>`` is the same warning re-sent without content: it carries the referenced
    version's content over, and is flagged so that the duty officer checks with the issuer.
    """
    w.hazard = head.hazard
    no_info = not w.infos
    if w.msg_type == "update" and no_info:
        for name in _CARRIED:
            setattr(w, name, getattr(head, name))
        flag(session, w, "update_without_info", now=now, actor=actor,
             detail={"carried_from": head.id, "identifier": head.identifier})
    else:
        w.level = w.level or head.level
        w.event = w.event or head.event
        w.headline = w.headline or head.headline
        if no_info:
            w.affected = head.affected
            w.area_description = w.area_description or head.area_description
    record(session, now=now, action="warning.hazard_from_reference", entity_type="warning", entity_id=w.id,
           actor=actor, payload={"hazard": w.hazard, "level": w.level, "from_warning": head.id})


_CHANGE_ACTIONS = {
    ChangeKind.NEW: "warning.activated",
    ChangeKind.UPDATED: "warning.updated",
    ChangeKind.CANCELLED: "warning.cancelled",
    ChangeKind.EXPIRED: "warning.expired",
}


def _change(
    session: Session, kind: ChangeKind, w: Warning, previous: Warning | None, *, now: dt.datetime,
    listeners: Sequence[Listener], placed: Placed | None = None, actor: str = "system",
) -> WarningChange:
    assert w.thread_id is not None
    change = WarningChange(
        kind=kind, warning_id=w.id, thread_id=w.thread_id, previous_id=previous.id if previous else None,
        hazard=w.hazard, level=w.level, previous_level=previous.level if previous else None, status=w.status,
        drill=w.drill,
    )
    record(session, now=now, action=_CHANGE_ACTIONS[kind], entity_type="warning", entity_id=w.id, actor=actor,
           payload=change.to_dict())
    if placed is not None:
        placed.changes.append(change)
    notify(session, listeners, change, now)
    return change


def notify(session: Session, listeners: Sequence[Listener], change: WarningChange, now: dt.datetime) -> None:
    """Tell each listener; a failing listener's writes are rolled back and the failure logged, the rest go on."""
    session.flush()
    for listener in listeners:
        name = getattr(listener, "__qualname__", repr(listener))
        try:
            with session.begin_nested():
                listener(session, change, now)
        except Exception as exc:
            log.exception("warning listener %s failed", name)
            record(session, now=now, action="warning.listener_failed", entity_type="warning",
                   entity_id=change.warning_id, actor="system",
                   payload={"listener": name, "error": f"{type(exc).__name__}: {exc}"[:500], "change": change.kind})


# --------------------------------------------------------------------------- sweeps


def expire_due(session: Session, *, now: dt.datetime, listeners: Iterable[Listener] = ()) -> list[WarningChange]:
    """Active warnings past their ``expires``: expired. Idempotent (only active rows are touched)."""
    listeners = tuple(listeners)
    rows = session.execute(
        select(Warning).where(Warning.state == WarningState.ACTIVE.value, Warning.expires.is_not(None),
                              Warning.expires <= now).order_by(Warning.expires, Warning.id).with_for_update()
    ).scalars().all()
    out: list[WarningChange] = []
    for w in rows:
        w.state = WarningState.EXPIRED.value
        w.ended_at = now
        w.updated_at = now
        out.append(_change(session, ChangeKind.EXPIRED, w, None, now=now, listeners=listeners))
    return out


def flag_overdue_holds(
    session: Session, *, now: dt.datetime, listeners: Iterable[Listener] = (),
) -> list[int]:
    """Held versions past their deadline are flagged for the duty officer, never dropped.

    An Update whose Alert never came still describes a live hazard (a feed first polled mid-chain
    sees exactly this), so it becomes active as the start of its own thread, flagged; a Cancel has
    nothing to cancel and stays held, flagged, until its Alert arrives or an officer looks at it.
    """
    listeners = tuple(listeners)
    rows = session.execute(
        select(Warning).where(Warning.state == WarningState.HELD.value,
                              Warning.held_until.is_not(None), Warning.held_until <= now)
        .order_by(Warning.sent, Warning.id).with_for_update()
    ).scalars().all()
    flagged: list[int] = []
    for w in rows:
        # Flagged once: the deadline is cleared, so the next sweep does not take the row again.
        w.held_until = None
        flag(session, w, "reference_unresolved", now=now)
        flagged.append(w.id)
        # What the message names no hazard of its own (no <info>) can only wait for its Alert.
        promote = w.msg_type != "cancel" and w.hazard is not None
        record(session, now=now, action="warning.held_flagged", entity_type="warning", entity_id=w.id,
               actor="system", payload={"msg_type": w.msg_type, "references": w.references,
                                        "held_since": _iso(w.held_since), "promoted": promote})
        if promote:
            w.thread_id = w.id
            if versions.is_expired(w.expires, now):
                w.state = WarningState.EXPIRED.value
                w.ended_at = now
            else:
                w.state = WarningState.ACTIVE.value
                _change(session, ChangeKind.NEW, w, None, now=now, listeners=listeners)
    return flagged


# --------------------------------------------------------------------------- queries


def thread_versions(session: Session, thread_id: int) -> list[Warning]:
    return list(session.execute(
        select(Warning).where(Warning.thread_id == thread_id).order_by(Warning.version, Warning.id)
    ).scalars())


def quarantined_items(session: Session, *, feed_id: int | None = None, limit: int = 200) -> list[FeedItem]:
    stmt = select(FeedItem).where(FeedItem.state == FeedItemState.QUARANTINED.value)
    if feed_id is not None:
        stmt = stmt.where(FeedItem.feed_id == feed_id)
    return list(session.execute(stmt.order_by(FeedItem.received_at.desc(), FeedItem.id.desc()).limit(limit)).scalars())


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
