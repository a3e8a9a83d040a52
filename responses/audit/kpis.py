"""The report's key figures, computed only from its rows (pure: no database, no clock).

Definitions (an auditor must be able to redo them by hand from ``report.json``):

- ``warning_to_first_call_s``: for each run, seconds from the first receipt of its warning to the
  run's first call; the largest (slowest) over the runs in the report. None without calls.
- ``callouts``: callout rows (each person called about a run counts once; escalation calls count too).
- ``answered``: rows with an answer. ``answered_in_time``: answered no later than the row's deadline.
- ``answer_rate_in_time``: answered_in_time / callouts, rounded to 4 places (None without callouts).
- ``median_answer_s`` / ``p90_answer_s``: seconds from call to answer over answered rows; the median is
  the middle value (mean of the two middle ones), p90 is the nearest-rank 90th percentile.
- ``escalations``: escalation steps, i.e. the sum of the rows' ``escalated_to`` lengths.
- ``unanswered_after_escalation``: rows that were escalated and whose person never answered.
- ``measures_overdue`` / ``reports_overdue``: rows past their deadline without being carried out / sent,
  or done after it; judged at the report's ``as_of`` time. Cancelled or waived rows are not counted.

A deadline is *missed* when the thing was done after it, or not done and the deadline lies before
``as_of`` (the moment the report describes: the end of a drill, or when the report was made).

A report in which nothing ran (a drill whose warning started no response) keeps these definitions:
the counts are 0, and ``warning_to_first_call_s``, ``answer_rate_in_time``, ``median_answer_s`` and
``p90_answer_s``, which have nothing to be measured over, are null — never 0, which would read as
"instant" or "nobody answered".
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from responses.audit.shape import parse_iso

# A measure cancelled or waived, or a report no longer needed, has no deadline left to miss.
NOT_DUE_STATES = frozenset({"cancelled", "waived"})


def missed(deadline: dt.datetime | None, done_at: dt.datetime | None, as_of: dt.datetime) -> bool:
    """Whether a deadline was missed, as seen at ``as_of``."""
    if deadline is None:
        return False
    if done_at is not None:
        return done_at > deadline
    return as_of > deadline


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def percentile_nearest_rank(values: Sequence[float], pct: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(s)))
    return float(s[rank - 1])


def answer_seconds(row: Mapping[str, Any]) -> float | None:
    called, answered = parse_iso(row.get("called_at")), parse_iso(row.get("answered_at"))
    if called is None or answered is None:
        return None
    return (answered - called).total_seconds()


def compute_kpis(report: Mapping[str, Any]) -> dict[str, Any]:
    """The KPI block of a report, from its warnings, runs, callouts, measures and reports rows."""
    as_of = parse_iso(report.get("as_of") or report.get("generated_at"))
    if as_of is None:
        raise ValueError("a report needs 'as_of' (or 'generated_at') to judge open deadlines")
    callouts: list[Mapping[str, Any]] = list(report.get("callouts") or [])

    received: dict[Any, dt.datetime] = {}
    for w in report.get("warnings") or []:
        times = [parse_iso(w.get("received_at"))] + [parse_iso(v.get("received_at")) for v in w.get("versions") or []]
        known = [t for t in times if t is not None]
        if not known:
            continue
        first = min(known)
        received[w.get("id")] = first
        for v in w.get("versions") or []:  # a run may point at any version of the thread
            received[v.get("id")] = first
    delays: list[float] = []
    for run in report.get("runs") or []:
        calls = [parse_iso(c.get("called_at")) for c in callouts if c.get("run_id") == run.get("id")]
        calls_known = [c for c in calls if c is not None]
        got = received.get(run.get("warning_id"))
        if calls_known and got is not None:
            delays.append((min(calls_known) - got).total_seconds())

    answer_s = [s for s in (answer_seconds(c) for c in callouts) if s is not None]
    in_time = 0
    for c in callouts:
        answered = parse_iso(c.get("answered_at"))
        if answered is not None and not missed(parse_iso(c.get("deadline")), answered, as_of):
            in_time += 1
    n = len(callouts)

    def overdue(rows: Any, deadline_key: str, done_key: str) -> int:
        return sum(
            1 for r in rows or []
            if r.get("state") not in NOT_DUE_STATES
            and missed(parse_iso(r.get(deadline_key)), parse_iso(r.get(done_key)), as_of)
        )

    return {
        "warning_to_first_call_s": max(delays) if delays else None,
        "callouts": n,
        "answered": len(answer_s),
        "answered_in_time": in_time,
        "answer_rate_in_time": round(in_time / n, 4) if n else None,
        "median_answer_s": median(answer_s),
        "p90_answer_s": percentile_nearest_rank(answer_s, 90),
        "escalations": sum(len(c.get("escalated_to") or []) for c in callouts),
        "unanswered_after_escalation": sum(
            1 for c in callouts if c.get("escalated_to") and c.get("answered_at") is None
        ),
        "measures_overdue": overdue(report.get("measures"), "deadline", "carried_out_at"),
        "reports_overdue": overdue(report.get("reports"), "due_at", "sent_at"),
    }


def township_answer_stats(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per township: calls, answers, in-time answers and answer times (for the chart and the page)."""
    as_of = parse_iso(report.get("as_of") or report.get("generated_at"))
    names: Mapping[str, str] = report.get("area_names") or {}
    groups: dict[str, dict[str, Any]] = {}
    for c in report.get("callouts") or []:
        key = c.get("township") or "—"
        g = groups.setdefault(key, {"township": key, "name": names.get(key, key), "callouts": 0, "answered": 0,
                                    "in_time": 0, "answer_s": []})
        g["callouts"] += 1
        s = answer_seconds(c)
        if s is not None:
            g["answered"] += 1
            g["answer_s"].append(s)
            if as_of is not None and not missed(parse_iso(c.get("deadline")), parse_iso(c.get("answered_at")), as_of):
                g["in_time"] += 1
    return [groups[k] for k in sorted(groups)]
