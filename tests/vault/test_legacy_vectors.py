"""Bytes sealed by the code before the sealing recipe (commit a5507c3) still open (ADR 0016).

The vectors in ``vectors/legacy-a5507c3.json`` were written by that commit's own modules
(``vectors/make_legacy_vectors.py`` says how); every key in them is a test key.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.idempotency import StoredAnswerError, decode_answer, load_answer_box
from api.runtime import Runtime
from core.settings import load_settings
from identity.errors import IdentityKeyError
from identity.secretbox import identity_key_path
from vault import aead
from vault.blobs import MemoryBlobStore, blob_key_version, decrypt_stream
from vault.datakeys import wrap_aad
from vault.envelope import envelope_key_version, open_field, seal_field
from vault.errors import KeyProviderError, VaultDecryptError
from vault.keys import KEYFILE_FORMAT, LocalKeyfileProvider

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "legacy-a5507c3.json").read_text("utf-8"))


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def flips(data: bytes) -> list[bytes]:
    """``data`` with one bit flipped, at a spread of positions including both ends."""
    out = []
    for position in sorted({0, 1, 2, len(data) // 2, len(data) - 1, *range(0, len(data), 7)}):
        changed = bytearray(data)
        changed[position] ^= 0x01
        out.append(bytes(changed))
    return out


def write_keyfile(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.keys"
    path.write_text(VECTORS[name]["document"], encoding="utf-8")
    path.chmod(0o600)
    return path


class TestFieldEnvelopes:
    """Field envelopes, event values and justifications: the recipe's field frames, byte for byte."""

    @pytest.mark.parametrize("vector", VECTORS["fields"], ids=lambda v: v["field"])
    def test_old_envelope_opens(self, vector: dict[str, Any]) -> None:
        """Each envelope written by a5507c3 opens to its value, for its subject and label only."""
        key, envelope = b64(VECTORS["data_key"]), b64(vector["envelope"])
        assert envelope_key_version(envelope) == vector["key_version"]
        assert open_field(key, envelope, subject=VECTORS["subject"], field=vector["field"]).decode() == \
            vector["plaintext"]
        with pytest.raises(VaultDecryptError):
            open_field(key, envelope, subject=VECTORS["subject"], field=vector["field"] + "x")

    @pytest.mark.parametrize("vector", VECTORS["fields"], ids=lambda v: v["field"])
    def test_recipe_seals_the_same_bytes(self, vector: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
        """With the old envelope's nonce, the recipe writes exactly the old envelope (one format, not two)."""
        envelope = b64(vector["envelope"])
        monkeypatch.setattr(aead.os, "urandom", lambda size: envelope[7:7 + size])
        assert seal_field(b64(VECTORS["data_key"]), vector["plaintext"].encode(), subject=VECTORS["subject"],
                          field=vector["field"], key_version=vector["key_version"]) == envelope


class TestKeyfilesAndWraps:
    """Keyfiles of format v1 (plain and passphrase-sealed) and the keys they wrapped."""

    @pytest.mark.parametrize("name", ["keyfile_plain", "keyfile_sealed"])
    def test_old_keyfile_opens_and_unwraps(self, tmp_path: Path, name: str) -> None:
        """A v1 keyfile opens, and the data key it wrapped (nonce || ct) unwraps for its subject only."""
        vector = VECTORS[name]
        provider = LocalKeyfileProvider.open(write_keyfile(tmp_path, name), vector["passphrase"])
        wrapped, aad = b64(vector["wrapped"]), b64(VECTORS["wrap_aad"])
        assert aad == wrap_aad(VECTORS["subject"], 1)
        assert provider.unwrap(vector["kek_version"], wrapped, aad=aad) == b64(VECTORS["data_key"])
        with pytest.raises(VaultDecryptError):
            provider.unwrap(vector["kek_version"], wrapped, aad=wrap_aad("sub_other", 1))
        for changed in flips(wrapped):
            with pytest.raises(VaultDecryptError):
                provider.unwrap(vector["kek_version"], changed, aad=aad)

    @pytest.mark.parametrize("name", ["keyfile_plain", "keyfile_sealed"])
    def test_rotation_rewrites_an_old_keyfile_as_v2(self, tmp_path: Path, name: str) -> None:
        """The first version change rewrites a v1 keyfile as v2 (a recipe frame when sealed); nothing is lost."""
        vector = VECTORS[name]
        path = write_keyfile(tmp_path, name)
        provider = LocalKeyfileProvider.open(path, vector["passphrase"])
        index_key = provider.index_key()
        provider.create_version()
        document = json.loads(path.read_text("utf-8"))
        assert document["format"] == KEYFILE_FORMAT == "tarcza-keyfile/v2"
        if vector["passphrase"] is not None:
            assert aead.key_id_of(b64(document["keys"]["sealed"])) == 1
        again = LocalKeyfileProvider.open(path, vector["passphrase"])
        assert again.versions() == [1, 2]
        assert again.index_key() == index_key
        wrapped, aad = b64(vector["wrapped"]), b64(VECTORS["wrap_aad"])
        assert again.unwrap(1, wrapped, aad=aad) == b64(VECTORS["data_key"])

    def test_tampered_old_sealed_keyfile_is_refused(self, tmp_path: Path) -> None:
        """A changed byte of a v1 sealed keyfile, or a wrong passphrase, is refused with the one message."""
        vector = VECTORS["keyfile_sealed"]
        document = json.loads(vector["document"])
        sealed = b64(document["keys"]["sealed"])
        for changed in flips(sealed):
            document["keys"]["sealed"] = base64.b64encode(changed).decode()
            path = tmp_path / "changed.keys"
            path.write_text(json.dumps(document))
            path.chmod(0o600)
            with pytest.raises(KeyProviderError, match=r"^wrong passphrase or corrupted keyfile$"):
                LocalKeyfileProvider.open(path, vector["passphrase"])
        with pytest.raises(KeyProviderError, match=r"^wrong passphrase or corrupted keyfile$"):
            LocalKeyfileProvider.open(write_keyfile(tmp_path, "keyfile_sealed"), "not the passphrase")

    def test_v1_document_relabelled_v2_is_refused(self, tmp_path: Path) -> None:
        """A v1 sealed keyfile whose format line is changed to v2 does not open (the format is bound)."""
        vector = VECTORS["keyfile_sealed"]
        path = tmp_path / "relabelled.keys"
        path.write_text(vector["document"].replace("tarcza-keyfile/v1", "tarcza-keyfile/v2"))
        path.chmod(0o600)
        with pytest.raises(KeyProviderError, match=r"^wrong passphrase or corrupted keyfile$"):
            LocalKeyfileProvider.open(path, vector["passphrase"])


def legacy_blob_store(sealed: bytes | None = None, blob_id: str | None = None) -> MemoryBlobStore:
    store = MemoryBlobStore()
    with store.open_write(blob_id or VECTORS["blob"]["blob_id"]) as sink:
        sink.write(b64(VECTORS["blob"]["sealed"]) if sealed is None else sealed)
    return store


def read_legacy(store: MemoryBlobStore, *, subject: str | None = None, blob_id: str | None = None,
                start: int = 0, end: int | None = None) -> bytes:
    return b"".join(decrypt_stream(b64(VECTORS["data_key"]), store, subject=subject or VECTORS["subject"],
                                   blob_id=blob_id or VECTORS["blob"]["blob_id"], start=start, end=end))


class TestBlobFormat1:
    """Recordings sealed as blob format 1 (segment index as nonce) still play, whole and by range."""

    def test_old_blob_opens(self) -> None:
        """The whole recording comes back, with its key version, from a format-1 blob of three segments."""
        blob = VECTORS["blob"]
        store = legacy_blob_store()
        assert b64(blob["sealed"])[:4] == b"TZB\x01"
        assert blob["segments"] == 3
        assert blob_key_version(store, blob["blob_id"]) == blob["key_version"]
        assert read_legacy(store) == b64(blob["plaintext"])

    @settings(max_examples=60, deadline=None)
    @given(start=st.integers(min_value=0, max_value=3100), length=st.one_of(st.none(), st.integers(0, 3100)))
    def test_old_blob_ranges(self, start: int, length: int | None) -> None:
        """Any range of a format-1 blob reads exactly those plaintext bytes."""
        end = None if length is None else start + length
        assert read_legacy(legacy_blob_store(), start=start, end=end) == b64(VECTORS["blob"]["plaintext"])[start:end]

    def test_tampered_old_blob_fails_closed(self) -> None:
        """A flipped bit, a truncation, another subject or id, or a header relabelled format 2, is refused."""
        sealed = b64(VECTORS["blob"]["sealed"])
        for changed in flips(sealed):
            with pytest.raises(VaultDecryptError):
                read_legacy(legacy_blob_store(changed))
        for keep in (28, 28 + 1040, len(sealed) - 1):
            with pytest.raises(VaultDecryptError):
                read_legacy(legacy_blob_store(sealed[:keep]))
        with pytest.raises(VaultDecryptError):
            read_legacy(legacy_blob_store(), subject="sub_other")
        with pytest.raises(VaultDecryptError):
            read_legacy(legacy_blob_store(blob_id="rec_copy"), blob_id="rec_copy")
        with pytest.raises(VaultDecryptError):
            read_legacy(legacy_blob_store(sealed[:3] + b"\x02" + sealed[4:]))


def wired_runtime(tmp_path: Path) -> Runtime:
    """A runtime whose data directory holds the vectors' identity key (as a5507c3's `tarcza init` wrote it)."""
    data_dir = tmp_path / "var"
    (data_dir / "keys").mkdir(parents=True, mode=0o700)
    key_file = data_dir / "keys" / "identity.key"
    key_file.write_text(VECTORS["identity_key"]["file"], encoding="ascii")
    key_file.chmod(0o600)
    return Runtime(load_settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'tarcza.db'}"))


class TestIdentityBoxes:
    """TOTP seeds and stored HTTP answers sealed under the identity key before the recipe."""

    def test_old_totp_seed_opens_through_the_wired_box(self, tmp_path: Path) -> None:
        """The runtime's secret box opens a seed sealed by a5507c3 for its user only; new seals are frames."""
        vector = VECTORS["secret_box"]
        box = wired_runtime(tmp_path).secret_box_loader()()
        sealed = b64(vector["sealed"])
        assert sealed[:2] == b"v1"
        assert box.open(sealed, aad=vector["aad"]) == b64(vector["plaintext"])
        with pytest.raises(IdentityKeyError, match=r"^a sealed identity secret cannot be opened$"):
            box.open(sealed, aad="another-user")
        for changed in flips(sealed):
            with pytest.raises(IdentityKeyError):
                box.open(changed, aad=vector["aad"])
        resealed = box.seal(b64(vector["plaintext"]), aad=vector["aad"])
        assert aead.key_id_of(resealed) == 1
        assert box.open(resealed, aad=vector["aad"]) == b64(vector["plaintext"])

    def test_old_stored_answer_opens(self, tmp_path: Path) -> None:
        """An answer stored by a5507c3 opens with the identity key, for its principal and key only."""
        vector = VECTORS["stored_answer"]
        box = load_answer_box(identity_key_path(wired_runtime(tmp_path).settings))
        sealed = b64(vector["sealed"])
        assert box.open(sealed, principal=vector["principal"], key=vector["key"]) == b64(vector["plaintext"])
        assert decode_answer(b64(vector["plaintext"]))[0] == 201
        for principal, key in ((vector["principal"], "other-key"), ("user:other", vector["key"]),
                               (vector["principal"] + "\0" + vector["key"], "")):
            with pytest.raises(StoredAnswerError):
                box.open(sealed, principal=principal, key=key)
        for changed in flips(sealed):
            with pytest.raises(StoredAnswerError):
                box.open(changed, principal=vector["principal"], key=vector["key"])

    def test_boxes_of_one_identity_key_do_not_open_each_other(self, tmp_path: Path) -> None:
        """A seed frame does not open as a stored answer, nor the other way round (distinct purposes)."""
        runtime = wired_runtime(tmp_path)
        secret_box = runtime.secret_box_loader()()
        answer_box = load_answer_box(identity_key_path(runtime.settings))
        seed = secret_box.seal(b"seed", aad="p")
        answer = answer_box.seal(b"answer", principal="p", key="")
        with pytest.raises(StoredAnswerError):
            answer_box.open(seed, principal="p", key="")
        with pytest.raises(IdentityKeyError):
            secret_box.open(answer, aad="p")
