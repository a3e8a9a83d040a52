"""``drill compare`` and the "what if" overrides: the demo against the demo with 3-minute answer deadlines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jiaoying.cli import app
from responses.drill.compare import CompareError, compare
from responses.drill.scenario import ScenarioError, load_scenario
from responses.runs.plans import DEFAULT_PLANS_DIR

DRILLS = Path(__file__).resolve().parents[2] / "config" / "defaults" / "drills"


def three_minute_demo(tmp_path: Path) -> Path:
    """The bundled demo with a plans folder whose weather plan answers within 3 minutes at red (not 5)."""
    folder = tmp_path / "what-if"
    folder.mkdir()
    for name in ("red-rainstorm.xml", "cancel.xml"):
        shutil.copy(DRILLS / name, folder / name)
    (folder / "plans").mkdir()
    plan = (DEFAULT_PLANS_DIR / "weather.yaml").read_text(encoding="utf-8")
    red, rest = plan.split("  orange:", 1)
    assert red.count("answer_minutes: 5") == 1
    (folder / "plans" / "weather.yaml").write_text(red.replace("answer_minutes: 5", "answer_minutes: 3")
                                                   + "  orange:" + rest, encoding="utf-8")
    text = (DRILLS / "red-rainstorm.yaml").read_text(encoding="utf-8")
    (folder / "scenario.yaml").write_text(text.replace("duration: 6h\n", "duration: 6h\nplans: plans\n", 1),
                                          encoding="utf-8")
    return folder / "scenario.yaml"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from jiaoying.drill_cli import run_scenario

    tmp = tmp_path_factory.mktemp("compare")
    base = run_scenario(DRILLS / "red-rainstorm.yaml", tmp / "a", quiet=True)
    short = run_scenario(three_minute_demo(tmp), tmp / "b", quiet=True)
    return {"a": base.paths["json"], "b": short.paths["json"]}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_three_minute_deadlines_mean_more_late_answers_and_escalations(reports: dict[str, Path]) -> None:
    a, b = load(reports["a"]), load(reports["b"])
    assert {c["deadline"][11:16] for c in a["callouts"] if c["called_at"].endswith("02:00:00+08:00")} == {"02:05"}
    assert {c["deadline"][11:16] for c in b["callouts"] if c["called_at"].endswith("02:00:00+08:00")} == {"02:03"}
    result = compare(a, b)
    k = {row["key"]: row for row in result["kpis"]}
    assert k["late_answers"]["b"] > k["late_answers"]["a"] and k["late_answers"]["diff"] > 0
    assert k["escalations"]["b"] > k["escalations"]["a"] and k["escalations"]["diff"] > 0
    assert k["answered_in_time"]["diff"] < 0
    assert k["callouts"]["diff"] == k["callouts"]["b"] - k["callouts"]["a"]
    # per township: which township got the late answers and which the escalations
    towns = {t["township"]: {r["key"]: r for r in t["figures"]} for t in result["townships"]}
    late = {code for code, f in towns.items() if f["late_answers"]["diff"] > 0}
    up = {code for code, f in towns.items() if f["escalations"]["diff"] > 0}
    assert late and up
    assert sum(f["late_answers"]["diff"] for f in towns.values()) == k["late_answers"]["diff"]
    assert sum(f["escalations"]["diff"] for f in towns.values()) == k["escalations"]["diff"]
    said = {(s["key"], s["township"]) for s in result["summary"] if s["direction"] == "more"}
    assert {("late_answers", code) for code in late} <= said
    assert {("escalations", code) for code in up} <= said
    assert ("late_answers", "") in said and ("escalations", "") in said  # and overall
    names = {t["township"]: t["name"] for t in result["townships"]}
    assert any(f"{names[code]}：B 的超时应答多" in s["zh"] for s in result["summary"] for code in late)


def test_compare_cli_table_json_and_page(reports: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["drill", "compare", str(reports["a"]), str(reports["b"])], env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    assert "关键指标对比 / KPIs compared" in res.output and "超时应答  late answers" in res.output
    assert "钟家庄街道" in res.output and "B 的升级次数多" in res.output and "more escalations in B" in res.output
    res = runner.invoke(app, ["drill", "compare", str(reports["a"]), str(reports["b"]), "--json", "--out",
                              str(tmp_path / "page")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["schema"] == "jiaoying.drill-compare/1" and data == compare(load(reports["a"]), load(reports["b"]))
    html = (tmp_path / "page" / "compare.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 2 and "时间线 A" in html and "时间线 B" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert "<script" not in html  # nothing fetched, nothing run


def test_compare_refuses_what_is_not_a_report(reports: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "x.json").write_text('{"hello": 1}', encoding="utf-8")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    for other, says in ((tmp_path / "x.json", "is not an audit report"), (tmp_path / "bad.json", "not valid JSON"),
                        (tmp_path / "missing.json", "not found")):
        res = runner.invoke(app, ["drill", "compare", str(reports["a"]), str(other)])
        assert res.exit_code != 0 and says in res.output, res.output
    with pytest.raises(CompareError):
        compare(load(reports["a"]), {"schema": "something else"})


def test_compare_of_a_report_with_itself_changes_nothing(reports: dict[str, Path]) -> None:
    a = load(reports["a"])
    result = compare(a, a)
    assert result["summary"] == []
    assert all(row["diff"] in (0, None) for row in result["kpis"])
    assert all(r["diff"] in (0, None) for t in result["townships"] for r in t["figures"])


def test_plans_override_is_checked(tmp_path: Path) -> None:
    scenario = three_minute_demo(tmp_path)
    assert load_scenario(scenario).scenario.plans == "plans"
    text = scenario.read_text(encoding="utf-8")
    scenario.write_text(text.replace("plans: plans", "plans: nowhere"), encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(scenario)
    assert "plans folder not found" in str(exc.value)


def test_a_broken_plan_stops_the_drill_before_anything_runs(tmp_path: Path) -> None:
    scenario = three_minute_demo(tmp_path)
    (scenario.parent / "plans" / "weather.yaml").write_text("hazard: weather\nlevels: {red: {calls: 3}}\n",
                                                           encoding="utf-8")
    res = CliRunner().invoke(app, ["drill", "run", str(scenario), "--out", str(tmp_path / "out")])
    assert res.exit_code != 0 and "cannot be used" in res.output, res.output
