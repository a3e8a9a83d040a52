from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from config.users import Role
from jiaoying.app import PUBLIC_PATHS


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation of the API, from its own OpenAPI document (public ones left out)."""
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        if path not in PUBLIC_PATHS
        for method, op in ops.items()
    ]


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"]["migrations"] == "current"


def test_every_route_needs_a_user(client: TestClient) -> None:
    ops = _operations(client)
    assert ops
    for method, path, op in ops:
        assert op.get("security"), f"{method} {path} declares no login"
        r = client.request(method, _concrete(path))
        assert r.status_code == 401, f"{method} {path} → {r.status_code}"
        assert r.json()["error"]["code"] == "unauthorized"


def test_every_router_refuses_a_wrong_role(client: TestClient, login: Callable[..., dict[str, str]]) -> None:
    headers = {role: login(role.value, "水利局" if role is Role.ANALYST else None) for role in Role}
    routers: set[str] = set()
    refused: set[str] = set()
    for method, path, op in _operations(client):
        tag = op["tags"][0]
        routers.add(tag)
        for role in Role:
            r = client.request(method, _concrete(path), headers=headers[role])
            assert r.status_code != 401, f"{role} {method} {path}"
            if r.status_code == 403:
                allowed = r.json()["error"]["details"]["allowed"]
                assert role.value not in allowed
                refused.add(tag)
    # Every router but auth (any logged-in user may see who they are) refuses some role somewhere.
    assert routers - refused <= {"auth"}, routers - refused


def test_login_flow_and_error_shape(client: TestClient, login: Callable[..., dict[str, str]]) -> None:
    h = login("leader")
    me = client.get("/auth/me", headers=h)
    assert me.status_code == 200 and me.json()["role"] == "leader"
    bad = client.post("/auth/token", data={"username": "leader1", "password": "nope"})
    assert bad.status_code == 401
    body = bad.json()["error"]
    assert body["code"] == "bad_credentials" and body["message"] and body["message_en"]
    forged = client.get("/auth/me", headers={"Authorization": "Bearer abc.def.ghi"})
    assert forged.status_code == 401


def test_failed_logins_are_rate_limited(client: TestClient, login: Callable[..., dict[str, str]]) -> None:
    login("viewer")
    codes = [client.post("/auth/token", data={"username": "viewer1", "password": "wrong"}).status_code
             for _ in range(7)]
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429, 429]
    # even the right password is refused while the window lasts
    r = client.post("/auth/token", data={"username": "viewer1", "password": "correct-horse-9"})
    assert r.status_code == 429
    assert r.json()["error"]["message"]


def test_openapi_has_clean_operation_ids(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids
