"""Plans as data: the defaults are valid, and a broken file gets every error named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from responses.runs.plans import DEFAULT_PLANS_DIR, ConsultationMode, load_dir, load_file, parse_text
from warning.draft import Hazard, Level

ROOT = Path(__file__).resolve().parents[2]


def _broken(tmp_path: Path) -> Path:
    text = (DEFAULT_PLANS_DIR / "weather.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    wanted = {"answer_minutes: 5": "answer_minutes: -5",
              "departments: [meteorology, water, natural_resources, emergency]":
                  "departments: [meteorology, 天文局, natural_resources, emergency]",
              "- kind: stop_school": "- kind: stop_schooling"}
    expected_lines = {}
    for needle, repl in wanted.items():
        i = next(n for n, ln in enumerate(lines) if needle in ln)
        lines[i] = lines[i].replace(needle, repl)
        expected_lines[repl.split(":")[0].strip("- ")] = i + 1
    path = tmp_path / "weather.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_default_plans_cover_every_hazard_and_level() -> None:
    ps = load_dir(DEFAULT_PLANS_DIR)
    assert ps.ok, [str(e) for e in ps.errors]
    assert set(ps.plans) == set(Hazard)
    for plan in ps.plans.values():
        assert set(plan.levels) == set(Level)
        red, orange, yellow = plan.entry("red"), plan.entry("orange"), plan.entry("yellow")
        assert red.consultation.mode is not ConsultationMode.BEFORE
        assert (red.calls.answer_minutes, orange.calls.answer_minutes, yellow.calls.answer_minutes) == (5, 15, 30)
        assert red.reports.followups_local == ["08:00", "17:00"]
        assert red.response_level == "I" and plan.entry("blue").response_level == "IV"


def test_three_errors_are_all_named_with_line_and_field(tmp_path: Path) -> None:
    res = load_file(_broken(tmp_path))
    assert res.plan is None and len(res.errors) == 3
    by_field = {e.field: e for e in res.errors}
    assert set(by_field) == {"answer_minutes", "departments", "kind"}
    text = (tmp_path / "weather.yaml").read_text(encoding="utf-8").splitlines()
    assert "-5" in text[by_field["answer_minutes"].line - 1]
    assert "天文局" in text[by_field["departments"].line - 1]
    assert "stop_schooling" in text[by_field["kind"].line - 1]
    assert by_field["answer_minutes"].path == "levels.red.calls.answer_minutes"


def test_cli_validate_names_all_three_and_exits_nonzero(tmp_path: Path) -> None:
    path = _broken(tmp_path)
    env = {**os.environ, "JIAOYING_DATABASE__URL": f"sqlite:///{tmp_path / 'x.db'}"}
    r = subprocess.run([sys.executable, "-m", "jiaoying", "plans", "validate", str(path)], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode != 0
    for needle in ("levels.red.calls.answer_minutes", "levels.red.consultation.departments",
                   "levels.red.measures.0.kind", "天文局", "3 处错误"):
        assert needle in r.stderr, r.stderr
    assert r.stderr.count(str(path)) == 3
    ok = subprocess.run([sys.executable, "-m", "jiaoying", "plans", "validate"], capture_output=True, text=True,
                        env=env, cwd=tmp_path, timeout=120)
    assert ok.returncode == 0, ok.stderr


def test_cli_missing_path_exits_2(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "jiaoying", "plans", "validate", str(tmp_path / "nope.yaml")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "找不到" in r.stderr


@pytest.mark.parametrize(("mutate", "needle"), [
    (lambda s: s.replace("mode: parallel", "mode: before", 1), "starts the response at once"),
    (lambda s: s.replace("answer_minutes: 30", "answer_minutes: 90", 1), "longer than at the lower level"),
    (lambda s: s.replace("followups_local: ['08:00', '17:00']", "followups_local: ['8 am']", 1), "HH:MM"),
    (lambda s: s.replace("escalation: [site, village, township, leader_on_duty]",
                         "escalation: [township, village]", 1), "must climb"),
    (lambda s: s.replace("hazard: weather", "hazard: tornado", 1), "hazard"),
    (lambda s: s + "surprise: 1\n", "surprise"),
])
def test_semantic_rules(mutate: object, needle: str) -> None:
    text = (DEFAULT_PLANS_DIR / "weather.yaml").read_text(encoding="utf-8")
    res = parse_text(mutate(text), "weather.yaml")  # type: ignore[operator]
    assert res.plan is None
    assert any(needle in (e.message_en + e.path) for e in res.errors), [str(e) for e in res.errors]


def test_syntax_error_has_a_line() -> None:
    res = parse_text("hazard: weather\nlevels: [\n", "x.yaml")
    assert res.plan is None and res.errors[0].line is not None


def test_folder_missing_a_hazard_and_duplicates(tmp_path: Path) -> None:
    for name in ("weather", "flood"):
        (tmp_path / f"{name}.yaml").write_text((DEFAULT_PLANS_DIR / f"{name}.yaml").read_text(encoding="utf-8"),
                                               encoding="utf-8")
    (tmp_path / "weather2.yaml").write_text((DEFAULT_PLANS_DIR / "weather.yaml").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    errs = load_dir(tmp_path).errors
    msgs = " ".join(e.message_en for e in errs)
    assert "already defined" in msgs
    assert all(f"no plan for hazard {h}" in msgs for h in ("earthquake", "geohazard", "forest_fire"))


def test_toml_plans_validate_with_paths(tmp_path: Path) -> None:
    res = parse_text('hazard = "weather"\ntitle = "x"\nversion = "1"\n[levels.red]\nresponse_level = "V"\n',
                     "w.toml")
    assert res.plan is None
    paths = {e.path for e in res.errors}
    assert "levels.red.response_level" in paths and "levels.red.calls" in paths
