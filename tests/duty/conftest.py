"""Duty tests: the small region of the measure tests (one township, three villages, a reservoir, an orange
flood warning); the roster helpers are in ``helpers.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

_NAME = "jiaoying_tests_measure_region"


def _load() -> ModuleType:
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).parents[1] / "measures" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def region() -> ModuleType:
    return _load()
