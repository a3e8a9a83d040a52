from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from config.database import make_engine, make_session_factory
from geo.models import Area
from jiaoying.cli import app


def test_cli_import_all_or_nothing_then_skip_invalid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     bad_areas_geojson: bytes) -> None:
    db = tmp_path / "cli.db"
    monkeypatch.setenv("JIAOYING_DATABASE__URL", f"sqlite:///{db}")
    monkeypatch.setenv("JIAOYING_ENV", "test")
    src = tmp_path / "grids.geojson"
    src.write_bytes(bad_areas_geojson)
    runner = CliRunner()
    r = runner.invoke(app, ["geo", "import", "areas", str(src)])
    assert r.exit_code == 2, r.output
    engine = make_engine(f"sqlite:///{db}")
    with make_session_factory(engine)() as s:
        n = s.execute(select(func.count(Area.id))).scalar_one()
    assert n > 170  # the default region was seeded, nothing else
    r = runner.invoke(app, ["geo", "import", "areas", str(src), "--skip-invalid"])
    assert r.exit_code == 0, r.output
    with make_session_factory(engine)() as s:
        assert s.execute(select(func.count(Area.id))).scalar_one() == n + 2
    engine.dispose()
    assert runner.invoke(app, ["geo", "import", "areas", str(tmp_path / "missing.geojson")]).exit_code == 2
    assert runner.invoke(app, ["geo", "import", "areas", str(src), "--crs", "BD09"]).exit_code == 2
    m = runner.invoke(app, ["geo", "match", "--default-region", "--geocode", "140502001"])
    assert m.exit_code == 0 and "140502001001" in m.output
