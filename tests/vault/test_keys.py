"""Key-encryption keys: the KeyProvider contract, the local keyfile and the PKCS#11 token."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pkcs11
import pytest
from pkcs11 import exceptions as p11

from vault import aead
from vault.errors import KeyProviderError, VaultDecryptError
from vault.keys import KEYFILE_FORMAT, KeyProvider, LocalKeyfileProvider, Pkcs11KeyProvider

if TYPE_CHECKING:
    from conftest import SoftHsmToken

DATA_KEY = bytes(range(32))
AAD = b"tarcza/subject/SUBJ-0001"
TEST_PASSPHRASE = "correct horse battery staple"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestKeyProviderContract:
    """Run once per provider: memory, local keyfile (plain and sealed), SoftHSM2 token."""

    def test_wrap_unwrap_round_trip(self, key_provider: KeyProvider) -> None:
        """A wrapped data key unwraps to itself with the same version and aad."""
        version, wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        assert version == key_provider.current_version() == 1
        assert DATA_KEY not in wrapped
        assert key_provider.unwrap(version, wrapped, aad=AAD) == DATA_KEY

    def test_wrapped_key_is_a_key_wrap_frame(self, key_provider: KeyProvider) -> None:
        """A wrapped key is a recipe frame naming its KEK version, 35 bytes longer than the data key."""
        version, wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        assert aead.is_frame(wrapped)
        assert aead.key_id_of(wrapped) == version
        assert len(wrapped) == len(DATA_KEY) + aead.OVERHEAD

    def test_frame_renamed_to_another_version_fails_closed(self, key_provider: KeyProvider) -> None:
        """A wrapped key whose header is rewritten to name the next KEK version opens under neither."""
        version, wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        other = key_provider.create_version()
        renamed = wrapped[:3] + other.to_bytes(4, "big") + wrapped[7:]
        for kek_version in (version, other):
            with pytest.raises(VaultDecryptError):
                key_provider.unwrap(kek_version, renamed, aad=AAD)

    def test_empty_aad_round_trip(self, key_provider: KeyProvider) -> None:
        """An empty aad is allowed and still binds (it differs from a non-empty one)."""
        version, wrapped = key_provider.wrap(DATA_KEY, aad=b"")
        assert key_provider.unwrap(version, wrapped, aad=b"") == DATA_KEY
        with pytest.raises(VaultDecryptError):
            key_provider.unwrap(version, wrapped, aad=b"x")

    def test_wraps_are_randomised(self, key_provider: KeyProvider) -> None:
        """Wrapping the same key twice gives different bytes (fresh nonce each time)."""
        assert key_provider.wrap(DATA_KEY, aad=AAD)[1] != key_provider.wrap(DATA_KEY, aad=AAD)[1]

    def test_unwrap_with_other_aad_fails_closed(self, key_provider: KeyProvider) -> None:
        """A wrapped key presented for another subject (other aad) does not unwrap."""
        version, wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        with pytest.raises(VaultDecryptError):
            key_provider.unwrap(version, wrapped, aad=b"tarcza/subject/SUBJ-0002")

    def test_tampered_wrapped_key_fails_closed(self, key_provider: KeyProvider) -> None:
        """Flipping any byte of a wrapped key makes unwrapping fail with the opaque error."""
        version, wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        for position in range(len(wrapped)):
            tampered = bytearray(wrapped)
            tampered[position] ^= 0x01
            with pytest.raises(VaultDecryptError):
                key_provider.unwrap(version, bytes(tampered), aad=AAD)

    def test_truncated_wrapped_key_fails_closed(self, key_provider: KeyProvider) -> None:
        """Every strict prefix of a wrapped key is refused."""
        version, wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        for length in (0, 1, 12, 27, 28, len(wrapped) - 1):
            with pytest.raises(VaultDecryptError):
                key_provider.unwrap(version, wrapped[:length], aad=AAD)

    def test_wrap_unwrap_across_versions(self, key_provider: KeyProvider) -> None:
        """After a new version, new wraps use it and keys wrapped under the old one still open."""
        old_version, old_wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        new_version = key_provider.create_version()
        assert new_version == old_version + 1 == key_provider.current_version()
        assert key_provider.versions() == [1, 2]
        version, wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        assert version == new_version
        assert key_provider.unwrap(old_version, old_wrapped, aad=AAD) == DATA_KEY
        assert key_provider.unwrap(new_version, wrapped, aad=AAD) == DATA_KEY

    def test_unwrap_under_another_version_fails_closed(self, key_provider: KeyProvider) -> None:
        """A key wrapped under one version does not open under another."""
        version, wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        other = key_provider.create_version()
        with pytest.raises(VaultDecryptError):
            key_provider.unwrap(other, wrapped, aad=AAD)
        assert key_provider.unwrap(version, wrapped, aad=AAD) == DATA_KEY

    def test_unknown_version_is_a_provider_error(self, key_provider: KeyProvider) -> None:
        """Asking for a version that never existed is a KeyProviderError, not a decrypt error."""
        _, wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        with pytest.raises(KeyProviderError, match="version 99 is not available"):
            key_provider.unwrap(99, wrapped, aad=AAD)

    def test_retire_refuses_current_version(self, key_provider: KeyProvider) -> None:
        """The current version cannot be retired."""
        with pytest.raises(KeyProviderError, match="current version"):
            key_provider.retire_version(key_provider.current_version())
        assert key_provider.versions() == [1]

    def test_unwrap_after_retire_fails(self, key_provider: KeyProvider) -> None:
        """Once a version is retired, what it wrapped can no longer be unwrapped."""
        version, wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        key_provider.create_version()
        key_provider.retire_version(version)
        assert key_provider.versions() == [2]
        with pytest.raises(KeyProviderError, match="not available"):
            key_provider.unwrap(version, wrapped, aad=AAD)

    def test_retire_unknown_version_is_refused(self, key_provider: KeyProvider) -> None:
        """Retiring a version that does not exist is a KeyProviderError."""
        key_provider.create_version()
        with pytest.raises(KeyProviderError, match="not available"):
            key_provider.retire_version(7)

    def test_version_numbers_are_never_reused(self, key_provider: KeyProvider) -> None:
        """After retiring old versions, the next version is still one above the highest."""
        key_provider.create_version()
        key_provider.retire_version(1)
        assert key_provider.create_version() == 3
        assert key_provider.versions() == [2, 3]

    def test_index_key_is_stable_and_32_bytes(self, key_provider: KeyProvider) -> None:
        """The index root key is 32 bytes and does not change with KEK rotation."""
        index_key = key_provider.index_key()
        assert len(index_key) == 32
        key_provider.create_version()
        assert key_provider.index_key() == index_key

    def test_repr_hides_key_material(self, key_provider: KeyProvider) -> None:
        """A provider's repr shows no key material."""
        text = repr(key_provider)
        index_key = key_provider.index_key()
        assert index_key.hex() not in text
        assert base64.b64encode(index_key).decode() not in text

    def test_closed_provider_refuses_use(self, key_provider: KeyProvider) -> None:
        """After close, every operation is a KeyProviderError and close stays idempotent."""
        _, wrapped = key_provider.wrap(DATA_KEY, aad=AAD)
        key_provider.close()
        key_provider.close()
        with pytest.raises(KeyProviderError, match="closed"):
            key_provider.unwrap(1, wrapped, aad=AAD)
        with pytest.raises(KeyProviderError, match="closed"):
            key_provider.wrap(DATA_KEY, aad=AAD)

    def test_concurrent_wraps_are_safe(self, key_provider: KeyProvider) -> None:
        """Several threads wrapping and unwrapping at once all get correct results."""
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(20):
                    key = os.urandom(32)
                    version, wrapped = key_provider.wrap(key, aad=AAD)
                    assert key_provider.unwrap(version, wrapped, aad=AAD) == key
            except BaseException as exc:  # noqa: BLE001 - reported to the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []


