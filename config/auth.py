"""Login: OAuth2 password flow to a JWT bearer token, also set as an HttpOnly cookie for the console.

Failed logins are limited per username and per client address in a sliding window, so a password
cannot be guessed at network speed. The failures are rows in the database (``login_failure``), so the
limit holds across every instance behind a proxy: a guesser spreading attempts over instances counts on
all of them. Each failure prunes the rows that left the window, so the table stays as small as the
failures of the last window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy import Index, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from config.clock import Clock
from config.database import Base
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


class LoginFailure(Base):
    """One failed login, counted against its user name and its client address."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(index=True)


def _key(key: str) -> str:
    """Keys fit the column: a typed user name can be any length, a long one is kept as its digest."""
    return key if len(key) <= 160 else f"{key.split(':', 1)[0]}#{hashlib.sha256(key.encode()).hexdigest()}"


class LoginLimiter:
    """At most ``attempts`` failures per key in ``window_seconds``, counted in the database.

    Works in the caller's session and transaction: ``fail`` adds rows the caller commits with its record
    of the failure, ``reset`` deletes them (the caller commits).
    """

    def __init__(self, attempts: int, window_seconds: int) -> None:
        self.attempts, self.window = attempts, dt.timedelta(seconds=window_seconds)

    def blocked(self, session: Session, keys: list[str], now: dt.datetime) -> bool:
        rows = session.execute(
            select(LoginFailure.key, func.count()).where(LoginFailure.key.in_([_key(k) for k in keys]),
                                                         LoginFailure.at >= now - self.window)
            .group_by(LoginFailure.key)
        ).all()
        return any(n >= self.attempts for _, n in rows)

    def fail(self, session: Session, keys: list[str], now: dt.datetime) -> None:
        session.execute(delete(LoginFailure).where(LoginFailure.at < now - self.window))
        session.add_all(LoginFailure(key=_key(k), at=now) for k in keys)
        session.flush()

    def reset(self, session: Session, keys: list[str]) -> None:
        session.execute(delete(LoginFailure).where(LoginFailure.key.in_([_key(k) for k in keys])))


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
    if limiter.blocked(session, keys, now):
        raise ApiError(
            429,
            "too_many_logins",
            "登录失败次数过多，请 5 分钟后再试",
            "Too many failed logins; wait a few minutes",
            headers={"Retry-After": str(settings.security.login_window_seconds)},
        )
    user = authenticate(session, username, password)
    if user is None:
        limiter.fail(session, keys, now)
        record(session, now=clock.now(), action="auth.login_failed", entity_type="user", entity_id=username,
               actor=f"ip:{client}")
        session.commit()
        raise ApiError(401, "bad_credentials", "用户名或密码错误", "Wrong username or password",
                       headers={"WWW-Authenticate": "Bearer"})
    limiter.reset(session, [f"user:{username}"])
    session.commit()
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
