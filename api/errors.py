"""One place that turns errors into RFC 9457 problem details, and documents them.

Invariant: the client never sees a stack trace, SQL, a file path or an input value; an
unexpected error becomes a bare 500 with the request id, and the details go to the log.

Every error answer is ``application/problem+json``: the errors Tarcza raises
(:class:`~core.errors.TarczaError`), request validation (which names the field and the rule,
never the value), unmatched routes (404), wrong methods (405, with ``Allow``), a body in a
media type the route does not read (415). :func:`install_openapi` writes the same into the
OpenAPI document: the ``Problem`` schema under ``application/problem+json`` for every error
status an operation can answer, and the security schemes each operation accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import InvalidInputError, TarczaError
from core.logging import get_logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = get_logger(__name__)

_HTTP_CODES: Final = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 413: "payload-too-large",
                      415: "unsupported-media-type"}


class UnsupportedMediaTypeError(InvalidInputError):
    """A request body in a media type the route does not read."""

    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


def problem_response(request: Request, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    body = dict(body)
    body.setdefault("instance", request.url.path)
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=int(body["status"]), media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def tarcza_problem(request: Request, exc: TarczaError) -> JSONResponse:
    """The answer to a :class:`TarczaError`: its problem details and its headers (``Retry-After``...)."""
    if exc.status >= 500:
        log.error("request_failed", error=type(exc).__name__, code=exc.code, status=exc.status)
    return problem_response(request, exc.problem(), headers=getattr(exc, "headers", None))


def http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The answer to Starlette's own errors (no route, wrong method...)."""
    detail = exc.detail if isinstance(exc.detail, str) else "HTTP error"
    code = _HTTP_CODES.get(exc.status_code)
    return problem_response(request, {
        "type": f"urn:tarcza:problem:{code}" if code else "about:blank", "title": detail,
        "status": exc.status_code, "detail": detail,
    }, headers=getattr(exc, "headers", None))


async def _tarcza_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, TarczaError):  # pragma: no cover - registered for this type only
        raise exc
    return tarcza_problem(request, exc)


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
    return http_problem(request, exc)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_error", error=type(exc).__name__, exc_info=exc)
    return problem_response(request, {
        "type": "urn:tarcza:problem:internal-error", "title": "Internal error", "status": 500,
        "detail": "an unexpected error occurred; quote the request id to the operator",
    })


def install_error_handlers(app: FastAPI) -> None:
    """Problem details for every error, and the OpenAPI document that says so (:func:`install_openapi`)."""
    app.add_exception_handler(TarczaError, _tarcza_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    install_openapi(app)


# -- the OpenAPI document --------------------------------------------------------------------------

SECURITY_SCHEMES: Final[dict[str, dict[str, Any]]] = {
    "sessionToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "tzs_...",
        "description": "A person's session token from POST /v1/auth/login (password and TOTP). Actions that "
                       "need a fresh second factor take one verified within the policy's window "
                       "(POST /v1/auth/step-up).",
    },
    "clientToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "tza_...",
        "description": "An API client's access token from POST /v1/oauth/token (client credentials grant); "
                       "it carries the scopes the client was granted.",
    },
    "clientCredentials": {
        "type": "http", "scheme": "basic",
        "description": "An API client's id and secret for POST /v1/oauth/token (or client_id and client_secret "
                       "in the form).",
    },
}

PROBLEM_DESCRIPTIONS: Final[dict[int, str]] = {
    400: "Bad request: a body that cannot be parsed (not UTF-8, not JSON), or an OAuth error (problem details)",
    401: "Not authenticated: no token, or one that is invalid or expired (problem details, WWW-Authenticate)",
    403: "Refused by a policy rule (problem details naming the kind of rule: role, scope, second_factor...)",
    404: "Not found (problem details)",
    405: "Method not allowed (problem details, Allow)",
    409: "Conflict with what is stored, or the same Idempotency-Key still in progress (problem details)",
    410: "Gone: the subject was crypto-shredded (problem details)",
    413: "Request body too large (problem details)",
    415: "Unsupported media type of the request body (problem details)",
    416: "Range not satisfiable (problem details, Content-Range)",
    422: "Invalid input: names the field and the rule, never the value; or an Idempotency-Key reused for "
         "another request (problem details)",
    429: "Too many requests (problem details, Retry-After)",
    503: "Unavailable: the database or the key provider cannot be reached (problem details)",
}


