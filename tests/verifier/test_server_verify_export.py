"""`POST /v1/audit/verify-export` checks an upload against the server's own key and tree, and caps what an
upload may unpack to, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.runtime import Runtime
from audit.events import Actor, ActorKind
from audit.export import export_log
from audit.repository import EntryFilter
from audit.service import AuditLog
from core import migrate
from core.db import make_engine
from tests.headers import client_headers

from .conftest import forge_export

NOTE = {"type": "operator.note", "payload": {"code": "verify_me"}}


@pytest.fixture
def client(initialised_runtime: Runtime) -> TestClient:
    """An HTTP client holding audit:read, audit:append and audit:export, with a few entries logged."""
    http = TestClient(create_app(runtime=initialised_runtime),
                      headers=client_headers(initialised_runtime, "audit:read", "audit:append", "audit:export"))
    for _ in range(5):
        assert http.post("/v1/audit/events", json=NOTE).status_code == 201
    return http


def tar_gz(directory: Path, extra: dict[str, bytes] | None = None) -> bytes:
    """``directory`` packed as the server packs an export (one folder), with ``extra`` members added."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.add(directory, arcname="audit-export")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(f"audit-export/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def upload(client: TestClient, archive: bytes) -> tuple[int, dict[str, object]]:
    answer = client.post("/v1/audit/verify-export", files={"file": ("export.tar.gz", archive)})
    return answer.status_code, answer.json()


class TestServerVerification:
    def test_own_export_verifies_against_its_own_key_and_tree(self, client: TestClient) -> None:
        """The server's own export verifies, and the answer says it was checked with the server's key."""
        status, body = upload(client, client.get("/v1/audit/export").content)
        assert status == 200, body
        assert body["ok"] is True
        assert body["key"] == "server"
        assert body["matches_this_log"] is True

    def test_forged_log_under_the_real_origin_is_refused(self, client: TestClient,
                                                         initialised_runtime: Runtime, tmp_path: Path) -> None:
        """An export of a fresh log built with a new key under this server's origin, with a made-up entry,
        is refused: the server checks with its own key, never the one inside the upload."""
        forged = forge_export(initialised_runtime.audit.origin, tmp_path / "forged")
        status, body = upload(client, tar_gz(forged))
        assert status == 422, body
        assert body.get("ok") is not True
        assert body["type"] == "urn:tarcza:problem:verifier-key"
        assert "another key" in str(body["detail"])

    def test_history_signed_by_the_real_key_but_not_this_log_is_refused(
            self, client: TestClient, initialised_runtime: Runtime, tmp_path: Path) -> None:
        """An export signed with the server's own key over another history (a fork) does not match the tree the
        server holds at that size, and is refused as a forked or rewritten log."""
        engine = make_engine(f"sqlite:///{tmp_path / 'fork.db'}")
        migrate.upgrade(engine)
        fork = AuditLog(engine, initialised_runtime.audit.signer, checkpoint_every_entries=10_000)
        try:
            for _ in range(2):
                fork.record("operator.note", actor=Actor(id="op", kind=ActorKind.SYSTEM), payload={"code": "x"})
            export_log(fork, tmp_path / "fork", EntryFilter())
        finally:
            fork.close()
            engine.dispose()
        status, body = upload(client, tar_gz(tmp_path / "fork"))
        assert status == 422, body
        assert "forked or rewritten" in str(body["detail"])


class TestUploadLimits:
    def test_decompression_bomb_is_refused(self, client: TestClient) -> None:
        """A 50 MB file of zeros hidden in a small upload is refused with 413 before it is unpacked."""
        archive = tar_gz_of_export(client, {"padding.bin": bytes(50 * 1024 * 1024)})
        assert len(archive) < 200 * 1024
        status, body = upload(client, archive)
        assert status == 413, body
        assert body["type"] == "urn:tarcza:problem:export-too-large"

    def test_too_many_files_are_refused(self, client: TestClient) -> None:
        """An upload holding far more members than an export has is refused with 413."""
        status, body = upload(client, tar_gz_of_export(client, {f"f{i}.txt": b"x" for i in range(500)}))
        assert status == 413, body

    def test_unlisted_file_is_refused(self, client: TestClient) -> None:
        """A small extra file inside an otherwise genuine export is refused, named."""
        status, body = upload(client, tar_gz_of_export(client, {"notes.txt": b"added later"}))
        assert status == 422, body
        assert "notes.txt" in str(body["detail"])


def tar_gz_of_export(client: TestClient, extra: dict[str, bytes]) -> bytes:
    """The server's own export, repacked with ``extra`` members in its folder."""
    original = client.get("/v1/audit/export").content
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(original), mode="r:gz") as src, tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        for name, data in extra.items():
            info = tarfile.TarInfo(f"audit-export/{name}")
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return out.getvalue()
