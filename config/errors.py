"""One JSON error shape for every API answer that is not a success.

``{"error": {"code": "...", "message": "<zh>", "message_en": "<en>", "details": ...}}`` — the
console shows ``message`` (Chinese first); scripts match on ``code``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


_STATUS_TEXT = {
    400: ("bad_request", "请求有误", "Bad request"),
    401: ("unauthorized", "请先登录", "Authentication required"),
    403: ("forbidden", "无权执行此操作", "Not allowed for your role"),
    404: ("not_found", "未找到", "Not found"),
    405: ("method_not_allowed", "不支持该方法", "Method not allowed"),
    409: ("conflict", "与当前状态冲突", "Conflicts with the current state"),
    413: ("too_large", "内容过大", "Payload too large"),
    429: ("too_many_requests", "请求过于频繁，请稍后再试", "Too many requests, try again later"),
}


def install_error_handlers(app: FastAPI) -> None:
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
    async def _http_error(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
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
