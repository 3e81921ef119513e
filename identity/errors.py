"""Errors of identity, from the caller's side.

Authentication failures never say which part was wrong (unknown user, wrong password,
wrong code all read "invalid credentials"); the audit log and the server log know.
Errors that HTTP answers with a header carry it in ``headers`` (see api/errors.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.errors import AuthenticationError, ConfigurationError, InvalidInputError, RateLimitedError, TarczaError

BEARER_CHALLENGE = 'Bearer realm="tarcza"'


class InvalidCredentialsError(AuthenticationError):
    """Username, password, code, token or client secret not accepted."""

    code = "invalid-credentials"
    title = "Invalid credentials"

    def __init__(self, detail: str = "invalid credentials", *, challenge: str = BEARER_CHALLENGE,
                 **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers = {"WWW-Authenticate": challenge}


class MissingCredentialsError(AuthenticationError):
    """No bearer token was presented."""

    code = "unauthenticated"
    title = "Authentication required"

    def __init__(self, detail: str = "send Authorization: Bearer <token>") -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": BEARER_CHALLENGE}


class InvalidTokenError(AuthenticationError):
    """A bearer token that is unknown, expired or revoked."""

    code = "invalid-token"
    title = "Invalid or expired token"

    def __init__(self, detail: str = "the token is invalid, expired or revoked") -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": BEARER_CHALLENGE + ', error="invalid_token"'}


class ClientCertificateError(AuthenticationError):
    """A client bound to a TLS certificate came without it, or with another (RFC 8705 section 3)."""

    code = "client-certificate-required"
    title = "Client certificate required"

    def __init__(self) -> None:
        super().__init__("this API client is bound to a TLS client certificate; connect over mutual TLS "
                         "presenting that certificate")
        self.headers = {"WWW-Authenticate": BEARER_CHALLENGE + ', error="invalid_token"'}


class SecondFactorRequiredError(AuthenticationError):
    """The password was right; this account also needs a TOTP or recovery code."""

    code = "second-factor-required"
    title = "Second factor required"

    def __init__(self) -> None:
        super().__init__("this account needs a TOTP code (or a recovery code) as well", second_factor_required=True)
        self.headers = {"WWW-Authenticate": BEARER_CHALLENGE}


class ThrottledError(RateLimitedError):
    """Too many failed attempts: wait until ``retry_at`` (or the end of a lock-out)."""

    def __init__(self, retry_at: datetime, now: datetime, *, locked: bool) -> None:
        seconds = max(1, int((retry_at - now).total_seconds() + 0.999))
        what = "account locked after repeated failures" if locked else "too many failed attempts"
        super().__init__(f"{what}; retry in {seconds} s", retry_after=seconds, locked=locked)
        self.retry_at = retry_at
        self.headers = {"Retry-After": str(seconds)}


class TotpStateError(TarczaError):
    """The TOTP factor is not in the state the operation needs (e.g. already enrolled)."""

    status = 409
    code = "totp-state"
    title = "TOTP factor state conflict"


class IdentityKeyError(ConfigurationError):
    """The identity key file is missing, unreadable or cannot open a sealed secret."""


class WeakPasswordError(InvalidInputError):
    code = "weak-password"
    title = "Password refused"


class OAuthError(TarczaError):
    """An OAuth 2.0 token-endpoint error (RFC 6749 section 5.2), as problem details with ``error``."""

    status = 400
    code = "oauth"
    title = "Token request refused"

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail, error=error)
        self.error = error
        self.headers = {"Cache-Control": "no-store"}


class InvalidClientError(AuthenticationError):
    """Client authentication failed at the token endpoint (RFC 6749 ``invalid_client``)."""

    code = "invalid-client"
    title = "Client authentication failed"

    def __init__(self, detail: str = "client authentication failed") -> None:
        super().__init__(detail, error="invalid_client")
        self.headers = {"WWW-Authenticate": 'Basic realm="tarcza"', "Cache-Control": "no-store"}
