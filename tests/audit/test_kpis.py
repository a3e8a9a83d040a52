"""The KPIs follow their written definitions, computed from the rows alone."""

from __future__ import annotations

import copy
from typing import Any

from responses.audit.kpis import compute_kpis, median, missed, percentile_nearest_rank
from responses.audit.shape import KPI_KEYS, parse_iso


def test_kpis_from_rows(sample_report: dict[str, Any]) -> None:
    k = compute_kpis(sample_report)
    assert tuple(k) == KPI_KEYS
    assert k["callouts"] == 6
    assert k["answered"] == 4  # callouts 1, 2, 3 and the leader (6)
    assert k["answered_in_time"] == 3  # 3 answered at 13m against a 6m deadline
    assert k["answer_rate_in_time"] == 0.5
    assert k["median_answer_s"] == 120.0  # 60, 60, 180, 720
    assert k["p90_answer_s"] == 720.0
    assert k["escalations"] == 2
    assert k["unanswered_after_escalation"] == 2  # 赵敏 and the township chief
    assert k["measures_overdue"] == 1
    assert k["reports_overdue"] == 1  # the final report was sent after its due time
    assert k["warning_to_first_call_s"] == 60.0


def test_first_call_measured_from_first_receipt_of_thread(sample_report: dict[str, Any]) -> None:
    report = copy.deepcopy(sample_report)
    report["runs"][0]["warning_id"] = 11  # the run last applied the Cancel version
    assert compute_kpis(report)["warning_to_first_call_s"] == 60.0


def test_open_deadline_in_the_future_is_not_overdue(sample_report: dict[str, Any]) -> None:
    report = copy.deepcopy(sample_report)
    report["as_of"] = report["measures"][1]["ordered_at"]  # before the evacuation's deadline
    report["reports"] = []
    k = compute_kpis(report)
    assert k["measures_overdue"] == 0
    report["as_of"] = report["measures"][1]["deadline"]  # exactly at the deadline: not yet missed
    assert compute_kpis(report)["measures_overdue"] == 0


def test_late_answer_changes_in_time_count(sample_report: dict[str, Any]) -> None:
    report = copy.deepcopy(sample_report)
    report["callouts"][0]["answered_at"] = report["callouts"][0]["deadline"]  # on the deadline: in time
    assert compute_kpis(report)["answered_in_time"] == 3
    report["callouts"][1]["answered_at"] = report["callouts"][3]["called_at"].replace("02:01", "02:07")
    assert compute_kpis(report)["answered_in_time"] == 2


def test_empty_report() -> None:
    k = compute_kpis({"as_of": "2026-07-20T02:00:00+08:00"})
    assert k["callouts"] == 0 and k["answer_rate_in_time"] is None and k["median_answer_s"] is None
    assert k["warning_to_first_call_s"] is None and k["escalations"] == 0


def test_statistics_helpers() -> None:
    assert median([3, 1, 2]) == 2 and median([4, 1, 2, 3]) == 2.5 and median([]) is None
    assert percentile_nearest_rank(list(range(1, 11)), 90) == 9
    assert percentile_nearest_rank([5], 90) == 5
    t = parse_iso("2026-07-20T02:00:00+08:00")
    later = parse_iso("2026-07-20T02:05:00+08:00")
    assert t is not None and later is not None
    assert missed(t, later, later) and not missed(later, t, later) and not missed(None, None, later)
    assert missed(t, None, later) and not missed(later, None, t)


def test_kpis_when_nothing_ran(sample_report: dict[str, Any]) -> None:
    """No run: counts are 0, and the times and the rate, which have nothing to be measured over, are null."""
    report = {**sample_report, "runs": [], "callouts": [], "escalations": [], "measures": [], "reports": []}
    assert compute_kpis(report) == {
        "warning_to_first_call_s": None, "callouts": 0, "answered": 0, "answered_in_time": 0,
        "answer_rate_in_time": None, "median_answer_s": None, "p90_answer_s": None, "escalations": 0,
        "unanswered_after_escalation": 0, "measures_overdue": 0, "reports_overdue": 0,
    }
