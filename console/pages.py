"""The console's pages: login, logout, the language switch and the board.

HTML routes stay out of the OpenAPI document (``include_in_schema=False``): the document describes the JSON
API, and its fuzz test must not post forms here. Every unsafe request passes the CSRF check of
``console.security`` (a router dependency), so the login form too carries a token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from config.auth import check_login, start_session
from config.errors import ApiError
from config.web import DB, SESSION_COOKIE, ClockDep, SettingsDep
from console import board as board_mod
from console.i18n import HTML_LANG, LANGS, Lang, pick, text
from console.security import (
    CSRF_FIELD,
    CsrfRefused,
    check_csrf,
    clear_csrf_cookie,
    csrf_token_for,
    secure,
    session_user,
    set_csrf_cookie,
)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
LANG_COOKIE = "jiaoying_lang"
templates = Jinja2Templates(directory=str(HERE / "templates"))

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


def lang_of(request: Request) -> Lang:
    return pick(request.cookies.get(LANG_COOKIE))


def render(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> Response:
    """A console page with its language, its CSRF token and the security headers."""
    settings = request.app.state.settings
    lang = lang_of(request)
    token, signed = csrf_token_for(request, settings)
    response = templates.TemplateResponse(request, name, {
        "lang": lang, "html_lang": HTML_LANG[lang], "t": lambda key: text(key, lang),
        "t_en": lambda key: text(key, "en"), "colon": "：" if lang == "zh" else ": ",
        "csrf_field": CSRF_FIELD, "csrf_token": token, "other_lang": next(x for x in LANGS if x != lang),
        **context,
    }, status_code=status)
    set_csrf_cookie(response, signed, settings)
    return secure(response)


def _redirect(path: str) -> Response:
    return secure(RedirectResponse(path, status_code=303))


def _safe_next(value: str | None) -> str:
    """Only a path on this console: a switch or a login never sends the user to another site."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return "/"
    return parts.path


@router.get("/", response_class=HTMLResponse)
def board_page(request: Request, session: DB, settings: SettingsDep, clock: ClockDep) -> Response:
    user = session_user(request, session, settings)
    if user is None:
        return _redirect("/login")
    lang = lang_of(request)
    data = board_mod.build(session, now=clock.now(), tz=settings.tz, lang=lang)
    return render(request, "board.html", {"user": user, "board": data})


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, session: DB, settings: SettingsDep) -> Response:
    if session_user(request, session, settings) is not None:
        return _redirect("/")  # a bookmark to the login page of someone still logged in
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
    response = _redirect("/")
    start_session(response, settings, user)
    return response


@router.post("/logout")
def logout() -> Response:
    response = _redirect("/login")
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    clear_csrf_cookie(response)
    return response


@router.post("/lang")
def switch_language(lang: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/") -> Response:  # noqa: A002
    response = _redirect(_safe_next(next))
    response.set_cookie(LANG_COOKIE, pick(lang), max_age=365 * 24 * 3600, samesite="strict", httponly=True)
    return response


async def csrf_refused(request: Request, _exc: Exception) -> Response:
    """A refused console request is answered with a page that says what to do, not a JSON error."""
    return render(request, "refused.html", {}, status=403)


def install(app: Any) -> None:
    """Mount the console on the app: its pages, its static files and the page for a refused request."""
    from fastapi.staticfiles import StaticFiles

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.add_exception_handler(CsrfRefused, csrf_refused)
