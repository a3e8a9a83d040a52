"""What every console page shares: its templates, its language, its user and role checks, and how it answers.

A page never calls a domain table; it gets plain data from the domains' services. An action that a service
refuses (an ``ApiError``: a wrong state, an unknown reference) is answered with a page that shows the
service's own message in the user's language and a way back, never a JSON body or a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from config.errors import ApiError
from config.users import ROLE_NAMES_ZH, Role, User
from config.web import DB, SettingsDep
from console.i18n import HTML_LANG, LANGS, Lang, pick, text
from console.security import CSRF_FIELD, csrf_token_for, secure, session_user, set_csrf_cookie

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
LANG_COOKIE = "jiaoying_lang"
templates = Jinja2Templates(directory=str(HERE / "templates"))

ROLE_NAMES_EN = {Role.ADMIN: "Admin", Role.LEADER: "Leader on duty", Role.DUTY_OFFICER: "Duty officer",
                 Role.ANALYST: "Department analyst", Role.VIEWER: "Viewer"}


class LoginRequired(Exception):
    """A page asked for without a session: answered by a redirect to the login form."""


class Forbidden(Exception):
    """A page or action the user's role does not allow: answered with a 403 page.

    It carries the user's name and role as plain values: the handler runs after the request's database
    session is closed, when the user row's attributes can no longer be loaded.
    """

    def __init__(self, user: User | None = None) -> None:
        super().__init__("forbidden")
        self.user = (SimpleNamespace(username=user.username, display_name=user.display_name, role=user.role)
                     if user is not None else None)


def lang_of(request: Request) -> Lang:
    return pick(request.cookies.get(LANG_COOKIE))


def user_can(user: Any, roles: Iterable[Role | str]) -> bool:
    return user is not None and user.role in {str(r) for r in roles}


def render(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> Response:
    """A console page with its language, its CSRF token, the user's roles and the security headers."""
    settings = request.app.state.settings
    lang = lang_of(request)
    token, signed = csrf_token_for(request, settings)
    user: Any = context.get("user") or getattr(request.state, "user", None)
    role_name = ""
    if user is not None:
        role = Role(user.role)
        role_name = ROLE_NAMES_ZH[role] if lang == "zh" else ROLE_NAMES_EN[role]
    response = templates.TemplateResponse(request, name, {
        "lang": lang, "html_lang": HTML_LANG[lang], "t": lambda key: text(key, lang),
        "t_en": lambda key: text(key, "en"), "colon": "：" if lang == "zh" else ": ",
        "csrf_field": CSRF_FIELD, "csrf_token": token, "other_lang": next(x for x in LANGS if x != lang),
        "user": user, "role_name": role_name, "can": lambda *roles: user_can(user, roles),
        "done": request.query_params.get("done", ""),
        **context,
    }, status_code=status)
    set_csrf_cookie(response, signed, settings)
    return secure(response)


def redirect(path: str, **query: str) -> Response:
    """303 to a console path, with an optional ``done=…`` key the next page shows as a confirmation."""
    target = path + ("?" + urlencode(query) if query else "")
    return secure(RedirectResponse(target, status_code=303))


def safe_next(value: str | None) -> str:
    """Only a path on this console: a switch or a login never sends the user to another site."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return "/"
    return parts.path


def page_user(request: Request, session: DB, settings: SettingsDep) -> User:
    """The dependency of every console page but login: the session's user, or off to the login form."""
    user = session_user(request, session, settings)
    if user is None:
        raise LoginRequired()
    return user


PageUser = Annotated[User, Depends(page_user)]


def require_role(user: User, roles: Iterable[Role | str]) -> None:
    """The same roles the JSON API's route admits; the page hides the button, this refuses the request."""
    if not user_can(user, roles):
        raise Forbidden(user)


def refused(request: Request, user: User, roles: Iterable[Role | str]) -> Response | None:
    """The 403 page when the role may not act, else ``None``: for actions that answer before raising."""
    if user_can(user, roles):
        return None
    return render(request, "forbidden.html", {"user": user}, status=403)


def problem(request: Request, exc: ApiError, *, back: str) -> Response:
    """A service refused the action: its message in the user's language, the other language beneath."""
    return render(request, "problem.html", {"error": exc, "back": safe_next(back)}, status=exc.status)


def attempt(request: Request, action: Callable[[], Response], *, back: str) -> Response:
    """Run a page action; a refusal by the domain becomes the problem page instead of a JSON error."""
    try:
        return action()
    except ApiError as exc:
        return problem(request, exc, back=back)


async def login_required(request: Request, _exc: Exception) -> Response:
    return redirect("/login")


async def forbidden(request: Request, exc: Exception) -> Response:
    request.state.user = None  # detached by now; the exception's plain copy stands in
    return render(request, "forbidden.html", {"user": getattr(exc, "user", None)}, status=403)
