"""Login: OAuth2 password flow to a JWT bearer token, also set as an HttpOnly cookie for the console.

Failed logins are limited per username and per client address in a sliding window, so a password
cannot be guessed at network speed.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict, deque
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy.orm import Session

from config.clock import Clock
from config.errors import ApiError, errors
from config.eventlog import record
from config.settings import Settings
from config.users import User, authenticate
from config.web import DB, JWT_ALG, SESSION_COOKIE, ClockDep, CurrentUser, SettingsDep


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Me(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    department: str | None


class LoginLimiter:
    def __init__(self, attempts: int, window_seconds: int) -> None:
        self.attempts, self.window = attempts, dt.timedelta(seconds=window_seconds)
        self._failures: dict[str, deque[dt.datetime]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _prune(self, key: str, now: dt.datetime) -> deque[dt.datetime]:
        q = self._failures[key]
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def blocked(self, keys: list[str], now: dt.datetime) -> bool:
        with self._lock:
            return any(len(self._prune(k, now)) >= self.attempts for k in keys)

    def fail(self, keys: list[str], now: dt.datetime) -> None:
        with self._lock:
            for k in keys:
                self._prune(k, now).append(now)

    def reset(self, keys: list[str]) -> None:
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)


def issue_token(settings: Settings, user_id: int, username: str, role: str) -> str:
    """Tokens live in wall time even during a drill: PyJWT checks expiry against the real clock."""
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {
        "sub": username,
        "uid": user_id,
        "role": role,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=settings.security.token_minutes)).timestamp()),
    }
    return jwt.encode(claims, settings.security.secret_key.get_secret_value(), algorithm=JWT_ALG)


router = APIRouter(prefix="/auth", tags=["auth"])


def check_login(request: Request, session: Session, clock: Clock, settings: Settings, username: str,
                password: str) -> User:
    """The password check every login goes through (API and console), behind the same failure limit."""
    limiter: LoginLimiter = request.app.state.login_limiter
    now = dt.datetime.now(dt.UTC)  # rate limiting is about wall time, even in a drill
    client = request.client.host if request.client else "unknown"
    keys = [f"user:{username}", f"ip:{client}"]
    if limiter.blocked(keys, now):
        raise ApiError(
            429,
            "too_many_logins",
            "登录失败次数过多，请 5 分钟后再试",
            "Too many failed logins; wait a few minutes",
            headers={"Retry-After": str(settings.security.login_window_seconds)},
        )
    user = authenticate(session, username, password)
    if user is None:
        limiter.fail(keys, now)
        record(session, now=clock.now(), action="auth.login_failed", entity_type="user", entity_id=username,
               actor=f"ip:{client}")
        session.commit()
        raise ApiError(401, "bad_credentials", "用户名或密码错误", "Wrong username or password",
                       headers={"WWW-Authenticate": "Bearer"})
    limiter.reset([f"user:{username}"])
    return user


def start_session(response: Response, settings: Settings, user: User) -> str:
    """Issue the token and set it as the console's HttpOnly, SameSite=strict session cookie."""
    token = issue_token(settings, user.id, user.username, user.role)
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict",
        secure=settings.public_base_url.startswith("https"),
        max_age=settings.security.token_minutes * 60,
    )
    return token


@router.post("/token", response_model=Token, operation_id="login", responses=errors(401, 429))
def login(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: DB,
    settings: SettingsDep,
    clock: ClockDep,
) -> Token:
    user = check_login(request, session, clock, settings, form.username, form.password)
    return Token(access_token=start_session(response, settings, user))


@router.get("/me", response_model=Me, operation_id="whoami")
def whoami(user: CurrentUser) -> Me:
    return Me(
        id=user.id, username=user.username, display_name=user.display_name, role=user.role,
        department=user.department.name if user.department else None,
    )


@router.post("/logout", status_code=204, operation_id="logout")
def logout(response: Response, _user: CurrentUser) -> Response:
    response.delete_cookie(SESSION_COOKIE)
    response.status_code = 204
    return response
