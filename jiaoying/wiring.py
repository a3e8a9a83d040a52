"""What the packages of ``responses`` tell each other, connected in one place.

A run lives in ``responses.runs``; what follows it — callouts, measure orders, information reports —
lives in packages above, which ``runs`` must not import. They are connected here instead, explicitly,
once per process (``install`` is idempotent): the server, the worker, the CLI and the tests call it.
"""

from __future__ import annotations

from responses.callouts import service as callout_service
from responses.contacts import roster_service
from responses.duty import handovers
from responses.measures import service as measure_service
from responses.reports import service as report_service
from responses.runs import service as run_service


def install() -> None:
    # Order matters: measures first (the reports draft from them), then reports, then the callouts.
    run_service.follow(measure_service.on_run_event)
    run_service.follow(report_service.on_run_event)
    run_service.follow(callout_service.on_run_event)
    run_service.guard_close(measure_service.close_guard)
    roster_service.follow(handovers.follow_roster)
