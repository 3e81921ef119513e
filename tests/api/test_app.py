"""The HTTP app: health, readiness, metrics, OpenAPI and RFC 9457 problem details."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api.app import create_app
from api.runtime import Runtime
from core.errors import ConflictError


class _Body(BaseModel):
    pesel: str
    count: int


def _app_with_test_routes(runtime: Runtime) -> FastAPI:
    app = create_app(runtime=runtime)

    def conflict() -> None:
        raise ConflictError("event id already used", event_id="e-1")

    def crash() -> None:
        raise RuntimeError("/secret/path/kek.json SELECT * FROM vault")

    def echo(body: _Body) -> dict[str, int]:
        return {"count": body.count}

    app.add_api_route("/test/conflict", conflict)
    app.add_api_route("/test/crash", crash)
    app.add_api_route("/test/echo", echo, methods=["POST"])
    return app


@pytest.fixture
def client(migrated_runtime: Runtime) -> TestClient:
    return TestClient(_app_with_test_routes(migrated_runtime), raise_server_exceptions=False)


class TestOperationsEndpoints:
    def test_healthz_answers(self, client: TestClient) -> None:
        """/healthz answers 200 while the process runs."""
        assert client.get("/healthz").json() == {"status": "ok"}

    def test_readyz_ready_on_current_schema(self, client: TestClient, backend: str) -> None:
        """/readyz is 200 when the database is reachable and migrations current."""
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["database"] == backend

    def test_readyz_not_ready_without_migrations(self, settings) -> None:  # type: ignore[no-untyped-def]
        """/readyz is a 503 problem when the schema is behind."""
        client = TestClient(create_app(runtime=Runtime(settings)))
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "tarcza db upgrade" in response.json()["detail"]

    def test_metrics_are_prometheus_text(self, client: TestClient) -> None:
        """/metrics exposes request counters by route template."""
        client.get("/healthz")
        body = client.get("/metrics").text
        assert 'tarcza_http_requests_total{method="GET",route="/healthz",status="200"}' in body

    def test_openapi_and_docs_are_served(self, client: TestClient) -> None:
        """The OpenAPI document and its docs page are available."""
        spec = client.get("/openapi.json").json()
        assert spec["info"]["title"] == "Tarcza"
        assert "/readyz" in spec["paths"]
        assert client.get("/docs").status_code == 200

    def test_console_shows_status(self, client: TestClient) -> None:
        """The console page shows the backend and readiness."""
        page = client.get("/console")
        assert page.status_code == 200
        assert "Ready" in page.text
        assert "yes" in page.text

    def test_request_id_is_echoed_or_generated(self, client: TestClient) -> None:
        """A well-formed X-Request-ID is kept; a malformed one is replaced."""
        kept = client.get("/healthz", headers={"X-Request-ID": "req-12345678"}).headers["x-request-id"]
        assert kept == "req-12345678"
        generated = client.get("/healthz", headers={"X-Request-ID": "bad\nid"}).headers["x-request-id"]
        assert generated != "bad\nid"
        assert len(generated) == 32


class TestProblemDetails:
    def test_tarcza_error_becomes_problem(self, client: TestClient) -> None:
        """A TarczaError is answered with its status and problem-details body."""
        response = client.get("/test/conflict", headers={"X-Request-ID": "req-abcdefgh"})
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body == {
            "type": "urn:tarcza:problem:conflict", "title": "Conflict", "status": 409,
            "detail": "event id already used", "event_id": "e-1", "instance": "/test/conflict",
            "request_id": "req-abcdefgh",
        }

    def test_validation_error_does_not_echo_input(self, client: TestClient) -> None:
        """A validation error names the fields but never repeats what was submitted."""
        response = client.post("/test/echo", json={"pesel": "44051401359", "count": "many"})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert "44051401359" not in response.text
        assert "many" not in response.text
        assert response.json()["errors"][0]["loc"] == ["body", "count"]

    def test_unexpected_error_hides_internals(self, client: TestClient) -> None:
        """An unexpected exception is a bare 500 problem without paths, SQL or traceback."""
        response = client.get("/test/crash")
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        for leak in ("secret", "SELECT", "Traceback", "RuntimeError"):
            assert leak not in response.text

    def test_unknown_route_is_problem(self, client: TestClient) -> None:
        """A 404 from routing is problem details as well."""
        response = client.get("/nope")
        assert response.status_code == 404
        assert response.json()["status"] == 404
