"""The intake API end to end: feeds (admin), push with a feed token, quarantine, manual entry, CAP, Atom."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from lxml import etree

from warning.cap_export import validation_errors

Login = Callable[..., dict[str, str]]


def _make_feed(client: TestClient, admin: dict[str, str], name: str = "jc-cap", **kw: object) -> dict[str, object]:
    r = client.post("/feeds", json={"name": name, "title": "晋城市气象台", "adapter": "cap", "poll_seconds": 0, **kw},
                    headers=admin)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_feed_admin_push_and_quarantine(client: TestClient, login: Login, wh) -> None:  # type: ignore[no-untyped-def]
    admin, duty, viewer = login("admin"), login("duty_officer"), login("viewer")
    assert client.post("/feeds", json={"name": "x-feed", "adapter": "cap"}, headers=duty).status_code == 403
    secret = client.post("/feeds", json={"name": "s-feed", "adapter": "cap", "headers": {"Authorization": "Bearer x"}},
                         headers=admin)
    assert secret.status_code == 422  # secrets only by environment reference
    _make_feed(client, admin, headers={"Authorization": "${JC_TOKEN}"}, max_bytes=4096)
    token = client.post("/feeds/jc-cap/token", headers=admin).json()["token"]
    assert client.get("/feeds/jc-cap", headers=viewer).json()["has_push_token"] is True

    pushed = client.post("/feeds/jc-cap/items", content=wh.cap_xml("P-1"), headers={"X-Feed-Token": token,
                         "Content-Type": "application/cap+xml"})
    assert pushed.status_code == 202, pushed.text
    assert pushed.json()["state"] == "processed" and len(pushed.json()["created"]) == 1
    again = client.post("/feeds/jc-cap/items", content=wh.cap_xml("P-1"), headers={"X-Feed-Token": token})
    assert again.json()["duplicate_payload"] is True
    assert client.post("/feeds/jc-cap/items", content=b"x", headers={"X-Feed-Token": "wrong"}).status_code == 401
    assert client.post("/feeds/jc-cap/items", content=b"x", headers=viewer).status_code == 403

    hostile = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    bad = client.post("/feeds/jc-cap/items", content=hostile, headers=duty)
    assert bad.status_code == 202 and bad.json()["state"] == "quarantined"
    big = client.post("/feeds/jc-cap/items", content=b"<a>" + b"x" * 10_000 + b"</a>", headers=duty)
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"

    listed = client.get("/feeds/quarantine", headers=duty).json()
    assert {i["reason"] for i in listed} == {"hostile_xml", "oversize"}
    assert client.get("/feeds/quarantine", headers=viewer).status_code == 403
    item_id = bad.json()["item_id"]
    raw = client.get(f"/feeds/items/{item_id}/raw", headers=duty)
    assert raw.content == hostile and raw.headers["content-type"] == "application/octet-stream"
    reproc = client.post(f"/feeds/items/{item_id}/reprocess", headers=duty)
    assert reproc.status_code == 200 and reproc.json()["state"] == "quarantined"  # still hostile
    dismissed = client.post(f"/feeds/items/{item_id}/dismiss", json={"note": "攻击样本"}, headers=duty)
    assert dismissed.json()["state"] == "dismissed" and dismissed.json()["resolved_by"].startswith("user:")
    processed_id = pushed.json()["item_id"]
    assert client.post(f"/feeds/items/{processed_id}/dismiss", json={}, headers=duty).status_code == 409

    health = {h["name"]: h for h in client.get("/feeds/health", headers=viewer).json()}
    assert health["jc-cap"]["items_count"] == 3 and health["jc-cap"]["quarantined"] == 1
    assert health["jc-cap"]["lag_seconds"] == 0
    patched = client.patch("/feeds/jc-cap", json={"enabled": False}, headers=admin)
    assert patched.json()["enabled"] is False
    assert client.post("/feeds/jc-cap/items", content=wh.cap_xml("P-2"), headers=duty).status_code == 409
    assert client.delete("/feeds/jc-cap", headers=admin).status_code == 409  # has evidence


def test_manual_entry_versions_cap_and_atom(client: TestClient, login: Login) -> None:
    duty, viewer = login("duty_officer"), login("viewer")
    entry = {"channel": "phone", "source": "晋城市气象台", "received_from": "王工 0356-1234567", "hazard": "weather",
             "event": "暴雨", "level": "orange", "headline": "晋城市气象台发布暴雨橙色预警",
             "description": "预计未来6小时城区降雨量将达50毫米以上。", "expires": "2026-07-20T20:00:00+08:00",
             "area_codes": ["140502"], "area_description": "城区"}
    assert client.post("/warnings/manual", json=entry, headers=viewer).status_code == 403
    r = client.post("/warnings/manual", json=entry, headers=duty)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["entered_by"].startswith("duty_officer") and first["entry_channel"] == "phone"
    assert first["state"] == "active" and first["level"] == "orange" and first["identifier"].startswith("JY-MANUAL-")
    upd = client.post("/warnings/manual", headers=duty, json={**entry, "msg_type": "update", "level": "red",
                                                                "replaces_warning_id": first["id"]})
    assert upd.status_code == 201, upd.text
    versions = client.get(f"/warnings/{upd.json()['id']}/versions", headers=viewer).json()
    assert [v["state"] for v in versions] == ["superseded", "active"]
    assert client.post("/warnings/manual", headers=duty, json={**entry, "msg_type": "cancel"}).status_code == 400
    naive = client.post("/warnings/manual", headers=duty, json={**entry, "expires": "2026-07-20T20:00:00"})
    assert naive.status_code == 422

    cap = client.get(f"/warnings/{upd.json()['id']}/cap", headers=viewer)
    assert cap.status_code == 200 and validation_errors(cap.content) == []
    assert b"<msgType>Update</msgType>" in cap.content and first["identifier"].encode() in cap.content
    atom = client.get("/warnings/atom", headers=viewer)
    entries = etree.fromstring(atom.content).findall("{http://www.w3.org/2005/Atom}entry")
    assert len(entries) == 1 and f"/warnings/{upd.json()['id']}/cap" in atom.text
    listed = client.get("/warnings", params={"state": "active"}, headers=viewer).json()
    assert [w["id"] for w in listed] == [upd.json()["id"]]
    assert client.get("/warnings/999999", headers=viewer).status_code == 404
