"""What keeps the console's pages safe in a browser: the session user, CSRF tokens and security headers.

The JSON API is left alone: it is called with bearer tokens (or the session cookie from scripts that set it
themselves) and the provider webhooks are signed, so only the console's own routes take the CSRF check, as a
dependency on the console router. The check is fastapi-csrf-protect's double-submit cookie: a signed token
in an HttpOnly, SameSite=strict cookie, the same token in each form (field ``csrf_token``) or in the
``X-CSRF-Token`` header of a script's request.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import ClassVar, Literal

from fastapi import Request, Response
from fastapi_csrf_protect.exceptions import CsrfProtectError
from fastapi_csrf_protect.flexible import CsrfProtect
from sqlalchemy.orm import Session

from config.errors import ApiError
from config.settings import Settings
from config.users import User
from config.web import current_user

CSRF_COOKIE = "jiaoying_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Only Jiaoying's own origin: no inline script, no inline style, no frames, forms post only here.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class ConsoleCsrf(CsrfProtect):
    """The library's settings for the console, as class attributes so no global config is loaded.

    The secret is passed on each call (derived from the app's own secret key), so two apps in one process
    never share or overwrite it.
    """

    _cookie_key: ClassVar[str] = CSRF_COOKIE
    _cookie_samesite: ClassVar[Literal["lax", "strict", "none"] | None] = "strict"
    _header_name: ClassVar[str] = CSRF_HEADER
    _httponly: ClassVar[bool] = True  # pages carry the token in the HTML; scripts never read the cookie
    _max_age: ClassVar[int] = 12 * 3600  # a whole shift on one page load
    _token_location: ClassVar[str] = "body"
    _token_key: ClassVar[str] = CSRF_FIELD


_csrf = ConsoleCsrf()


def csrf_secret(settings: Settings) -> str:
    """A key of its own for CSRF tokens, derived from the secret key so one secret is configured."""
    key = settings.security.secret_key.get_secret_value().encode()
    return hmac.new(key, b"jiaoying console csrf", hashlib.sha256).hexdigest()


def csrf_token_for(request: Request, settings: Settings) -> tuple[str, str | None]:
    """The token a page puts in its forms, and the signed cookie value to set when there is none yet.

    A valid cookie is reused, so two tabs open on the console keep working; a missing or stale one is
    replaced.
    """
    from itsdangerous import BadData, URLSafeTimedSerializer

    secret = csrf_secret(settings)
    signed = request.cookies.get(CSRF_COOKIE)
    if signed:
        try:
            token = URLSafeTimedSerializer(secret, salt="fastapi-csrf-token").loads(
                signed, max_age=ConsoleCsrf._max_age - 3600)  # renew an hour before it expires
            return str(token), None
        except BadData:
            pass
    token, signed = _csrf.generate_csrf_tokens(secret)
    return token, signed


def set_csrf_cookie(response: Response, signed: str | None, settings: Settings) -> None:
    if signed is None:
        return
    response.set_cookie(CSRF_COOKIE, signed, max_age=ConsoleCsrf._max_age, path="/", httponly=True,
                        samesite="strict", secure=settings.public_base_url.startswith("https"))


def clear_csrf_cookie(response: Response) -> None:
    response.delete_cookie(CSRF_COOKIE, path="/", httponly=True, samesite="strict")


class CsrfRefused(Exception):
    """A console request that changes something came without a matching token; answered with a page."""


async def check_csrf(request: Request) -> None:
    """The console router's dependency: every unsafe request must carry the token of its cookie."""
    if request.method not in UNSAFE:
        return
    if "form" in request.headers.get("content-type", ""):
        await request.form()  # parsed once and kept on the request, where the library looks for the field
    try:
        await _csrf.validate_csrf(request, secret_key=csrf_secret(request.app.state.settings))
    except (CsrfProtectError, ValueError) as exc:
        raise CsrfRefused(str(exc)) from exc


def session_user(request: Request, session: Session, settings: Settings) -> User | None:
    """The logged-in user from the session cookie, by the API's own check; ``None`` means: go to login."""
    try:
        return current_user(request, session, settings, None)
    except ApiError:
        return None


def secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
