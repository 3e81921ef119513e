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

CONTACT = {"type": "contact.attempted", "subject": "sub_HTTPSUBJECT0001",
           "payload": {"channel": "email", "direction": "outbound", "agent_id": "agent-2"}}


@pytest.fixture
def client(initialised_runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime=initialised_runtime))


class TestAuditApi:
    def test_append_is_idempotent(self, client: TestClient) -> None:
        """The first append answers 201, a retry with the same Idempotency-Key 200 with the same index."""
        first = client.post("/v1/audit/events", json=CONTACT, headers={"Idempotency-Key": "h-1"})
        again = client.post("/v1/audit/events", json=CONTACT, headers={"Idempotency-Key": "h-1"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["index"] == again.json()["index"] == 0
        assert again.json()["duplicate"] is True

    def test_bad_event_is_a_problem(self, client: TestClient) -> None:
        """An unknown type or plaintext PII is a 422 problem that does not echo the value."""
        bad = {**CONTACT, "payload": {**CONTACT["payload"], "agent_id": "44051401359"}}
        response = client.post("/v1/audit/events", json=bad)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert "44051401359" not in response.text
        assert client.post("/v1/audit/events", json={**CONTACT, "type": "nope"}).status_code == 422

    def test_query_checkpoint_and_proofs(self, client: TestClient) -> None:
        """Entries page by cursor; the signed checkpoint and proofs verify with the published key."""
        for i in range(9):
            client.post("/v1/audit/events", json={**CONTACT, "payload": {**CONTACT["payload"], "outcome": f"o{i}"}})
        page = client.get("/v1/audit/events", params={"subject": CONTACT["subject"], "limit": 4}).json()
        assert [e["index"] for e in page["items"]] == [0, 1, 2, 3]
        page2 = client.get("/v1/audit/events", params={"subject": CONTACT["subject"], "limit": 4,
                                                       "cursor": page["next_cursor"]}).json()
        assert [e["index"] for e in page2["items"]] == [4, 5, 6, 7]
        assert client.post("/v1/audit/checkpoints").status_code == 201
        verifier = Verifier.from_string(client.get("/v1/audit/verifier-key").text.strip())
        cp = open_checkpoint(client.get("/v1/audit/checkpoint").text, verifier)
        assert cp.size == 9
        import base64

        proof = client.get("/v1/audit/proofs/inclusion", params={"index": 5}).json()
        merkle.verify_inclusion(base64.b64decode(proof["leaf_hash"]), 5, 9,
                                [base64.b64decode(p) for p in proof["proof"]], cp.root_hash)
        c = client.get("/v1/audit/proofs/consistency", params={"from": 4, "to": 9}).json()
        merkle.verify_consistency(4, 9, base64.b64decode(c["root1"]), cp.root_hash,
                                  [base64.b64decode(p) for p in c["proof"]])
        assert client.get("/v1/audit/proofs/inclusion", params={"index": 50}).status_code == 422
        assert client.get("/v1/audit/events/3").json()["index"] == 3
        assert client.get("/v1/audit/events/300").status_code == 404

    def test_export_download_verifies_and_tamper_fails(self, client: TestClient) -> None:
        """The exported archive verifies through the upload endpoint; a changed byte does not."""
        for _ in range(5):
            client.post("/v1/audit/events", json=CONTACT)
        archive = client.get("/v1/audit/export")
        assert archive.status_code == 200
        assert archive.headers["content-type"] == "application/gzip"
        result = client.post("/v1/audit/verify-export", files={"file": ("e.tar.gz", archive.content)})
        assert result.status_code == 200, result.text
        assert result.json()["entries"] == 5

        out = io.BytesIO()
        with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as src, \
                tarfile.open(fileobj=out, mode="w:gz") as dst:
            for member in src.getmembers():
                data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
                if member.name.endswith("entries.jsonl") and data:
                    data = data.replace(b'"email"', b'"phone"', 1)
                    member.size = len(data)
                dst.addfile(member, io.BytesIO(data) if data is not None else None)
        bad = client.post("/v1/audit/verify-export", files={"file": ("e.tar.gz", out.getvalue())})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"

    def test_verify_database_endpoint(self, client: TestClient) -> None:
        """POST /v1/audit/verify recomputes the stored log."""
        client.post("/v1/audit/events", json=CONTACT)
        assert client.post("/v1/audit/verify").json()["entries"] == 1
