"""The HTTP API's contract, read from its OpenAPI document and checked against the running app:
strict bodies (an unknown field is refused), problem details for every error (404, 405, 415 too),
every operation documenting its security and its problems, and every list paginated by opaque
cursors that walk the whole list. One app on SQLite for the module; synthetic data only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from faker import Faker
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli.common import initialise_runtime
from api.runtime import Runtime
from audit.events import Actor, ActorKind
from core.settings import load_settings
from identity.principal import Role
from identity.scopes import SCOPES
from tests.api.test_authorisation_matrix import load_matrix
from tests.headers import client_headers, person_headers

PROBLEM = "application/problem+json"
SEED = 20261125
_PARAM = re.compile(r"\{[^}]+\}")

LISTS = {
    "/v1/users", "/v1/clients", "/v1/policies/break-glass", "/v1/audit/events", "/v1/audit/checkpoints",
    "/v1/subjects/{token}/contacts", "/v1/subjects/{token}/debts", "/v1/subjects/{token}/cases",
    "/v1/subjects/{token}/holds", "/v1/gdpr/requests", "/v1/gdpr/notices", "/v1/gdpr/breaches",
}
"""Every GET that answers a list. A new list must be added here (and paginate)."""

UNKNOWN_FIELDS_IGNORED = {("post", "/v1/oauth/token"): "RFC 6749 section 3.2: the token endpoint MUST ignore "
                                                        "unrecognized request parameters"}


@dataclass
class World:
    http: TestClient
    runtime: Runtime
    doc: dict[str, Any]
    subject: str = ""
    callers: list[dict[str, str]] = field(default_factory=list)

    def person(self, *roles: str) -> dict[str, str]:
        return person_headers(self.runtime, *roles)

    def system(self, *scopes: str) -> dict[str, str]:
        return client_headers(self.runtime, *scopes)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("contract") / "var"
    data_dir.mkdir(mode=0o700)
    runtime = Runtime(load_settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'tarcza.db'}"))
    initialise_runtime(runtime)
    app = create_app(runtime=runtime)
    w = World(TestClient(app, raise_server_exceptions=False), runtime, app.openapi())
    w.callers = [w.person(role.value) for role in Role] + [w.system(scope) for scope in SCOPES]
    _populate(w)
    yield w
    runtime.close()


def _populate(w: World) -> None:
    """Two or more items in every list, so that a page of one has a next page."""
    fake = Faker("pl_PL")
    fake.seed_instance(SEED)
    dpo, collector = w.person("dpo"), w.person("collector")
    token = w.http.post("/v1/subjects", headers=collector, json={"kind": "debtor", "fields": {
        "first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel()}}).json()["token"]
    w.subject = token
    for n in range(3):
        assert w.http.post("/v1/debts", headers=collector, json={
            "id": f"D-{n}", "subject": token, "creditor": "Przykładowy Bank S.A.", "kind": "general",
            "consumer": True, "amount_minor": 100_000 + n, "due_date": "2025-06-30"}).status_code == 201
        assert w.http.post("/v1/cases", headers=collector, json={
            "id": f"C-{n}", "subject": token, "debt_id": f"D-{n}"}).status_code == 201
        assert w.http.post("/v1/contacts", headers=collector, json={
            "subject": token, "channel": "letter", "agent_id": "agent-007", "debt_id": f"D-{n}",
            "started_at": f"2026-11-1{7 + n}T10:00:00+01:00", "outcome": "sent"}).status_code == 201
        assert w.http.post("/v1/gdpr/holds", headers=dpo, json={
            "subject": token, "reason": "court_proceedings", "starts_on": "2026-11-20"}).status_code == 201
        assert w.http.post("/v1/gdpr/requests", headers=dpo, json={
            "subject": token, "kind": "access", "received_on": f"2026-11-1{n}", "channel": "letter"}).status_code == 201
        assert w.http.post("/v1/clients", headers=w.person("admin"), json={
            "name": f"system-{n}", "scopes": ["audit:read"]}).status_code == 201
        officer = Actor(id=f"officer-{n}", kind=ActorKind.USER)
        w.runtime.audit.record("vault.access", actor=officer, subject=token, payload={
            "fields": ["pesel"], "purpose": "complaint_handling", "decision": "allow", "break_glass": True})
        assert w.http.post("/v1/audit/checkpoints", headers=w.system("audit:append")).status_code == 201
        assert w.http.post("/v1/gdpr/breaches", headers=dpo, json={  # the debts above opened Art. 14 notices
            "aware_at": f"2026-11-1{n}T10:00:00+01:00", "nature": ["availability"], "data_categories": ["recordings"],
            "facts": f"Outage {n} of the recordings store.", "effects": "None lost.", "remedial_action": "Restarted.",
            "risk": "unlikely", "not_notified_reason": "no data lost or seen"}).status_code == 201


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _object_schemas(doc: dict[str, Any], schema: dict[str, Any], seen: set[str]) -> Iterator[dict[str, Any]]:
    """Every object schema reachable from ``schema`` (through $ref, anyOf, items, properties)."""
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return
        seen.add(ref)
    schema = _resolve(doc, schema)
    if schema.get("type") == "object" and "properties" in schema:
        yield schema
    for sub in [*schema.get("anyOf", []), *schema.get("oneOf", []), *schema.get("allOf", []),
                *([schema["items"]] if isinstance(schema.get("items"), dict) else []),
                *schema.get("properties", {}).values()]:
        yield from _object_schemas(doc, sub, seen)


def _json_bodies(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for method, path, operation in _operations(doc):
        content = operation.get("requestBody", {}).get("content", {})
        for media in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data"):
            if media in content and (method, path) not in UNKNOWN_FIELDS_IGNORED:
                yield method, path, content[media]["schema"]


class TestStrictBodies:
    def test_every_body_schema_refuses_unknown_fields(self, world: World) -> None:
        """Every object schema of every request body has additionalProperties: false."""
        loose = [f"{method.upper()} {path}: {schema.get('title')}"
                 for method, path, body in _json_bodies(world.doc)
                 for schema in _object_schemas(world.doc, body, set())
                 if schema.get("additionalProperties") is not False]
        assert loose == []

    def test_the_app_refuses_an_unknown_field_on_every_body(self, world: World) -> None:
        """Each operation with a JSON body, called by a principal it allows with an unknown field, answers
        422 naming the field (extra_forbidden), never echoing its value."""
        not_refused = []
        checked = 0
        for method, path, _ in _json_bodies(world.doc):
            if "application/json" not in world.doc["paths"][path][method]["requestBody"]["content"]:
                continue
            url = _PARAM.sub(world.subject, path)
            for caller in world.callers:
                answer = world.http.request(method.upper(), url, json={"zz_unknown": "wartość-tajna"},
                                            headers=caller)
                if answer.status_code in (401, 403):
                    continue
                checked += 1
                errors = answer.json().get("errors", []) if answer.status_code == 422 else []
                if not any(e["type"] == "extra_forbidden" and e["loc"][-1] == "zz_unknown" for e in errors) \
                        or "wartość-tajna" in answer.text:
                    not_refused.append(f"{method.upper()} {path}: {answer.status_code} {answer.text[:200]}")
                break
        assert not_refused == []
        assert checked >= 30


class TestProblemDetails:
    def test_unmatched_route_is_a_problem(self, world: World) -> None:
        """GET of a path no route has: 404 problem details with the request's path as instance."""
        answer = world.http.get("/v1/no-such-thing")
        assert answer.status_code == 404
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["type"] == "urn:tarcza:problem:not-found"
        assert answer.json()["instance"] == "/v1/no-such-thing"

    def test_wrong_method_is_a_problem(self, world: World) -> None:
        """DELETE on a GET-only route: 405 problem details naming the allowed methods."""
        answer = world.http.delete("/v1/auth/me")
        assert answer.status_code == 405
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["type"] == "urn:tarcza:problem:method-not-allowed"
        assert "GET" in answer.headers["allow"]

    @pytest.mark.parametrize(("path", "content_type", "body"), [
        ("/v1/auth/login", "text/plain", b"username=a&password=b"),
        ("/v1/contacts", "application/x-www-form-urlencoded", b"subject=sub_x"),
        ("/v1/oauth/token", "application/json", b'{"grant_type": "client_credentials"}'),
    ])
    def test_a_body_in_another_media_type_is_415(self, world: World, path: str, content_type: str,
                                                 body: bytes) -> None:
        """A body the route does not read (text on a JSON route, JSON on the form route) is a 415 problem."""
        answer = world.http.post(path, content=body, headers={"Content-Type": content_type})
        assert answer.status_code == 415
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["type"] == "urn:tarcza:problem:unsupported-media-type"

    def test_json_with_a_suffix_is_read(self, world: World) -> None:
        """application/merge-patch+json style media types (+json) are JSON: validated, not refused as 415."""
        answer = world.http.post("/v1/auth/login", content=b"{}", headers={"Content-Type": "application/vnd.x+json"})
        assert answer.status_code == 422


