"""One JSON error shape for every API answer that is not a success, declared once for the OpenAPI document.

``{"error": {"code": "...", "message": "<zh>", "message_en": "<en>", "details": ...}}`` — the
console shows ``message`` (Chinese first); scripts match on ``code``. ``ErrorResponse`` is that shape
as a model, and ``errors(404, 409)`` is how an operation declares the error statuses it can give, so a
client generated from ``/openapi.json`` knows every answer.

An unsupported method answers 405 with an ``Allow`` header naming every method the path has. As in
OpenAPI, a concrete path wins over a template that also matches it: ``PATCH /contacts/coverage`` is a
method ``/contacts/coverage`` does not have (405), not an edit of a contact whose id is "coverage".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from config.transitions import IllegalTransition


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, zh: str, en: str, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(en)
        self.status, self.code, self.zh, self.en, self.details, self.headers = status, code, zh, en, details, headers


def not_found(what_zh: str, what_en: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"未找到{what_zh}：{ident}", f"{what_en} not found: {ident}")


def conflict(code: str, zh: str, en: str, details: Any = None) -> ApiError:
    return ApiError(409, code, zh, en, details)


def bad_request(code: str, zh: str, en: str, details: Any = None) -> ApiError:
    return ApiError(400, code, zh, en, details)


def error_body(code: str, zh: str, en: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": zh, "message_en": en}
    if details is not None:
        body["details"] = details
    return {"error": body}


# --------------------------------------------------------------------------- the shape, for the document


class ErrorBody(BaseModel):
    code: str = Field(description="机器可读的错误代码 / machine-readable code, e.g. not_found, validation_error")
    message: str = Field(description="中文说明 / the explanation in Chinese")
    message_en: str = Field(description="English explanation")
    details: Any = Field(None, description="错误详情（因错误而异）/ details, depending on the code")


class ErrorResponse(BaseModel):
    """Every answer that is not a success."""

    error: ErrorBody


ERROR_SCHEMA_REF = "#/components/schemas/ErrorResponse"

_STATUS_TEXT = {
    400: ("bad_request", "请求有误", "Bad request"),
    401: ("unauthorized", "请先登录", "Authentication required"),
    403: ("forbidden", "无权执行此操作", "Not allowed for your role"),
    404: ("not_found", "未找到", "Not found"),
    405: ("method_not_allowed", "不支持该方法", "Method not allowed"),
    409: ("conflict", "与当前状态冲突", "Conflicts with the current state"),
    413: ("too_large", "内容过大", "Payload too large"),
    422: ("validation_error", "提交的数据不合要求", "Invalid input"),
    429: ("too_many_requests", "请求过于频繁，请稍后再试", "Too many requests, try again later"),
    503: ("not_ready", "服务未就绪", "Not ready"),
}

_HEADERS = {  # documented where the status always carries them
    401: {"WWW-Authenticate": {"description": "认证方式 / the scheme to authenticate with",
                               "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "多少秒后再试 / seconds to wait before trying again",
                          "schema": {"type": "string"}}},
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the error statuses an operation can give, each with the one error shape.

    The content is always JSON, also for an operation whose success is HTML, XML or a workbook, which is
    why the schema is referenced here rather than passed as a ``model`` (FastAPI would file it under the
    operation's own media type).
    """
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        _, zh, en = _STATUS_TEXT.get(status, ("error", "请求失败", "Request failed"))
        entry: dict[str, Any] = {
            "description": f"{zh} / {en}",
            "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}},
        }
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        out[status] = entry
    return out


def add_error_schema(document: dict[str, Any]) -> dict[str, Any]:
    """Put ``ErrorResponse`` (and what it refers to) into an OpenAPI document's components."""
    schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(schema.pop("$defs", {}))
    components["ErrorResponse"] = schema
    return document


# --------------------------------------------------------------------------- 405: every method the path has


def _paths(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, re.Pattern[str], bool, set[str]]]:
    """(path, its regex, is concrete, methods) of every route, those of included routers too."""
    for ctx in iter_route_contexts(routes):
        regex = getattr(ctx, "path_regex", None)
        if isinstance(regex, re.Pattern) and ctx.path:
            yield ctx.path, regex, not getattr(ctx, "param_convertors", None), set(ctx.methods or ())