REPLAYED_HEADER_DOC: Final[dict[str, Any]] = {
    "schema": {"type": "string", "enum": ["true"]},
    "description": "Present on the answer to a retry: the first request's answer, replayed",
}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` document problems and security on every operation (see :func:`document`)."""
    generate = app.openapi
    documented: list[bool] = []

    def openapi() -> dict[str, Any]:
        doc = generate()
        if not documented:
            document(app, doc)
            documented.append(True)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI, doc: dict[str, Any]) -> None:
    """Add to ``doc`` the Problem schema, the security schemes, and per operation its security and
    every error status it can answer (from what the route depends on: authentication, path
    parameters, a body, an ``Idempotency-Key``), each under ``application/problem+json``."""
    from api.schemas import Problem

    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    components["securitySchemes"] = SECURITY_SCHEMES
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, method, route in _operations(app):
        operation = doc.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        security, statuses = _route_facts(route, path)
        operation["security"] = security
        responses: dict[str, Any] = operation.setdefault("responses", {})
        if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
            for success in (s for s in responses if s.startswith("2")):
                responses[success].setdefault("headers", {})["Idempotent-Replayed"] = REPLAYED_HEADER_DOC
        for status in sorted(statuses | {int(s) for s in responses if s.isdigit() and int(s) >= 400}):
            entry = responses.setdefault(str(status), {})
            entry.setdefault("description", PROBLEM_DESCRIPTIONS.get(status, "Problem details"))
            content = entry.setdefault("content", {})
            content.pop("application/json", None)
            content[PROBLEM_MEDIA_TYPE] = {"schema": ref}
            if status == 401:
                entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"},
                                                         "description": 'Bearer realm="tarcza"'}}
            elif status in (409, 429):
                entry["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                    "description": "Seconds to wait before retrying"}}
        operation["responses"] = dict(sorted(responses.items()))


def _operations(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """(path, lower-case method, route) of every documented operation of the app."""
    try:
        from fastapi.routing import iter_route_contexts

        routes: list[Any] = list(iter_route_contexts(app.routes))
    except ImportError:  # pragma: no cover - older FastAPI keeps included routes flat
        routes = list(app.routes)
    for route in routes:
        if getattr(route, "dependant", None) is None or not getattr(route, "include_in_schema", False):
            continue
        for method in sorted(set(route.methods or ()) - {"HEAD"}):
            yield route.path_format, method.lower(), route


def _calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _route_facts(route: Any, path: str) -> tuple[list[dict[str, list[str]]], set[int]]:
    """The security requirements of a route and the error statuses it can answer."""
    from api import auth
    from api.idempotency import is_idempotency_dependency

    dependant = route.dependant
    calls = set(_calls(dependant))
    statuses: set[int] = {429}
    has_input = bool(dependant.path_params or dependant.query_params or dependant.header_params
                     or route.body_field is not None)
    extra_body = bool((route.openapi_extra or {}).get("requestBody"))
    if has_input or extra_body:
        statuses.add(422)
    if route.body_field is not None or extra_body:
        statuses |= {400, 413, 415}
    if dependant.path_params:
        statuses.add(404)
    if any(is_idempotency_dependency(call) for call in calls):
        statuses |= {409, 422}
    if path == "/v1/oauth/token":
        return [{"clientCredentials": []}, {}], statuses | {400, 401}
    if auth.current_principal not in calls:
        return [], statuses
    statuses |= {401, 403}
    if auth.require_user in calls:
        return [{"sessionToken": []}], statuses
    return [{"sessionToken": []}, {"clientToken": []}], statuses
