"""The sealing recipe (vault/aead.py): its format, its properties, and that nothing else seals."""

from __future__ import annotations

import ast
import os
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import aead
from vault.errors import VaultDecryptError

ROOT = Path(__file__).resolve().parents[2]
NOT_SCANNED = frozenset({"tests", "build", "dist", "node_modules"})  # and hidden directories (.venv, .git)
RECIPE = ROOT / "vault" / "aead.py"

keys = st.binary(min_size=32, max_size=32)
purposes = st.sampled_from(aead.PURPOSES)
items = st.lists(st.one_of(st.binary(max_size=24), st.text(max_size=12)), max_size=5)
key_ids = st.integers(min_value=0, max_value=2**32 - 1)
plaintexts = st.binary(max_size=300)


def _seal(key: bytes, plaintext: bytes, purpose: aead.Purpose, ctx_items: list[bytes | str], key_id: int) -> bytes:
    return aead.seal(key, plaintext, purpose=purpose, ctx=aead.context(*ctx_items), key_id=key_id)


def _open(key: bytes, sealed: bytes, purpose: aead.Purpose, ctx_items: list[bytes | str],
          key_id: int | None = None) -> bytes:
    return aead.open_sealed(key, sealed, purpose=purpose, ctx=aead.context(*ctx_items), key_id=key_id)


def _lp(item: bytes) -> bytes:
    return struct.pack(">I", len(item)) + item


class TestFormat:
    """The bytes of a frame and of its associated data are the documented ones."""

    def test_frame_layout_and_associated_data(self) -> None:
        """Header, nonce, then AES-256-GCM under the length-prefixed (label, version, items, key id)."""
        key = bytes(range(32))
        sealed = aead.seal(key, b"value", purpose=aead.KEY_WRAP, ctx=aead.context("a", b"bc"), key_id=258)
        assert sealed[:7] == b"TZ\x01\x00\x00\x01\x02"
        assert len(sealed) == 7 + 12 + 5 + 16 == aead.OVERHEAD + 5
        ad = _lp(b"tarcza/key-wrap") + _lp(b"\x01") + _lp(b"a") + _lp(b"bc") + _lp((258).to_bytes(4, "big"))
        assert AESGCM(key).decrypt(sealed[7:19], sealed[19:], ad) == b"value"
        assert aead.key_id_of(sealed) == 258

    def test_every_purpose_has_its_own_label(self) -> None:
        """The purposes are the seven uses' six labels (fields and event values share one), all distinct."""
        labels = [purpose.label for purpose in aead.PURPOSES]
        assert len(set(labels)) == len(labels) == 6
        assert all(label.startswith(b"tarcza/") for label in labels)

    @given(first=st.lists(st.binary(max_size=8), max_size=4), second=st.lists(st.binary(max_size=8), max_size=4))
    def test_context_encoding_is_injective(self, first: list[bytes], second: list[bytes]) -> None:
        """Two different lists of context items never encode alike."""
        if first != second:
            assert aead.context(*first) != aead.context(*second)

    def test_derived_keys_differ_by_purpose_master_and_salt(self) -> None:
        """derive_key gives a different 32-byte key per purpose, per master and per salt, deterministically."""
        master = bytes(32)
        derived = {aead.derive_key(master, purpose) for purpose in aead.PURPOSES}
        assert len(derived) == len(aead.PURPOSES)
        assert aead.derive_key(master, aead.BLOB_SEGMENT, salt=b"a") != aead.derive_key(
            master, aead.BLOB_SEGMENT, salt=b"b")
        assert aead.derive_key(master, aead.SECRET_BOX) == aead.derive_key(master, aead.SECRET_BOX)
        assert aead.derive_key(bytes([1]) * 32, aead.SECRET_BOX) != aead.derive_key(master, aead.SECRET_BOX)
        with pytest.raises(ValueError, match="32 bytes"):
            aead.derive_key(b"short", aead.SECRET_BOX)

    def test_malformed_arguments_are_programming_errors(self) -> None:
        """A key of another size or a key id outside 32 bits is a ValueError when sealing."""
        with pytest.raises(ValueError, match="32 bytes"):
            aead.seal(b"k" * 16, b"x", purpose=aead.FIELD, ctx=aead.context(), key_id=1)
        for key_id in (-1, 2**32):
            with pytest.raises(ValueError, match="key id"):
                aead.seal(bytes(32), b"x", purpose=aead.FIELD, ctx=aead.context(), key_id=key_id)

    def test_repr_hides_the_key(self) -> None:
        """A sealer's repr names its purpose, never its key."""
        key = bytes(range(32))
        assert repr(aead.Sealer(key, aead.FIELD)) == "Sealer('field', <key hidden>)"
        assert key.hex() not in repr(aead.SubkeyBox(key, aead.SECRET_BOX))


