"""Write ``legacy-a5507c3.json``: bytes sealed by the code *before* the sealing recipe (ADR 0016).

Run it against a checkout of commit a5507c3 (main before the recipe), never against the
current tree, whose modules no longer seal these framings::

    git archive a5507c3 | tar -x -C /tmp/tarcza-a5507c3
    PYTHONPATH=/tmp/tarcza-a5507c3 .venv/bin/python tests/vault/vectors/make_legacy_vectors.py \
        tests/vault/vectors/legacy-a5507c3.json

Every key in the file is random, made for the file, and protects only synthetic values.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from api.idempotency import AnswerBox, encode_answer
from identity.secretbox import KEY_FILE_TAG, SecretBox
from vault.blobs import MemoryBlobStore, encrypt_stream
from vault.datakeys import wrap_aad
from vault.envelope import new_data_key, seal_field
from vault.keys import LocalKeyfileProvider
from vault.tokens import RECORDING_PREFIX, new_token

PASSPHRASE = "legacy vectors are not secret"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def keyfile(directory: Path, name: str, passphrase: str | None, token: str, data_key: bytes) -> dict[str, Any]:
    provider = LocalKeyfileProvider.create(directory / name, passphrase)
    version, wrapped = provider.wrap(data_key, aad=wrap_aad(token, 1))
    return {"document": (directory / name).read_text(), "passphrase": passphrase, "kek_version": version,
            "wrapped": b64(wrapped)}


def main(out: Path) -> None:
    token = new_token()
    data_key = new_data_key()
    fields = [("first_name", "Zofia"), ("last_name", "Wiśniewska"), ("pesel", "44051401359"),
              ("phone", "+48601555777"), ("phone", "+48512345678"), ("~event:note", "Obiecała wpłatę do piątku."),
              ("~justification", "Wniosek dłużnika o korektę danych"), ("email", "")]
    envelopes = [{"field": name, "plaintext": value, "key_version": 1,
                  "envelope": b64(seal_field(data_key, value.encode("utf-8"), subject=token, field=name,
                                             key_version=1))}
                 for name, value in fields]
    recording = hashlib.shake_256(b"legacy recording").digest(3000)
    store = MemoryBlobStore()
    blob_id = new_token(RECORDING_PREFIX)
    info = encrypt_stream(data_key, [recording], store, subject=token, blob_id=blob_id, key_version=1,
                          segment_size=1024)
    with store.open_read(blob_id) as stream:
        blob = stream.read()
    master = os.urandom(32)
    user_id = "5f0c2b7e-3d0a-4f5e-9c1e-0a9b8c7d6e5f"
    totp_secret = b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    answer = encode_answer(201, [("content-type", "application/json")], b'{"token":"' + token.encode() + b'"}')
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        vectors = {
            "made_by": "tests/vault/vectors/make_legacy_vectors.py at commit a5507c3",
            "subject": token,
            "data_key": b64(data_key),
            "wrap_aad": b64(wrap_aad(token, 1)),
            "keyfile_plain": keyfile(directory, "plain.keys", None, token, data_key),
            "keyfile_sealed": keyfile(directory, "sealed.keys", PASSPHRASE, token, data_key),
            "fields": envelopes,
            "blob": {"blob_id": blob_id, "key_version": 1, "segment_size": 1024, "plaintext": b64(recording),
                     "sha256": info.sha256, "segments": info.segments, "sealed": b64(blob)},
            "identity_key": {"file": KEY_FILE_TAG + b64(master) + "\n", "master": b64(master)},
            "secret_box": {"aad": user_id, "plaintext": b64(totp_secret),
                           "sealed": b64(SecretBox(master).seal(totp_secret, aad=user_id))},
            "stored_answer": {"principal": "user:5f0c2b7e", "key": "create-subject-1", "plaintext": b64(answer),
                              "sealed": b64(AnswerBox(master).seal(answer, principal="user:5f0c2b7e",
                                                                   key="create-subject-1"))},
        }
    out.write_text(json.dumps(vectors, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
