"""Errors of the client, from the integrator's side.

Every error the client raises is a :class:`TarczaClientError`. An answer in RFC 9457 problem
details becomes a :class:`ProblemError` (a subclass per status the caller handles differently);
a network failure that outlived the retries becomes a :class:`TransportError`.

Invariant: an exception never carries the request, its body or its headers (contact notes,
personal data, the bearer token): only the method, the path template, and what the server
answered. Errors are raised outside ``except`` blocks so that no chained httpx exception (which
holds the request) travels with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

_STANDARD = frozenset({"type", "title", "status", "detail", "instance", "request_id"})


class TarczaClientError(Exception):
    """Root of every error this client raises."""


class TransportError(TarczaClientError):
    """The server could not be reached, or the connection broke, on every attempt."""

    def __init__(self, method: str, path: str, reason: str, attempts: int) -> None:
        super().__init__(f"{method} {path}: {reason} (after {attempts} attempt(s))")
        self.method = method
        self.path = path
        self.reason = reason
        self.attempts = attempts


class UnexpectedResponseError(TarczaClientError):
    """An answer that is neither what the operation returns nor problem details (e.g. from a proxy)."""

    def __init__(self, method: str, path: str, status: int, content_type: str) -> None:
        super().__init__(f"{method} {path}: unexpected HTTP {status} ({content_type or 'no content type'})")
        self.method = method
        self.path = path
        self.status = status
        self.content_type = content_type


class ProblemError(TarczaClientError):
    """The server answered with RFC 9457 problem details.

    ``extensions`` holds the other members the server sent (``rule``, ``errors``, ...): they are
    the server's words about the request, never the request itself.
    """

    status_code: ClassVar[int | None] = None

    def __init__(self, *, type: str, title: str, status: int, detail: str | None = None,
                 instance: str | None = None, request_id: str | None = None,
                 extensions: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status} {title}: {detail or title}"
                         + (f" (request id {request_id})" if request_id else ""))
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.instance = instance
        self.request_id = request_id
        self.extensions: dict[str, Any] = dict(extensions or {})

    @property
    def code(self) -> str:
        """The last part of a ``urn:tarcza:problem:<code>`` type (``contact-refused``), or the type itself."""
        return self.type.rsplit(":", 1)[-1] if self.type.startswith("urn:tarcza:problem:") else self.type


class BadRequestError(ProblemError):
    """400: e.g. an OAuth token request refused (``extensions["error"]`` is the RFC 6749 code)."""

    status_code = 400


class UnauthorizedError(ProblemError):
    """401: missing, invalid or expired credentials (the client renews its token once by itself)."""

    status_code = 401


class ForbiddenError(ProblemError):
    """403: a policy refused; ``rule`` names its kind (scope, purpose, restriction, ...)."""

    status_code = 403

    @property
    def rule(self) -> str | None:
        value = self.extensions.get("rule")
        return str(value) if value is not None else None


class NotFoundError(ProblemError):
    """404: no such subject, debt, case, contact, request or recording."""

    status_code = 404


class GoneError(NotFoundError):
    """410: the subject was crypto-shredded; its data can never be read again."""

    status_code = 410


class ConflictError(ProblemError):
    """409: the request conflicts with what is stored (e.g. an idempotency key reused for another body)."""

    status_code = 409


class ContactRefusedError(ConflictError):
    """409 ``contact-refused``: the contact-policy firewall refused the contact; the refusal is logged."""

    @property
    def rules(self) -> list[dict[str, Any]]:
        """The rules that refused, each ``{"rule", "action", "message"}``."""
        value = self.extensions.get("rules")
        return list(value) if isinstance(value, list) else []


class UnprocessableError(ProblemError):
    """422: the input was refused; ``errors`` names the fields and rules (never the values)."""

    status_code = 422

    @property
    def errors(self) -> list[dict[str, Any]]:
        value = self.extensions.get("errors")
        return list(value) if isinstance(value, list) else []


class RateLimitedError(ProblemError):
    """429: too many requests; ``retry_after`` is the server's wait in seconds, if it said."""

    status_code = 429

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retry_after = retry_after


class ServerError(ProblemError):
    """5xx: the server failed or is unavailable; quote ``request_id`` to its operator."""


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequestError, 401: UnauthorizedError, 403: ForbiddenError, 404: NotFoundError, 409: ConflictError,
    410: GoneError, 422: UnprocessableError, 429: RateLimitedError,
}


def problem_error(status: int, body: Mapping[str, Any], *, retry_after: float | None = None) -> ProblemError:
    """The exception for a problem-details answer with HTTP ``status``."""
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ProblemError)
    problem_type = str(body.get("type") or "about:blank")
    if cls is ConflictError and problem_type.endswith(":contact-refused"):
        cls = ContactRefusedError
    request_id = body.get("request_id")
    detail = body.get("detail")
    instance = body.get("instance")
    kwargs: dict[str, Any] = {
        "type": problem_type, "title": str(body.get("title") or f"HTTP {status}"), "status": status,
        "detail": None if detail is None else str(detail), "instance": None if instance is None else str(instance),
        "request_id": None if request_id is None else str(request_id),
        "extensions": {k: v for k, v in body.items() if k not in _STANDARD},
    }
    if cls is RateLimitedError:
        return RateLimitedError(retry_after=retry_after, **kwargs)
    return cls(**kwargs)
