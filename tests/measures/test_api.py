"""The /measures and /reports APIs: role checks, transitions, reports, notices, errors in Chinese."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from config.database import session_scope
from config.runtime import Runtime
from responses.runs import service
from responses.runs.core import Trigger
from warning.models import Warning

from .conftest import EVACUATION, STOP_SCHOOL, make_region  # noqa: TID252


def _run(rt: Runtime) -> int:
    with session_scope(rt.session_factory) as s:
        r = make_region(s, rt.now())
        w = s.get(Warning, r.warning_id)
        run, _ = service.start_run(s, warning=w, level="orange", areas=w.affected, trigger=Trigger.DECISION,
                                   actor="user:leader", now=rt.now(), measures=[EVACUATION, STOP_SCHOOL])
        assert run is not None
        return run.id


def test_measures_api(client: TestClient, login: Callable[..., dict[str, str]], sqlite_runtime: Runtime) -> None:
    run_id = _run(sqlite_runtime)
    assert client.get("/measures").status_code == 401
    assert client.get("/reports").status_code == 401
    viewer, duty, leader = login("viewer"), login("duty_officer"), login("leader")
    client.cookies.clear()  # each request below speaks for the role in its own header
    got = client.get(f"/measures?run_id={run_id}", headers=viewer)
    assert got.status_code == 200
    by_kind = {m["kind"]: m for m in got.json()}
    evac, school = by_kind["evacuation"], by_kind["stop_school"]
    assert evac["state"] == "ordered" and evac["state_zh"] == "已下达" and "carry_out" in evac["allowed_actions"]

    r = client.post(f"/measures/{evac['id']}/actions/acknowledge", headers=viewer, json={})
    assert r.status_code == 403
    r = client.post(f"/measures/{evac['id']}/actions/carry_out", headers=duty, json={"report": {"bogus": 1}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_report" and r.json()["error"]["message"]
    r = client.post(f"/measures/{evac['id']}/actions/carry_out", headers=duty,
                    json={"report": {"people_evacuated": 120}, "via": "phone", "note": "电话确认"})
    assert r.status_code == 200, r.text
    assert r.json()["gap"]["gap"] == 10 and r.json()["report"]["expected"] == 130

    r = client.post(f"/measures/{school['id']}/actions/waive", headers=duty, json={"reason": "x"})
    assert r.status_code == 403 and "带班领导" in r.json()["error"]["message"]
    r = client.post(f"/measures/{school['id']}/actions/confirm_lifted", headers=duty, json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"
    r = client.post(f"/measures/{school['id']}/actions/order_lift", headers=leader, json={"reason": "雨停"})
    assert r.status_code == 200 and r.json()["state"] == "lifting"

    text = client.get(f"/measures/{evac['id']}/notice", headers=duty)
    assert text.status_code == 200 and "人员紧急转移避险的通告" in text.json()["text"]
    lift = client.get(f"/measures/{school['id']}/notice?which=lift", headers=duty)
    assert lift.status_code == 200 and "解除" in lift.json()["text"] and "雨停" in lift.json()["text"]
    assert client.get(f"/measures/{evac['id']}/notice?which=lift", headers=duty).status_code == 409
    assert client.get(f"/measures/{evac['id']}/notice", headers=viewer).status_code == 403

    r = client.post(f"/measures/{school['id']}/assign", headers=duty, json={"name": "李科长", "phone": "12345"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_phone"
    r = client.post(f"/measures/{school['id']}/assign", headers=duty, json={"name": "李科长", "phone": "13900000002"})
    assert r.status_code == 200 and r.json()["person_phone"] == "+8613900000002"

    detail = client.get(f"/measures/{evac['id']}", headers=viewer).json()
    assert [e["action"] for e in detail["events"]][:2] == ["measure.ordered", "measure.order_sent"]
    assert "measure.carry_out" in [e["action"] for e in detail["events"]]

    r = client.post("/measures", headers=duty, json={"run_id": run_id, "kind": "closure", "area_codes": ["x"],
                                                     "responsible_unit": "区文旅局", "deadline_minutes": 30})
    assert r.status_code == 403
    r = client.post("/measures", headers=leader, json={"run_id": run_id, "kind": "custom", "area_codes": ["x"],
                                                       "responsible_unit": "区文旅局", "deadline_minutes": 30})
    assert r.status_code == 400 and r.json()["error"]["code"] == "label_required"
    r = client.post("/measures", headers=leader, json={
        "run_id": run_id, "kind": "closure", "area_codes": ["140502001001"], "responsible_unit": "区文旅局",
        "deadline_minutes": 30})
    assert r.status_code == 201 and r.json()["area_names"] == ["上村"]
    assert client.get("/measures/99999", headers=viewer).status_code == 404

    # the run cannot close through the runs API while measures are open
    client.post(f"/responses/runs/{run_id}/closing", headers=leader, json={"reason": "解除"})
    r = client.post(f"/responses/runs/{run_id}/close", headers=leader, json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "measures_open"
    assert len(r.json()["error"]["details"]) == 3


def test_reports_api(client: TestClient, login: Callable[..., dict[str, str]], sqlite_runtime: Runtime) -> None:
    run_id = _run(sqlite_runtime)
    viewer, duty = login("viewer"), login("duty_officer")
    client.cookies.clear()
    reps = client.get(f"/reports?run_id={run_id}", headers=viewer).json()
    kinds = sorted(r["kind"] for r in reps)
    assert kinds == ["followup", "initial_phone", "initial_written"]
    phone = next(r for r in reps if r["kind"] == "initial_phone")
    assert phone["due_local"] == "2026年7月20日 02:30" and phone["kind_zh"] == "电话初报"
    assert client.put(f"/reports/{phone['id']}/text", headers=viewer, json={"text": "x"}).status_code == 403
    r = client.put(f"/reports/{phone['id']}/text", headers=duty, json={"text": "已电话报告市应急管理局。"})
    assert r.status_code == 200 and r.json()["edited"] is True
    r = client.post(f"/reports/{phone['id']}/sent", headers=duty, json={"via": "carrier pigeon"})
    assert r.status_code == 422
    r = client.post(f"/reports/{phone['id']}/sent", headers=duty, json={"via": "phone", "recipient": "市应急管理局"})
    assert r.status_code == 200 and r.json()["state"] == "sent" and r.json()["late"] is False
    r = client.put(f"/reports/{phone['id']}/text", headers=duty, json={"text": "改"})
    assert r.status_code == 409 and r.json()["error"]["message"]
    written = next(r for r in reps if r["kind"] == "initial_written")
    r = client.post(f"/reports/{written['id']}/redraft", headers=duty)
    assert r.status_code == 200 and "转移疏散" in r.json()["text"]
    assert client.get("/reports/424242", headers=viewer).status_code == 404
