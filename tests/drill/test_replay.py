"""``drill from-run``: a run made through the live server, replayed as a drill, gives the same calls and answers.

The live run is the whole server as a duty room runs it (uvicorn, the scheduler ticking every second, the
local fake Twilio calling back): a red CAP pushed to the feed, answers pressed on the fake gateway's keypad
(and one SMS reply) at different moments, one village head who never answers and is escalated to the
township chief, who then answers; the leader's decision and a measure carried out through the API. The
plan in force (an admin's edit, as the console saves it) has a one-minute answer window and no redials,
so the escalation happens within about a minute of real time.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from config.database import make_engine, make_session_factory, session_scope
from config.settings import Settings
from config.users import User, hash_password
from jiaoying.app import create_app
from jiaoying.cli_common import upgrade_and_seed
from jiaoying.drill_setup import drill_jobs, drill_runtime
from jiaoying.gateway import with_local_gateway
from responses.audit.builder import build_report
from responses.drill.replay import ReplayError, build_replay, duration_text
from responses.drill.runner import run_drill
from responses.drill.scenario import load_scenario
from responses.messaging.fake_twilio.server import ThreadedServer
from responses.runs.plans import DEFAULT_PLANS_DIR
from tests.live import free_port, push_red_until_delivered, wait_for

TZ = dt.timezone(dt.timedelta(hours=8))


def quick_weather_plan() -> str:
    """The bundled weather plan with a one-minute answer window at red and no redials."""
    text = (DEFAULT_PLANS_DIR / "weather.yaml").read_text(encoding="utf-8")
    red, rest = text.split("  orange:", 1)
    red = red.replace("answer_minutes: 5", "answer_minutes: 1").replace(
        "retries: {count: 3, interval_minutes: 2}", "retries: {count: 0, interval_minutes: 1}")
    assert "answer_minutes: 1" in red and "count: 0" in red
    return red + "  orange:" + rest


def _t(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _key(c: dict[str, Any]) -> tuple[str, str]:
    return c["phone"], c["role"]


def _by_person(report: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in sorted(report["callouts"], key=lambda c: (c["called_at"], c["id"])):
        out.setdefault(_key(c), []).append(c)
    return out


def _live_run(tmp_path: Path) -> tuple[Settings, int]:
    """Make the run through the served app; returns the settings (its database) and the run id."""
    from responses.runs.service import save_plan_document

    port = free_port()
    settings = Settings(
        env="test", public_base_url=f"http://127.0.0.1:{port}",
        database={"url": f"sqlite:///{tmp_path / 'live.db'}"},
        scheduler={"enabled": True, "tick_seconds": 1.0},
        security={"secret_key": "replay-" + "k" * 40},
    )
    upgrade_and_seed(settings)
    engine = make_engine(settings.database.url)
    now = dt.datetime.now(dt.UTC)
    with session_scope(make_session_factory(engine)) as s:
        for username, role in (("duty", "duty_officer"), ("boss", "leader")):
            s.add(User(username=username, display_name=username, password_hash=hash_password("pass-123456"),
                       role=role, created_at=now))
        doc, errors = save_plan_document(s, hazard="weather", source=quick_weather_plan(), fmt="yaml",
                                         note="短时限 / short deadlines", actor="user:admin", now=now)
        assert doc is not None, errors
    engine.dispose()
    settings, gateway = with_local_gateway(settings)
    assert gateway is not None
    server = ThreadedServer(create_app(settings), port=port).start()
    try:
        with httpx.Client(base_url=settings.public_base_url, timeout=30) as c:
            def login(user: str) -> dict[str, str]:
                token = c.post("/auth/token", data={"username": user, "password": "pass-123456"}).json()
                return {"Authorization": f"Bearer {token['access_token']}"}

            duty, boss = login("duty"), login("boss")
            run_id, rows, board = push_red_until_delivered(c, duty, prefix="replay", timeout=90)
            assert len(rows) > 50

            def press(number: str) -> None:
                r = httpx.post(f"{gateway.url}/_fake/keypress", json={"number": number, "digits": "1"}, timeout=30)
                assert r.status_code == 200 and "已确认收到" in r.json()["response"], r.text

            villages = [r for r in rows if r["tier"] == "village"]
            silent = next(r for r in villages if r["role"] == "village_head")
            by_sms = [r for r in villages if r["role"] == "grid_worker"][:2]
            others = [r for r in rows if r is not silent and r not in by_sms]
            first, second = others[: len(others) // 2], others[len(others) // 2:]
            for row in first:  # half the people press 1 at once
                press(row["attempts"][0]["number"])
            for row in by_sms:  # two grid workers reply by SMS
                r = httpx.post(f"{gateway.url}/_fake/reply", json={"from": row["attempts"][0]["number"],
                                                                   "body": "收到"}, timeout=30)
                assert r.status_code == 200, r.text
            time.sleep(12)
            for row in second:  # the other half some seconds later (one-minute window: still in time)
                press(row["attempts"][0]["number"])
            # the leader decides, and one measure is carried out
            consultation = wait_for("the consultation", lambda: c.get("/consultations", headers=duty).json())
            cid = consultation[0]["id"] if isinstance(consultation, list) else consultation["items"][0]["id"]
            r = c.post(f"/consultations/{cid}/decisions", json={"final_level": "red", "reason": "会商决定"},
                       headers=boss)
            assert r.status_code == 201, r.text
            measures = c.get("/measures", params={"run_id": run_id}, headers=duty).json()
            school = next(m for m in measures if m["kind"] == "stop_school")
            r = c.post(f"/measures/{school['id']}/actions/carry_out", headers=duty,
                       json={"report": {"schools_suspended": 3}, "via": "phone"})
            assert r.status_code == 200, r.text
            # the silent village head is escalated to the township chief when the minute is up; the chief answers
            def escalation_delivered() -> dict[str, Any] | None:
                for row in board()["callouts"]:
                    if row.get("reason") == "escalation" and row["attempts"] and all(
                            a["status"] == "delivered" for a in row["attempts"]):
                        return row  # type: ignore[no-any-return]
                return None

            chief = wait_for("the escalation call", escalation_delivered, timeout=120)
            time.sleep(3)
            press(chief["attempts"][0]["number"])
            wait_for("the chief's answer", lambda: any(r["answers"] for r in board()["callouts"]
                                                       if r["id"] == chief["id"]), timeout=30)
            time.sleep(2)
    finally:
        server.stop()
        gateway.stop()
    return settings, run_id


def test_a_live_run_replayed_gives_the_same_calls_and_answers(tmp_path: Path) -> None:
    settings, run_id = _live_run(tmp_path)
    engine = make_engine(settings.database.url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            now = dt.datetime.now(dt.UTC)
            replay = build_replay(s, run_id, now=now, tz=settings.tz)
            real = build_report(s, now=now, tz=settings.tz, run_ids=[run_id])
            with pytest.raises(ReplayError):
                build_replay(s, 9999, now=now, tz=settings.tz)
    finally:
        engine.dispose()
    out = tmp_path / "replay"
    replay.write(out)
    assert replay.gaps == [], replay.gaps
    scenario = yaml.safe_load((out / "scenario.yaml").read_text(encoding="utf-8"))
    # the raw payload, verbatim, with the digest it arrived with
    [payload] = json.loads((out / "replay.json").read_text(encoding="utf-8"))["payloads"]
    import hashlib
    assert hashlib.sha256((out / payload["file"]).read_bytes()).hexdigest() == payload["sha256"]
    assert scenario["events"][0]["feed"]["format"] == "cap"
    assert (out / "plans" / "weather.yaml").is_file() and scenario["plans"] == "plans"
    rules = scenario["behaviour"]["answers"]
    assert any(r.get("channel") == "sms" for r in rules) and any(r.get("after") == "never" and r["match"]
                                                                for r in rules)
    assert scenario["behaviour"]["decision"]["level"] == "red"
    carried = [m for m in scenario["behaviour"]["measure_rules"] if m["after"] != "never"]
    assert [m["match"]["kind"] for m in carried] == ["stop_school"]

    loaded = load_scenario(out / "scenario.yaml")
    drill_settings = Settings(env="test", security={"secret_key": "replay-" + "k" * 40})
    rt = drill_runtime(tmp_path / "drill.db", loaded.scenario.start, drill_settings)
    try:
        result = run_drill(loaded, rt, drill_jobs(rt), out_dir=tmp_path / "report")
    finally:
        rt.close()
    again = result.report

    assert again["kpis"]["callouts"] == real["kpis"]["callouts"] == len(real["callouts"])
    answered = {_key(c) for c in real["callouts"] if c["answered_at"]}
    escalated = {_key(c) for c in real["callouts"] if c["escalated_to"]}
    assert escalated and len(answered) > 50
    assert {_key(c) for c in again["callouts"] if c["answered_at"]} == answered
    assert {_key(c) for c in again["callouts"] if c["escalated_to"]} == escalated
    assert {_key(c) for c in again["callouts"] if c["answered_at"] is None} == \
        {_key(c) for c in real["callouts"] if c["answered_at"] is None}
    mine, theirs = _by_person(real), _by_person(again)
    assert mine.keys() == theirs.keys()
    for who, calls in mine.items():
        assert len(theirs[who]) == len(calls), who
        for a, b in zip(calls, theirs[who], strict=True):
            ta, tb = _t(a["answered_at"]), _t(b["answered_at"])
            assert (ta is None) == (tb is None), who
            if ta is not None and tb is not None:
                assert abs((ta - tb).total_seconds()) < 60, (who, a["answered_at"], b["answered_at"])
                assert a["answer_channel"] == b["answer_channel"], who
            assert a["late"] == b["late"], who
    for key in ("answered", "answered_in_time", "escalations", "unanswered_after_escalation", "measures_overdue"):
        assert again["kpis"][key] == real["kpis"][key], key
    # the measure carried out through the API is carried out in the replay at the same minute
    [real_school] = [m for m in real["measures"] if m["carried_out_at"]]
    [replayed] = [m for m in again["measures"] if m["carried_out_at"]]
    assert replayed["kind"] == real_school["kind"]
    assert abs((_t(replayed["carried_out_at"]) - _t(real_school["carried_out_at"])).total_seconds()) < 60


def test_duration_text_round_trips_through_the_scenario_format() -> None:
    from responses.drill.scenario import parse_duration

    for seconds in (0, 5, 60, 125, 3600, 3725, 86400 + 61):
        text = duration_text(dt.timedelta(seconds=seconds))
        assert parse_duration(text) == dt.timedelta(seconds=seconds), text
    assert duration_text(dt.timedelta(seconds=59.9)) == "59s"  # whole seconds, never rounded up past a deadline


def test_the_demo_replayed_from_its_own_records_gives_the_same_report(run_scenario: Any, tmp_path: Path) -> None:
    """Judgements, decision, every measure's carry-out and lift, the leader on duty's answers by phone: the
    replay of the bundled demo's run (read from the drill's own database) reproduces its KPIs and rows."""
    from typer.testing import CliRunner

    from jiaoying.cli import app

    demo = Path(__file__).resolve().parents[2] / "config" / "defaults" / "drills" / "red-rainstorm.yaml"
    first = run_scenario(demo, tmp_path / "demo").report
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'demo' / 'drill.sqlite3'}"
    res = runner.invoke(app, ["drill", "from-run", "1", "--database", db, "--out", str(tmp_path / "replay")])
    assert res.exit_code == 0, res.output
    assert "scenario.yaml" in res.output
    scenario = yaml.safe_load((tmp_path / "replay" / "scenario.yaml").read_text(encoding="utf-8"))
    assert {j["department"] for j in scenario["behaviour"]["judgements"]} == {"meteorology", "water", "emergency"}
    assert all(m["after"] == "40m" and m["lift_after"] == "40m" for m in scenario["behaviour"]["measure_rules"])
    leader = [r for r in scenario["behaviour"]["answers"] if r["match"].get("role") == "leader_on_duty"]
    assert leader and all(r["channel"] == "phone" and r["match"]["call"] == "escalation" for r in leader)
    again = run_scenario(tmp_path / "replay" / "scenario.yaml", tmp_path / "again").report
    assert again["kpis"] == first["kpis"]
    cols = ("person", "role", "answer_channel", "late", "state")
    assert [[c[k] for k in cols] for c in again["callouts"]] == [[c[k] for k in cols] for c in first["callouts"]]
    for a, b in zip(first["callouts"], again["callouts"], strict=True):  # the demo's provider faults delayed a
        for k in ("called_at", "answered_at"):  # few first calls by a second; the replay has none
            ta, tb = _t(a[k]), _t(b[k])
            assert (ta is None) == (tb is None) and (ta is None or abs((ta - tb).total_seconds()) < 60), (a, b)
    mcols = ("kind", "ordered_at", "carried_out_at", "lifted_at", "state")
    assert [[m[k] for k in mcols] for m in again["measures"]] == [[m[k] for k in mcols] for m in first["measures"]]
    # a run that does not exist is refused with a clear message
    res = runner.invoke(app, ["drill", "from-run", "77", "--database", db, "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "no run with id 77" in res.output


def test_a_manual_warning_is_replayed_as_a_manual_event(tmp_path: Path) -> None:
    """A warning phoned in and typed in (POST /warnings/manual) comes back as the body the officer entered."""
    from fastapi.testclient import TestClient

    from warning.schemas import ManualWarningIn

    settings = Settings(env="test", database={"url": f"sqlite:///{tmp_path / 'real.db'}"},
                        scheduler={"enabled": False}, security={"secret_key": "manual-" + "k" * 40})
    upgrade_and_seed(settings)
    engine = make_engine(settings.database.url)
    factory = make_session_factory(engine)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with session_scope(factory) as s:
        s.add(User(username="duty", display_name="值班员", password_hash=hash_password("pass-123456"),
                   role="duty_officer", created_at=now))
    entry = {"channel": "phone", "source": "东街街道", "received_from": "街道值班室 0356-1234567", "hazard": "weather",
             "event": "暴雨", "level": "red", "headline": "东街街道报告：暴雨红色预警",
             "expires": (now + dt.timedelta(hours=6)).isoformat(), "area_codes": ["140502001000"],
             "area_description": "东街街道"}
    try:
        with TestClient(create_app(settings)) as client:
            token = client.post("/auth/token", data={"username": "duty", "password": "pass-123456"}).json()
            duty = {"Authorization": f"Bearer {token['access_token']}"}
            r = client.post("/warnings/manual", json=entry, headers=duty)
            assert r.status_code == 201, r.text
            runs = client.get("/responses/runs", headers=duty).json()
        assert runs, "a red warning starts a run at once"
        end = dt.datetime.now(dt.UTC)
        with session_scope(factory) as s:
            replay = build_replay(s, runs[0]["id"], now=end, tz=settings.tz)
            real = build_report(s, now=end, tz=settings.tz, run_ids=[runs[0]["id"]])
    finally:
        engine.dispose()
    assert replay.gaps == []
    replay.write(tmp_path / "replay")
    scenario = yaml.safe_load((tmp_path / "replay" / "scenario.yaml").read_text(encoding="utf-8"))
    [event] = scenario["events"]
    typed = ManualWarningIn.model_validate_json((tmp_path / "replay" / event["manual"]["file"]).read_bytes())
    assert typed.headline == entry["headline"] and typed.area_codes == ["140502001000"]
    loaded = load_scenario(tmp_path / "replay" / "scenario.yaml")
    drt = drill_runtime(tmp_path / "drill.db", loaded.scenario.start, Settings(env="test"))
    try:
        again = run_drill(loaded, drt, drill_jobs(drt)).report
    finally:
        drt.close()
    assert [r["level"] for r in again["runs"]] == ["red"]
    first_calls = sorted(_key(c) for c in real["callouts"] if c["escalated_from"] is None)
    assert first_calls and sorted(_key(c) for c in again["callouts"] if c["escalated_from"] is None) == first_calls
