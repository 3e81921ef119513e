"""One place that turns errors into RFC 9457 problem details.

Invariant: the client never sees a stack trace, SQL, a file path or an input value; an
unexpected error becomes a bare 500 with the request id, and the details go to the log.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import TarczaError
from core.logging import get_logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = get_logger(__name__)


def problem_response(request: Request, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    body = dict(body)
    body.setdefault("instance", request.url.path)
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=int(body["status"]), media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _tarcza_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, TarczaError):  # pragma: no cover - registered for this type only
        raise exc
    if exc.status >= 500:
        log.error("request_failed", error=type(exc).__name__, code=exc.code, status=exc.status)
    headers = getattr(exc, "headers", None)
    return problem_response(request, exc.problem(), headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    errors = [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
        for err in exc.errors()
    ]  # never echo "input" or "ctx": they may carry the submitted personal data
    return problem_response(request, {
        "type": "urn:tarcza:problem:request-validation",
        "title": "Request validation failed",
        "status": 422,
        "detail": f"{len(errors)} field(s) failed validation",
        "errors": errors,
    })


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    detail = exc.detail if isinstance(exc.detail, str) else "HTTP error"
    return problem_response(request, {
        "type": "about:blank", "title": detail, "status": exc.status_code, "detail": detail,
    }, headers=getattr(exc, "headers", None))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_error", error=type(exc).__name__, exc_info=exc)
    return problem_response(request, {
        "type": "urn:tarcza:problem:internal-error", "title": "Internal error", "status": 500,
        "detail": "an unexpected error occurred; quote the request id to the operator",
    })


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TarczaError, _tarcza_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
