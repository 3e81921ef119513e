"""Schemathesis over the whole OpenAPI document: every operation, a bounded number of generated
requests each (valid and invalid, examples, boundary cases and fuzzing), each sent twice: without
credentials, and as a principal the authorisation matrix lets call the operation, among API
clients holding each scope (tokens from the client-credentials grant) and people of each role
logged in with password and TOTP and stepped up. Every other case names things that exist (a
subject with a debt, case, contact, recording, hold and request; a user; a client) so that its
generated rest reaches the services. No answer may be a 5xx, or use a status, a media type or a
body the document does not give.

The app runs on a throwaway SQLite data directory, so destructive operations (key rotation,
retention, shredding) are fair game. Generation is derandomized, and the principal and the
aiming are chosen from each case's content: the same requests every run.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
import schemathesis
from faker import Faker
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import create_app
from api.auth import identity_transaction
from api.cli.common import initialise_runtime
from api.runtime import Runtime
from audit.events import Actor, ActorKind
from core.settings import load_settings
from identity.principal import Role
from identity.scopes import SCOPES
from tests.api.test_authorisation_matrix import load_matrix

MAX_EXAMPLES = 50
"""Generated requests per operation (and phase); the whole module stays around two minutes on 2 cores."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
PASSWORD = "Zielony-Parasol-Fuzz-2026"
OPERATOR = Actor(id="operator:fuzz", kind=ActorKind.SYSTEM)
SEED = 20261126
MATRIX = load_matrix()


class WithoutLifespan:
    """The app, its lifespan answered without running it: the module's fixture owns the runtime (the
    test client schemathesis opens per call would otherwise close it after the first)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


@dataclass
class Fuzz:
    app: ASGIApp
    runtime: Runtime
    principals: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    known: dict[str, str] = field(default_factory=dict)
    """Ids of things that exist (a subject, its debt, case, hold, request, contact, recording...)."""

    def principal_for(self, case: schemathesis.Case) -> dict[str, str]:
        """The principal a case is sent as: one the authorisation matrix lets call the operation (the
        refusals are the matrix test's), chosen from the case itself, so a retried case is the same request."""
        route = f"{case.operation.method.upper()} {case.operation.path}"
        allowed = [headers for column, headers in self.principals
                   if (MATRIX.clients if ":" in column else MATRIX.people).get(route, {}).get(column) == "✓"]
        candidates = allowed or [headers for _, headers in self.principals]
        return dict(candidates[_digest(case) % len(candidates)])

    def aim(self, case: schemathesis.Case) -> None:
        """Every other case (by its content): path parameters, and a body's ``subject``, naming things that
        exist, so that the generated rest of the request reaches the services rather than a 404."""
        if _digest(case) // 7 % 2:
            return
        for name in case.path_parameters or {}:
            if name in self.known:
                case.path_parameters[name] = self.known[name]
        if isinstance(case.body, dict) and "subject" in case.body:
            case.body["subject"] = self.known["token"]


def _digest(case: schemathesis.Case) -> int:
    return zlib.crc32(repr((case.operation.label, case.path_parameters, case.query, case.headers,
                            case.body)).encode())


def _person(http: TestClient, runtime: Runtime, role: Role) -> dict[str, str]:
    """A user of ``role`` logged in with password and TOTP over HTTP, then stepped up with the next code."""
    username = f"fuzz.{role.value}"
    with identity_transaction(runtime) as identity:
        identity.users.create(username, PASSWORD, [role.value], actor=OPERATOR)
        secret = identity.factors.begin(identity.users.by_username(username)).secret
    totp = pyotp.TOTP(secret)
    with identity_transaction(runtime) as identity:
        assert identity.factors.confirm(identity.users.by_username(username), totp.at(time.time() - 30)).ok
    login = http.post("/v1/auth/login", json={"username": username, "password": PASSWORD,
                                              "totp_code": totp.now()})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    step_up = http.post("/v1/auth/step-up", json={"totp_code": totp.at(time.time() + 30)}, headers=headers)
    assert step_up.status_code == 200, step_up.text
    return headers


def _client(http: TestClient, admin: dict[str, str], scope: str) -> dict[str, str]:
    """An API client holding ``scope``, with an access token from the client-credentials grant."""
    created = http.post("/v1/clients", json={"name": "fuzz-" + scope.replace(":", "-"), "scopes": [scope]},
                        headers=admin)
    assert created.status_code == 201, created.text
    token = http.post("/v1/oauth/token", data={
        "grant_type": "client_credentials", "client_id": created.json()["client_id"],
        "client_secret": created.json()["client_secret"]})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "var"
    data_dir.mkdir(mode=0o700)
    settings_ = load_settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'tarcza.db'}",
                              rate_limit_client="off", rate_limit_address="off", rate_limit_login="off")
    runtime = Runtime(settings_)
    initialise_runtime(runtime)
    app = create_app(runtime=runtime)
    http = TestClient(app)
    people = [(f"{role.value}/fresh", _person(http, runtime, role)) for role in Role]
    admin = dict(people)["admin/fresh"]
    clients = [(scope, _client(http, admin, scope)) for scope in SCOPES]
    known = _things(http, {column.split("/")[0]: headers for column, headers in people})
    yield Fuzz(WithoutLifespan(app), runtime, [*people, *clients], known)
    runtime.close()


