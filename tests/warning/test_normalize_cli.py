"""`jiaoying normalize`: the fixed JSON shape (checked by the shared contract checker) and exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jiaoying", "normalize", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("fmt,rel", [
    ("cap", "cap/eccc_thunderstorm_update_en-fr_2012.cap"),
    ("cap", "cap/us_amber-alert_cap-atom.atom"),
    ("nws", "nws/nws_api_alerts_active_zone_flood-watch_update_2019-12.json"),
    ("quakeml", "quakeml/iris_fdsn_event_quakeml-1.2_2events.xml"),
])
def test_output_shape_holds(data_dir: Path, tmp_path: Path, fmt: str, rel: str) -> None:
    proc = run("--format", fmt, str(data_dir / "samples" / rel))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["warnings"] or doc["skipped"]
    out = tmp_path / "out.json"
    out.write_text(proc.stdout, encoding="utf-8")
    check = subprocess.run([sys.executable, str(data_dir / "tools/contracts.py"), "normalize", str(out)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout


def test_chinese_cap_targets_the_region(tmp_path: Path, data_dir: Path) -> None:
    f = tmp_path / "zh.xml"
    f.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>T-1</identifier><sender>晋城市气象台</sender>
<sent>2026-07-20T08:00:00+08:00</sent><status>Exercise</status><msgType>Alert</msgType><scope>Public</scope>
<info><language>zh-CN</language><category>Met</category><event>暴雨红色预警</event><urgency>Immediate</urgency>
<severity>Extreme</severity><certainty>Likely</certainty><headline>暴雨红色预警</headline>
<area><areaDesc>城区</areaDesc><geocode><valueName>areaCode</valueName><value>140502</value></geocode></area>
</info></alert>""", encoding="utf-8")
    proc = run("--format", "cap", str(f))
    assert proc.returncode == 0, proc.stderr
    (w,) = json.loads(proc.stdout)["warnings"]
    assert (w["status"], w["level"], w["hazard"], w["languages"]) == ("exercise", "red", "weather", ["zh-CN"])
    assert w["geocodes"] == [{"name": "areaCode", "value": "140502000000"}]
    assert set(w["affected"]) >= {"villages", "townships", "sites"}
    try:
        import geo.region  # noqa: F401
    except ImportError:
        return
    assert w["affected"]["townships"], "with the default region a district code reaches its townships"


def test_bad_input_exits_2_with_a_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes('<?xml version="1.0" encoding="UTF-8"?><alert>暴雨</alert>'.encode("gbk"))
    proc = run("--format", "cap", str(bad))
    assert proc.returncode == 2
    assert "wrong_encoding" in proc.stderr and "无法解析" in proc.stderr
    proc = run("--format", "telex", str(bad))
    assert proc.returncode == 2 and "unknown format" in proc.stderr
    proc = run("--format", "cap", str(tmp_path / "missing.xml"))
    assert proc.returncode == 2 and "no such file" in proc.stderr
