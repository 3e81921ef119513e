"""Authentication and authorisation for the HTTP API.

``Authorization: Bearer <token>`` carries a user session token (``tzs_``, from
``POST /v1/auth/login``) or a client access token (``tza_``, from ``POST /v1/oauth/token``).
:func:`current_principal` turns it into a :class:`~identity.principal.Principal` or
answers 401 with ``WWW-Authenticate``; :func:`require_action` then asks the Cedar
policies and answers 403 naming the kind of rule that refused.

The principal is resolved in a short transaction of its own (committed at once), so a
route's own transaction starts clean: on SQLite the audit log needs the write lock, and
a request holding a write transaction while appending would wait for itself.

Two transport checks happen here, once the credential has resolved: an API client bound
to a TLS certificate must have come over mutual TLS with it (the connection's certificate
is read from the ASGI ``tls`` extension, see :mod:`api.security`), and every principal
has its own rate limit (``TARCZA_RATE_LIMIT_CLIENT``), answered 429 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request

from api.deps import RuntimeDep
from api.runtime import Runtime
from api.security import RateLimits, presented_certificate_sha256
from audit.events import ActorKind
from core.errors import PermissionDeniedError
from identity.errors import MissingCredentialsError
from identity.principal import Principal
from identity.service import Identity, transaction
from identity.tokens import ACCESS_PREFIX
from policies.authorizer import Decision, Resource

SYSTEM_RESOURCE = Resource("system")
STEP_UP_PATH = "/v1/auth/step-up"


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@contextmanager
def identity_transaction(runtime: Runtime, *, read_only: bool = False) -> Iterator[Identity]:
    """Identity services for one operation: commit, then audit, then answer (see identity.service)."""
    with transaction(runtime.sessions, audit=lambda: runtime.audit, clock=runtime.clock,
                     box=runtime.secret_box_loader(), read_only=read_only) as identity:
        yield identity


def current_principal(request: Request, runtime: RuntimeDep) -> Principal:
    """The principal of the bearer token; 401 problem details with ``WWW-Authenticate`` otherwise.

    429 problem details with ``Retry-After`` once the principal has used up its rate limit.
    """
    token = bearer_token(request)
    if token is None:
        raise MissingCredentialsError()
    # A client's access token resolves without writing (sessions of users are touched: idle timeout).
    with identity_transaction(runtime, read_only=token.startswith(ACCESS_PREFIX)) as identity:
        principal = identity.resolve_bearer(token, source_ip=client_ip(request),
                                            client_cert_sha256=presented_certificate_sha256(request.scope))
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    if limits is not None:
        limits.check_principal(principal.id)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def authorize(runtime: Runtime, principal: Principal, action: str, resource: Resource = SYSTEM_RESOURCE, *,
              purpose: str | None = None, justification: str | None = None) -> Decision:
    """Ask the policies; raise 403 (naming the rule kind, never data) unless allowed."""
    decision = runtime.authorizer.decide(principal, action, resource, purpose=purpose, now=runtime.clock.now(),
                                         justification=justification)
    if not decision.allowed:
        raise denied(action, decision)
    return decision


def denied(action: str, decision: Decision) -> PermissionDeniedError:
    extra: dict[str, str] = {"rule": decision.rule, "reason": decision.reason}
    if decision.rule == "second_factor":
        extra["step_up"] = STEP_UP_PATH
    return PermissionDeniedError(f"{action} refused by a {decision.rule} rule", **extra)


def require_action(action: str) -> Callable[[Runtime, Principal], Principal]:
    """A dependency: the current principal, if the policies allow ``action`` on the system."""

    def dependency(runtime: RuntimeDep, principal: PrincipalDep) -> Principal:
        authorize(runtime, principal, action)
        return principal

    dependency.__name__ = f"require_{action.replace('.', '_')}"
    return dependency


def require_scope(*scopes: str) -> Callable[[Principal], Principal]:
    """A dependency for client-only endpoints: the client must hold every scope named.

    People are refused here (their access goes through :func:`require_action`).
    """

    def dependency(principal: PrincipalDep) -> Principal:
        missing = sorted(set(scopes) - principal.scopes)
        if principal.kind is not ActorKind.CLIENT or missing:
            raise PermissionDeniedError("this endpoint needs an API client with scope(s) " + " ".join(scopes),
                                        rule="scope", reason="missing: " + " ".join(missing or scopes))
        return principal

    return dependency


def require_user(principal: PrincipalDep) -> Principal:
    """A dependency: the principal must be a person with a session (not a client)."""
    if principal.kind is not ActorKind.USER:
        raise PermissionDeniedError("this endpoint is for people with a login session", rule="role",
                                    reason="clients have no account")
    return principal
