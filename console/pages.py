"""The console's pages: login, logout, the language switch and the board.

HTML routes stay out of the OpenAPI document (``include_in_schema=False``): the document describes the JSON
API, and its fuzz test must not post forms here. Every unsafe request passes the CSRF check of
``console.security`` (a router dependency), so the login form too carries a token.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from config.auth import check_login, start_session
from config.errors import ApiError
from config.eventlog import latest_id
from config.web import DB, SESSION_COOKIE, ClockDep, SettingsDep
from console import board as board_mod
from console import map_pages
from console.i18n import pick
from console.rendering import (
    LANG_COOKIE,
    STATIC_DIR,
    Forbidden,
    LoginRequired,
    forbidden,
    lang_of,
    login_required,
    redirect,
    render,
    safe_next,
)
from console.security import CsrfRefused, check_csrf, clear_csrf_cookie, session_user
from console.snapshots import SINCE_HEADER, Snapshots

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])

_snapshots_lock = threading.Lock()


def snapshots_of(app: Any) -> Snapshots[Any]:
    """The app's board snapshots (``console.snapshots``), made on first use."""
    with _snapshots_lock:
        held: Snapshots[Any] | None = getattr(app.state, "board_snapshots", None)
        if held is None:
            held = Snapshots()
            app.state.board_snapshots = held
        return held


def live_since(request: Request) -> int:
    """The event-log id a live refresh was told about (0 when the request is not one, or says nonsense)."""
    raw = request.headers.get(SINCE_HEADER, "").strip()
    return int(raw) if raw.isdigit() and len(raw) <= 16 else 0


@router.get("/", response_class=HTMLResponse)
def board_page(request: Request, session: DB, settings: SettingsDep, clock: ClockDep) -> Response:
    user = session_user(request, session, settings)
    if user is None:
        return redirect("/login")
    lang = lang_of(request)

    def build_in(s: Session) -> tuple[int, tuple[board_mod.Board, dict[str, Any] | None]]:
        key = latest_id(s)  # first: every change up to this row is in what follows
        data = board_mod.build(s, now=clock.now(), tz=settings.tz, lang=lang)
        # The map panel follows the latest open run; only its name is read here, the map loads in the browser.
        followed, _ = map_pages.pick_run(s, None)
        return key, (data, map_pages.run_summary(followed, settings.tz, lang) if followed is not None else None)

    state = request.app.state
    factory = getattr(state, "read_session_factory", None) or state.session_factory

    def apart() -> tuple[int, tuple[board_mod.Board, dict[str, Any] | None]]:
        s = factory()
        try:
            return build_in(s)
        finally:
            s.rollback()
            s.close()

    snap = snapshots_of(request.app).get(lang, lambda: build_in(session), latest=lambda: latest_id(session),
                                         since=live_since(request), fresh="done" in request.query_params,
                                         now=clock.now().timestamp(), apart=apart)
    data, map_run = snap.value
    response = render(request, "board.html", {"user": user, "board": data, "map_panel_run": map_run,
                                              "live_after": snap.key})
    return map_pages.allow_tiles(response, settings)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, session: DB, settings: SettingsDep) -> Response:
    if session_user(request, session, settings) is not None:
        return redirect("/")  # a bookmark to the login page of someone still logged in
    return render(request, "login.html", {"error": None, "username": ""})


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    session: DB,
    settings: SettingsDep,
    clock: ClockDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    try:
        user = check_login(request, session, clock, settings, username, password)
    except ApiError as exc:
        key = "login.blocked" if exc.status == 429 else "login.failed"
        return render(request, "login.html", {"error": key, "username": username}, status=exc.status)
    response = redirect("/")
    start_session(response, settings, user)
    return response


@router.post("/logout")
def logout() -> Response:
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    clear_csrf_cookie(response)
    return response


@router.post("/lang")
def switch_language(lang: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/") -> Response:  # noqa: A002
    response = redirect(safe_next(next))
    response.set_cookie(LANG_COOKIE, pick(lang), max_age=365 * 24 * 3600, samesite="strict", httponly=True)
    return response


async def csrf_refused(request: Request, _exc: Exception) -> Response:
    """A refused console request is answered with a page that says what to do, not a JSON error."""
    return render(request, "refused.html", {}, status=403)


def install(app: Any) -> None:
    """Mount the console on the app: its pages, its static files and the page for a refused request."""
    from fastapi.staticfiles import StaticFiles

    from console import admin_pages, duty_pages, live, run_pages, warning_pages

    app.include_router(router)
    for area in (warning_pages, run_pages, admin_pages, map_pages, duty_pages, live):
        app.include_router(area.router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.add_exception_handler(CsrfRefused, csrf_refused)
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Forbidden, forbidden)
