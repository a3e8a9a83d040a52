"""Every real sample either normalizes or is reported as not a hazard warning, with a reason; none crashes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from warning.draft import ParseError
from warning.feeds import FORMATS, ParserContext, get_parser
from warning.normalize import result_to_json

FORMAT_OF_DIR = {"cap": "cap", "usgs": "usgs", "cenc": "cenc", "quakeml": "quakeml", "firms": "firms",
                 "hydrology": "hydro", "geohazard": "geohazard", "nws": "nws"}


def _kind(root: Path, f: Path) -> str:
    """The format folder a sample sits in (samples/cap/extra/x.cap is a CAP sample)."""
    return f.relative_to(root).parts[0]


def _files(data_dir: Path, supported: bool) -> list[Path]:
    root = data_dir / "samples"
    out = []
    for f in sorted(root.rglob("*")):
        if not f.is_file() or f.name == "PROVENANCE.md" or f.suffix == ".xsd":
            continue
        if (_kind(root, f) in FORMAT_OF_DIR) == supported:
            out.append(f)
    return out


def test_every_supported_sample_normalizes_or_says_why(data_dir: Path, tmp_path: Path) -> None:
    files = _files(data_dir, supported=True)
    assert len(files) >= 30
    combined: dict[str, list] = {"warnings": [], "skipped": []}
    total_warnings = 0
    for f in files:
        result = get_parser(FORMAT_OF_DIR[_kind(data_dir / "samples", f)])(f.read_bytes(), ParserContext())
        assert result.warnings or result.skipped, f"{f.name}: neither warnings nor a reason"
        for s in result.skipped:
            assert s.reason.strip(), f"{f.name}: empty skip reason"
        doc = result_to_json(result)
        json.dumps(doc, ensure_ascii=False)
        combined["warnings"] += doc["warnings"]
        combined["skipped"] += doc["skipped"]
        total_warnings += len(result.warnings)
    assert total_warnings >= 30
    out = tmp_path / "all.json"
    out.write_text(json.dumps(combined, ensure_ascii=False), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(data_dir / "tools" / "contracts.py"), "normalize", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_amber_alert_is_reported_not_a_hazard(data_dir: Path) -> None:
    r = get_parser("cap")((data_dir / "samples/cap/us_amber-alert_cap-atom.atom").read_bytes(), ParserContext())
    assert not r.warnings
    assert "not a hazard warning" in r.skipped[0].reason and "Child Abduction" in r.skipped[0].reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_unsupported_samples_never_crash_any_parser(data_dir: Path, fmt: str) -> None:
    """Feeds of kinds without an adapter (BMKG, GDACS, forecasts …) fed to any adapter: a ParseError or a
    result, never another exception — a misconfigured feed is quarantined, not crashed."""
    files = _files(data_dir, supported=False)
    assert files
    for f in files:
        try:
            r = get_parser(fmt)(f.read_bytes(), ParserContext())
        except ParseError as exc:
            assert exc.reason
        else:
            assert r.warnings or r.skipped or r.links, f"{fmt} on {f.name}: silent"


def test_unknown_format_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as e:
        get_parser("telex")
    assert e.value.reason == "unknown_format"