class TestDocument:
    def test_security_schemes_are_declared(self, world: World) -> None:
        """Bearer schemes for session tokens (tzs_) and client tokens (tza_), and basic for the token endpoint."""
        schemes = world.doc["components"]["securitySchemes"]
        assert (schemes["sessionToken"]["scheme"], schemes["sessionToken"]["bearerFormat"]) == ("bearer", "tzs_...")
        assert (schemes["clientToken"]["scheme"], schemes["clientToken"]["bearerFormat"]) == ("bearer", "tza_...")
        assert schemes["clientCredentials"]["scheme"] == "basic"

    def test_every_operation_documents_its_security_and_problems(self, world: World) -> None:
        """Each operation states its security (none only where the matrix lets anyone in), documents 401 and
        403 where it needs a token, 404 with path parameters, 413/415/422 with a body, 429 always; every
        error response is a Problem under application/problem+json."""
        anon = {route: cells["anon"] for route, cells in load_matrix().people.items()}
        missing: list[str] = []
        for method, path, operation in _operations(world.doc):
            name = f"{method.upper()} {path}"
            responses = operation["responses"]
            needed = {"429"}
            if anon.get(name) == "401":
                needed |= {"401", "403"}
                if not operation.get("security"):
                    missing.append(f"{name}: no security requirement")
            elif operation.get("security") not in ([], [{"clientCredentials": []}, {}]):
                missing.append(f"{name}: security on a public operation")
            if "{" in path:
                needed.add("404")
            if "requestBody" in operation:
                needed |= {"413", "415", "422"}
            missing += [f"{name}: {status} undocumented" for status in sorted(needed - set(responses))]
            for status, response in responses.items():
                if int(status) >= 400 and response.get("content", {}).get(PROBLEM, {}).get("schema") != {
                        "$ref": "#/components/schemas/Problem"}:
                    missing.append(f"{name}: {status} is not a Problem")
        assert missing == []
        assert {name for name in anon if name.split(" ", 1)[1] in world.doc["paths"]} - {
            f"{m.upper()} {p}" for m, p, _ in _operations(world.doc)} == set()

    def test_creating_posts_take_an_idempotency_key(self, world: World) -> None:
        """Every POST answering 201 declares the Idempotency-Key header and documents 409 and 422."""
        lacking = [f"POST {path}" for method, path, op in _operations(world.doc)
                   if method == "post" and "201" in op["responses"]
                   and not any(p["in"] == "header" and p["name"].lower() == "idempotency-key"
                               for p in op.get("parameters", []))]
        assert lacking == []

    def test_main_request_models_have_examples(self, world: World) -> None:
        """The request bodies an integrator starts with carry a (synthetic) example."""
        schemas = world.doc["components"]["schemas"]
        for name in ("ContactModel", "CreateSubjectRequest", "RevealRequest", "DebtModel", "NewRequest",
                     "CreateClientRequest", "CreateUserRequest", "LoginRequest", "AppendRequest", "NewHold"):
            assert schemas[name].get("examples"), name


