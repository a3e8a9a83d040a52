"""Drills end to end: escalation up the ladder, late answers, KPIs from rows, nothing sent for real,
and the bundled demo is deterministic and fast."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from config.settings import Settings
from responses.audit.kpis import answer_seconds, compute_kpis
from responses.messaging.fake_twilio import FakeTwilioServer

DATA = Path(__file__).resolve().parent / "data"
DEMO = Path(__file__).resolve().parents[2] / "config" / "defaults" / "drills" / "red-rainstorm.yaml"


def contract(data_dir: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(data_dir / "tools" / "contracts.py"), "report", str(path)],
                          capture_output=True, text=True, check=False)


def by_person(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for c in report["callouts"]:
        out.setdefault(c["person"], []).append(c)
    return out


def test_silent_people_escalate_to_chief_then_leader(run_scenario: Any, tmp_path: Path, data_dir: Path) -> None:
    result = run_scenario(DATA / "escalation.yaml", tmp_path)
    report = result.report
    assert contract(data_dir, result.paths["json"]).returncode == 0
    assert report["drill"] is True
    assert all(w["status"] == "exercise" for w in report["warnings"])
    people = by_person(report)
    ids = {c["id"]: c for c in report["callouts"]}
    chief_calls = {c["id"] for c in people["东街镇长"]}
    for silent in ("沉默村长", "沉默网格员"):
        [row] = people[silent]
        assert row["answered_at"] is None and row["late"] is True
        assert row["escalated_to"], f"{silent} was not escalated"
        assert set(row["escalated_to"]) <= chief_calls, "the first step up is the township chief"
        # the chief does not answer either: the leader on duty is called next, and the report says so
        chief_row = ids[row["escalated_to"][0]]
        assert chief_row["answered_at"] is None and chief_row["escalated_to"]
        leader_row = ids[chief_row["escalated_to"][0]]
        assert leader_row["role"] == "leader_on_duty" and leader_row["answered_at"] is not None
        assert leader_row["answer_channel"] == "duty_officer"
    steps = {(e["from_person"], e["to_role"]) for e in report["escalations"]}
    assert ("沉默村长", "township_chief") in steps and ("东街镇长", "leader_on_duty") in steps
    [late] = [c for c in people["迟到网格员"] if c["answered_at"]]
    assert late["late"] is True and late["answer_channel"] == "sms_reply" and answer_seconds(late) == 540
    [on_time] = people["准时村长"]
    assert on_time["late"] is False and answer_seconds(on_time) == 60
    # the KPIs agree with a recount from the callout rows
    k = report["kpis"]
    assert k == compute_kpis(report)
    rows = report["callouts"]
    answered = [c for c in rows if c["answered_at"]]
    assert k["callouts"] == len(rows) and k["answered"] == len(answered)
    assert k["answered_in_time"] == sum(1 for c in answered if not c["late"])
    assert k["escalations"] == sum(len(c["escalated_to"]) for c in rows) >= 3
    assert k["unanswered_after_escalation"] == sum(1 for c in rows if c["escalated_to"] and not c["answered_at"])
    assert k["unanswered_after_escalation"] >= 3  # two villagers and their chief
    html = result.paths["html"].read_text(encoding="utf-8")
    assert "沉默村长" in html and "升级" in html


def test_drill_never_calls_a_real_provider(run_scenario: Any, tmp_path: Path) -> None:
    """Even with Twilio credentials configured (here pointing at a server that records every request)."""
    with FakeTwilioServer() as real:
        settings = Settings(env="test", twilio={"account_sid": "AC" + "0" * 32, "auth_token": "fake-auth-token",
                                                "from_number": "+15005550006", "api_base_url": real.url})
        assert settings.twilio.configured
        result = run_scenario(DATA / "escalation.yaml", tmp_path, settings=settings)
        assert result.messages_sent > 0, "the drill's own fake provider got the messages"
        assert real.fake.requests == [] and real.fake.messages == {} and real.fake.calls == {}
    sent_to = {s.to for s in result.notifier.sent}
    assert sent_to and all(n.startswith("+86139") for n in sent_to)


def test_bundled_demo_is_deterministic_and_fast(run_scenario: Any, tmp_path: Path, data_dir: Path) -> None:
    texts, cpu, wall = [], [], []
    for name in ("a", "b"):
        t0, w0 = time.process_time(), time.perf_counter()
        result = run_scenario(DEMO, tmp_path / name)
        cpu.append(time.process_time() - t0)
        wall.append(time.perf_counter() - w0)
        texts.append(result.paths["json"].read_bytes())
    assert texts[0] == texts[1], "the same scenario must give the same report.json"
    report = json.loads(texts[0])
    assert contract(data_dir, tmp_path / "a" / "report.json").returncode == 0
    assert report["drill"] and report["kpis"]["callouts"] > 0 and report["kpis"]["escalations"] > 0
    assert any(c["late"] and c["answered_at"] for c in report["callouts"]), "the demo has late answers"
    assert any(c["answered_at"] is None for c in report["callouts"]), "the demo has people who never answer"
    assert [v["msg_type"] for v in report["warnings"][0]["versions"]] == ["alert", "cancel"]
    # The alert is drawn over the south-east of 城区 and also names the district (140502), as CMA alerts
    # name their issuing office: the polygon decides, so the rest of the district is not called.
    villages = {c["township"] for c in report["callouts"] if c["tier"] == "village"}
    assert {"140502001000", "140502004000", "140502006000"} <= villages  # 东街、北街、钟家庄 under the polygon
    # 西上庄、开发区、北石店 lie north and west of it; 南村镇 is in the neighbouring county
    assert villages.isdisjoint({"140502007000", "140502009000", "140502100000", "140525100000"}), villages
    # processor time, so that other work on a shared machine does not decide the result; and the wall
    # clock of one run (the second: imports are warm), which is what a newcomer waits for
    assert max(cpu) < 30, cpu
    assert wall[1] < 30, wall

