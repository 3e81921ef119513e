"""A data directory and database holding what commit a5507c3 wrote still work over HTTP (ADR 0016).

The keyfile (format v1), the identity key, the subject's wrapped data key (``nonce || ct``),
its field envelopes and a recording of blob format 1 all come from
``vectors/legacy-a5507c3.json``, written by that commit's own code. They are put in place
before ``tarcza init`` (which keeps existing keys) and into the database it migrated, on
SQLite and PostgreSQL; then the real HTTP API reveals, plays, and rotates the KEK, which
rewraps the old data key as a recipe frame (the online re-seal of key wraps).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.runtime import Runtime
from core.db import read_connection, write_connection
from tests.headers import client_headers, person_headers
from vault import aead
from vault.models import VaultDataKey, VaultField, VaultRecording, VaultSubject

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "legacy-a5507c3.json").read_text("utf-8"))
PURPOSE = "debt_collection"
TOKEN: str = VECTORS["subject"]
BLOB: dict[str, Any] = VECTORS["blob"]


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def _private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


def stored_fields() -> dict[str, list[str]]:
    """The catalogue fields among the vectors (not event labels or justifications, not the empty value)."""
    out: dict[str, list[str]] = {}
    for vector in VECTORS["fields"]:
        if not vector["field"].startswith("~") and vector["plaintext"]:
            out.setdefault(vector["field"], []).append(vector["plaintext"])
    return out


def _insert_old_rows(runtime: Runtime) -> None:
    now = runtime.clock.now()
    fields = [v for v in VECTORS["fields"] if not v["field"].startswith("~") and v["plaintext"]]
    seqs: dict[str, int] = {}
    field_rows = []
    for vector in fields:
        seq = seqs[vector["field"]] = seqs.get(vector["field"], -1) + 1
        field_rows.append({"subject_token": TOKEN, "field": vector["field"], "seq": seq,
                           "envelope": b64(vector["envelope"]), "blind_index": None, "created_at": now,
                           "updated_at": now})
    with write_connection(runtime.engine) as conn:
        conn.execute(VaultSubject.__table__.insert(), [{
            "token": TOKEN, "kind": "debtor", "status": "active", "dek_version": 1, "idempotency_hash": None,
            "request_hash": None, "created_at": now, "updated_at": now, "shredded_at": None}])
        conn.execute(VaultDataKey.__table__.insert(), [{
            "subject_token": TOKEN, "dek_version": 1, "kek_version": VECTORS["keyfile_plain"]["kek_version"],
            "wrapped": b64(VECTORS["keyfile_plain"]["wrapped"]), "created_at": now, "rewrapped_at": None}])
        conn.execute(VaultField.__table__.insert(), field_rows)
        conn.execute(VaultRecording.__table__.insert(), [{
            "id": BLOB["blob_id"], "subject_token": TOKEN, "media_type": "audio/ogg",
            "size": len(b64(BLOB["plaintext"])), "sha256": BLOB["sha256"], "dek_version": 1, "created_at": now,
            "shredded_at": None}])
    blob_path = runtime.settings.blob_dir / BLOB["blob_id"]
    blob_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    blob_path.write_bytes(b64(BLOB["sealed"]))
    blob_path.chmod(0o600)


@pytest.fixture
def legacy(settings) -> Iterator[tuple[TestClient, Runtime]]:  # type: ignore[no-untyped-def]
    """`tarcza init` over a data directory that already holds a5507c3's keys, then its rows in the database."""
    from api.cli.common import initialise_runtime

    _private(settings.keyfile_path, VECTORS["keyfile_plain"]["document"])
    _private(settings.data_dir / "keys" / "identity.key", VECTORS["identity_key"]["file"])
    runtime = Runtime(settings)
    initialise_runtime(runtime)
    assert json.loads(settings.keyfile_path.read_text())["format"] == "tarcza-keyfile/v1"  # init kept it
    _insert_old_rows(runtime)
    yield TestClient(create_app(runtime=runtime), raise_server_exceptions=False), runtime
    runtime.close()


class TestOldDataOverHttp:
    def test_old_fields_reveal_one_by_one_and_in_bulk(self, legacy: tuple[TestClient, Runtime]) -> None:
        """A subject whose key and envelopes a5507c3 wrote reveals every value, alone and through the bulk path."""
        http, runtime = legacy
        dpo = person_headers(runtime, "dpo")
        expected = stored_fields()
        ask = {"fields": sorted(expected), "purpose": PURPOSE}
        revealed = http.post(f"/v1/subjects/{TOKEN}/reveal", json=ask, headers=dpo)
        assert revealed.status_code == 200, revealed.text
        assert revealed.json()["fields"] == expected
        bulk = http.post("/v1/subjects/reveal", json={**ask, "subjects": [TOKEN]}, headers=dpo)
        assert bulk.status_code == 200, bulk.text
        assert [result["fields"] for result in bulk.json()["results"]] == [expected]

    def test_old_recording_plays_whole_and_by_range(self, legacy: tuple[TestClient, Runtime]) -> None:
        """A format-1 recording streams back whole and by a range that crosses its segments."""
        http, runtime = legacy
        dpo = person_headers(runtime, "dpo")
        audio = b64(BLOB["plaintext"])
        url = f"/v1/subjects/{TOKEN}/recordings/{BLOB['blob_id']}"
        whole = http.get(url, params={"purpose": PURPOSE}, headers=dpo)
        assert (whole.status_code, whole.content) == (200, audio)
        middle = http.get(url, params={"purpose": PURPOSE}, headers={**dpo, "Range": "bytes=1000-2100"})
        assert (middle.status_code, middle.content) == (206, audio[1000:2101])

    def test_rotation_reseals_the_old_wrapped_key(self, legacy: tuple[TestClient, Runtime]) -> None:
        """POST /v1/keys/rotate rewraps the old key as a recipe frame under KEK 2, and the subject still reveals."""
        http, runtime = legacy
        rotated = http.post("/v1/keys/rotate", headers=client_headers(runtime, "keys:rotate"))
        assert rotated.status_code == 200, rotated.text
        assert (rotated.json()["rewrapped"], rotated.json()["to_version"]) == (1, 2)
        with read_connection(runtime.engine) as conn:
            row = conn.execute(select(VaultDataKey.kek_version, VaultDataKey.wrapped)
                               .where(VaultDataKey.subject_token == TOKEN)).one()
        assert row.kek_version == 2
        assert aead.key_id_of(bytes(row.wrapped)) == 2
        assert json.loads(runtime.settings.keyfile_path.read_text())["format"] == "tarcza-keyfile/v2"
        shown = http.post(f"/v1/subjects/{TOKEN}/reveal", json={"fields": ["pesel"], "purpose": PURPOSE},
                          headers=person_headers(runtime, "dpo"))
        assert shown.status_code == 200, shown.text
        assert shown.json()["fields"] == {"pesel": stored_fields()["pesel"]}