class TestLocalKeyfileProvider:
    """The keyfile on disk: permissions, atomic writes, passphrase sealing."""

    def test_keyfile_created_with_mode_0600(self, tmp_path: Path) -> None:
        """A new keyfile is 0600 even under a permissive umask."""
        path = tmp_path / "tarcza.keys"
        old_umask = os.umask(0)
        try:
            LocalKeyfileProvider.create(path)
        finally:
            os.umask(old_umask)
        assert _mode(path) == 0o600
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tarcza.keys"]

    def test_keyfile_with_mode_0644_is_refused(self, tmp_path: Path) -> None:
        """A keyfile readable by others is refused, naming path and mode but no key material."""
        path = tmp_path / "tarcza.keys"
        provider = LocalKeyfileProvider.create(path)
        path.chmod(0o644)
        with pytest.raises(KeyProviderError) as caught:
            LocalKeyfileProvider.open(path)
        message = str(caught.value)
        assert str(path) in message
        assert "0644" in message
        assert base64.b64encode(provider.index_key()).decode() not in message
        assert caught.value.extra["mode"] == "0644"

    @pytest.mark.parametrize("mode", [0o640, 0o604, 0o700, 0o660])
    def test_any_mode_wider_than_0600_is_refused(self, tmp_path: Path, mode: int) -> None:
        """Group or other bits, or an execute bit, are refused."""
        path = tmp_path / "tarcza.keys"
        LocalKeyfileProvider.create(path)
        path.chmod(mode)
        with pytest.raises(KeyProviderError, match=f"mode {mode:04o}"):
            LocalKeyfileProvider.open(path)

    def test_narrower_mode_is_accepted(self, tmp_path: Path) -> None:
        """A read-only keyfile (0400) opens."""
        path = tmp_path / "tarcza.keys"
        LocalKeyfileProvider.create(path)
        path.chmod(0o400)
        assert LocalKeyfileProvider.open(path).versions() == [1]

    def test_create_refuses_to_overwrite(self, tmp_path: Path) -> None:
        """Creating over an existing file is refused and leaves the file untouched."""
        path = tmp_path / "tarcza.keys"
        LocalKeyfileProvider.create(path)
        before = path.read_bytes()
        with pytest.raises(KeyProviderError, match="already exists"):
            LocalKeyfileProvider.create(path)
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tarcza.keys"]

    def test_missing_keyfile_is_refused(self, tmp_path: Path) -> None:
        """Opening a keyfile that does not exist is a KeyProviderError."""
        with pytest.raises(KeyProviderError, match="does not exist"):
            LocalKeyfileProvider.open(tmp_path / "absent.keys")

    def test_symlinked_keyfile_is_refused(self, tmp_path: Path) -> None:
        """A symbolic link in place of the keyfile is refused."""
        LocalKeyfileProvider.create(tmp_path / "real.keys")
        (tmp_path / "link.keys").symlink_to(tmp_path / "real.keys")
        with pytest.raises(KeyProviderError, match="symbolic link"):
            LocalKeyfileProvider.open(tmp_path / "link.keys")

    @pytest.mark.parametrize("passphrase", [None, TEST_PASSPHRASE])
    def test_reopened_keyfile_unwraps(self, tmp_path: Path, passphrase: str | None) -> None:
        """Keys wrapped before a rotation and a reopen still unwrap afterwards."""
        path = tmp_path / "tarcza.keys"
        first = LocalKeyfileProvider.create(path, passphrase)
        v1, w1 = first.wrap(DATA_KEY, aad=AAD)
        first.create_version()
        v2, w2 = first.wrap(DATA_KEY, aad=AAD)
        again = LocalKeyfileProvider.open(path, passphrase)
        assert again.versions() == [1, 2]
        assert again.unwrap(v1, w1, aad=AAD) == DATA_KEY
        assert again.unwrap(v2, w2, aad=AAD) == DATA_KEY
        assert again.index_key() == first.index_key()

    def test_wrong_passphrase_is_refused(self, tmp_path: Path) -> None:
        """A wrong passphrase is refused with the one documented message."""
        path = tmp_path / "tarcza.keys"
        LocalKeyfileProvider.create(path, TEST_PASSPHRASE)
        with pytest.raises(KeyProviderError, match=r"^wrong passphrase or corrupted keyfile$"):
            LocalKeyfileProvider.open(path, "not the passphrase")

    def test_corrupted_sealed_keyfile_is_refused(self, tmp_path: Path) -> None:
        """A changed byte in the sealed key material is refused like a wrong passphrase."""
        path = tmp_path / "tarcza.keys"
        LocalKeyfileProvider.create(path, TEST_PASSPHRASE)
        document = json.loads(path.read_text())
        sealed = bytearray(base64.b64decode(document["keys"]["sealed"]))
        sealed[20] ^= 0x01
        document["keys"]["sealed"] = base64.b64encode(bytes(sealed)).decode()
        path.write_text(json.dumps(document))
        with pytest.raises(KeyProviderError, match="wrong passphrase or corrupted keyfile"):
            LocalKeyfileProvider.open(path, TEST_PASSPHRASE)

    def test_changed_kdf_parameters_are_refused(self, tmp_path: Path) -> None:
        """Changing the scrypt parameters in the file makes it unopenable."""
        path = tmp_path / "tarcza.keys"
        LocalKeyfileProvider.create(path, TEST_PASSPHRASE)
        document = json.loads(path.read_text())
        document["kdf"]["n"] = 2**14
        path.write_text(json.dumps(document))
        with pytest.raises(KeyProviderError, match="wrong passphrase or corrupted keyfile"):
            LocalKeyfileProvider.open(path, TEST_PASSPHRASE)

    def test_passphrase_mismatch_in_either_direction_is_refused(self, tmp_path: Path) -> None:
        """A sealed file needs a passphrase; a plain file refuses one."""
        LocalKeyfileProvider.create(tmp_path / "sealed.keys", TEST_PASSPHRASE)
        LocalKeyfileProvider.create(tmp_path / "plain.keys")
        with pytest.raises(KeyProviderError, match="passphrase is required"):
            LocalKeyfileProvider.open(tmp_path / "sealed.keys")
        with pytest.raises(KeyProviderError, match="not passphrase-protected"):
            LocalKeyfileProvider.open(tmp_path / "plain.keys", TEST_PASSPHRASE)

    def test_empty_passphrase_is_refused(self, tmp_path: Path) -> None:
        """An empty passphrase (an unset variable) is not accepted."""
        with pytest.raises(KeyProviderError, match="empty passphrase"):
            LocalKeyfileProvider.create(tmp_path / "tarcza.keys", "")

    def test_file_format(self, tmp_path: Path) -> None:
        """The file is the documented JSON; sealed, it holds no key material in clear."""
        plain_path, sealed_path = tmp_path / "plain.keys", tmp_path / "sealed.keys"
        plain = LocalKeyfileProvider.create(plain_path)
        sealed = LocalKeyfileProvider.create(sealed_path, TEST_PASSPHRASE)
        plain_doc = json.loads(plain_path.read_text())
        assert plain_doc["format"] == KEYFILE_FORMAT
        assert plain_doc["kdf"] is None
        assert base64.b64decode(plain_doc["keys"]["index"]) == plain.index_key()
        assert len(base64.b64decode(plain_doc["keys"]["kek"]["1"])) == 32
        sealed_doc = json.loads(sealed_path.read_text())
        assert sealed_doc["kdf"]["name"] == "scrypt"
        assert (sealed_doc["kdf"]["n"], sealed_doc["kdf"]["r"], sealed_doc["kdf"]["p"]) == (
            2**15,
            8,
            1,
        )
        assert set(sealed_doc["keys"]) == {"sealed"}
        assert base64.b64encode(sealed.index_key()).decode() not in sealed_path.read_text()

    @pytest.mark.parametrize(
        "content",
        [b"", b"not json", b"[]", b'{"format": "tarcza-keyfile/v1", "kdf": null, "keys": {}}'],
    )
    def test_malformed_keyfile_is_refused(self, tmp_path: Path, content: bytes) -> None:
        """A file that is not a keyfile is a KeyProviderError, not a crash."""
        path = tmp_path / "tarcza.keys"
        path.write_bytes(content)
        path.chmod(0o600)
        with pytest.raises(KeyProviderError, match="malformed"):
            LocalKeyfileProvider.open(path)

    def test_unknown_format_is_refused(self, tmp_path: Path) -> None:
        """A keyfile of another format version is refused by name."""
        path = tmp_path / "tarcza.keys"
        path.write_text('{"format": "tarcza-keyfile/v9", "kdf": null, "keys": {}}')
        path.chmod(0o600)
        with pytest.raises(KeyProviderError, match=r"not tarcza-keyfile/v2 \(nor the older tarcza-keyfile/v1\)"):
            LocalKeyfileProvider.open(path)

    def test_rotation_rewrites_atomically_with_same_permissions(self, tmp_path: Path) -> None:
        """create_version and retire_version keep the mode and leave no temporary file."""
        path = tmp_path / "tarcza.keys"
        provider = LocalKeyfileProvider.create(path, TEST_PASSPHRASE)
        path.chmod(0o400)
        inode = path.stat().st_ino
        provider.create_version()
        assert _mode(path) == 0o400
        assert path.stat().st_ino != inode  # replaced, not edited in place
        provider.retire_version(1)
        assert _mode(path) == 0o400
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tarcza.keys"]
        assert LocalKeyfileProvider.open(path, TEST_PASSPHRASE).versions() == [2]

    def test_rotation_refuses_a_file_changed_on_disk(self, tmp_path: Path) -> None:
        """A second opener's rotation is refused after the first rotated, so no version is lost."""
        path = tmp_path / "tarcza.keys"
        first = LocalKeyfileProvider.create(path)
        second = LocalKeyfileProvider.open(path)
        first.create_version()
        with pytest.raises(KeyProviderError, match="changed on disk"):
            second.create_version()
        assert second.versions() == [1]
        assert LocalKeyfileProvider.open(path).versions() == [1, 2]

    def test_failed_rotation_changes_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If the rename fails, the provider keeps its versions, the file is intact."""
        path = tmp_path / "tarcza.keys"
        provider = LocalKeyfileProvider.create(path)
        before = path.read_bytes()

        def failing_replace(src: object, dst: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", failing_replace)
        with pytest.raises(KeyProviderError, match="cannot rewrite keyfile"):
            provider.create_version()
        monkeypatch.undo()
        assert provider.versions() == [1]
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tarcza.keys"]


class TestPkcs11KeyProvider:
    """What only a PKCS#11 token adds: keys that never leave it, shared sessions."""

    def test_kek_never_leaves_token(self, softhsm_token: SoftHsmToken) -> None:
        """KEKs and the index key are sensitive, not extractable, and their value cannot be read."""
        with softhsm_token.provider() as provider:
            provider.create_version()
            prefix = provider.key_label_prefix
            for label in (f"{prefix}-v1", f"{prefix}-v2", f"{prefix}-index"):
                with provider._shared.lock:  # inspect the keys through the live session
                    session = provider._shared.session(softhsm_token.pin)
                    (key,) = session.get_objects({pkcs11.Attribute.LABEL: label})
                    assert key[pkcs11.Attribute.SENSITIVE] is True
                    assert key[pkcs11.Attribute.EXTRACTABLE] is False
                    assert key[pkcs11.Attribute.TOKEN] is True
                    with pytest.raises(p11.AttributeSensitive):
                        key[pkcs11.Attribute.VALUE]

    def test_key_wrapped_before_the_recipe_still_unwraps(self, softhsm_token: SoftHsmToken) -> None:
        """A key the token wrapped as commit a5507c3 did (nonce || GCM in the token) unwraps, and only for its aad."""
        with softhsm_token.provider() as provider:
            label = f"{provider.key_label_prefix}-v1"
            nonce = os.urandom(12)
            with provider._shared.lock:  # the pre-recipe wrap, through the live session
                session = provider._shared.session(softhsm_token.pin)
                (kek,) = session.get_objects({pkcs11.Attribute.LABEL: label})
                legacy = nonce + kek.encrypt(DATA_KEY, mechanism=pkcs11.Mechanism.AES_GCM,
                                             mechanism_param=pkcs11.GCMParams(nonce, AAD))
            assert provider.unwrap(1, legacy, aad=AAD) == DATA_KEY
            with pytest.raises(VaultDecryptError):
                provider.unwrap(1, legacy, aad=b"tarcza/subject/SUBJ-0002")
            for position in (0, 11, 12, len(legacy) - 1):
                tampered = bytearray(legacy)
                tampered[position] ^= 0x01
                with pytest.raises(VaultDecryptError):
                    provider.unwrap(1, bytes(tampered), aad=AAD)

    def test_keys_persist_across_providers(self, softhsm_token: SoftHsmToken) -> None:
        """A key wrapped by one provider instance unwraps with another on the same prefix."""
        with softhsm_token.provider() as first:
            version, wrapped = first.wrap(DATA_KEY, aad=AAD)
            prefix = first.key_label_prefix
            index_key = first.index_key()
        with softhsm_token.provider(prefix) as second:
            assert second.unwrap(version, wrapped, aad=AAD) == DATA_KEY
            assert second.index_key() == index_key

    def test_index_keys_differ_between_prefixes(self, softhsm_token: SoftHsmToken) -> None:
        """Two key hierarchies on one token have different index root keys."""
        with softhsm_token.provider() as one, softhsm_token.provider() as two:
            assert one.index_key() != two.index_key()

    def test_providers_share_the_token_session(self, softhsm_token: SoftHsmToken) -> None:
        """Closing one provider does not log the other out of the token."""
        first = softhsm_token.provider()
        second = softhsm_token.provider()
        version, wrapped = second.wrap(DATA_KEY, aad=AAD)
        first.close()
        assert second.unwrap(version, wrapped, aad=AAD) == DATA_KEY
        second.close()
        with softhsm_token.provider() as third:  # logs in again after the last one left
            assert third.versions() == [1]

    # python-pkcs11 finalises the failed search on the dead session in __del__ and reports
    # SessionHandleInvalid as unraisable; that noise is the library's, not a failure.
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    def test_lost_session_is_reopened(self, softhsm_token: SoftHsmToken) -> None:
        """If the token session dies under the provider, the next call opens a new one."""
        with softhsm_token.provider() as provider:
            version, wrapped = provider.wrap(DATA_KEY, aad=AAD)
            with provider._shared.lock:
                provider._shared.session(softhsm_token.pin).close()  # killed behind its back
            assert provider.unwrap(version, wrapped, aad=AAD) == DATA_KEY

    def test_wrong_pin_is_refused(self, softhsm_token: SoftHsmToken) -> None:
        """A wrong PIN is refused, whether or not another provider holds the session open."""
        token = softhsm_token
        with pytest.raises(KeyProviderError, match="wrong PIN"):
            Pkcs11KeyProvider(token.module_path, token.label, "000000", "test-wrong-pin")
        with token.provider(), pytest.raises(KeyProviderError, match="wrong PIN"):
            Pkcs11KeyProvider(token.module_path, token.label, "000000", "test-wrong-pin")

    def test_unknown_token_is_refused(self, softhsm_token: SoftHsmToken) -> None:
        """A token label that matches no token is a KeyProviderError naming it."""
        token = softhsm_token
        with pytest.raises(KeyProviderError, match="no PKCS#11 token labelled 'no-such-token'"):
            Pkcs11KeyProvider(token.module_path, "no-such-token", token.pin, "test-unknown")

    def test_without_bootstrap_missing_keys_are_refused(self, softhsm_token: SoftHsmToken) -> None:
        """With bootstrap=False a prefix without keys is refused instead of creating them."""
        with pytest.raises(KeyProviderError, match="no key-encryption key labelled"):
            softhsm_token.provider(bootstrap=False)

    def test_symlinked_module_path_shares_the_library(self, softhsm_token: SoftHsmToken) -> None:
        """Two paths to the same module (a symlink) load the library once."""
        link = Path("/usr/lib/softhsm/libsofthsm2.so")
        if not link.is_symlink():
            pytest.skip("no symlinked module path on this system")
        with softhsm_token.provider() as provider:
            prefix = provider.key_label_prefix
            version, wrapped = provider.wrap(DATA_KEY, aad=AAD)
            token = softhsm_token
            with Pkcs11KeyProvider(str(link), token.label, token.pin, prefix) as via_link:
                assert via_link.unwrap(version, wrapped, aad=AAD) == DATA_KEY
