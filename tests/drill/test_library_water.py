"""The water and slope drills of the library (reservoir, levee breach, flash flood), each run the way
``jiaoying drill run`` runs it: fast, deterministic, and showing a whole response of the intended hazard —
callouts, an escalation, every ordered measure carried out and lifted, the reports due."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from responses.drill.scenario import ScenarioError, parse_scenario

LIBRARY = Path(__file__).resolve().parents[2] / "config" / "defaults" / "drills"

# scenario → (title, hazards of the runs, sites that must be evacuated, an input kind it must use)
CASES = {
    "reservoir": ("水库大坝出险演练", {"flood"}, {"demo-reservoir-downstream-1"}, "hydro"),
    "levee-breach": ("河道堤防决口演练", {"flood"}, {"demo-river-section-1"}, "manual"),
    "flash-flood": ("山洪地质灾害演练", {"weather", "geohazard"}, {"demo-geohazard-1", "demo-slope-1"}, "geohazard"),
}


def contract(data_dir: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(data_dir / "tools" / "contracts.py"), "report", str(path)],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_library_water_drill(name: str, run_scenario: Any, tmp_path: Path, data_dir: Path) -> None:
    title, hazards, evacuated, kind = CASES[name]
    path = LIBRARY / name / "scenario.yaml"
    assert (LIBRARY / name / "PROVENANCE.md").is_file()
    texts, cpu, wall, results = [], [], [], []
    for run in ("a", "b"):
        t0, w0 = time.process_time(), time.perf_counter()
        results.append(run_scenario(path, tmp_path / run))
        cpu.append(time.process_time() - t0)
        wall.append(time.perf_counter() - w0)
        texts.append((tmp_path / run / "report.json").read_bytes())
    assert texts[0] == texts[1], "the same scenario must give the same report.json"
    assert max(cpu) < 30 and wall[1] < 30, (cpu, wall)
    checked = contract(data_dir, tmp_path / "a" / "report.json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(texts[0])
    assert report["drill"] is True and report["scenario"]["name"] == title
    assert kind in {e["format"] for e in report["scenario"]["events"]}
    assert all(w["status"] == "exercise" for w in report["warnings"])
    assert not report["findings"], report["findings"]

    # runs of the intended hazard, all started and closed within the drill
    run_hazards = {w["hazard"] for w in report["warnings"] if any(r["warning_id"] in
                   {v["id"] for v in w["versions"]} for r in report["runs"])}
    assert report["runs"] and run_hazards == hazards, run_hazards
    assert all(r["state"] == "closed" for r in report["runs"])

    # call and answer: people called, some late, some silent and escalated up the ladder
    k = report["kpis"]
    assert k["callouts"] > 0 and k["escalations"] >= 1 and report["escalations"]
    assert any(c["late"] and c["answered_at"] for c in report["callouts"]), "someone answers late"
    assert any(c["answered_at"] is None for c in report["callouts"]), "someone never answers"
    assert {e["to_role"] for e in report["escalations"]} & {"township_chief", "leader_on_duty"}

    # every measure the plan ordered was carried out and then lifted; the evacuation reached the sites
    assert report["measures"]
    for m in report["measures"]:
        assert m["carried_out_at"] and m["lifted_at"] and m["state"] == "lifted", m
        assert m["carried_out_at"] <= m["lifted_at"]
    assert "evacuation" in {m["kind"] for m in report["measures"]}
    db_sites = _evacuated_sites(results[0])
    assert evacuated <= db_sites, db_sites

    # the reports due: initial phone and written reports for each run, and the final one on closure
    for r in report["runs"]:
        kinds = {p["kind"] for p in report["reports"] if p["run_id"] == r["id"]}
        assert {"initial_phone", "initial_written", "final"} <= kinds, (r["id"], kinds)
    html = results[0].paths["html"].read_text(encoding="utf-8")
    assert title in html and "转移" in html


def _evacuated_sites(result: Any) -> set[str]:
    """The sites named on the drill's evacuation orders, read from the drill's own database."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from geo.models import HazardSite
    from responses.measures.models import MeasureOrder

    engine = create_engine(f"sqlite:///{result.paths['json'].parent / 'drill.sqlite3'}")
    try:
        with Session(engine) as s:
            ids = {i for row in s.execute(select(MeasureOrder.site_ids).where(MeasureOrder.kind == "evacuation"))
                   .scalars() for i in (row or [])}
            return set(s.execute(select(HazardSite.key).where(HazardSite.id.in_(ids))).scalars()) if ids else set()
    finally:
        engine.dispose()


def test_manual_event_is_checked_when_the_scenario_is_loaded(tmp_path: Path) -> None:
    """A phoned-in warning's file is checked like the API checks its body; an event names feed or manual."""
    (tmp_path / "call.json").write_text(json.dumps({"channel": "phone", "source": "镇政府", "hazard": "flood",
                                                    "event": "堤防决口", "headline": "决口"}), encoding="utf-8")
    ok = "name: x\nstart: 2026-08-03T20:00:00+08:00\nduration: 1h\nevents:\n  - at: 5m\n    manual: {file: call.json}\n"
    s = parse_scenario(ok, base_dir=tmp_path)
    assert s.events[0].kind == "manual" and s.events[0].file == "call.json"
    (tmp_path / "bad.json").write_text(json.dumps({"channel": "pigeon", "source": "镇政府", "hazard": "flood",
                                                   "event": "堤防决口", "headline": "决口"}), encoding="utf-8")
    with pytest.raises(ScenarioError) as bad:
        parse_scenario(ok.replace("call.json", "bad.json"), base_dir=tmp_path)
    [p] = bad.value.problems
    assert p.field == "events[0].manual.file" and p.line == 6 and "channel" in p.en
    with pytest.raises(ScenarioError) as both:
        parse_scenario(ok + "    feed: {format: cap, file: call.json}\n", base_dir=tmp_path)
    assert "feed 或 manual" in str(both.value)
    with pytest.raises(ScenarioError) as missing:
        parse_scenario(ok.replace("call.json", "nowhere.json"), base_dir=tmp_path)
    assert missing.value.problems[0].field == "events[0].manual.file"
