"""The error hierarchy, seen from the caller's side.

Every error Tarcza raises on purpose is a :class:`TarczaError`. Each carries what the
HTTP layer needs to answer with RFC 9457 problem details (``status``, ``code``,
``title``) and a ``detail`` written for the caller. Invariant: ``detail`` never holds
personal data or internals (paths to secrets, SQL, stack frames); put those in the
server log, keyed by subject token, not in the message.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TarczaError(Exception):
    """Root of every error Tarcza raises deliberately."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem-details body for this error (without ``instance``)."""
        body: dict[str, Any] = {
            "type": f"urn:tarcza:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class ConfigurationError(TarczaError):
    """The settings or the data directory cannot be used as they are."""

    code = "configuration"
    title = "Configuration error"


class DatabaseUnavailableError(TarczaError):
    """The database cannot be reached or is not at the expected schema version."""

    status = 503
    code = "database-unavailable"
    title = "Database unavailable"


class InvalidInputError(TarczaError):
    """The request is well-formed but its content is refused."""

    status = 422
    code = "invalid-input"
    title = "Invalid input"


class NotFoundError(TarczaError):
    """The thing asked for does not exist (or the caller may not know it exists)."""

    status = 404
    code = "not-found"
    title = "Not found"


class ConflictError(TarczaError):
    """The request conflicts with what is already stored."""

    status = 409
    code = "conflict"
    title = "Conflict"


class AuthenticationError(TarczaError):
    """No valid credentials were presented."""

    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class PermissionDeniedError(TarczaError):
    """Credentials are valid but the action is not allowed."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class RateLimitedError(TarczaError):
    """Too many attempts; try again later."""

    status = 429
    code = "rate-limited"
    title = "Too many attempts"
