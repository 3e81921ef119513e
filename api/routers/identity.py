"""HTTP API of identity: login, step-up, logout, TOTP enrolment, OAuth client credentials,
administration of users and clients, and the review of break-glass accesses.

Who may call what is in docs/authorisation-matrix.md (tested route by route). Responses
that carry a secret (a session token, an access token, a client secret, a TOTP secret or
recovery codes) are sent with ``Cache-Control: no-store``, and only after the audit entry
of the operation is durable.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import PrincipalDep, client_ip, identity_transaction, require_action, require_user
from api.deps import RuntimeDep
from api.idempotency import ApiRoute, Idempotent
from api.schemas import Cursor, Instant, InvalidCursorError, Page, decode_cursor, limit_query, page_json, page_of
from core.errors import InvalidInputError
from identity.errors import OAuthError
from identity.principal import Principal
from policies.review import list_break_glass, review_break_glass

router = APIRouter(tags=["identity"], route_class=ApiRoute)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem details, WWW-Authenticate)"},
    403: {"description": "Refused by a policy rule (problem details naming the rule kind)"},
    409: {"description": "Conflict (problem details)"},
    422: {"description": "Invalid input (problem details)"},
    429: {"description": "Too many failed attempts (problem details, Retry-After)"},
}

UserId = Annotated[str, Path(max_length=36, description="The user's id")]
ClientId = Annotated[str, Path(max_length=36, description="The API client's id")]
SelfDep = Annotated[Principal, Depends(require_action("account.self"))]
IdentityReadDep = Annotated[Principal, Depends(require_action("identity.read"))]
IdentityManageDep = Annotated[Principal, Depends(require_action("identity.manage"))]
ReviewDep = Annotated[Principal, Depends(require_action("policies.review"))]


def _no_store(response: Response) -> None:
    response.headers.update(NO_STORE)


# -- people: login, step-up, logout, me -------------------------------------------------------------


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "username": "anna.kowalska", "password": "correct horse battery staple", "totp_code": "492039"}]})
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(None, max_length=16, description="6-digit TOTP code (accounts with TOTP)")
    recovery_code: str | None = Field(None, max_length=32, description="A single-use recovery code instead")


class SecondFactorRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"totp_code": "492039"}]})
    totp_code: str | None = Field(None, max_length=16)
    recovery_code: str | None = Field(None, max_length=32)


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=16, description="The first code the authenticator app shows")


@router.post("/v1/auth/login", responses=PROBLEMS, summary="Log in with password (and TOTP); get a session token")
def login(body: LoginRequest, request: Request, response: Response, runtime: RuntimeDep) -> dict[str, Any]:
    with identity_transaction(runtime) as identity:
        issued = identity.auth.login(body.username, body.password, totp_code=body.totp_code,
                                     recovery_code=body.recovery_code, source_ip=client_ip(request))
    _no_store(response)
    return issued.to_json()


@router.post("/v1/auth/step-up", responses=PROBLEMS, summary="Verify the second factor again (fresh for reveals)")
def step_up(body: SecondFactorRequest, request: Request, principal: SelfDep, runtime: RuntimeDep) -> dict[str, Any]:
    if not body.totp_code and not body.recovery_code:
        raise InvalidInputError("send totp_code or recovery_code")
    with identity_transaction(runtime) as identity:
        at = identity.auth.step_up(principal, totp_code=body.totp_code, recovery_code=body.recovery_code,
                                   source_ip=client_ip(request))
    max_age = runtime.authorizer.parameters.second_factor_max_age
    return {"second_factor_at": at.isoformat(), "fresh_until": (at + max_age).isoformat()}


@router.post("/v1/auth/logout", status_code=204, responses=PROBLEMS, summary="End this session or access token")
def logout(principal: PrincipalDep, runtime: RuntimeDep) -> Response:
    with identity_transaction(runtime) as identity:
        identity.revoke_bearer(principal)
    return Response(status_code=204)


@router.get("/v1/auth/me", responses=PROBLEMS, summary="Who am I: roles, second factor, assigned cases")
def me(principal: SelfDep, runtime: RuntimeDep) -> dict[str, Any]:
    verified = principal.second_factor_at
    max_age = runtime.authorizer.parameters.second_factor_max_age
    return {
        "id": principal.id, "kind": principal.kind.value, "roles": sorted(r.value for r in principal.roles),
        "second_factor_at": verified.isoformat() if verified else None,
        "second_factor_fresh_until": (verified + max_age).isoformat() if verified else None,
        "assigned_cases": sorted(principal.assigned_cases), "session_id": principal.session_id,
    }


# -- TOTP enrolment -----------------------------------------------------------------------------------


@router.post("/v1/auth/totp/enroll", responses=PROBLEMS, summary="Start TOTP enrolment: otpauth URI and secret")
def totp_enroll(principal: SelfDep, response: Response, runtime: RuntimeDep,
                idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    with identity_transaction(runtime) as identity:
        enrolment = identity.factors.begin(identity.users.get(principal.id))
    _no_store(response)
    return {"otpauth_uri": enrolment.uri, "secret": enrolment.secret, "qr_png": "/v1/auth/totp/qr.png",
            "confirm": "/v1/auth/totp/confirm"}


@router.get("/v1/auth/totp/qr.png", response_class=Response, responses={
    **PROBLEMS, 200: {"content": {"image/png": {}}, "description": "QR code of the pending enrolment"},
    404: {"description": "No enrolment is pending (problem details)"}},
    summary="QR code (PNG) of the pending TOTP enrolment")
def totp_qr(principal: SelfDep, runtime: RuntimeDep) -> Response:
    with identity_transaction(runtime) as identity:
        png = identity.factors.pending(identity.users.get(principal.id)).qr_png()
    return Response(png, media_type="image/png", headers=NO_STORE)


@router.post("/v1/auth/totp/confirm", responses={**PROBLEMS, 404: {"description": "No enrolment is pending"}},
             summary="Confirm TOTP with the first code; returns 10 single-use recovery codes, once")
def totp_confirm(body: ConfirmRequest, request: Request, response: Response, principal: SelfDep,
                 runtime: RuntimeDep, idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001
    with identity_transaction(runtime) as identity:
        codes = identity.auth.confirm_enrolment(principal, body.code, source_ip=client_ip(request))
    _no_store(response)
    return {"totp_enrolled": True, "recovery_codes": codes}


# -- OAuth 2.0 client credentials ---------------------------------------------------------------------


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_request", "malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_request", "malformed Basic credentials")
    return unquote(client_id), unquote(secret)  # RFC 6749 section 2.3.1: form-urlencoded


@router.post("/v1/oauth/token", responses={
    400: {"description": "OAuth error (problem details with `error`)"},
    401: {"description": "invalid_client (problem details with `error`)"}},
    summary="OAuth 2.0 client credentials grant (RFC 6749 section 4.4): a short-lived bearer token")
def oauth_token(
    request: Request, response: Response, runtime: RuntimeDep,
    grant_type: Annotated[str | None, Form(max_length=64)] = None,
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=128)] = None,
    scope: Annotated[str | None, Form(max_length=500)] = None,
) -> dict[str, Any]:
    if grant_type is None:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "only grant_type=client_credentials is supported")
    basic = _basic_credentials(request)
    if basic is not None and (client_id or client_secret):
        raise OAuthError("invalid_request", "send client credentials in the Authorization header or the form, not both")
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        raise OAuthError("invalid_request", "client_id and client_secret are required")
    with identity_transaction(runtime) as identity:
        issued = identity.clients.issue_token(client_id, client_secret, scope=scope, source_ip=client_ip(request))
    _no_store(response)
    return issued.to_json()


# -- administration: users -----------------------------------------------------------------------------


class CreateUserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "username": "piotr.wisniewski", "password": "Zielony-Parasol-2026", "roles": ["collector"]}]})
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=1, max_length=1024, description="Initial password (at least 12 characters)")
    roles: list[Annotated[str, Field(max_length=32)]] = Field(min_length=1, max_length=6)


class AssignCasesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"case_ids": ["C-2026-0042"]}]})
    case_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(max_length=10000)


@router.get("/v1/users", response_model=Page, responses=PROBLEMS, summary="List users (by id)")
def list_users(principal: IdentityReadDep, runtime: RuntimeDep,  # noqa: ARG001
               cursor: Cursor = None, limit: Annotated[int, limit_query(100, 500)] = 100) -> dict[str, Any]:
    with identity_transaction(runtime) as identity:
        users, position = page_of(identity.users.list(), lambda u: u.id, cursor, limit)
    return page_json([u.to_json() for u in users], position)


@router.post("/v1/users", status_code=201, responses=PROBLEMS, summary="Create a user (who then enrols TOTP)")
def create_user(body: CreateUserRequest, principal: IdentityManageDep, runtime: RuntimeDep,
                idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    with identity_transaction(runtime) as identity:
        return identity.users.create(body.username, body.password, body.roles, actor=principal.actor).to_json()


@router.post("/v1/users/{user_id}/disable", responses=PROBLEMS, summary="Disable a user and end their sessions")
def disable_user(user_id: UserId, principal: IdentityManageDep, runtime: RuntimeDep) -> dict[str, Any]:
    with identity_transaction(runtime) as identity:
        return identity.users.disable(user_id, actor=principal.actor).to_json()


@router.post("/v1/users/{user_id}/reset-2fa", responses=PROBLEMS,
             summary="Remove a user's TOTP factor and recovery codes; they enrol again")
def reset_second_factor(user_id: UserId, principal: IdentityManageDep, runtime: RuntimeDep) -> dict[str, Any]:
    with identity_transaction(runtime) as identity:
        user = identity.users.get(user_id, for_update=True)
        identity.factors.reset(user, actor=principal.actor)
        return identity.users.info(user).to_json()


@router.put("/v1/users/{user_id}/cases", responses=PROBLEMS,
            summary="Replace the cases assigned to a user (a field agent sees only these)")
def assign_cases(user_id: UserId, body: AssignCasesRequest, principal: IdentityManageDep,
                 runtime: RuntimeDep) -> dict[str, Any]:
    with identity_transaction(runtime) as identity:
        return identity.users.assign_cases(user_id, body.case_ids, actor=principal.actor).to_json()


# -- administration: API clients ------------------------------------------------------------------------


class CreateClientRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "crm-windykacja", "scopes": ["contacts:write", "subjects:read"], "purposes": ["debt_collection"],
        "ip_allowlist": ["10.20.0.0/16"]}]})
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Annotated[str, Field(max_length=64)]] = Field(max_length=20)
    purposes: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None, max_length=50, description="Allowed purposes; omit for any")
    ip_allowlist: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None, max_length=100, description="CIDRs; omit for any address")


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_hours: float = Field(24.0, ge=0, le=720, description="How long older secrets keep working")


def _check_purposes(runtime: RuntimeDep, purposes: list[str] | None) -> None:
    if purposes is None:
        return
    unknown = sorted(set(purposes) - runtime.authorizer.purposes)
    if unknown:
        raise InvalidInputError(f"unknown purpose(s) {', '.join(unknown)}; see policies/authorisation.yaml")


@router.get("/v1/clients", response_model=Page, responses=PROBLEMS, summary="List API clients (by id)")
def list_clients(principal: IdentityReadDep, runtime: RuntimeDep,  # noqa: ARG001
                 cursor: Cursor = None, limit: Annotated[int, limit_query(100, 500)] = 100) -> dict[str, Any]:
    with identity_transaction(runtime) as identity:
        clients, position = page_of(identity.clients.list(), lambda c: c.id, cursor, limit)
        return page_json([c.to_json() for c in clients], position)


@router.post("/v1/clients", status_code=201, responses=PROBLEMS,
             summary="Create an API client; the secret is in this response only")
def create_client(body: CreateClientRequest, response: Response, principal: IdentityManageDep,
                  runtime: RuntimeDep, idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001
    _check_purposes(runtime, body.purposes)
    with identity_transaction(runtime) as identity:
        issued = identity.clients.create(body.name, body.scopes, purposes=body.purposes,
                                         ip_allowlist=body.ip_allowlist, actor=principal.actor)
    _no_store(response)
    return issued.to_json()


@router.post("/v1/clients/{client_id}/rotate", responses=PROBLEMS,
             summary="New client secret; older ones keep working for the overlap period")
def rotate_client(client_id: ClientId, response: Response, principal: IdentityManageDep, runtime: RuntimeDep,
                  idempotency: Idempotent, body: RotateRequest | None = None) -> dict[str, Any]:  # noqa: ARG001
    overlap = timedelta(hours=(body or RotateRequest()).overlap_hours)
    with identity_transaction(runtime) as identity:
        issued = identity.clients.rotate(client_id, overlap=overlap, actor=principal.actor)
    _no_store(response)
    return issued.to_json()


@router.post("/v1/clients/{client_id}/revoke", responses=PROBLEMS,
             summary="Revoke a client: its secrets and tokens stop working")
def revoke_client(client_id: ClientId, principal: IdentityManageDep, runtime: RuntimeDep) -> dict[str, Any]:
    with identity_transaction(runtime) as identity:
        return identity.clients.revoke(client_id, actor=principal.actor).to_json()


# -- review of break-glass accesses ---------------------------------------------------------------------


class ReviewRequest(BaseModel):
    """The verdict on one break-glass reveal; the reasons belong in the firm's case file, not here."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"verdict": "justified"}]})
    verdict: Literal["justified", "unjustified"]


