"""HTTP API of the intake: feeds (admin) and their health, the push endpoint, quarantine, warnings,
manual entry, CAP export and the Atom feed of active warnings."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.clock import Clock
from config.errors import ApiError, bad_request, conflict, errors, not_found
from config.eventlog import record
from config.fields import RowId
from config.users import Role, User
from config.web import (
    ALL_ROLES,
    DB,
    STAFF,
    ClockDep,
    RoleCheck,
    SettingsDep,
    actor_of,
    current_user,
    get_settings,
    oauth2_scheme,
    require,
)
from warning import service, threads
from warning.atom import atom_feed
from warning.cap_export import warning_to_cap
from warning.changes import listeners_of
from warning.draft import Hazard
from warning.models import Feed, FeedItem, FeedItemState, Warning, WarningState
from warning.policy import load_policy
from warning.schemas import (
    DismissIn,
    FeedHealth,
    FeedIn,
    FeedItemOut,
    FeedName,
    FeedOut,
    FeedPatch,
    IngestOut,
    ManualWarningIn,
    PushToken,
    WarningDetail,
    WarningOut,
)

feeds_router = APIRouter(prefix="/feeds", tags=["feeds"])
warnings_router = APIRouter(prefix="/warnings", tags=["warnings"])
router = feeds_router  # the wiring adds both: ROUTERS += [warning.api.feeds_router, warning.api.warnings_router]

ADMIN = (Role.ADMIN,)
HANDLERS = (Role.ADMIN, Role.DUTY_OFFICER)  # may push payloads, reprocess and dismiss quarantined items
PUSH_TOKEN_HEADER = "X-Feed-Token"
PUSHED_MEDIA_TYPES = ("application/xml", "application/cap+xml", "application/atom+xml", "application/json",
                      "application/geo+json", "text/csv", "text/plain", "application/octet-stream")
_PUSH_BODY = {"requestBody": {
    "required": True,
    "description": "来源系统推送的原始内容，原样保存后解析 / the payload as the source sends it, kept verbatim",
    "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in PUSHED_MEDIA_TYPES},
}}


def _listeners(request: Request) -> tuple[Any, ...]:
    return listeners_of(request.app.state.runtime.state)


def _feed_or_404(db: Session, name: str) -> Feed:
    feed = service.feed_by_name(db, name)
    if feed is None:
        raise not_found("信息源", "Feed", name)
    return feed


def _feed_out(feed: Feed) -> FeedOut:
    out = FeedOut.model_validate(feed)
    out.has_push_token = feed.push_token_hash is not None
    return out


# --------------------------------------------------------------------------- feeds


@feeds_router.get("", response_model=list[FeedOut], dependencies=[require(*ALL_ROLES)])
def feeds_list(db: DB) -> list[FeedOut]:
    return [_feed_out(f) for f in db.execute(select(Feed).order_by(Feed.name)).scalars()]


@feeds_router.get("/health", response_model=list[FeedHealth], dependencies=[require(*ALL_ROLES)])
def feeds_health(db: DB, clock: ClockDep) -> list[FeedHealth]:
    now = clock.now()
    counts = service.quarantine_counts(db)
    out = []
    for f in service.all_feeds(db):
        out.append(FeedHealth(
            name=f.name, title=f.title, enabled=f.enabled,
            healthy=f.enabled and f.consecutive_failures == 0 and not counts.get(f.id),
            last_success_at=f.last_success_at, last_error_at=f.last_error_at, last_error=f.last_error,
            consecutive_failures=f.consecutive_failures, items_count=f.items_count, last_item_at=f.last_item_at,
            lag_seconds=(now - f.last_item_at).total_seconds() if f.last_item_at else None,
            quarantined=int(counts.get(f.id, 0)), next_poll_at=f.next_poll_at,
        ))
    return out


@feeds_router.get("/quarantine", response_model=list[FeedItemOut], dependencies=[require(*STAFF)],
                  responses=errors(404))
def feeds_quarantine_list(db: DB, feed: str | None = None, limit: int = Query(200, ge=1, le=1000)) -> list[Any]:
    feed_id = _feed_or_404(db, feed).id if feed else None
    return list(service.quarantined_items(db, feed_id=feed_id, limit=limit))


@feeds_router.get("/items/{item_id}", response_model=FeedItemOut, dependencies=[require(*STAFF)],
                  responses=errors(404))
def feeds_item_get(item_id: RowId, db: DB) -> Any:
    item = db.get(FeedItem, item_id)
    if item is None:
        raise not_found("原始数据", "Feed item", item_id)
    return item


@feeds_router.get("/items/{item_id}/raw", dependencies=[require(*STAFF)], response_class=Response,
                  responses={200: {"description": "原样内容 / the payload as received",
                                   "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                       "format": "binary"}}}},
                             **errors(404)})
def feeds_item_raw(item_id: RowId, db: DB) -> Response:
    """The payload exactly as received, served as an attachment so a browser never renders it."""
    item = db.get(FeedItem, item_id)
    if item is None:
        raise not_found("原始数据", "Feed item", item_id)
    return Response(bytes(item.body), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="feed-item-{item.id}.bin"',
                             "X-Content-SHA256": item.sha256})


def _quarantined(db: Session, item_id: int) -> FeedItem:
    item = db.get(FeedItem, item_id, with_for_update=True)
    if item is None:
        raise not_found("原始数据", "Feed item", item_id)
    if item.state not in (FeedItemState.QUARANTINED.value, FeedItemState.DISMISSED.value):
        raise conflict("not_quarantined", f"该条数据状态为 {item.state}，不在隔离区",
                       f"Item is {item.state}, not quarantined")
    return item


@feeds_router.post("/items/{item_id}/reprocess", response_model=IngestOut, responses=errors(404, 409))
def feeds_item_reprocess(item_id: RowId, request: Request, db: DB, clock: ClockDep,
                         user: User = require(*HANDLERS)) -> dict[str, Any]:
    item = _quarantined(db, item_id)
    outcome = service.reprocess_item(db, item, now=clock.now(), actor=actor_of(user), listeners=_listeners(request))
    db.commit()
    return outcome.to_dict()


@feeds_router.post("/items/{item_id}/dismiss", response_model=FeedItemOut, responses=errors(404, 409))
def feeds_item_dismiss(item_id: RowId, body: DismissIn, db: DB, clock: ClockDep,
                       user: User = require(*HANDLERS)) -> Any:
    item = _quarantined(db, item_id)
    service.dismiss_item(db, item, now=clock.now(), actor=actor_of(user), note=body.note)
    db.commit()
    return item


@feeds_router.post("", response_model=FeedOut, status_code=201, responses=errors(409))
def feeds_create(body: FeedIn, db: DB, clock: ClockDep, user: User = require(*ADMIN)) -> FeedOut:
    if service.feed_by_name(db, body.name):
        raise conflict("feed_exists", f"信息源 {body.name} 已存在", f"Feed {body.name} exists")
    now = clock.now()
    data = body.model_dump(mode="json")
    feed = Feed(**data, source="api", created_at=now, updated_at=now)
    db.add(feed)
    db.flush()
    record(db, now=now, action="feed.created", entity_type="feed", entity_id=feed.id, actor=actor_of(user),
           payload=data)
    db.commit()
    return _feed_out(feed)


@feeds_router.get("/{name}", response_model=FeedOut, dependencies=[require(*ALL_ROLES)], responses=errors(404))
def feeds_get(name: FeedName, db: DB) -> FeedOut:
    return _feed_out(_feed_or_404(db, name))


@feeds_router.patch("/{name}", response_model=FeedOut, responses=errors(404))
def feeds_update(name: FeedName, body: FeedPatch, db: DB, clock: ClockDep, user: User = require(*ADMIN)) -> FeedOut:
    feed = _feed_or_404(db, name)
    changes = body.model_dump(mode="json", exclude_unset=True)
    now = clock.now()
    for key, value in changes.items():
        setattr(feed, key, value)
    if {"url", "headers"} & changes.keys():  # a new source: forget the old one's validators
        feed.etag = feed.last_modified = None
    if changes.get("enabled") or "poll_seconds" in changes:
        feed.next_poll_at = None  # poll at the next tick
    feed.updated_at = now
    record(db, now=now, action="feed.updated", entity_type="feed", entity_id=feed.id, actor=actor_of(user),
           payload=changes)
    db.commit()
    return _feed_out(feed)


@feeds_router.delete("/{name}", status_code=204, response_class=Response, responses=errors(404, 409))
def feeds_delete(name: FeedName, db: DB, clock: ClockDep, user: User = require(*ADMIN)) -> Response:
    feed = _feed_or_404(db, name)
    if feed.items_count or db.scalar(select(func.count(FeedItem.id)).where(FeedItem.feed_id == feed.id)):
        raise conflict("feed_has_items", "该信息源已有原始数据（证据），不能删除，请改为停用",
                       "The feed has stored payloads (evidence); disable it instead of deleting")
    record(db, now=clock.now(), action="feed.deleted", entity_type="feed", entity_id=feed.id,
           actor=actor_of(user), payload={"name": feed.name})
    db.delete(feed)
    db.commit()
    return Response(status_code=204)


@feeds_router.post("/{name}/token", response_model=PushToken, responses=errors(404))
def feeds_rotate_token(name: FeedName, db: DB, clock: ClockDep, user: User = require(*ADMIN)) -> PushToken:
    """A new push token for a source system; shown once, only its hash is kept."""
    feed = _feed_or_404(db, name)
    token = secrets.token_urlsafe(32)
    feed.push_token_hash = hashlib.sha256(token.encode()).hexdigest()
    feed.updated_at = clock.now()
    record(db, now=clock.now(), action="feed.push_token_rotated", entity_type="feed", entity_id=feed.id,
           actor=actor_of(user), payload={})
    db.commit()
    return PushToken(feed=feed.name, token=token)


class PushAuth(RoleCheck):
    """A logged-in duty officer or admin, or a source system holding the feed's push token.

    Returns the actor string. Declared roles are those of a user login; the token path is checked
    first so a source system needs no user account.
    """

    def __call__(  # type: ignore[override]
        self, request: Request, db: DB,
        token: Annotated[str | None, Depends(oauth2_scheme)] = None,
    ) -> str:
        given = request.headers.get(PUSH_TOKEN_HEADER)
        name = request.path_params.get("name", "")
        if given:
            feed = service.feed_by_name(db, name)
            digest = hashlib.sha256(given.encode()).hexdigest()
            if feed is None or not feed.push_token_hash or not hmac.compare_digest(digest, feed.push_token_hash):
                raise ApiError(401, "bad_feed_token", "信息源推送令牌无效", "Invalid feed push token",
                               headers={"WWW-Authenticate": "Bearer"})
            return f"feed:{feed.name}"
        user = current_user(request, db, get_settings(request), token)
        return actor_of(super().__call__(user))


async def _read_limited(request: Request, limit: int) -> tuple[bytes, bool, int]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return b"", True, int(declared)
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            return bytes(buf[:limit]), True, len(buf)
    return bytes(buf), False, len(buf)


@feeds_router.post("/{name}/items", response_model=IngestOut, status_code=202, openapi_extra=_PUSH_BODY,
                   responses=errors(404, 409, 413))
async def feeds_push(
    name: FeedName, request: Request, db: DB, actor: str = Depends(PushAuth(*HANDLERS)),
) -> Any:
    """Receive one raw payload from a source that pushes; the body is kept verbatim before parsing.

    No transaction is held while the body streams in (on SQLite that would lock every writer out
    behind a slow client); the size limit is enforced while reading.
    """
    clock: Clock = request.app.state.clock

    def _prepare() -> tuple[Any, int]:
        # Database work never runs on the event loop: a wait for SQLite's lock there would stall every request.
        policy = load_policy()
        feed = _feed_or_404(db, name)
        if not feed.enabled:
            raise conflict("feed_disabled", f"信息源 {name} 已停用", f"Feed {name} is disabled")
        limit = service.feed_limit(feed, policy)
        db.rollback()
        return policy, limit

    policy, limit = await run_in_threadpool(_prepare)
    body, oversize, seen = await _read_limited(request, limit)
    content_type = request.headers.get("content-type")
    listeners = _listeners(request)

    def _store() -> dict[str, Any]:
        feed = _feed_or_404(db, name)
        now = clock.now()
        if oversize:
            item = service.store_refused(db, feed=feed, prefix=body[: policy.evidence_prefix_bytes],
                                         content_type=content_type, now=now, reason="oversize",
                                         detail=f"{seen} bytes > limit {limit} (pushed by {actor})", size=seen)
            db.commit()
            return {"oversize": True, "item_id": item.id}
        outcome = service.ingest_payload(db, feed=feed, body=body, content_type=content_type, now=now,
                                         source_url=f"push:{actor}", listeners=listeners, policy=policy)
        db.commit()
        return outcome.to_dict()

    result = await run_in_threadpool(_store)
    if result.get("oversize"):
        raise ApiError(413, "too_large", f"内容超过上限 {limit} 字节，已拒收并隔离",
                       f"Payload over the {limit}-byte limit: refused and quarantined",
                       details={"item_id": result["item_id"], "limit": limit})
    return result


# --------------------------------------------------------------------------- warnings


@warnings_router.get("", response_model=list[WarningOut], dependencies=[require(*ALL_ROLES)])
def warnings_list(
    db: DB,
    state: WarningState | None = None,
    hazard: Hazard | None = Query(None, description="灾种；省略则不限（含尚未确定灾种的解除）/ "
                                                    "the hazard; left out: any, also none yet"),
    current: bool = Query(False, description="only the head of each thread"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[Any]:
    stmt = select(Warning)
    if state:
        stmt = stmt.where(Warning.state == state.value)
    if hazard:
        stmt = stmt.where(Warning.hazard == hazard.value)
    if current:
        stmt = stmt.where(Warning.superseded_by_id.is_(None))
    stmt = stmt.order_by(Warning.sent.desc(), Warning.id.desc()).limit(limit).offset(offset)
    return list(db.execute(stmt).scalars())


@warnings_router.get("/atom", dependencies=[require(*ALL_ROLES)], response_class=Response,
                     responses={200: {"description": "生效中的预警（Atom）/ active warnings as an Atom feed",
                                      "content": {"application/atom+xml": {"schema": {"type": "string"}}}}})
def warnings_atom(db: DB, clock: ClockDep, settings: SettingsDep) -> Response:
    rows = db.execute(
        select(Warning).where(Warning.state == WarningState.ACTIVE.value).order_by(Warning.sent.desc()).limit(500)
    ).scalars().all()
    return Response(atom_feed(rows, base_url=settings.public_base_url, now=clock.now()),
                    media_type="application/atom+xml")


@warnings_router.post("/manual", response_model=WarningDetail, status_code=201, responses=errors(404))
def warnings_manual_entry(body: ManualWarningIn, request: Request, db: DB, clock: ClockDep,
                          user: User = require(*STAFF)) -> Any:
    if body.msg_type != "alert" and body.replaces_warning_id is None:
        raise bad_request("replaces_required", "更新或解除预警须指明所替代的预警（replaces_warning_id）",
                          "An update or cancel needs replaces_warning_id")
    try:
        _outcome, w = service.enter_manual(db, body, username=user.username, now=clock.now(),
                                           listeners=_listeners(request))
    except LookupError:
        raise not_found("预警", "Warning", body.replaces_warning_id) from None
    except ValueError as exc:
        db.commit()  # the quarantined evidence is kept
        raise bad_request("invalid_area", f"区域无效：{exc}", f"Invalid area: {exc}") from None
    db.commit()
    return w


def _warning_or_404(db: Session, warning_id: int) -> Warning:
    w = db.get(Warning, warning_id)
    if w is None:
        raise not_found("预警", "Warning", warning_id)
    return w


@warnings_router.get("/{warning_id}", response_model=WarningDetail, dependencies=[require(*ALL_ROLES)],
                     responses=errors(404))
def warnings_get(warning_id: RowId, db: DB) -> Any:
    return _warning_or_404(db, warning_id)


@warnings_router.get("/{warning_id}/versions", response_model=list[WarningOut], dependencies=[require(*ALL_ROLES)],
                     responses=errors(404))
def warnings_versions(warning_id: RowId, db: DB) -> list[Any]:
    w = _warning_or_404(db, warning_id)
    return threads.thread_versions(db, w.thread_id or w.id)


@warnings_router.get("/{warning_id}/cap", dependencies=[require(*ALL_ROLES)], response_class=Response,
                     responses={200: {"description": "CAP 1.2 文档 / the warning as a CAP 1.2 document",
                                      "content": {"application/cap+xml": {"schema": {"type": "string"}}}},
                                **errors(404)})
def warnings_cap(warning_id: RowId, db: DB, settings: SettingsDep) -> Response:
    w = _warning_or_404(db, warning_id)
    refs = []
    for r in w.references or []:  # fill a missing sent time from the stored message, as CAP requires it
        if not r.get("sent"):
            known = db.execute(select(Warning.sent).where(Warning.sender == r.get("sender"),
                                                          Warning.identifier == r.get("identifier"))).scalar()
            r = {**r, "sent": known.isoformat() if isinstance(known, dt.datetime) else None}
        refs.append(r)
    view = _CapView(w, refs)
    return Response(warning_to_cap(view, tz=settings.display_timezone), media_type="application/cap+xml",
                    headers={"Content-Disposition": f'inline; filename="warning-{w.id}.cap.xml"'})


class _CapView:
    """The warning with its references completed, without touching the ORM object."""

    def __init__(self, w: Warning, references: list[Any]) -> None:
        self._w = w
        self.references = references

    def __getattr__(self, name: str) -> Any:
        return getattr(self._w, name)
