"""Caches notice what another instance wrote: two apps, each with its own engine, on one database (SQLite
file and PostgreSQL schema). A plan edited through one is the plan in force on the other at its next read,
and a region import through one is in the other's region index at its next match. The version checks that
make this so cost a primary-key or indexed read; the parse they save costs much more (measured below)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from config.clock import VirtualClock
from config.database import make_engine, make_session_factory, session_scope
from config.runtime import Runtime
from geo.region import region_index, run_import, seed_default_region
from geo.targets import MatchTarget
from jiaoying.app import create_app
from responses.runs import service as run_service
from responses.runs.plans import parse_text
from tests.conftest import make_user
from tests.conftest import test_settings as settings_for_test

PASSWORD = "correct-horse-9"


def _twin(engine: Engine) -> Engine:
    if engine.dialect.name == "sqlite":
        return make_engine(str(engine.url))
    with engine.connect() as c:
        schema = c.execute(text("SELECT current_schema()")).scalar_one()
    return create_engine(engine.url, connect_args={"options": f"-csearch_path={schema}"})


@pytest.fixture
def twin(engine: Engine) -> Iterator[Engine]:
    other = _twin(engine)
    yield other
    other.dispose()


def _client(engine: Engine, clock: VirtualClock) -> TestClient:
    rt = Runtime(settings_for_test(), engine, make_session_factory(engine), clock)
    return TestClient(create_app(rt.settings, runtime=rt, scheduler=False))


def test_a_plan_edited_through_one_instance_is_in_force_on_the_other(engine: Engine, twin: Engine,
                                                                     clock: VirtualClock) -> None:
    make_user(make_session_factory(engine), "admin1", "admin", password=PASSWORD)
    with _client(engine, clock) as a, _client(twin, clock) as b:
        ha, hb = ({"Authorization": "Bearer " + c.post("/auth/token", data={"username": "admin1",
                                                                             "password": PASSWORD}).json()[
            "access_token"]} for c in (a, b))
        before = b.get("/responses/plans/flood", headers=hb).json()
        assert before["source"] == "default" and before["version"] == "2026.1"
        with session_scope(make_session_factory(twin)) as s:
            found = run_service.plan_source(s, "flood")
        assert found is not None
        source = found[0].replace("version: '2026.1'", "version: '2026.7'")
        for n, version in enumerate(("2026.7", "2026.8"), start=1):
            edited = source.replace("2026.7", version)
            r = a.put("/responses/plans/flood", headers=ha, json={"source": edited, "format": "yaml"})
            assert r.status_code == 200, r.text
            seen = b.get("/responses/plans/flood", headers=hb).json()  # B read it before: no stale copy
            assert (seen["source"], seen["revision"], seen["version"]) == ("edited", n, f"{version}+r{n}")
            with session_scope(make_session_factory(twin)) as s:
                plan, tag = run_service.current_plan(s, "flood")
            assert plan is not None and plan.version == version and tag == f"{version}+r{n}"


def test_a_region_import_through_one_instance_reaches_the_others_index(engine: Engine, twin: Engine,
                                                                       clock: VirtualClock) -> None:
    fa, fb = make_session_factory(engine), make_session_factory(twin)
    with session_scope(fa) as s:
        seed_default_region(s, clock.now())
    with session_scope(fb) as s:
        index = region_index(s)
        lon, lat = index.area("140502006001").representative_point()  # type: ignore[misc,union-attr]
        version = index.version
        assert "新隐患点" not in {h.name for h in index.match(MatchTarget(points=((lat, lon, 0.2),))).sites}
    data = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "gh-x", "properties": {"name": "新隐患点", "kind": "geohazard_point"},
         "geometry": {"type": "Point", "coordinates": [lon, lat]}}]}
    with session_scope(fa) as s:
        r = run_import(s, "sites", "geojson", json.dumps(data).encode(), now=clock.now(), actor="t", source="s")
        assert r.applied and r.version == version + 1
    with session_scope(fb) as s:
        index = region_index(s)
        assert index.version == version + 1
        hit = index.match(MatchTarget(points=((lat, lon, 0.2),)))
        assert "新隐患点" in {h.name for h in hit.sites}


def test_the_version_checks_cost_little_next_to_what_they_save(engine: Engine, clock: VirtualClock) -> None:
    f = make_session_factory(engine)
    with session_scope(f) as s:
        seed_default_region(s, clock.now())
        source, fmt = run_service.plan_source(s, "flood") or ("", "")
        run_service.save_plan_document(s, hazard="flood", source=source.replace("2026.1", "2026.9"), fmt=fmt,
                                       note="", actor="t", now=clock.now())
    n = 50
    with session_scope(f) as s:
        region_index(s), run_service.current_plan(s, "flood")  # warm
        t = time.perf_counter()
        for _ in range(n):
            region_index(s)
        region_ms = (time.perf_counter() - t) / n * 1000
        t = time.perf_counter()
        for _ in range(n):
            plan, _tag = run_service.current_plan(s, "flood")
        plan_ms = (time.perf_counter() - t) / n * 1000
    t = time.perf_counter()
    for _ in range(5):
        parse_text(source, "flood.yaml", fmt)
    parse_ms = (time.perf_counter() - t) / 5 * 1000
    print(f"{engine.dialect.name}: region index with its version check {region_ms:.2f} ms, plan in force with its "
          f"newest-revision read {plan_ms:.2f} ms, a plan parse {parse_ms:.1f} ms")
    assert plan is not None and plan.version == "2026.9"
    assert region_ms < 5 and plan_ms < 5
    assert plan_ms < parse_ms / 3
