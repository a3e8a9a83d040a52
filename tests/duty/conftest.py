"""Duty tests: the small region of the measure tests (one township, three villages, a reservoir, an orange
flood warning), loaded as the reports tests load it; the roster helpers are in ``helpers.py``."""

from __future__ import annotations

from tests.reports.conftest import region

__all__ = ["region"]
