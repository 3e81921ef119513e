"""The FastAPI application: ``create_app()`` wires routers, middleware and error handling."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import Counter, Histogram

import core
from api.errors import install_error_handlers
from api.runtime import Runtime
from core.logging import get_logger
from core.settings import Settings, load_settings

log = get_logger("tarcza.http")

HTTP_REQUESTS = Counter("tarcza_http_requests_total", "HTTP requests handled", ["method", "route", "status"])
HTTP_LATENCY = Histogram("tarcza_http_request_seconds", "HTTP request latency", ["method", "route"])
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the HTTP API (and console) for ``settings`` (read from the environment if omitted)."""
    runtime = runtime or Runtime(settings or load_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        _ = runtime.authorizer  # validates the policy set (refusing to start if invalid), logs policy.loaded
        if runtime.settings.log_key_path.exists():
            runtime.audit.start_periodic_checkpoints()  # every TARCZA_CHECKPOINT_EVERY_SECONDS while it grows
        try:
            yield
        finally:
            runtime.close()

    app = FastAPI(
        title="Tarcza",
        version=core.__version__,
        description=(
            "Compliance and audit platform for debt collection: encrypted PII vault, tamper-evident "
            "audit log, GDPR tooling. Errors are RFC 9457 problem details (application/problem+json)."
        ),
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_error_handlers(app)

    @app.middleware("http")
    async def request_context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        incoming = request.headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.state.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        response = await call_next(request)
        elapsed = time.perf_counter() - started
        route = getattr(request.scope.get("route"), "path", "unmatched")
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(elapsed)
        response.headers["X-Request-ID"] = request_id
        log.info("http_request", method=request.method, route=route, status=response.status_code,
                 ms=round(elapsed * 1000, 2))
        return response

    from api.console import routes as console_routes
    from api.routers import health

    app.include_router(health.router)
    app.include_router(console_routes.router)
    for extra in _capability_routers():
        app.include_router(extra)
    return app


def _capability_routers() -> list[APIRouter]:
    """Routers of the capabilities, in dependency order; each module exposes ``router``."""
    import importlib

    return [importlib.import_module(name).router for name in ROUTER_MODULES]


ROUTER_MODULES: tuple[str, ...] = (
    "api.routers.audit",
    "api.routers.identity",
    "api.routers.vault",
    "api.routers.contacts",
    "api.routers.gdpr",
)
