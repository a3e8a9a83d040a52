"""The fault suite's marker: the multi-process fault tests are heavy and CI runs them in a pytest call of their own."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: a multi-process fault test (run separately by .ci/run)")
