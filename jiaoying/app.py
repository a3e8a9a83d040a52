"""``create_app(settings)``: the one place where routers, runtime and scheduler are put together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from config import auth
from config.auth import LoginLimiter
from config.clock import Clock
from config.database import ping
from config.errors import add_error_schema, errors, install_error_handlers
from config.logs import RequestIdMiddleware
from config.runtime import Runtime, build_runtime
from config.settings import Settings
from config.web import declare_common_errors
from console import pages as console_pages
from geo import api as geo_api
from jiaoying import __version__, migrate, wiring
from jiaoying import metrics as metrics_route
from jiaoying.scheduler import build_scheduler, is_leader
from responses.audit import api as audit_api
from responses.callouts import api as callout_api
from responses.callouts import service as callout_service
from responses.duty import api as duty_api
from responses.measures import api as measure_api
from responses.measures import service as measure_service
from responses.messaging import aliyun_webhooks, webhooks
from responses.reports import api as report_api
from responses.runs import api as responses_api
from responses.runs import engine as response_engine
from warning import api as warning_api
from warning.consultation import api as consultation_api

log = logging.getLogger("jiaoying")

ROUTERS = [
    auth.router,
    geo_api.router,
    webhooks.router,
    aliyun_webhooks.router,
    consultation_api.router,
    responses_api.router,
    responses_api.roster_router,
    callout_api.router,
    callout_api.contacts_router,
    warning_api.feeds_router,
    warning_api.warnings_router,
    measure_api.router,
    report_api.router,
    duty_api.router,
    audit_api.router,
]

PUBLIC_PATHS = {"/healthz", "/readyz", "/auth/token", *webhooks.WEBHOOK_PATHS}  # webhooks: provider-signed
PUBLIC_PATHS.update(aliyun_webhooks.PUSH_PATHS)  # Alibaba Cloud pushes: the push token in the path
PUBLIC_PATHS.add("/metrics")  # its own protection: a scrape token, or loopback only (jiaoying/metrics.py)

# Statuses a router's own module cannot declare for itself: the provider webhooks refuse a bad signature.
ROUTER_ERRORS: dict[int, dict[int | str, dict[str, Any]]] = {id(webhooks.router): errors(403)}


class Readiness(BaseModel):
    status: str  # ready | not_ready
    checks: dict[str, Any]


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    runtime: Runtime | None = None,
    scheduler: bool | None = None,
) -> FastAPI:
    settings.require_valid()
    wiring.install()
    use_scheduler = settings.scheduler.enabled if scheduler is None else scheduler

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or build_runtime(settings, clock=clock)
        if settings.database.auto_upgrade:  # under the start-up lock: instances started together wait their turn
            migrate.upgrade_locked(rt.engine, wait_seconds=settings.cluster.startup_lock_seconds)
        app.state.runtime = rt
        response_engine.install(rt.state)
        # keypresses and replies answer callouts and acknowledge measure orders (the rule: measures.route_reply)
        webhooks.set_answer_handler(app, measure_service.handle_inbound)
        webhooks.set_status_handler(app, callout_service.on_message_final)  # a failed number fails over at once
        callout_service.install(rt.state)  # the answer window runs from when the first try is accepted
        callout_service.set_send_rate(callout_service.send_rate_of(rt.settings), rt.engine)  # a fan-out's tail waits
        app.state.settings = settings
        app.state.clock = rt.clock
        app.state.session_factory = rt.session_factory
        app.state.read_session_factory = rt.read_session_factory
        app.state.http = rt.http
        app.state.login_limiter = LoginLimiter(
            settings.security.login_attempts, settings.security.login_window_seconds
        )
        sched = build_scheduler(rt) if use_scheduler else None
        app.state.scheduler = sched
        if sched is not None:
            sched.start()
        try:
            yield
        finally:
            if sched is not None:
                sched.shutdown(wait=False)
            if runtime is None:
                rt.close()

    app = FastAPI(
        title="叫应 Jiaoying",
        version=__version__,
        description="多部门灾害预警与响应调度系统 / Multi-agency disaster early-warning and response orchestrator",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"], operation_id="healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"], operation_id="readyz", response_model=Readiness,
             responses={503: {"model": Readiness, "description": "未就绪 / not ready: see checks"}})
    def readyz(request: Request) -> Any:
        rt: Runtime = request.app.state.runtime
        checks: dict[str, Any] = {}
        ok = True
        try:
            ping(rt.engine)
            checks["database"] = "ok"
        except Exception as exc:  # reported, not raised: this endpoint exists to say what is wrong
            ok = False
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            current = migrate.is_current(rt.engine)
            checks["migrations"] = "current" if current else "behind: run `jiaoying db upgrade`"
            ok = ok and current
        except Exception as exc:
            ok = False
            checks["migrations"] = f"error: {type(exc).__name__}"
        sched = request.app.state.scheduler
        last = rt.state.get("last_tick")
        checks["scheduler"] = {
            "enabled": sched is not None,
            "running": bool(sched and sched.running),
            "last_tick": last.isoformat() if last else None,
            "leader": bool(sched is not None and is_leader(rt)),  # runs the once-per-tick jobs (scheduler.py)
        }
        return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks}, 200 if ok else 503)

    for router in ROUTERS:
        app.include_router(router, responses=ROUTER_ERRORS.get(id(router)))
    console_pages.install(app)  # the duty console: HTML pages and their static files, outside the schema
    app.include_router(metrics_route.router)  # Prometheus /metrics, outside the schema
    app.add_middleware(RequestIdMiddleware)  # X-Request-ID on every answer and in every log line of the request
    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """The OpenAPI document carries the one error shape every operation refers to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_error_schema(declare_common_errors(generate(), app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
