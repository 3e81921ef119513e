"""The FastAPI application: ``create_app()`` wires routers, middleware and error handling.

The middleware, outermost first: :class:`RequestContext` (request id, access log, metrics),
:class:`~api.security.SecurityHeaders`, Starlette's error middleware (the 500 problem),
:class:`~api.security.AddressRateLimit`, :class:`~api.security.BodyLimit`, then the
exception handlers and the routes. The first two wrap the error middleware, so even a 500
carries the request id and the security headers.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import core
from api.errors import install_error_handlers
from api.runtime import Runtime
from api.security import (
    AddressRateLimit,
    BodyLimit,
    BodyTooLargeError,
    RateLimits,
    SecurityHeaders,
    body_routes,
    body_too_large_handler,
    docs_page,
)
from core.logging import get_logger
from core.settings import Settings, load_settings

log = get_logger("tarcza.http")

HTTP_REQUESTS = Counter("tarcza_http_requests_total", "HTTP requests handled", ["method", "route", "status"])
HTTP_LATENCY = Histogram("tarcza_http_request_seconds", "HTTP request latency", ["method", "route"])
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")


class RequestContext:
    """ASGI middleware: a request id for every request (``X-Request-ID``), the access log line and metrics.

    An incoming ``X-Request-ID`` of 8-64 safe characters is kept, anything else replaced.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        header = (b"x-request-id", request_id.encode("ascii"))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(elapsed)
            log.info("http_request", method=method, route=route, status=status, ms=round(elapsed * 1000, 2))


class TarczaAPI(FastAPI):
    """FastAPI with :class:`RequestContext` and :class:`SecurityHeaders` outside its error middleware."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestContext(SecurityHeaders(super().build_middleware_stack()))


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the HTTP API (and console) for ``settings`` (read from the environment if omitted)."""
    runtime = runtime or Runtime(settings or load_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        _ = runtime.authorizer  # validates the policy set (refusing to start if invalid), logs policy.loaded
        if runtime.settings.log_key_path.exists():
            runtime.audit.start_periodic_checkpoints()  # every TARCZA_CHECKPOINT_EVERY_SECONDS while it grows
            if runtime.settings.witnesses:
                runtime.witness_client.start()  # cosignatures from TARCZA_WITNESSES, in the background
        try:
            yield
        finally:
            runtime.close()

    app = TarczaAPI(
        title="Tarcza",
        version=core.__version__,
        description=(
            "Compliance and audit platform for debt collection: encrypted PII vault, tamper-evident "
            "audit log, GDPR tooling. Errors are RFC 9457 problem details (application/problem+json)."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_exception_handler(BodyTooLargeError, body_too_large_handler)
    s = runtime.settings
    app.state.rate_limits = RateLimits.from_settings(s)
    app.add_middleware(BodyLimit, default=s.max_body_bytes, routes=body_routes(s))
    app.add_middleware(AddressRateLimit, limits=app.state.rate_limits)
    _add_docs_pages(app)

    from api.console import routes as console_routes
    from api.routers import health

    app.include_router(health.router)
    app.include_router(console_routes.router)
    for extra in _capability_routers():
        app.include_router(extra)
    return app


def _add_docs_pages(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, each with the CSP its CDN assets need (see api.security)."""
    openapi_url = app.openapi_url or "/openapi.json"
    pages = {
        "/docs": docs_page(get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
                                               oauth2_redirect_url="/docs/oauth2-redirect")),
        "/docs/oauth2-redirect": docs_page(get_swagger_ui_oauth2_redirect_html()),
        "/redoc": docs_page(get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc")),
    }
    for path, built in pages.items():
        body, policy = bytes(built.body), built.headers["content-security-policy"]

        async def page(body: bytes = body, policy: str = policy) -> HTMLResponse:
            return HTMLResponse(body, headers={"Content-Security-Policy": policy})

        app.add_api_route(path, page, include_in_schema=False, response_class=HTMLResponse)


def _capability_routers() -> list[APIRouter]:
    """Routers of the capabilities, in dependency order; each module exposes ``router``."""
    import importlib

    return [importlib.import_module(name).router for name in ROUTER_MODULES]


ROUTER_MODULES: tuple[str, ...] = (
    "api.routers.audit",
    "api.routers.identity",
    "api.routers.vault",
    "api.routers.contacts",
    "api.routers.debts",
    "api.routers.gdpr",
    "api.routers.gdpr_registers",
)
