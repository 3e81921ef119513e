"""The identity HTTP API end to end: login with oathtool codes, enrolment, step-up, OAuth, administration."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.runtime import Runtime
from audit.events import Actor, ActorKind
from core.clock import FixedClock
from identity.testing import add_session, add_user

OPERATOR = Actor(id="operator:test", kind=ActorKind.SYSTEM)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def client(rt: Runtime) -> TestClient:
    return TestClient(create_app(runtime=rt))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session_for(rt: Runtime, roles: list[str], *, second_factor_at: datetime | None) -> str:
    with rt.sessions.begin() as session:
        user = add_user(session, roles=roles, now=rt.clock.now())
        return add_session(session, user, now=rt.clock.now(), second_factor_at=second_factor_at)


def oath_code(oathtool: str, secret: str, when: datetime) -> str:
    out = subprocess.run([oathtool, "--totp", "-b", "--now", when.strftime("%Y-%m-%d %H:%M:%S UTC"), secret],
                         capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


class TestLoginAndEnrolment:
    def test_enrol_and_log_in_with_oathtool_codes(self, client: TestClient, ident: Callable,  # type: ignore[type-arg]
                                                  clock: FixedClock, oathtool: str) -> None:
        """A user enrols over HTTP and logs in with codes computed by oathtool, an independent client."""
        with ident() as identity:
            identity.users.create("beata.krol", PASSWORD, ["collector"], actor=OPERATOR)
        first = client.post("/v1/auth/login", json={"username": "beata.krol", "password": PASSWORD})
        assert first.status_code == 200, first.text
        assert first.json()["second_factor"] is False
        assert first.headers["cache-control"] == "no-store"
        token = first.json()["access_token"]
        enrol = client.post("/v1/auth/totp/enroll", headers=bearer(token))
        assert enrol.status_code == 200, enrol.text
        secret = enrol.json()["secret"]
        assert pyotp.parse_uri(enrol.json()["otpauth_uri"]).secret == secret
        png = client.get("/v1/auth/totp/qr.png", headers=bearer(token))
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")
        confirm = client.post("/v1/auth/totp/confirm", headers=bearer(token),
                              json={"code": oath_code(oathtool, secret, clock.now())})
        assert confirm.status_code == 200, confirm.text
        assert len(confirm.json()["recovery_codes"]) == 10
        assert client.get("/v1/auth/totp/qr.png", headers=bearer(token)).status_code == 404  # never again
        assert client.get("/v1/auth/me", headers=bearer(token)).json()["second_factor_at"] is not None
        clock.advance(timedelta(seconds=30))
        needs = client.post("/v1/auth/login", json={"username": "beata.krol", "password": PASSWORD})
        assert needs.status_code == 401
        assert needs.json()["second_factor_required"] is True
        login = client.post("/v1/auth/login", json={"username": "beata.krol", "password": PASSWORD,
                                                    "totp_code": oath_code(oathtool, secret, clock.now())})
        assert login.status_code == 200, login.text
        assert login.json()["second_factor"] is True

    def test_unauthenticated_requests_get_a_bearer_challenge(self, client: TestClient) -> None:
        """No token: 401 problem with WWW-Authenticate: Bearer; a bad token adds error="invalid_token"."""
        missing = client.get("/v1/auth/me")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="tarcza"'
        assert missing.headers["content-type"] == "application/problem+json"
        bad = client.get("/v1/auth/me", headers=bearer("tzs_not-a-session"))
        assert bad.status_code == 401
        assert 'error="invalid_token"' in bad.headers["www-authenticate"]

    def test_wrong_password_then_throttled_with_retry_after(self, client: TestClient,  # type: ignore[type-arg]
                                                            ident: Callable) -> None:
        """Five wrong passwords over HTTP, then the sixth attempt is 429 with Retry-After (server-side)."""
        with ident() as identity:
            identity.users.create("lech.wolski", PASSWORD, ["auditor"], actor=OPERATOR)
        for n in range(5):
            wrong = client.post("/v1/auth/login", json={"username": "lech.wolski", "password": f"nope {n}"})
            assert wrong.status_code == 401
            assert wrong.json()["detail"] == "invalid credentials"
        throttled = client.post("/v1/auth/login", json={"username": "lech.wolski", "password": PASSWORD})
        assert throttled.status_code == 429
        assert throttled.headers["retry-after"] == "2"
        assert throttled.json()["retry_after"] == 2

    def test_logout_ends_the_session(self, client: TestClient, rt: Runtime) -> None:
        """POST /v1/auth/logout answers 204; the token is refused afterwards."""
        token = session_for(rt, ["collector"], second_factor_at=rt.clock.now())
        assert client.post("/v1/auth/logout", headers=bearer(token)).status_code == 204
        assert client.get("/v1/auth/me", headers=bearer(token)).status_code == 401


class TestStepUp:
    def test_stale_second_factor_is_refused_until_step_up(self, client: TestClient, ident: Callable,  # type: ignore[type-arg]
                                                           clock: FixedClock) -> None:
        """An admin whose 2FA is 11 minutes old is refused (rule second_factor, step-up link) until stepping up."""
        with ident() as identity:
            identity.users.create("admin.one", PASSWORD, ["admin"], actor=OPERATOR)
        token = client.post("/v1/auth/login", json={"username": "admin.one", "password": PASSWORD}).json()[
            "access_token"]
        secret = client.post("/v1/auth/totp/enroll", headers=bearer(token)).json()["secret"]
        client.post("/v1/auth/totp/confirm", headers=bearer(token), json={"code": pyotp.TOTP(secret).at(clock.now())})
        new_user = {"username": "nowy.agent", "password": PASSWORD, "roles": ["field_agent"]}
        clock.advance(timedelta(minutes=11))
        refused = client.post("/v1/users", headers=bearer(token), json=new_user)
        assert refused.status_code == 403
        assert refused.json()["rule"] == "second_factor"
        assert refused.json()["step_up"] == "/v1/auth/step-up"
        assert client.get("/v1/users", headers=bearer(token)).status_code == 200  # listing needs no fresh factor
        up = client.post("/v1/auth/step-up", headers=bearer(token),
                         json={"totp_code": pyotp.TOTP(secret).at(clock.now())})
        assert up.status_code == 200, up.text
        created = client.post("/v1/users", headers=bearer(token), json=new_user)
        assert created.status_code == 201, created.text
        assert created.json()["roles"] == ["field_agent"]


class TestAdministration:
    def test_admin_manages_users(self, client: TestClient, rt: Runtime) -> None:
        """A fresh admin creates, lists, assigns cases to, resets and disables users over HTTP."""
        admin = bearer(session_for(rt, ["admin"], second_factor_at=rt.clock.now()))
        created = client.post("/v1/users", headers=admin,
                              json={"username": "agent.terenowy", "password": PASSWORD, "roles": ["field_agent"]})
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        assert client.post("/v1/users", headers=admin, json={"username": "agent.terenowy", "password": PASSWORD,
                                                            "roles": ["dpo"]}).status_code == 409
        assert client.post("/v1/users", headers=admin, json={"username": "krotkie.haslo", "password": "short",
                                                            "roles": ["dpo"]}).status_code == 422
        cases = client.put(f"/v1/users/{user_id}/cases", headers=admin, json={"case_ids": ["SPR-1", "SPR-2"]})
        assert cases.json()["assigned_cases"] == ["SPR-1", "SPR-2"]
        assert client.post(f"/v1/users/{user_id}/reset-2fa", headers=admin).status_code == 200
        assert client.post(f"/v1/users/{user_id}/disable", headers=admin).json()["disabled"] is True
        listed = client.get("/v1/users", headers=admin).json()["items"]
        assert [u["username"] for u in listed if u["id"] == user_id] == ["agent.terenowy"]
        assert client.post("/v1/users/no-such-user/disable", headers=admin).status_code == 404

    def test_admin_manages_clients_and_oauth_works(self, client: TestClient, rt: Runtime) -> None:
        """Create a client over HTTP, get tokens with client_secret_post and Basic, rotate, revoke."""
        admin = bearer(session_for(rt, ["admin"], second_factor_at=rt.clock.now()))
        created = client.post("/v1/clients", headers=admin, json={"name": "crm", "scopes": ["audit:read"],
                                                                 "purposes": ["debt_collection"]})
        assert created.status_code == 201, created.text
        assert created.headers["cache-control"] == "no-store"
        client_id, secret = created.json()["client_id"], created.json()["client_secret"]
        assert client.post("/v1/clients", headers=admin, json={"name": "x", "scopes": ["audit:read"],
                                                              "purposes": ["fun"]}).status_code == 422
        form = client.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                    "client_secret": secret})
        assert form.status_code == 200, form.text
        assert form.json()["scope"] == "audit:read"
        assert form.headers["cache-control"] == "no-store"
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        via_basic = client.post("/v1/oauth/token", data={"grant_type": "client_credentials"},
                                headers={"Authorization": f"Basic {basic}"})
        assert via_basic.status_code == 200, via_basic.text
        token = via_basic.json()["access_token"]
        assert client.get("/v1/policies/break-glass", headers=bearer(token)).status_code == 200
        rotated = client.post(f"/v1/clients/{client_id}/rotate", headers=admin, json={"overlap_hours": 1})
        assert rotated.json()["client_secret"] != secret
        assert client.post(f"/v1/clients/{client_id}/revoke", headers=admin).json()["revoked"] is True
        assert client.get("/v1/policies/break-glass", headers=bearer(token)).status_code == 401
        assert client.get("/v1/clients", headers=admin).json()["items"][0]["revoked"] is True

    @pytest.mark.parametrize(("data", "status", "error"), [
        ({}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "client_id": "cl_x"}, 400, "invalid_request"),
        ({"grant_type": "client_credentials", "client_id": "cl_x", "client_secret": "tzc_y"}, 401, "invalid_client"),
    ])
    def test_token_endpoint_errors(self, client: TestClient, data: dict[str, str], status: int, error: str) -> None:
        """Token endpoint errors are RFC 6749 codes inside problem details, never cached."""
        response = client.post("/v1/oauth/token", data=data)
        assert response.status_code == status
        assert response.json()["error"] == error
        assert response.headers["content-type"] == "application/problem+json"
        if status == 401:
            assert response.headers["www-authenticate"] == 'Basic realm="tarcza"'

    def test_ip_allow_list_over_http(self, rt: Runtime) -> None:
        """A client limited to 10.0.0.0/8 gets tokens from 10.1.2.3 only."""
        admin = bearer(session_for(rt, ["admin"], second_factor_at=rt.clock.now()))
        app = create_app(runtime=rt)
        created = TestClient(app).post("/v1/clients", headers=admin, json={
            "name": "field app", "scopes": ["contacts:write"], "ip_allowlist": ["10.0.0.0/8"]}).json()
        form = {"grant_type": "client_credentials", "client_id": created["client_id"],
                "client_secret": created["client_secret"]}
        assert TestClient(app, client=("192.0.2.10", 5000)).post("/v1/oauth/token", data=form).status_code == 401
        assert TestClient(app, client=("10.1.2.3", 5000)).post("/v1/oauth/token", data=form).status_code == 200


class TestBreakGlassReview:
    def test_lists_only_break_glass_accesses(self, client: TestClient, rt: Runtime) -> None:
        """GET /v1/policies/break-glass lists vault.access entries flagged break_glass, for the DPO or an auditor."""
        officer = Actor(id="officer-1", kind=ActorKind.USER)
        sealed = base64.urlsafe_b64encode(b"\x00" * 40).decode()
        for flag in (False, True, False, True):
            rt.audit.record("vault.access", actor=officer, subject="subj_0123456789", payload={
                "fields": ["pesel"], "purpose": "complaint_handling", "decision": "allow", "break_glass": flag,
                **({"justification": sealed} if flag else {})})
        auditor = bearer(session_for(rt, ["auditor"], second_factor_at=rt.clock.now()))
        listed = client.get("/v1/policies/break-glass", headers=auditor)
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert len(items) == 2
        assert items[0]["actor"] == {"id": "officer-1", "kind": "user"}
        assert items[0]["has_justification"] is True
        collector = bearer(session_for(rt, ["collector"], second_factor_at=rt.clock.now()))
        assert client.get("/v1/policies/break-glass", headers=collector).status_code == 403

    def test_a_review_is_a_log_entry_and_clears_the_awaiting_list(self, client: TestClient, rt: Runtime) -> None:
        """The DPO's verdict on a break-glass reveal is a policy.break_glass_reviewed entry naming it; the reveal
        leaves ?awaiting=true and carries its review; a second verdict is 409, a plain reveal's index 404, a
        client (even with audit:read, which may list) 403, and a verdict outside the two 422."""
        officer = Actor(id="officer-1", kind=ActorKind.USER)
        sealed = base64.urlsafe_b64encode(b"\x00" * 40).decode()
        indexes = [rt.audit.record("vault.access", actor=officer, subject="subj_0123456789", payload={
            "fields": ["pesel"], "purpose": "complaint_handling", "decision": "allow", "break_glass": flag,
            **({"justification": sealed} if flag else {})}).index for flag in (True, False, True)]
        dpo = bearer(session_for(rt, ["dpo"], second_factor_at=rt.clock.now()))
        awaiting = client.get("/v1/policies/break-glass?awaiting=true", headers=dpo).json()["items"]
        assert [i["index"] for i in awaiting] == [indexes[0], indexes[2]]

        answer = client.post(f"/v1/policies/break-glass/{indexes[0]}/review", headers=dpo,
                             json={"verdict": "unjustified"})
        assert answer.status_code == 201, answer.text
        entry = rt.audit.get(answer.json()["review"]["index"]).event
        assert entry["type"] == "policy.break_glass_reviewed"
        assert entry["payload"] == {"entry_index": indexes[0], "verdict": "unjustified",
                                    "entry_leaf_hash": rt.audit.get(indexes[0]).leaf_hash.hex()}
        assert [i["index"] for i in client.get("/v1/policies/break-glass?awaiting=true",
                                               headers=dpo).json()["items"]] == [indexes[2]]
        everything = client.get("/v1/policies/break-glass", headers=dpo).json()["items"]
        assert everything[0]["review"]["verdict"] == "unjustified"
        assert everything[1]["review"] is None

        assert client.post(f"/v1/policies/break-glass/{indexes[0]}/review", headers=dpo,
                           json={"verdict": "justified"}).status_code == 409
        assert client.post(f"/v1/policies/break-glass/{indexes[1]}/review", headers=dpo,
                           json={"verdict": "justified"}).status_code == 404
        assert client.post(f"/v1/policies/break-glass/{indexes[2]}/review", headers=dpo,
                           json={"verdict": "maybe"}).status_code == 422
        admin = bearer(session_for(rt, ["admin"], second_factor_at=rt.clock.now()))
        created = client.post("/v1/clients", headers=admin, json={"name": "siem", "scopes": ["audit:read"]}).json()
        token = client.post("/v1/oauth/token", data={
            "grant_type": "client_credentials", "client_id": created["client_id"],
            "client_secret": created["client_secret"]}).json()["access_token"]
        assert client.get("/v1/policies/break-glass", headers=bearer(token)).status_code == 200
        assert client.post(f"/v1/policies/break-glass/{indexes[2]}/review", headers=bearer(token),
                           json={"verdict": "justified"}).status_code == 403
