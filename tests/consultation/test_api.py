"""The consultation and response APIs with their role checks, on a real app."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from config.clock import VirtualClock
from config.database import session_scope
from config.runtime import Runtime
from responses.runs.plans import DEFAULT_PLANS_DIR
from warning.models import Warning


def _open(client: TestClient, rt: Runtime, clock: VirtualClock, make_warning: Callable[..., Warning],
          headers: dict[str, str], level: str = "yellow") -> dict[str, Any]:
    with session_scope(rt.session_factory) as s:
        w = make_warning(s, now=clock.now(), level=level)
    r = client.post("/consultations", headers=headers, json={
        "warning_id": w.id, "departments": ["气象局", "水利局", "自然资源局", "应急管理局"], "deadline_minutes": 60})
    assert r.status_code == 201, r.text
    return r.json()


def _judgement(dept: str, level: str = "orange") -> dict[str, Any]:
    return {"department": dept, "assessed_level": level, "trend": "rising", "confidence": "high", "text": "研判"}


def test_analyst_writes_only_for_own_department(client: TestClient, login: Callable[..., dict[str, str]],
                                                sqlite_runtime: Runtime, clock: VirtualClock,
                                                make_warning: Callable[..., Warning]) -> None:
    c = _open(client, sqlite_runtime, clock, make_warning, login("duty_officer"))
    water = login("analyst", "水利局")
    r = client.post(f"/consultations/{c['id']}/judgements", headers=water, json=_judgement("气象局"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_department"
    assert "水利局" in r.json()["error"]["message"]
    r = client.post(f"/consultations/{c['id']}/judgements", headers=water, json=_judgement("water"))
    assert r.status_code == 201 and r.json()["department"] == "water"
    viewer = login("viewer")
    r = client.post(f"/consultations/{c['id']}/judgements", headers=viewer, json=_judgement("water"))
    assert r.status_code == 403


def test_viewer_cannot_decide_leader_can_and_the_run_starts(
        client: TestClient, login: Callable[..., dict[str, str]], sqlite_runtime: Runtime, clock: VirtualClock,
        make_warning: Callable[..., Warning]) -> None:
    c = _open(client, sqlite_runtime, clock, make_warning, login("duty_officer"))
    body = {"final_level": "orange", "reason": "会商结论"}
    for role in ("viewer", "analyst", "duty_officer"):
        h = login(role, "气象局" if role == "analyst" else None)
        r = client.post(f"/consultations/{c['id']}/decisions", headers=h, json=body)
        assert r.status_code == 403, role
    leader = login("leader")
    r = client.post(f"/consultations/{c['id']}/decisions", headers=leader, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["response_level"] == "II"
    runs = client.get("/responses/runs", headers=login("viewer")).json()
    assert len(runs) == 1 and runs[0]["trigger"] == "decision" and runs[0]["level"] == "orange"
    detail = client.get(f"/responses/runs/{runs[0]['id']}", headers=leader).json()
    assert detail["plan_snapshot"]["hazard"] == "weather"
    assert [e["action"] for e in detail["events"]] == ["run.started"]
    # a revision without a reason is refused; with one it is version 2 and the old one is kept
    r = client.post(f"/consultations/{c['id']}/decisions", headers=leader, json={"final_level": "red"})
    assert r.status_code == 409 and r.json()["error"]["message"]
    r = client.post(f"/consultations/{c['id']}/decisions", headers=leader,
                    json={"final_level": "red", "reason": "雨势加大"})
    assert r.status_code == 201 and r.json()["version"] == 2
    got = client.get(f"/consultations/{c['id']}", headers=leader).json()
    assert [d["version"] for d in got["decisions"]] == [1, 2]
    # dismissing a decided consultation is an illegal transition
    r = client.post(f"/consultations/{c['id']}/dismiss", headers=leader, json={"reason": "x"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"
    # closing then closed through the API
    rid = runs[0]["id"]
    assert client.post(f"/responses/runs/{rid}/close", headers=leader, json={}).status_code == 409
    assert client.post(f"/responses/runs/{rid}/closing", headers=leader, json={"reason": "解除"}).json()[
        "state"] == "closing"
    r = client.post(f"/responses/runs/{rid}/close", headers=leader, json={})
    # closed at once, or refused while measures ordered by the run are still being lifted
    assert (r.status_code, r.json().get("state") or r.json()["error"]["code"]) in {
        (200, "closed"), (409, "measures_open")}, r.text


def test_dismiss_needs_a_reason(client: TestClient, login: Callable[..., dict[str, str]], sqlite_runtime: Runtime,
                                clock: VirtualClock, make_warning: Callable[..., Warning]) -> None:
    c = _open(client, sqlite_runtime, clock, make_warning, login("duty_officer"))
    leader = login("leader")
    assert client.post(f"/consultations/{c['id']}/dismiss", headers=leader, json={"reason": ""}).status_code == 422
    r = client.post(f"/consultations/{c['id']}/dismiss", headers=leader, json={"reason": "雨带东移，不影响本区"})
    assert r.status_code == 200 and r.json()["state"] == "dismissed"
    assert client.get("/responses/runs", headers=leader).json() == []


def test_plan_edit_is_validated_and_never_changes_a_running_snapshot(
        client: TestClient, login: Callable[..., dict[str, str]], sqlite_runtime: Runtime, clock: VirtualClock,
        make_warning: Callable[..., Warning]) -> None:
    admin = login("admin")
    c = _open(client, sqlite_runtime, clock, make_warning, login("duty_officer"))
    client.post(f"/consultations/{c['id']}/decisions", headers=login("leader"), json={"final_level": "orange"})
    run = client.get("/responses/runs", headers=admin).json()[0]
    source = (DEFAULT_PLANS_DIR / "weather.yaml").read_text(encoding="utf-8")
    bad = source.replace("answer_minutes: 15", "answer_minutes: zero", 1).replace("version: '2026.1'", "version: ''")
    r = client.put("/responses/plans/weather", headers=admin, json={"source": bad})
    assert r.status_code == 422 and len(r.json()["error"]["details"]) == 2
    assert client.put("/responses/plans/weather", headers=login("leader"), json={"source": source}).status_code == 403
    edited = source.replace("answer_minutes: 15", "answer_minutes: 10", 1).replace("'2026.1'", "'2026.2'")
    r = client.put("/responses/plans/weather", headers=admin, json={"source": edited, "note": "本地调整"})
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "edited" and r.json()["plan"]["levels"]["orange"]["calls"]["answer_minutes"] == 10
    detail = client.get(f"/responses/runs/{run['id']}", headers=admin).json()
    assert detail["entry_snapshot"]["calls"]["answer_minutes"] == 15  # frozen
    assert client.get("/responses/plans", headers=login("viewer")).status_code == 200


def test_roster_api(client: TestClient, login: Callable[..., dict[str, str]], clock: VirtualClock) -> None:
    officer = login("duty_officer")
    now = clock.now()
    body = {"shifts": [{"starts_at": (now - dt.timedelta(hours=2)).isoformat(),
                        "ends_at": (now + dt.timedelta(hours=22)).isoformat(),
                        "leader": {"name": "王局长", "phone": "13800000001"}, "officers": [{"name": "李明"}]}]}
    assert client.post("/responses/roster/shifts", headers=login("viewer"), json=body).status_code == 403
    assert client.post("/responses/roster/shifts", headers=officer, json=body).status_code == 201
    duty = client.get("/responses/roster/on-duty", headers=login("viewer")).json()
    assert duty["leader"]["name"] == "王局长" and [o["name"] for o in duty["officers"]] == ["李明"]
    csv = "start,end,leader,officers\n2026-07-25 08:00,2026-07-26 08:00,,孙强\nbad,row,,\n"
    r = client.post("/responses/roster/import", headers=officer, files={"file": ("duty.csv", csv.encode())})
    assert r.status_code == 201 and r.json()["rows_ok"] == 1 and r.json()["errors"][0]["row"] == 3
    r = client.post("/responses/roster/import", headers=officer, files={"file": ("duty.pdf", b"%PDF")})
    assert r.status_code == 400 and r.json()["error"]["message"]
