"""Drill test helpers: run a scenario the way ``jiaoying drill run`` does, into a temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def run_scenario() -> Any:
    from jiaoying.drill_cli import run_scenario as _run

    def run(path: Path, out_dir: Path, **kwargs: Any) -> Any:
        return _run(path, out_dir, quiet=True, **kwargs)

    return run
