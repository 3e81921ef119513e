"""The audit log over HTTP: append with idempotency, query, checkpoints, proofs, export, verify."""

from __future__ import annotations

import io
import tarfile

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.runtime import Runtime
from audit import merkle
from audit.checkpoint import Verifier, open_checkpoint

NOTE = {"type": "operator.note", "payload": {"code": "backup_verified"}}


def client_token(runtime: Runtime, *scopes: str) -> str:
    """A real API-client access token holding ``scopes``."""
    from identity.testing import add_client_token

    with runtime.sessions.begin() as session:
        return add_client_token(session, scopes=scopes, now=runtime.clock.now())


@pytest.fixture
def client(initialised_runtime: Runtime) -> TestClient:
    """An HTTP client authenticated as a system holding audit:read, audit:append and audit:export."""
    token = client_token(initialised_runtime, "audit:read", "audit:append", "audit:export")
    return TestClient(create_app(runtime=initialised_runtime), headers={"Authorization": f"Bearer {token}"})


class TestAuditApi:
    def test_append_is_idempotent(self, client: TestClient) -> None:
        """The first append answers 201, a retry with the same Idempotency-Key 200 with the same index."""
        first = client.post("/v1/audit/events", json=NOTE, headers={"Idempotency-Key": "h-1"})
        again = client.post("/v1/audit/events", json=NOTE, headers={"Idempotency-Key": "h-1"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["index"] == again.json()["index"]
        assert again.json()["duplicate"] is True

    def test_bad_event_is_a_problem(self, client: TestClient) -> None:
        """An unknown type or plaintext PII is a 422 problem that does not echo the value."""
        bad = {**NOTE, "payload": {"code": "44051401359"}}
        response = client.post("/v1/audit/events", json=bad)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert "44051401359" not in response.text
        assert client.post("/v1/audit/events", json={**NOTE, "type": "nope"}).status_code == 422

    def test_query_checkpoint_and_proofs(self, client: TestClient) -> None:
        """Entries page by cursor; the signed checkpoint and proofs verify with the published key."""
        import base64

        indexes = [client.post("/v1/audit/events", json={**NOTE, "payload": {"code": f"o{i}"}}).json()["index"]
                   for i in range(9)]
        page = client.get("/v1/audit/events", params={"type": "operator.note", "limit": 4}).json()
        assert [e["index"] for e in page["items"]] == indexes[:4]
        page2 = client.get("/v1/audit/events", params={"type": "operator.note", "limit": 4,
                                                       "cursor": page["next_cursor"]}).json()
        assert [e["index"] for e in page2["items"]] == indexes[4:8]
        assert client.post("/v1/audit/checkpoints").status_code == 201
        verifier = Verifier.from_string(client.get("/v1/audit/verifier-key").text.strip())
        cp = open_checkpoint(client.get("/v1/audit/checkpoint").text, verifier)
        assert cp.size == indexes[-1] + 1
        target = indexes[5]
        proof = client.get("/v1/audit/proofs/inclusion", params={"index": target}).json()
        merkle.verify_inclusion(base64.b64decode(proof["leaf_hash"]), target, cp.size,
                                [base64.b64decode(p) for p in proof["proof"]], cp.root_hash)
        c = client.get("/v1/audit/proofs/consistency", params={"from": 4, "to": cp.size}).json()
        merkle.verify_consistency(4, cp.size, base64.b64decode(c["root1"]), cp.root_hash,
                                  [base64.b64decode(p) for p in c["proof"]])
        assert client.get("/v1/audit/proofs/inclusion", params={"index": 500}).status_code == 422
        assert client.get(f"/v1/audit/events/{target}").json()["index"] == target
        assert client.get("/v1/audit/events/300").status_code == 404

    def test_export_download_verifies_and_tamper_fails(self, client: TestClient) -> None:
        """The exported archive verifies through the upload endpoint; a changed byte does not."""
        for _ in range(5):
            client.post("/v1/audit/events", json=NOTE)
        archive = client.get("/v1/audit/export")
        assert archive.status_code == 200
        assert archive.headers["content-type"] == "application/gzip"
        result = client.post("/v1/audit/verify-export", files={"file": ("e.tar.gz", archive.content)})
        assert result.status_code == 200, result.text
        assert result.json()["entries"] >= 5

        out = io.BytesIO()
        with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as src, \
                tarfile.open(fileobj=out, mode="w:gz") as dst:
            for member in src.getmembers():
                data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
                if member.name.endswith("entries.jsonl") and data:
                    data = data.replace(b'"backup_verified"', b'"backup_restored"', 1)
                    member.size = len(data)
                dst.addfile(member, io.BytesIO(data) if data is not None else None)
        bad = client.post("/v1/audit/verify-export", files={"file": ("e.tar.gz", out.getvalue())})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"

    def test_append_is_attributed_to_the_caller(self, client: TestClient, initialised_runtime: Runtime) -> None:
        """The appended event's actor is the authenticated client, whatever the request says."""
        receipt = client.post("/v1/audit/events", json=NOTE).json()
        entry = client.get(f"/v1/audit/events/{receipt['index']}").json()
        assert entry["event"]["actor"]["kind"] == "client"
        assert entry["event"]["actor"]["id"].startswith("cl")

    def test_missing_or_wrong_credentials_are_refused(self, initialised_runtime: Runtime) -> None:
        """No token is a 401 problem; a token without the scope is a 403 naming the rule kind."""
        app = create_app(runtime=initialised_runtime)
        anonymous = TestClient(app).get("/v1/audit/events")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        reader = client_token(initialised_runtime, "audit:read")
        refused = TestClient(app, headers={"Authorization": f"Bearer {reader}"}).post("/v1/audit/events", json=NOTE)
        assert refused.status_code == 403
        assert refused.json()["rule"] == "scope"

    def test_verify_database_endpoint(self, client: TestClient) -> None:
        """POST /v1/audit/verify recomputes the stored log."""
        client.post("/v1/audit/events", json=NOTE)
        assert client.post("/v1/audit/verify").json()["entries"] >= 1
