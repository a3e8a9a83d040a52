"""Warnings as CAP versions in the database: a draft placed into its thread, holds, expiry, flags.

A ``Warning`` row is one CAP message. ``apply_draft`` stores it (deduplicated by sender and identifier),
finds the thread it belongs to through ``references`` (``warning.versions`` decides, pure), holds an Update
or Cancel whose Alert has not arrived, and tells the listeners (the response engine) what changed. A Cancel
or Update that named no hazard of its own takes it from what it references. Nothing here commits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.eventlog import record
from warning import area as area_mod
from warning import versions
from warning.changes import ChangeKind, Listener, WarningChange
from warning.draft import WarningDraft
from warning.models import Feed, FeedItem, Warning, WarningState
from warning.policy import IntakePolicy, load_policy
from warning.targeting import Targeter, geo_targeter

log = logging.getLogger("jiaoying.warning")


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


def skipped_json(s: Any) -> dict[str, Any]:
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