@router.get("/v1/policies/break-glass", response_model=Page, responses=PROBLEMS,
            summary="Break-glass reveals, for review (oldest first), each with its review if it has one")
def break_glass(
    principal: ReviewDep, runtime: RuntimeDep,  # noqa: ARG001
    since: Instant | None = None, until: Instant | None = None,
    awaiting: Annotated[bool, Query(description="Only the reveals not reviewed yet")] = False,
    cursor: Cursor = None, limit: Annotated[int, limit_query(100, 1000)] = 100,
) -> dict[str, Any]:
    since, until = (None if t is None else t if t.tzinfo else t.replace(tzinfo=UTC) for t in (since, until))
    start = _index_cursor(cursor)
    items = list_break_glass(runtime.audit, since=since, until=until, start=start, limit=limit + 1,
                             awaiting_only=awaiting)
    more = len(items) > limit
    return page_json([i.to_json() for i in items[:limit]], str(items[limit - 1].index + 1) if more else None)


@router.post("/v1/policies/break-glass/{index}/review", status_code=201, responses=PROBLEMS,
             summary="Review a break-glass reveal: the verdict becomes an entry of the audit log")
def review_break_glass_reveal(
    index: Annotated[int, Path(ge=0, le=2**62, description="Log index of the reveal's vault.access entry")],
    body: ReviewRequest, principal: ReviewDep, runtime: RuntimeDep,
    person: Annotated[Principal, Depends(require_user)],  # noqa: ARG001 - a verdict is a person's, not a system's
    idempotency: Idempotent,  # noqa: ARG001 - see api.idempotency
) -> dict[str, Any]:
    receipt = review_break_glass(runtime.audit, principal.actor, index, body.verdict)
    return {"reviewed_index": index, "verdict": body.verdict, "review": receipt.to_json()}


def _index_cursor(cursor: str | None) -> int | None:
    position = decode_cursor(cursor)
    if position is not None and not re.fullmatch(r"[0-9]{1,18}", position):
        raise InvalidCursorError("cursor is not one this server issued")
    return None if position is None else int(position)
