"""Feed registry seeding, the sweep job through the scheduler wiring, targeting through geo, pure rules."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.database import session_scope
from config.runtime import Runtime
from geo.region import seed_default_region
from jiaoying.scheduler import job_specs
from warning import service, threads, versions
from warning.changes import LISTENERS_KEY
from warning.models import Feed, Warning
from warning.policy import IntakePolicy, MissingSecret, default_feeds, expand_env, load_policy


def test_seed_feeds_is_idempotent_and_keeps_admin_edits(db: Session, now: dt.datetime) -> None:
    added = service.seed_feeds(db, now)
    assert added == len(default_feeds()) and added >= 5
    feed = service.feed_by_name(db, "usgs-earthquakes")
    assert feed is not None and feed.url and feed.url.startswith("https://")
    feed.poll_seconds = 999
    assert service.seed_feeds(db, now) == 0
    assert service.feed_by_name(db, "usgs-earthquakes").poll_seconds == 999  # type: ignore[union-attr]
    # No secret is stored in the registry: keys are environment references.
    for f in db.execute(select(Feed)).scalars():
        assert "MAP_KEY}" in (f.url or "") or "api/area" not in (f.url or "")
    db.commit()


def test_policy_and_env_references() -> None:
    policy = load_policy()
    assert policy.max_bytes > 0 and policy.hold_timeout > dt.timedelta(0)
    assert [policy.backoff(i) for i in (1, 2, 3)] == [policy.backoff_seconds * k for k in (1, 2, 4)]
    p = IntakePolicy(failure_backoff_max_seconds=500)
    assert [p.failure_delay(n, 60) for n in (1, 2, 3, 5, 9)] == [60, 120, 240, 500, 500]
    assert expand_env("k=${A_B}", {"A_B": "s3"}) == "k=s3"
    with pytest.raises(MissingSecret):
        expand_env("${NOPE_X}", {})


def test_versions_rules_are_about_sent_time() -> None:
    t = dt.datetime(2026, 7, 20, tzinfo=dt.UTC)
    a = versions.Known(1, "s", "A", "alert", t, "active", 1, 1, None)
    assert versions.decide("alert", t, [], []).action is versions.Action.NEW_THREAD
    assert versions.decide("cancel", t, [], []).action is versions.Action.HOLD
    assert versions.decide("update", t + dt.timedelta(hours=1), [a], [a]) == versions.Decision(
        versions.Action.SUPERSEDE, a)
    assert versions.decide("update", t - dt.timedelta(hours=1), [a], [a]).action is versions.Action.STALE
    assert versions.decide("cancel", t + dt.timedelta(hours=1), [a], [a]).action is versions.Action.CANCEL
    assert versions.is_expired(t, t) and not versions.is_expired(None, t)


def test_sweep_job_runs_from_the_scheduler_wiring(runtime: Runtime, wh, clock) -> None:  # type: ignore[no-untyped-def]
    got: list[object] = []
    runtime.state[LISTENERS_KEY] = [lambda s, change, now: got.append(change)]
    now = runtime.now()
    with session_scope(runtime.session_factory) as s:
        threads.apply_draft(s, wh.draft("E-1", sent=now, expires=now + dt.timedelta(minutes=10)), feed=None,
                            item=None, now=now, targeter=wh.no_targets)
    specs = {spec.name: spec for spec in job_specs(runtime)}
    assert {"feeds_poll", "warnings_sweep"} <= specs.keys()
    clock.advance(dt.timedelta(minutes=11))
    specs["warnings_sweep"].func(runtime)
    specs["warnings_sweep"].func(runtime)  # twice: idempotent
    with session_scope(runtime.session_factory) as s:
        assert s.execute(select(Warning.state)).scalar_one() == "expired"
    assert [c.kind for c in got] == ["expired"]  # type: ignore[attr-defined]
    assert specs["feeds_poll"].func(runtime) == 0  # no feed due, nothing polled


def test_affected_areas_come_from_geo(db: Session, now: dt.datetime, wh) -> None:  # type: ignore[no-untyped-def]
    seed_default_region(db, now)
    feed = wh.make_feed(db, now)
    out = service.ingest_payload(db, feed=feed, body=wh.cap_xml("G-1"), content_type=None, now=now)
    w = db.get(Warning, out.created[0])
    assert w is not None and "error" not in w.affected
    assert w.affected["villages"] and all(len(c) == 12 for c in w.affected["villages"])
    assert w.affected["townships"]
    db.commit()
