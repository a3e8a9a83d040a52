from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from config.database import session_scope
from config.runtime import Runtime
from geo.crs import wgs84_to_gcj02
from geo.matching import RegionIndex
from geo.region import seed_default_region


def _seed(rt: Runtime) -> None:
    with session_scope(rt.session_factory) as s:
        seed_default_region(s, rt.clock.now())


def test_tree_search_geojson(client: TestClient, sqlite_runtime: Runtime,
                             login: Callable[..., dict[str, str]]) -> None:
    _seed(sqlite_runtime)
    h = login("viewer")
    tree = client.get("/geo/areas/tree", headers=h).json()
    assert [n["code"] for n in tree] == ["140502000000"]
    towns = tree[0]["children"]
    assert len(towns) == 9 and sum(len(t["children"]) for t in towns) == 170
    found = client.get("/geo/areas/search", params={"q": "道头"}, headers=h).json()
    assert [a["code"] for a in found] == ["140502007201"] and found[0]["approximate"] is True
    by_code = client.get("/geo/areas/search", params={"q": "140502001"}, headers=h).json()
    assert by_code[0]["code"] == "140502001000" and len(by_code) == 12
    fc = client.get("/geo/areas/geojson", params={"level": "village"}, headers=h).json()
    assert len(fc["features"]) == 134 and all(f["properties"]["approximate"] for f in fc["features"])
    sites = client.get("/geo/sites/geojson", headers=h).json()["features"]
    assert len(sites) == 7 and all(f["properties"]["demo"] for f in sites)
    detail = client.get("/geo/areas/140502007000", headers=h).json()
    assert detail["geometry"]["type"] == "Polygon" and len(detail["children"]) == 30
    assert client.get("/geo/areas/999", headers=h).status_code == 404


def test_match_endpoint(client: TestClient, sqlite_runtime: Runtime, login: Callable[..., dict[str, str]],
                        default_index: RegionIndex) -> None:
    _seed(sqlite_runtime)
    duty = login("duty_officer")
    lon, lat = default_index.area("140502007201").representative_point()  # type: ignore[misc,union-attr]
    r = client.post("/geo/match", json={"circles": [f"{lat},{lon} 1"]}, headers=duty)
    assert r.status_code == 200, r.text
    assert "140502007201" in {v["code"] for v in r.json()["villages"]}
    glon, glat = wgs84_to_gcj02(lon, lat)
    g = client.post("/geo/match", json={"points": [[glat, glon, 0]], "crs": "GCJ02"}, headers=duty).json()
    assert [v["code"] for v in g["villages"]] == ["140502007201"]
    far = client.post("/geo/match", json={"polygons": [{"type": "Polygon", "coordinates": [
        [[116.3, 39.9], [116.4, 39.9], [116.4, 40.0], [116.3, 39.9]]]}]}, headers=duty).json()
    assert far["empty"] is True and far["message"]
    bad = client.post("/geo/match", json={"circles": ["nonsense"]}, headers=duty)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_circle"
    assert client.post("/geo/match", json={"geocodes": ["140502"]}, headers=login("viewer")).status_code == 403


def test_admin_import(client: TestClient, sqlite_runtime: Runtime, login: Callable[..., dict[str, str]],
                      bad_areas_geojson: bytes) -> None:
    _seed(sqlite_runtime)
    admin = login("admin")
    files = {"file": ("grids.geojson", bad_areas_geojson, "application/geo+json")}
    r = client.post("/geo/import/areas", files=files, headers=admin)
    assert r.status_code == 422
    codes = {p["code"] for p in r.json()["error"]["details"]["problems"]}
    assert codes == {"invalid_geometry", "swapped_coordinates", "unknown_parent"}
    assert client.get("/geo/version", headers=admin).json()["version"] == 1
    ok = client.post("/geo/import/areas", params={"skip_invalid": True}, files=files, headers=admin)
    assert ok.status_code == 200 and ok.json()["created"] == 2 and ok.json()["version"] == 2
    assert client.post("/geo/import/areas", files=files, headers=login("leader")).status_code == 403