def allowed_methods(routes: Sequence[BaseRoute], path: str) -> list[str]:
    """The methods of the routes whose path matches, concrete ones only when there are any (OpenAPI's rule)."""
    hits = [(concrete, methods) for _, regex, concrete, methods in _paths(routes) if regex.match(path)]
    chosen = [m for concrete, m in hits if concrete] or [m for _, m in hits]
    return sorted(set().union(*chosen))


def method_not_allowed(allowed: list[str]) -> JSONResponse:
    code, zh, en = _STATUS_TEXT[405]
    listed = ", ".join(allowed)
    return JSONResponse(error_body(code, f"{zh}；可用：{listed}", f"{en}; allowed: {listed}"),
                        status_code=405, headers={"Allow": listed})


class ConcretePathsFirst:
    """Answers 405 for a method a concrete path lacks, before a template that also matches it is tried.

    Without this, ``GET /warnings/manual`` would reach ``GET /warnings/{warning_id}`` and answer 422.
    """

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app, self.api = app, api
        self._concrete: dict[str, list[str]] | None = None

    def _table(self) -> dict[str, list[str]]:
        if self._concrete is None:  # the routers are all included by the first request
            paths = {path for path, _, concrete, _ in _paths(self.api.routes) if concrete}
            self._concrete = {path: allowed_methods(self.api.routes, path) for path in paths}
        return self._concrete

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            methods = self._table().get(scope["path"])
            if methods and scope["method"] not in methods:
                await method_not_allowed(methods)(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --------------------------------------------------------------------------- handlers


def _integrity_status(exc: IntegrityError) -> int:
    """422 for a value the column refuses (null, check), 409 for a clash with another row (unique, reference)."""
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or ""  # PostgreSQL
    name = getattr(orig, "sqlite_errorname", None) or ""  # SQLite
    if state in ("23502", "23514") or name in ("SQLITE_CONSTRAINT_NOTNULL", "SQLITE_CONSTRAINT_CHECK"):
        return 422
    return 409


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(ConcretePathsFirst, api=app)

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.zh, exc.en, exc.details), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(IllegalTransition)
    async def _illegal_transition(_req: Request, exc: IllegalTransition) -> JSONResponse:
        # Every domain machine refuses the same way: 409, what was asked, and what its state allows.
        details: dict[str, Any] = {"state": exc.state.value, "transition": exc.transition.value}
        if exc.machine is not None:
            details["allowed"] = [t.value for t in exc.machine.allowed(exc.state)]
        return JSONResponse(error_body("illegal_transition", exc.zh, exc.en, details), status_code=409)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:  # Starlette names only the first route's methods; the path may have more
            return method_not_allowed(allowed_methods(req.app.routes, req.scope["path"]))
        code, zh, en = _STATUS_TEXT.get(exc.status_code, ("error", "请求失败", "Request failed"))
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail not in (en, "Not Found") else None
        return JSONResponse(
            error_body(code, zh, en, detail), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_req: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()
        ]
        return JSONResponse(
            error_body("validation_error", "提交的数据不合要求，请按提示修改", "Invalid input; see details", details),
            status_code=422,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity_error(_req: Request, exc: IntegrityError) -> JSONResponse:
        # A safety net: input is checked before it is written, so this names a check that is missing.
        # The request's session is rolled back by its dependency; the client gets a 4xx, not a 500.
        status = _integrity_status(exc)
        if status == 422:
            body = error_body("invalid_value", "数据不能保存：有字段为空或取值不被允许",
                              "Cannot be saved: a field is empty or has a value that is not allowed")
        else:
            body = error_body("conflict", "与已有记录冲突，未保存", "Conflicts with an existing record; not saved")
        return JSONResponse(body, status_code=status)

    @app.exception_handler(DataError)
    async def _data_error(_req: Request, exc: DataError) -> JSONResponse:
        return JSONResponse(error_body("invalid_value", "数据不能保存：有字段过长或超出范围",
                                       "Cannot be saved: a field is too long or out of range"), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body(
                "internal_error",
                "服务器内部错误，已记录；请稍后重试或联系管理员",
                "Internal error, logged; retry later or contact the administrator",
                type(exc).__name__,
            ),
            status_code=500,
        )
