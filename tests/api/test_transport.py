"""Transport limits of the HTTP app: security headers, no-store, body size limits and rate limits.

The app runs in process (TestClient) on SQLite: these properties belong to the HTTP layer,
not to the database. The TLS side is in test_tls.py, against a real `tarcza serve`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import identity_transaction
from api.cli.identity import operator_actor
from api.runtime import Runtime
from api.security import CONTENT_SECURITY_POLICY, RateLimits
from core.settings import load_settings

READ_PATH = "/v1/audit/checkpoints"  # any route an audit:read client may call
ALL_OFF = {"rate_limit_client": "off", "rate_limit_address": "off", "rate_limit_login": "off"}


@pytest.fixture
def backend() -> str:
    """Transport tests run on SQLite only (the limits live in the HTTP layer)."""
    return "sqlite"


@pytest.fixture
def make_client(data_dir: Path, initialised_runtime: Runtime) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)``: a TestClient of an app with those settings, on the initialised database."""
    runtimes: list[Runtime] = []

    def make(**overrides: Any) -> TestClient:
        settings = load_settings(data_dir=data_dir, database_url=initialised_runtime.settings.database_url,
                                 **{**ALL_OFF, **overrides})
        runtime = Runtime(settings)
        runtimes.append(runtime)
        app = create_app(runtime=runtime)
        received: list[int] = []

        async def sink(request: Request) -> dict[str, int]:
            body = await request.body()
            received.append(len(body))
            return {"bytes": len(body)}

        def crash() -> None:
            raise RuntimeError("boom")

        app.add_api_route("/v1/test/sink", sink, methods=["POST"])
        app.add_api_route("/test/crash", crash)
        app.state.received = received
        return TestClient(app, raise_server_exceptions=False)

    yield make
    for runtime in runtimes:
        runtime.close()


def _client_token(runtime: Runtime, name: str) -> str:
    """A fresh API client's access token."""
    with identity_transaction(runtime) as identity:
        issued = identity.clients.create(name, ["audit:read"], actor=operator_actor())
    with identity_transaction(runtime) as identity:
        return identity.clients.issue_token(issued.client.id, issued.secret).token


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "content-security-policy": CONTENT_SECURITY_POLICY,
}


class TestSecurityHeaders:

    @pytest.mark.parametrize("path", ["/healthz", "/v1/auth/me", "/console", "/no/such/page", "/test/crash"])
    def test_every_response_has_the_security_headers(self, make_client: Callable[..., TestClient],
                                                     path: str) -> None:
        """Success, 401, 404 and 500 responses all carry the security headers and a request id."""
        response = make_client().get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, name
        policy = response.headers["permissions-policy"]
        assert all(f"{feature}=()" in policy for feature in ("camera", "microphone", "geolocation"))
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])

    def test_hsts_only_over_https(self, make_client: Callable[..., TestClient]) -> None:
        """Strict-Transport-Security is sent on HTTPS requests and never on plain HTTP."""
        client = make_client()
        assert "strict-transport-security" not in client.get("/healthz").headers
        client.base_url = client.base_url.copy_with(scheme="https")
        assert client.get("/healthz").headers["strict-transport-security"].startswith("max-age=")

    @pytest.mark.parametrize("path", ["/v1/auth/me", "/console", "/v1/no/such/route"])
    def test_personal_paths_are_no_store(self, make_client: Callable[..., TestClient], path: str) -> None:
        """Everything under /v1 and /console is Cache-Control: no-store and Pragma: no-cache."""
        response = make_client().get(path)
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"

    def test_health_is_not_marked_no_store(self, make_client: Callable[..., TestClient]) -> None:
        """Health answers carry no personal data and no no-store marking."""
        assert "cache-control" not in make_client().get("/healthz").headers

    @pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
    def test_docs_pages_allow_their_own_inline_script_only(self, make_client: Callable[..., TestClient],
                                                           path: str) -> None:
        """The docs pages' CSP names each inline script by hash, and allows no other inline script."""
        response = make_client().get(path)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src
        assert "'unsafe-eval'" not in script_src
        for script in re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL):
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in script_src
        assert "frame-ancestors 'none'" in policy


