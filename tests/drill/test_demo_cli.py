"""``jiaoying demo``: the bundled demo by default, ``--list`` for the library, ``NAME`` for one of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jiaoying.cli import app
from responses.drill.library import DEMO_NAME, find, list_scenarios


@pytest.fixture(autouse=True)
def _test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIAOYING_ENV", "test")
    monkeypatch.setenv("COLUMNS", "200")  # one table row per scenario


def test_list_shows_every_scenario_with_title_hazard_and_duration() -> None:
    result = CliRunner().invoke(app, ["demo", "--list"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "演练库" in text and "drill library" in text
    assert text.index("名称") < text.index("name")  # Chinese first
    rows = {line.split("│")[1].split()[0]: line for line in text.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}
    assert list(rows) == [e.name for e in list_scenarios()]
    assert "默认" in rows[DEMO_NAME]
    assert "城区暴雨红色预警演练" in rows[DEMO_NAME] and "6h" in rows[DEMO_NAME]
    assert "城市严重内涝演练" in rows["waterlogging"] and "气象灾害" in rows["waterlogging"]
    assert "地震应急演练" in rows["earthquake"] and "地震 earthquake" in rows["earthquake"]
    assert "25h" in rows["earthquake"]
    assert "森林火灾演练" in rows["forest-fire"] and "forest_fire" in rows["forest-fire"]
    for e in list_scenarios():
        assert e.title in rows[e.name]


def test_unknown_name_exits_2_and_lists_the_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "no-such-drill", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "no-such-drill" in text
    for e in list_scenarios():
        assert e.name in text
    assert not (tmp_path / "out").exists(), "nothing is run"


def test_name_runs_that_scenario(tmp_path: Path) -> None:
    out = tmp_path / "ff"
    result = CliRunner().invoke(app, ["demo", "forest-fire", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["scenario"]["name"] == "森林火灾演练" and report["scenario"]["file"] == "scenario.yaml"
    assert [w["hazard"] for w in report["warnings"]] == ["forest_fire"]
    assert "演示完成" in result.output and (out / "report.html").is_file()


def test_demo_alone_still_runs_the_bundled_drill(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["scenario"]["name"] == "城区暴雨红色预警演练"
    assert report["scenario"]["file"] == "red-rainstorm.yaml"


@pytest.mark.parametrize(("args", "expected"), [([], DEMO_NAME), (["earthquake"], "earthquake")])
def test_live_serves_the_named_scenario(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str],
                                        expected: str) -> None:
    import jiaoying.drill_live

    seen: list[dict[str, Any]] = []

    def fake_serve(path: Path, out_dir: Path, *, speed: float, port: int) -> None:
        seen.append({"path": path, "out": out_dir, "speed": speed, "port": port})

    monkeypatch.setattr(jiaoying.drill_live, "serve_live", fake_serve)
    result = CliRunner().invoke(app, ["demo", *args, "--live", "--speed", "120", "--port", "8123",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    entry = find(expected)
    assert entry is not None
    assert seen == [{"path": entry.path, "out": tmp_path, "speed": 120.0, "port": 8123}]
