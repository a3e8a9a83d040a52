"""Request-scoped dependencies shared by every router: database session, clock, settings, user.

Role checks live in one place, ``require``: each router declares which roles may call it, and the
declared roles are kept on the dependency so tests can prove 401/403 for every route. The same facts
declare those statuses in the OpenAPI document (``declare_common_errors``), so no router lists them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from config.clock import Clock
from config.errors import ApiError, errors
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


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _common_statuses(route: APIRoute) -> list[int]:
    calls = list(_calls(route.dependant))
    statuses: list[int] = []
    if route.body_field is not None:
        statuses.append(400)  # a body that cannot be parsed at all (bytes that are not UTF-8, broken multipart)
    if any(c is current_user or isinstance(c, RoleCheck) for c in calls):
        statuses.append(401)
    if any(isinstance(c, RoleCheck) for c in calls):
        statuses.append(403)
    if route.body_field is not None or get_flat_params(route.dependant):
        statuses.append(422)
    return statuses


def declare_common_errors(document: dict[str, Any], routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """Declare on each operation of ``document`` the errors its dependencies and parameters can give.

    401 where a login is needed, 403 where a role is checked, 422 where anything is validated (in the
    one error shape, replacing FastAPI's own), 400 where a body is read. Statuses a router declares
    itself are kept as they are; everything else an operation can answer (404, 409 …) its router declares.
    """
    paths = document.get("paths", {})
    for ctx in iter_route_contexts(routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema or ctx.path_format not in paths:
            continue
        common = errors(*_common_statuses(route))
        for method in ctx.methods or ():
            responses = paths[ctx.path_format].get(method.lower(), {}).setdefault("responses", {})
            for status, entry in common.items():
                current = responses.get(str(status))
                if current is None or _FASTAPI_422 in str(current):
                    responses[str(status)] = entry
    schemas = document.get("components", {}).get("schemas", {})
    if _FASTAPI_422 not in str(paths):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
