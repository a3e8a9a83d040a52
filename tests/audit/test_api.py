"""The audit report through the API: the same report as the CLI, in three formats, for auditors only."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from config.database import session_scope
from config.eventlog import record
from config.runtime import Runtime
from responses.audit.builder import build_report
from responses.audit.kpis import compute_kpis
from responses.audit.render import to_json
from responses.audit.shape import TABLES
from responses.callouts.models import Answer, Callout
from responses.runs.models import ResponseRun
from warning.models import Warning

AUDITORS = ("admin", "leader", "duty_officer", "viewer")


def _run(s: Session, t0: dt.datetime, *, drill: bool) -> int:
    """A warning, its run, one callout answered late and one never answered."""
    w = Warning(sender="cq@cma.gov.cn", identifier=f"API-{drill}", msg_type="alert",
                status="exercise" if drill else "actual", drill=drill, hazard="weather", event="暴雨", level="red",
                sent=t0, received_at=t0, updated_at=t0, version=1, state="active")
    s.add(w)
    s.flush()
    w.thread_id = w.id
    record(s, now=t0, action="warning.received", entity_type="warning", entity_id=w.id, actor="feed:test")
    run = ResponseRun(number=f"2026-{9000 + drill}", thread_id=w.id, open_thread_id=w.id, warning_id=w.id,
                      hazard="weather", level="red", response_level="I", trigger="automatic", plan_version="t",
                      plan_snapshot={}, entry_snapshot={}, state="active", drill=drill, started_at=t0,
                      started_by="rule:test", updated_at=t0)
    s.add(run)
    s.flush()
    record(s, now=t0, action="run.started", entity_type="response_run", entity_id=run.id, actor="rule:test")
    for name, answered in (("张伟", 12), ("赵敏", None)):
        c = Callout(key=f"{run.id}:{name}", run_id=run.id, name=name, role="grid_worker", tier="village", rank=0,
                    areas=["140502001201"], area_names=[], reason="plan", level="red",
                    state="answered" if answered else "calling", numbers=["+8613900000001"], answer_minutes=5,
                    retries_total=1, retry_interval_minutes=2, attempts_made=1, started_at=t0,
                    deadline_at=t0 + dt.timedelta(minutes=5),
                    answered_at=t0 + dt.timedelta(minutes=answered) if answered else None, drill=drill,
                    created_at=t0, updated_at=t0)
        s.add(c)
        s.flush()
        record(s, now=t0, action="callout.started", entity_type="callout", entity_id=c.id, actor="rule:test")
        if answered:
            s.add(Answer(callout_id=c.id, channel="keypress", kind="received", late=True,
                         at=t0 + dt.timedelta(minutes=answered), entered_by="person:1"))
    return run.id


def _populate(rt: Runtime) -> dict[str, int]:
    t0 = rt.clock.now() - dt.timedelta(hours=1)
    with session_scope(rt.session_factory) as s:
        return {"real": _run(s, t0, drill=False), "drill": _run(s, t0, drill=True)}


def test_report_json_for_each_auditor(client: TestClient, sqlite_runtime: Runtime,
                                      login: Callable[..., dict[str, str]]) -> None:
    ids = _populate(sqlite_runtime)
    url = f"/audit/runs/{ids['real']}/report"
    assert client.get(url).status_code == 401
    refused = client.get(url, headers=login("analyst", "水利局"))
    assert refused.status_code == 403 and "analyst" not in refused.json()["error"]["details"]["allowed"]
    with session_scope(sqlite_runtime.session_factory) as s:
        expected = build_report(s, now=sqlite_runtime.clock.now(), tz=sqlite_runtime.settings.tz,
                                run_ids=[ids["real"]])
    for role in AUDITORS:
        r = client.get(url, headers=login(role))
        assert r.status_code == 200, (role, r.text)
        doc: dict[str, Any] = r.json()
        assert doc == json.loads(to_json(expected))
    # the figures are computed from the rows, and the row flags from the deadlines
    assert doc["drill"] is False and doc["scope"]["run_ids"] == [ids["real"]]
    assert doc["kpis"] == compute_kpis(doc)
    assert doc["kpis"]["callouts"] == 2 and doc["kpis"]["answered"] == 1 and doc["kpis"]["answered_in_time"] == 0
    assert all(row["late"] for row in doc["callouts"])
    assert doc["findings"] == []  # a run started: nothing to explain
    # a drill run is reported too, as a drill
    drill = client.get(f"/audit/runs/{ids['drill']}/report", headers=login("viewer")).json()
    assert drill["drill"] is True and "演练" in drill["title"]
    assert {c["id"] for c in drill["callouts"]}.isdisjoint({c["id"] for c in doc["callouts"]})


def test_report_files(client: TestClient, sqlite_runtime: Runtime, login: Callable[..., dict[str, str]]) -> None:
    ids = _populate(sqlite_runtime)
    h = login("viewer")
    base = f"/audit/runs/{ids['drill']}/report"
    doc = client.get(base, headers=h).json()

    raw = client.get(f"{base}.json", headers=h)
    assert raw.status_code == 200 and "attachment" in raw.headers["content-disposition"]
    assert json.loads(raw.content.decode("utf-8")) == doc
    assert "张伟" in raw.content.decode("utf-8")  # UTF-8, not ASCII escapes, as report.json on disk

    page = client.get(f"{base}.html", headers=h)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert doc["title"] in page.text and "<svg" in page.text and "赵敏" in page.text

    book = client.get(f"{base}.xlsx", headers=h)
    assert book.status_code == 200 and book.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(book.content))
    title, columns = TABLES["callouts"]
    rows = list(wb[title].iter_rows(values_only=True))
    assert list(rows[0]) == [c.zh for c in columns]
    assert sorted(r[0] for r in rows[1:]) == sorted(c["id"] for c in doc["callouts"])

    assert client.get(f"{base}.xlsx", headers=login("analyst", "水利局")).status_code == 403


def test_unknown_run(client: TestClient, login: Callable[..., dict[str, str]]) -> None:
    for suffix in ("", ".json", ".html", ".xlsx"):
        r = client.get(f"/audit/runs/424242/report{suffix}", headers=login("admin"))
        assert r.status_code == 404, suffix
        err = r.json()["error"]
        assert err["code"] == "not_found" and "424242" in err["message"] and err["details"] == {"run_id": 424242}
