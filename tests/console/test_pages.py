"""The console through the app's own client: login, CSRF, CSP, the board and its language."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from config.database import session_scope
from config.runtime import Runtime
from console.i18n import MESSAGES
from tests.conftest import make_user

PASSWORD = "correct-horse-9"


def token_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "every console form carries the CSRF token"
    return found.group(1)


def console_login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token_of(page.text)}, follow_redirects=False)


@pytest.fixture
def duty(client: TestClient, sqlite_runtime: Runtime) -> TestClient:
    make_user(sqlite_runtime.session_factory, "duty1", "duty_officer")
    r = console_login(client, "duty1")
    assert r.status_code == 303 and r.headers["location"] == "/"
    return client


def test_board_without_session_redirects_to_login(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    page = client.get("/login")
    assert page.status_code == 200
    assert 'name="username"' in page.text and 'name="password"' in page.text
    assert 'action="/login"' in page.text and '<html lang="zh-CN">' in page.text


def test_pages_carry_a_content_security_policy(client: TestClient) -> None:
    csp = client.get("/login").headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    html = client.get("/login").text
    assert "<script>" not in html and "style=" not in html, "no inline script or style"
    assert client.get("/static/console.css").status_code == 200
    assert client.get("/static/console.js").status_code == 200


def test_login_sets_the_session_and_the_board_shows(duty: TestClient) -> None:
    session = duty.cookies.get("jiaoying_session")
    assert session
    board = duty.get("/")
    assert board.status_code == 200
    assert "值班台" in board.text and "duty1" in board.text
    assert duty.get("/auth/me").json()["username"] == "duty1", "the console's cookie is the API's session"
    r = duty.get("/login", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_wrong_password_shows_the_form_again_with_a_message(client: TestClient, sqlite_runtime: Runtime) -> None:
    make_user(sqlite_runtime.session_factory, "duty2", "duty_officer")
    r = console_login(client, "duty2", "wrong-password")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/html")
    text = r.text
    assert "用户名或密码错误" in text and "Wrong username or password" in text
    assert text.index("用户名或密码错误") < text.index("Wrong username or password")
    assert 'name="password"' in text and 'value="duty2"' in text
    assert "jiaoying_session" not in r.headers.get("set-cookie", "")


def test_a_form_post_without_the_token_is_refused(client: TestClient, sqlite_runtime: Runtime) -> None:
    make_user(sqlite_runtime.session_factory, "duty3", "duty_officer")
    client.get("/login")  # the CSRF cookie is set, but the form field is left out
    r = client.post("/login", data={"username": "duty3", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    assert "请求已拒绝" in r.text and "jiaoying_session" not in r.headers.get("set-cookie", "")
    r = client.post("/login", data={"username": "duty3", "password": PASSWORD, "csrf_token": "forged"},
                    follow_redirects=False)
    assert r.status_code == 403


def test_logout_needs_the_token_and_clears_the_session(duty: TestClient) -> None:
    assert duty.post("/logout", follow_redirects=False).status_code == 403
    token = token_of(duty.get("/").text)
    r = duty.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert duty.get("/", follow_redirects=False).status_code == 303


def test_the_json_api_needs_no_csrf_token(client: TestClient, login: Callable[..., dict[str, str]]) -> None:
    headers = login("admin")
    r = client.post("/warnings/manual", headers=headers, json={})
    assert r.status_code == 422, r.text  # validated as before, not refused by the console's check


def test_empty_board_says_what_to_do(duty: TestClient) -> None:
    html = duty.get("/").text
    for key in ("warnings.empty", "consultations.empty", "runs.empty", "measures.empty", "reports.empty"):
        assert MESSAGES[key][0] in html, key
    assert "未排班" in html


def test_board_shows_a_red_warning_with_its_level_text(duty: TestClient, sqlite_runtime: Runtime,
                                                        make_warning: Callable[..., Any], clock: Any) -> None:
    with session_scope(sqlite_runtime.session_factory) as s:
        make_warning(s, now=clock.now(), level="red", event="暴雨")
        make_warning(s, now=clock.now(), level="blue", event="大风")
    html = duty.get("/").text
    assert "城区暴雨预警" in html and "红色预警" in html and "蓝色预警" in html
    assert html.index("城区暴雨预警") < html.index("城区大风预警"), "red first"
    assert MESSAGES["warnings.empty"][0] not in html
    assert "2026-07-20 02:00" in html, "times in Asia/Shanghai"


def test_english_is_remembered(duty: TestClient, sqlite_runtime: Runtime, make_warning: Callable[..., Any],
                               clock: Any) -> None:
    with session_scope(sqlite_runtime.session_factory) as s:
        make_warning(s, now=clock.now(), level="red")
    token = token_of(duty.get("/").text)
    r = duty.post("/lang", data={"lang": "en", "next": "/", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    html = duty.get("/").text
    assert '<html lang="en">' in html and "Red warning" in html and "Duty console" in html
    assert "值班台" not in html.replace("中文", "")
    r = duty.post("/lang", data={"lang": "zh", "next": "https://elsewhere.example/", "csrf_token": token},
                  follow_redirects=False)
    assert r.headers["location"] == "/", "never sent off the console"
    assert '<html lang="zh-CN">' in duty.get("/").text


def test_the_catalogue_has_both_languages() -> None:
    for key, (zh, en) in MESSAGES.items():
        assert zh.strip() and en.strip(), key


def test_console_pages_are_not_in_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/", "/login", "/logout", "/lang"} & set(paths)


def test_a_consultation_past_its_deadline_stands_out_on_both_databases(
        any_client: TestClient, runtime: Runtime, make_warning: Callable[..., Any], clock: Any) -> None:
    from warning.consultation import service as consultation_service

    make_user(runtime.session_factory, "duty9", "duty_officer")
    assert console_login(any_client, "duty9").status_code == 303
    with session_scope(runtime.session_factory) as s:
        w = make_warning(s, now=clock.now(), level="orange", event="暴雨")
        consultation_service.open_consultation(s, warning=w, invited=["weather", "water"], deadline_minutes=30,
                                               reminder_minutes=None, mode="before", actor="test", now=clock.now())
    html = any_client.get("/").text
    assert "橙色预警" in html and "未研判部门" in html and "2026-07-20 02:30" in html
    row = re.search(r'<li class="row ([^"]*)" data-testid="consultation">(.*?)</li>', html, re.S)
    assert row and "row-overdue" not in row.group(1) and "已超时" not in row.group(2)
    clock.advance(dt.timedelta(minutes=31))
    html = any_client.get("/").text
    row = re.search(r'<li class="row ([^"]*)" data-testid="consultation">(.*?)</li>', html, re.S)
    assert row and "row-overdue" in row.group(1)
    assert "⚠ 已超时" in row.group(2), "an overdue item is marked in words, not colour alone"
    assert re.search(r'chip-overdue">⚠ 已超时 <b>1</b>', html)