class TestBodyLimit:
    def test_declared_oversized_body_is_refused_before_the_route_runs(
            self, make_client: Callable[..., TestClient]) -> None:
        """A Content-Length over TARCZA_MAX_BODY_BYTES is a 413 problem, and the route never sees the body."""
        client = make_client(max_body_bytes=4096)
        response = client.post("/v1/test/sink", content=b"x" * 4097)
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "urn:tarcza:problem:content-too-large"
        assert problem["limit_bytes"] == 4096
        assert problem["request_id"] == response.headers["x-request-id"]
        assert client.app.state.received == []  # type: ignore[attr-defined]

    def test_body_at_the_limit_is_accepted(self, make_client: Callable[..., TestClient]) -> None:
        """A body of exactly the limit reaches the route."""
        client = make_client(max_body_bytes=4096)
        assert client.post("/v1/test/sink", content=b"x" * 4096).json() == {"bytes": 4096}

    def test_chunked_oversized_body_is_refused(self, make_client: Callable[..., TestClient]) -> None:
        """A chunked body (no Content-Length) is counted as it streams: 413 once it passes the limit."""
        client = make_client(max_body_bytes=4096)

        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b"y" * 1000

        response = client.post("/v1/test/sink", content=chunks())
        assert response.status_code == 413
        assert response.json()["type"] == "urn:tarcza:problem:content-too-large"
        assert client.app.state.received == []  # type: ignore[attr-defined]

    def test_chunked_json_body_over_the_limit_is_413_not_400(self, make_client: Callable[..., TestClient]) -> None:
        """FastAPI's own body parsing passes the 413 on (it turns other read errors into 400)."""
        client = make_client(max_body_bytes=4096)

        def chunks() -> Iterator[bytes]:
            yield b'{"username": "'
            for _ in range(10):
                yield b"a" * 1000
            yield b'", "password": "x"}'

        response = client.post("/v1/auth/login", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413

    def test_recordings_keep_their_own_larger_limit(self, make_client: Callable[..., TestClient]) -> None:
        """A recording upload is held to TARCZA_MAX_RECORDING_BYTES, not to the general limit."""
        client = make_client(max_body_bytes=4096, max_recording_bytes=64 * 1024)
        path = "/v1/subjects/sub_0123456789abcdef/recordings?announced=true"
        within = client.post(path, content=b"\0" * 10_000, headers={"content-type": "audio/ogg"})
        assert within.status_code == 401  # past the size check; no credentials
        beyond = client.post(path, content=b"\0" * (64 * 1024 + 1), headers={"content-type": "audio/ogg"})
        assert beyond.status_code == 413
        assert beyond.json()["limit_bytes"] == 64 * 1024


class TestRateLimits:
    def test_address_limit_answers_429_with_retry_after(self, make_client: Callable[..., TestClient]) -> None:
        """Past TARCZA_RATE_LIMIT_ADDRESS one address gets 429 problem details with Retry-After."""
        client = make_client(rate_limit_address="3/hour")
        assert [client.get("/healthz").status_code for _ in range(3)] == [200, 200, 200]
        refused = client.get("/healthz")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:tarcza:problem:rate-limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        assert refused.headers["ratelimit-limit"] == "3"
        assert refused.headers["ratelimit-remaining"] == "0"
        assert refused.headers["x-content-type-options"] == "nosniff"

    def test_login_limit_is_stricter_and_only_on_credential_endpoints(
            self, make_client: Callable[..., TestClient]) -> None:
        """TARCZA_RATE_LIMIT_LOGIN counts the login, token and step-up POSTs of an address, nothing else."""
        client = make_client(rate_limit_login="2/hour")
        body = {"username": "nobody", "password": "not the password"}
        assert [client.post("/v1/auth/login", json=body).status_code for _ in range(2)] == [401, 401]
        assert client.post("/v1/oauth/token", data={"grant_type": "client_credentials"}).status_code == 429
        assert client.post("/v1/auth/step-up", json={}).status_code == 429
        assert all(client.get("/healthz").status_code == 200 for _ in range(5))

    def test_client_limit_counts_each_principal_separately(self, make_client: Callable[..., TestClient],
                                                           initialised_runtime: Runtime) -> None:
        """TARCZA_RATE_LIMIT_CLIENT is per authenticated client: one at its limit does not slow another."""
        client = make_client(rate_limit_client="2/hour")
        busy = {"Authorization": "Bearer " + _client_token(initialised_runtime, "busy")}
        calm = {"Authorization": "Bearer " + _client_token(initialised_runtime, "calm")}
        assert [client.get(READ_PATH, headers=busy).status_code for _ in range(2)] == [200, 200]
        refused = client.get(READ_PATH, headers=busy)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "one user or client" in refused.json()["detail"]
        assert client.get(READ_PATH, headers=calm).status_code == 200

    def test_limits_off_never_refuse(self, make_client: Callable[..., TestClient],
                                     initialised_runtime: Runtime) -> None:
        """With every limit "off" a burst past any small limit is served."""
        client = make_client()
        headers = {"Authorization": "Bearer " + _client_token(initialised_runtime, "bulk")}
        assert {client.get(READ_PATH, headers=headers).status_code for _ in range(30)} == {200}

    def test_rate_limit_settings_are_checked(self) -> None:
        """A malformed limit is a one-line configuration error; "off" and "" disable the limit."""
        from core.errors import ConfigurationError

        with pytest.raises(ConfigurationError, match="TARCZA_RATE_LIMIT_ADDRESS"):
            load_settings(rate_limit_address="lots per minute")
        assert load_settings(rate_limit_login="OFF").rate_limit_login == ""
        assert RateLimits.from_specs(client="", address="", login="").address == ()

    def test_default_limits_let_a_busy_integration_through(self) -> None:
        """The defaults allow a sustained 50 requests/s from one client and one address for a minute."""
        limits = RateLimits.from_settings(load_settings())
        for _ in range(50 * 60):
            limits.check_address("192.0.2.10", "GET", "/v1/audit/events")
            limits.check_principal("cl_integration")