class TestPagination:
    def test_every_list_is_a_page_with_cursor_and_bounded_limit(self, world: World) -> None:
        """The lists (and only they) answer a Page, and take `cursor` and `limit` with a default and a maximum."""
        pages = {path for method, path, op in _operations(world.doc) if method == "get"
                 and op["responses"]["200"].get("content", {}).get("application/json", {}).get("schema")
                 == {"$ref": "#/components/schemas/Page"}}
        assert pages == LISTS
        for path in LISTS:
            parameters = {p["name"]: p for p in world.doc["paths"][path]["get"]["parameters"]}
            assert "cursor" in parameters, path
            limit = parameters["limit"]["schema"]
            assert limit["minimum"] == 1, path
            assert limit["maximum"] >= limit["default"] >= 1, path

    @pytest.mark.parametrize("path", sorted(LISTS))
    def test_pages_of_one_walk_the_whole_list(self, world: World, path: str) -> None:
        """Following next_cursor with limit=1 yields every item of the one-page answer, once each, in order;
        a cursor this server did not issue is a 422 invalid-cursor problem."""
        url = _PARAM.sub(world.subject, path)
        caller = world.person("dpo") if "holds" in path or "gdpr" in path else world.person("admin") \
            if path in ("/v1/users", "/v1/clients") else world.person("auditor") if "audit" in path \
            or "break-glass" in path else world.person("collector")
        whole = world.http.get(url, params={"limit": 500}, headers=caller)
        assert whole.status_code == 200, whole.text
        assert whole.json()["next_cursor"] is None
        expected = whole.json()["items"]
        assert len(expected) >= 2
        walked: list[Any] = []
        cursor: str | None = None
        while True:
            page = world.http.get(url, params={"limit": 1, **({"cursor": cursor} if cursor else {})},
                                  headers=caller).json()
            walked += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert len(walked) <= len(expected)
        assert walked == expected
        for bad in ("not-a-cursor", "YzE6", "eA", "Yz" * 10):
            refused = world.http.get(url, params={"cursor": bad}, headers=caller)
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["type"] == "urn:tarcza:problem:invalid-cursor"
