"""One feed's source is down (HTTP 500) and another's answers garbage, while a third serves a valid CAP
warning: one pass of the scheduler's jobs on PostgreSQL ingests the good feed's warning, the broken feeds'
health says what is wrong (``/feeds/health``: consecutive failures and the last error; the garbage held
in quarantine), and neither stops the other feeds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config.database import make_engine, make_session_factory, session_scope
from config.settings import Settings
from config.users import User, hash_password
from jiaoying import migrate
from jiaoying.app import create_app
from jiaoying.scheduler import run_all_once
from responses.messaging.fake_twilio.server import ThreadedServer
from tests.faults.fresh_pg import fresh_database
from warning import fetch
from warning.models import Feed, FeedItem, Warning
from warning.policy import IntakePolicy

pytestmark = pytest.mark.postgres

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "cap" / "se-smhi_17-info_sv.cap"
GARBAGE = b"\x00\x01<html><body>502 Bad Gateway from an upstream proxy</body>" + bytes(range(256))


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database("jy_fault_feeds") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


def _sources() -> ThreadedServer:
    hits: dict[str, int] = {}

    async def handle(request: Request) -> Response:
        which = request.path_params["which"]
        hits[which] = hits.get(which, 0) + 1
        if which == "down":
            return Response("internal error", status_code=500)
        if which == "garbage":
            return Response(GARBAGE, media_type="application/xml")
        return Response(SAMPLE.read_bytes(), media_type="application/cap+xml")

    app = Starlette(routes=[Route("/{which}.xml", handle)])
    server = ThreadedServer(app)
    server.hits = hits  # type: ignore[attr-defined]
    return server.start()


def test_one_feed_down_other_goes_on(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # retries kept short so the pass stays quick; the retrying itself is the intake tests' subject
    monkeypatch.setattr(fetch, "load_policy", lambda: IntakePolicy(retries=1, backoff_seconds=0.1,
                                                                   timeout_seconds=5.0))
    sources = _sources()
    engine = make_engine(pg_url)
    now = dt.datetime.now(dt.UTC)
    try:
        with session_scope(make_session_factory(engine)) as s:
            for name in ("down", "garbage", "good"):
                s.add(Feed(name=f"feed-{name}", title=name, adapter="cap", url=f"{sources.url}/{name}.xml",
                           poll_seconds=60, headers={}, enabled=True, options={}, created_at=now, updated_at=now))
            s.add(User(username="admin", display_name="管理员", password_hash=hash_password("admin-pass-123"),
                       role="admin", created_at=now))
        settings = Settings(env="test", database={"url": pg_url}, scheduler={"enabled": False},
                            security={"secret_key": "feeds-" + "k" * 40})
        app = create_app(settings)
        with TestClient(app) as c:
            run_all_once(app.state.runtime)
            token = c.post("/auth/token", data={"username": "admin", "password": "admin-pass-123"}).json()
            h = {"Authorization": f"Bearer {token['access_token']}"}
            r = c.get("/feeds/health", headers=h)
            assert r.status_code == 200, r.text
            health = {f["name"]: f for f in r.json()}
            q = c.get("/feeds/quarantine", headers=h, params={"feed": "feed-garbage"})
            assert q.status_code == 200, q.text
        with session_scope(make_session_factory(engine)) as s:
            good_id = s.execute(select(Feed.id).where(Feed.name == "feed-good")).scalar_one()
            items = dict(s.execute(select(Feed.name, FeedItem.state).join(Feed, Feed.id == FeedItem.feed_id)).all())
            warnings = s.execute(select(Warning).where(Warning.feed_id == good_id)).scalars().all()
        down, garbage, good = health["feed-down"], health["feed-garbage"], health["feed-good"]
        print(f"\nfeeds after one pass: down {down['consecutive_failures']} failure(s), last error "
              f"{down['last_error']!r}; garbage {garbage['quarantined']} item(s) quarantined; good "
              f"{len(warnings)} warning(s) ingested, healthy={good['healthy']}")
        assert sources.hits.get("down", 0) >= 1 and sources.hits.get("good") == 1  # type: ignore[attr-defined]
        assert not down["healthy"] and down["consecutive_failures"] == 1 and "500" in (down["last_error"] or "")
        assert not garbage["healthy"] and garbage["quarantined"] == 1
        assert len(q.json()) == 1  # the duty officer finds the garbage in the feed's quarantine
        assert items["feed-garbage"] == "quarantined"
        assert good["healthy"] and good["consecutive_failures"] == 0 and good["items_count"] == 1
        assert warnings  # the good feed's warnings were ingested (one per area of the sample)
    finally:
        sources.stop()
        engine.dispose()
