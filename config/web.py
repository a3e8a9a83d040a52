"""Request-scoped dependencies shared by every router: database session, clock, settings, user.

Role checks live in one place, ``require``: each router declares which roles may call it, and the
declared roles are kept on the dependency so tests can prove 401/403 for every route.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from config.clock import Clock
from config.errors import ApiError
from config.settings import Settings
from config.users import Role, User

SESSION_COOKIE = "jiaoying_session"
JWT_ALG = "HS256"

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_clock(request: Request) -> Clock:
    return request.app.state.clock  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """A session per request; the handler commits once, anything uncommitted is rolled back.

    GET and HEAD requests only read: their session takes no write lock (see ``config.database.read_only``).
    """
    state = request.app.state
    readers = getattr(state, "read_session_factory", None)
    factory = readers if readers is not None and request.method in ("GET", "HEAD") else state.session_factory
    session: Session = factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def get_state(request: Request) -> Any:
    return request.app.state


DB = Annotated[Session, Depends(get_session)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

UNAUTHORIZED = ApiError(
    401, "unauthorized", "请先登录（令牌缺失或已过期）", "Login required (token missing or expired)",
    headers={"WWW-Authenticate": "Bearer"},
)


def current_user(
    request: Request,
    session: DB,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)] = None,
) -> User:
    raw = token or request.cookies.get(SESSION_COOKIE)
    if not raw:
        raise UNAUTHORIZED
    try:
        claims = jwt.decode(raw, settings.security.secret_key.get_secret_value(), algorithms=[JWT_ALG])
    except jwt.PyJWTError:
        raise UNAUTHORIZED from None
    user = session.get(User, int(claims.get("uid", 0)))
    if user is None or not user.active or user.username != claims.get("sub"):
        raise UNAUTHORIZED
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(current_user)]


class RoleCheck:
    """A dependency that admits only the given roles; ``roles`` is public so tests can enumerate it."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    def __call__(self, user: CurrentUser) -> User:
        if Role(user.role) not in self.roles:
            raise ApiError(
                403,
                "forbidden",
                f"当前角色（{user.role}）无权执行此操作",
                f"Role {user.role!r} may not do this",
                details={"allowed": sorted(self.roles)},
            )
        return user


def require(*roles: Role) -> Any:
    return Depends(RoleCheck(*roles))


ALL_ROLES = tuple(Role)
STAFF = (Role.ADMIN, Role.LEADER, Role.DUTY_OFFICER)


def actor_of(user: User) -> str:
    return f"user:{user.username}"