def _things(http: TestClient, people: dict[str, dict[str, str]]) -> dict[str, str]:
    """A subject with a debt, a case, a contact, a recording, a hold and a request; a user and a client
    that are not the fuzzer's own principals. Returns their ids by path parameter name."""
    fake = Faker("pl_PL")
    fake.seed_instance(SEED)
    dpo, admin, collector = people["dpo"], people["admin"], people["collector"]

    def made(response: Any) -> dict[str, Any]:
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    token = made(http.post("/v1/subjects", headers=dpo, json={"kind": "debtor", "fields": {
        "first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel()}}))["token"]
    made(http.post("/v1/debts", headers=collector, json={
        "id": "D-FUZZ-1", "subject": token, "creditor": "Przykładowy Bank S.A.", "kind": "general",
        "consumer": True, "amount_minor": 125_000, "due_date": "2025-06-30"}))
    made(http.post("/v1/cases", headers=collector, json={"id": "C-FUZZ-1", "subject": token,
                                                         "debt_id": "D-FUZZ-1"}))
    contact = made(http.post("/v1/contacts", headers=collector, json={
        "subject": token, "channel": "letter", "agent_id": "agent-007", "debt_id": "D-FUZZ-1",
        "started_at": "2026-11-17T10:00:00+01:00", "outcome": "sent", "notes": "List z wezwaniem do zapłaty."}))
    recording = made(http.post(f"/v1/subjects/{token}/recordings", params={"announced": "true"},
                               content=bytes(range(256)) * 16, headers={**collector, "Content-Type": "audio/ogg"}))
    hold = made(http.post("/v1/gdpr/holds", headers=dpo, json={
        "subject": token, "reason": "court_proceedings", "starts_on": "2026-11-20"}))
    request = made(http.post("/v1/gdpr/requests", headers=dpo, json={
        "subject": token, "kind": "access", "received_on": "2026-11-20", "channel": "letter"}))
    made(http.post(f"/v1/gdpr/requests/{request['id']}/verify", headers=dpo, json={"method": "id_document"}))
    user = made(http.post("/v1/users", headers=admin, json={
        "username": "fuzz.target", "password": PASSWORD, "roles": ["collector"]}))
    client = made(http.post("/v1/clients", headers=admin, json={"name": "fuzz-target", "scopes": ["audit:read"]}))
    return {"token": token, "debt_id": "D-FUZZ-1", "case_id": "C-FUZZ-1", "event_id": contact["event_id"],
            "index": str(contact["index"]), "recording_id": recording["recording_id"], "hold_id": hold["id"],
            "request_id": request["id"], "user_id": user["id"], "client_id": client["client_id"],
            "field": "last_name"}


def _document() -> dict[str, Any]:
    """The OpenAPI document, built at collection from an app that is never served (no data directory needed)."""
    return create_app(load_settings(data_dir=Path("/nonexistent/tarcza-fuzz"))).openapi()


schema = schemathesis.openapi.from_dict(_document(), config=schemathesis.Config.from_dict({
    "generation": {"mode": "all", "deterministic": True, "with-security-parameters": False,
                   "max-examples": MAX_EXAMPLES},
    "phases": {"stateful": {"enabled": False}},
}))


@pytest.fixture(autouse=True, scope="module")
def _serve(fuzz: Fuzz) -> None:
    """Generated requests go to the app of the module's data directory."""
    schema.app = fuzz.app


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_document(case: schemathesis.Case, fuzz: Fuzz) -> None:
    """Unauthenticated and as the next principal in turn: no 5xx; status, media type and body as documented."""
    fuzz.aim(case)
    case.call_and_validate(app=fuzz.app, checks=CHECKS)
    if case.operation.path == "/v1/auth/logout":
        return  # would end the shared session or token
    case.call_and_validate(app=fuzz.app, headers=fuzz.principal_for(case), checks=CHECKS)