class TestProperties:
    """Round trips, and every change to a frame or to what it is bound to fails closed."""

    @settings(max_examples=200)
    @given(key=keys, plaintext=plaintexts, purpose=purposes, ctx_items=items, key_id=key_ids)
    def test_round_trip(self, key: bytes, plaintext: bytes, purpose: aead.Purpose, ctx_items: list[bytes | str],
                        key_id: int) -> None:
        """A frame opens to its plaintext under its key, purpose, context and key id."""
        sealed = _seal(key, plaintext, purpose, ctx_items, key_id)
        assert _open(key, sealed, purpose, ctx_items) == plaintext
        assert _open(key, sealed, purpose, ctx_items, key_id=key_id) == plaintext
        assert aead.key_id_of(sealed) == key_id
        assert len(sealed) == len(plaintext) + aead.OVERHEAD

    @settings(max_examples=300)
    @given(key=keys, plaintext=plaintexts, purpose=purposes, ctx_items=items, key_id=key_ids, data=st.data())
    def test_any_single_bit_flip_fails(self, key: bytes, plaintext: bytes, purpose: aead.Purpose,
                                       ctx_items: list[bytes | str], key_id: int, data: st.DataObject) -> None:
        """Flipping any one bit of a frame (header, nonce, ciphertext or tag) makes it fail to open."""
        sealed = bytearray(_seal(key, plaintext, purpose, ctx_items, key_id))
        bit = data.draw(st.integers(min_value=0, max_value=8 * len(sealed) - 1))
        sealed[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(VaultDecryptError):
            _open(key, bytes(sealed), purpose, ctx_items)

    @settings(max_examples=200)
    @given(key=keys, plaintext=plaintexts, ctx_items=items, key_id=key_ids, data=st.data())
    def test_other_binding_fails(self, key: bytes, plaintext: bytes, ctx_items: list[bytes | str], key_id: int,
                                 data: st.DataObject) -> None:
        """Another purpose, another context, another expected key id or another key does not open a frame."""
        purpose, other_purpose = data.draw(st.permutations(aead.PURPOSES))[:2]
        sealed = _seal(key, plaintext, purpose, ctx_items, key_id)
        with pytest.raises(VaultDecryptError):
            _open(key, sealed, other_purpose, ctx_items)
        other_items = data.draw(items.filter(lambda candidate: candidate != ctx_items
                                             and aead.context(*candidate) != aead.context(*ctx_items)))
        with pytest.raises(VaultDecryptError):
            _open(key, sealed, purpose, other_items)
        with pytest.raises(VaultDecryptError):
            _open(key, sealed, purpose, ctx_items, key_id=(key_id + 1) % 2**32)
        other_key = data.draw(keys.filter(lambda candidate: candidate != key))
        with pytest.raises(VaultDecryptError):
            _open(other_key, sealed, purpose, ctx_items)

    @settings(max_examples=100)
    @given(key=keys, plaintext=plaintexts, purpose=purposes, key_id=key_ids, data=st.data())
    def test_rewritten_key_id_fails(self, key: bytes, plaintext: bytes, purpose: aead.Purpose, key_id: int,
                                    data: st.DataObject) -> None:
        """A header rewritten to name another key id does not open (the key id is authenticated)."""
        sealed = _seal(key, plaintext, purpose, [], key_id)
        other = data.draw(key_ids.filter(lambda candidate: candidate != key_id))
        rewritten = sealed[:3] + other.to_bytes(4, "big") + sealed[7:]
        assert aead.key_id_of(rewritten) == other
        with pytest.raises(VaultDecryptError):
            _open(key, rewritten, purpose, [])

    @settings(max_examples=100)
    @given(key=keys, plaintext=plaintexts, purpose=purposes, ctx_items=items, data=st.data())
    def test_truncation_and_extension_fail(self, key: bytes, plaintext: bytes, purpose: aead.Purpose,
                                           ctx_items: list[bytes | str], data: st.DataObject) -> None:
        """Every strict prefix of a frame, and the frame with bytes appended, fails to open."""
        sealed = _seal(key, plaintext, purpose, ctx_items, 1)
        length = data.draw(st.integers(min_value=0, max_value=len(sealed) - 1))
        with pytest.raises(VaultDecryptError):
            _open(key, sealed[:length], purpose, ctx_items)
        extra = data.draw(st.binary(min_size=1, max_size=20))
        with pytest.raises(VaultDecryptError):
            _open(key, sealed + extra, purpose, ctx_items)

    def test_seals_are_randomised(self) -> None:
        """The same plaintext sealed twice under one key gives different frames (fresh nonces)."""
        key = os.urandom(32)
        frames = {aead.seal(key, b"x", purpose=aead.FIELD, ctx=aead.context("s", "f"), key_id=1) for _ in range(100)}
        assert len(frames) == 100

    def test_not_a_frame_and_wrong_key_size_are_the_opaque_error(self) -> None:
        """Short input, another magic or version, and a key of the wrong size all give VaultDecryptError."""
        sealed = aead.seal(bytes(32), b"", purpose=aead.FIELD, ctx=aead.context(), key_id=1)
        for data in (b"", sealed[:-1], b"TY" + sealed[2:], sealed[:2] + b"\x02" + sealed[3:]):
            with pytest.raises(VaultDecryptError):
                aead.key_id_of(data)
            with pytest.raises(VaultDecryptError):
                aead.open_sealed(bytes(32), data, purpose=aead.FIELD, ctx=aead.context())
        with pytest.raises(VaultDecryptError):
            aead.open_sealed(b"short", sealed, purpose=aead.FIELD, ctx=aead.context())
        assert str(VaultDecryptError()) == "sealed data could not be opened"


class TestSubkeyBox:
    """Small secrets under a key derived from the identity key."""

    @given(master=keys, plaintext=plaintexts, owner=st.text(max_size=20))
    def test_round_trip_and_binding(self, master: bytes, plaintext: bytes, owner: str) -> None:
        """A box opens for its owner only, under its master key and purpose only."""
        box = aead.SubkeyBox(master, aead.SECRET_BOX)
        sealed = box.seal(plaintext, owner)
        assert sealed[:3] == b"TZ\x01"
        assert aead.key_id_of(sealed) == 1
        assert box.open(sealed, owner) == plaintext
        with pytest.raises(VaultDecryptError):
            box.open(sealed, owner + "x")
        with pytest.raises(VaultDecryptError):
            aead.SubkeyBox(master, aead.STORED_ANSWER).open(sealed, owner)
        with pytest.raises(VaultDecryptError):
            aead.SubkeyBox(bytes(b ^ 1 for b in master), aead.SECRET_BOX).open(sealed, owner)

    def test_items_are_not_confused(self) -> None:
        """("ab", "c") and ("a", "bc") are different owners of a stored answer."""
        box = aead.SubkeyBox(bytes(32), aead.STORED_ANSWER)
        with pytest.raises(VaultDecryptError):
            box.open(box.seal(b"x", "ab", "c"), "a", "bc")

    def test_unencodable_owner_is_the_opaque_error(self) -> None:
        """An owner that is not valid Unicode text fails to open, opaquely."""
        box = aead.SubkeyBox(bytes(32), aead.SECRET_BOX)
        for sealed in (box.seal(b"x", "u"), b"v1" + bytes(40)):
            with pytest.raises(VaultDecryptError):
                box.open(sealed, "\ud800")

    def test_only_box_purposes_have_boxes(self) -> None:
        """A SubkeyBox exists for the secret box and stored answers, not for other purposes."""
        with pytest.raises(KeyError):
            aead.SubkeyBox(bytes(32), aead.FIELD)


def _python_files() -> list[Path]:
    """Every Python file of the project (packages, scripts, examples) outside the tests."""
    tops = [entry for entry in ROOT.iterdir()
            if entry.is_dir() and not entry.name.startswith(".") and entry.name not in NOT_SCANNED]
    files = sorted(path for top in tops for path in top.rglob("*.py"))
    files += sorted(ROOT.glob("*.py"))
    assert RECIPE in files  # the scan reaches the packages
    return files


class TestOneRecipe:
    """Nothing but the recipe touches the AEAD primitive."""

    def test_only_the_recipe_imports_the_aead_primitives(self) -> None:
        """No module of the project but vault/aead.py imports from cryptography's ciphers (AEAD or modes)."""
        offenders: list[str] = []
        for path in _python_files():
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                if any(name.startswith("cryptography.hazmat.primitives.ciphers") for name in names) \
                        and path != RECIPE:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        assert offenders == []

    def test_aesgcm_is_constructed_only_in_the_recipe(self) -> None:
        """The text ``AESGCM(`` appears in vault/aead.py and nowhere else outside the tests."""
        found = [str(path.relative_to(ROOT)) for path in _python_files() if "AESGCM(" in path.read_text("utf-8")]
        assert found == ["vault/aead.py"]

    def test_token_gcm_only_behind_the_recipe_cipher(self) -> None:
        """The PKCS#11 AES-GCM mechanism is used only by the token cipher the recipe drives."""
        found = [str(path.relative_to(ROOT)) for path in _python_files() if "AES_GCM" in path.read_text("utf-8")]
        assert found == ["vault/keys/pkcs11.py"]
