"""KEKs generated and used inside a PKCS#11 token (an HSM; tested against SoftHSM2)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

import pkcs11
from pkcs11 import exceptions as p11

from vault.errors import KeyProviderError, VaultDecryptError
from vault.keys.base import (
    INDEX_KEY_SIZE,
    INDEX_ROOT_LABEL,
    KeyProvider,
    check_data_key,
    open_wrapped,
    refuse_current,
    seal_wrapped,
    unknown_version,
)
from vault.keys.token_session import SESSION_LOST, SHARED_SESSIONS, SHARED_SESSIONS_LOCK, SharedTokenSession

_T = TypeVar("_T")

class _TokenCipher:
    """A KEK inside the token as the recipe's :class:`~vault.aead.Cipher`: ``CKM_AES_GCM`` there.

    The recipe chooses the nonce and builds the associated data; the token only runs
    AES-256-GCM with them (``CK_GCM_PARAMS``, 128-bit tag). A failed encryption is a
    :class:`KeyProviderError`; a failed decryption is :class:`VaultDecryptError` (SoftHSM2
    reports a bad tag as ``CKR_GENERAL_ERROR``), except a lost session, which passes
    through so the provider reopens it.
    """

    def __init__(self, kek: pkcs11.Object, version: int, token_label: str) -> None:
        self._kek = kek
        self._version = version
        self._token_label = token_label

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None, /) -> bytes:
        if not isinstance(self._kek, pkcs11.EncryptMixin):
            raise KeyProviderError(f"KEK version {self._version} cannot encrypt", kek_version=self._version)
        params = pkcs11.GCMParams(nonce, associated_data or b"")
        try:
            sealed = self._kek.encrypt(data, mechanism=pkcs11.Mechanism.AES_GCM, mechanism_param=params)
        except SESSION_LOST:
            raise
        except p11.PKCS11Error as exc:
            raise KeyProviderError(
                f"PKCS#11 token {self._token_label!r} failed to wrap ({type(exc).__name__})"
            ) from None
        if not isinstance(sealed, bytes):  # only iterator input yields an iterator
            raise KeyProviderError("PKCS#11 wrap returned an unexpected type")
        return sealed

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None, /) -> bytes:
        if not isinstance(self._kek, pkcs11.DecryptMixin):
            raise VaultDecryptError()
        params = pkcs11.GCMParams(nonce, associated_data or b"")
        try:
            plain = self._kek.decrypt(data, mechanism=pkcs11.Mechanism.AES_GCM, mechanism_param=params)
        except SESSION_LOST:
            raise
        except p11.PKCS11Error:
            raise VaultDecryptError() from None
        if not isinstance(plain, bytes):
            raise VaultDecryptError()
        return plain


class Pkcs11KeyProvider(KeyProvider):
    """KEKs that live and work inside a PKCS#11 token.

    Each KEK version is an AES-256 secret key generated in the token (``CKA_TOKEN``,
    ``CKA_PRIVATE``, ``CKA_SENSITIVE`` true, ``CKA_EXTRACTABLE`` false, usable only to
    encrypt and decrypt) labelled ``f"{prefix}-v{n}"``. The index root key comes from an
    HMAC (generic secret) key in the token labelled ``f"{prefix}-index"``, also
    sensitive and not extractable: ``index_key()`` is the token-side
    HMAC-SHA-256 of ``b"tarcza-index-root-v1"``. Only that derived value leaves the
    token, never a key object's value.

    Mechanism: wrap and unwrap are ``CKM_AES_GCM`` ``C_Encrypt``/``C_Decrypt`` inside the
    token, driven by the sealing recipe (:mod:`vault.aead`): the recipe picks a 96-bit
    random nonce on the host and builds the associated data, so a wrapped key has the same
    format (a key-wrap frame) as with the software providers, and keys wrapped before the
    recipe (``nonce || ciphertext || tag``) still unwrap. GCM was chosen over
    ``CKM_AES_KEY_WRAP_PAD`` plus an HMAC because it binds the associated data natively and
    works with SoftHSM2 2.6 and python-pkcs11. The data key is handled as data
    (``C_Encrypt``), not as a token key object, since data keys are used by the host anyway.

    With ``bootstrap=True`` (the default) a token without KEK version 1 or without the
    index key gets them generated on first use; with ``bootstrap=False`` that is a
    :class:`KeyProviderError`, so a misconfigured label prefix cannot silently start
    a new key hierarchy.

    Sessions: every provider for the same module and token in this process shares one
    logged-in session under one lock (see ``SharedTokenSession``); a session that was
    lost (token removed, session closed) is reopened once before an error is raised.
    """

    name: ClassVar[str] = "pkcs11"

    def __init__(
        self,
        module_path: str,
        token_label: str,
        pin: str,
        key_label_prefix: str = "tarcza-kek",
        *,
        bootstrap: bool = True,
    ) -> None:
        if not key_label_prefix:
            raise ValueError("key_label_prefix must not be empty")
        self.module_path = os.path.realpath(module_path)  # one library handle per file
        self.token_label = token_label
        self.key_label_prefix = key_label_prefix
        self._pin = pin
        self._version_label = re.compile(rf"{re.escape(key_label_prefix)}-v([1-9][0-9]{{0,8}})")
        self._index_label = f"{key_label_prefix}-index"
        self._index_key: bytes | None = None
        self._closed = False
        key = (self.module_path, token_label)
        with SHARED_SESSIONS_LOCK:
            shared = SHARED_SESSIONS.get(key)
            if shared is None:
                shared = SHARED_SESSIONS[key] = SharedTokenSession(self.module_path, token_label)
            shared.users += 1
        self._shared = shared
        try:
            self._call(lambda session: self._prepare(session, bootstrap=bootstrap))
        except BaseException:
            self.close()
            raise

    # -- session handling

    def _call(self, operation: Callable[[pkcs11.Session], _T]) -> _T:
        """Run ``operation`` on the shared session under its lock; reopen a lost session once."""
        if self._closed:
            raise KeyProviderError("the PKCS#11 key provider is closed")
        with self._shared.lock:
            for attempt in (1, 2):
                session = self._shared.session(self._pin)
                try:
                    return operation(session)
                except SESSION_LOST:
                    self._shared.drop()
                    if attempt == 2:
                        raise KeyProviderError(
                            f"lost the session on PKCS#11 token {self.token_label!r}"
                        ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Give up this provider's share of the token session; the last one logs out."""
        if self._closed:
            return
        self._closed = True
        with SHARED_SESSIONS_LOCK:
            self._shared.users -= 1
            last = self._shared.users == 0
            if last:
                SHARED_SESSIONS.pop((self._shared.module_path, self._shared.token_label), None)
        if last:
            with self._shared.lock:
                self._shared.drop()

    # -- token objects

    def _prepare(self, session: pkcs11.Session, *, bootstrap: bool) -> None:
        if not self._list_versions(session):
            if not bootstrap:
                raise KeyProviderError(
                    f"no key-encryption key labelled {self.key_label_prefix}-v<n> "
                    f"on PKCS#11 token {self.token_label!r}"
                )
            self._generate_kek(session, 1)
        if not list(self._find(session, pkcs11.KeyType.GENERIC_SECRET, self._index_label)):
            if not bootstrap:
                raise KeyProviderError(
                    f"no index key labelled {self._index_label} "
                    f"on PKCS#11 token {self.token_label!r}"
                )
            self._generate(
                session,
                pkcs11.KeyType.GENERIC_SECRET,
                self._index_label,
                pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY,
            )

    @staticmethod
    def _find(
        session: pkcs11.Session, key_type: pkcs11.KeyType, label: str | None = None
    ) -> Iterator[pkcs11.Object]:
        attrs: dict[pkcs11.Attribute, Any] = {
            pkcs11.Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY,
            pkcs11.Attribute.KEY_TYPE: key_type,
        }
        if label is not None:
            attrs[pkcs11.Attribute.LABEL] = label
        # Materialise: a search must end before the session runs anything else.
        return iter(list(session.get_objects(attrs)))

    def _list_versions(self, session: pkcs11.Session) -> list[int]:
        found: set[int] = set()
        for obj in self._find(session, pkcs11.KeyType.AES):
            match = self._version_label.fullmatch(str(obj[pkcs11.Attribute.LABEL]))
            if match:
                found.add(int(match.group(1)))
        return sorted(found)

    def _current(self, session: pkcs11.Session) -> int:
        versions = self._list_versions(session)
        if not versions:
            raise KeyProviderError(f"no key-encryption key on PKCS#11 token {self.token_label!r}")
        return versions[-1]

    def _single(
        self, session: pkcs11.Session, key_type: pkcs11.KeyType, label: str
    ) -> pkcs11.Object:
        matches = list(self._find(session, key_type, label))
        if len(matches) > 1:
            raise KeyProviderError(
                f"{len(matches)} keys on PKCS#11 token {self.token_label!r} carry label {label!r}"
            )
        if not matches:
            raise KeyProviderError(
                f"no key labelled {label!r} on PKCS#11 token {self.token_label!r}"
            )
        return matches[0]

    def _kek(self, session: pkcs11.Session, version: int) -> pkcs11.Object:
        matches = list(self._find(session, pkcs11.KeyType.AES, self._kek_label(version)))
        if not matches:
            raise unknown_version(version)
        if len(matches) > 1:
            raise KeyProviderError(
                f"key-encryption key version {version} is ambiguous on PKCS#11 token "
                f"{self.token_label!r}: {len(matches)} keys carry its label",
                kek_version=version,
            )
        return matches[0]

    def _kek_label(self, version: int) -> str:
        return f"{self.key_label_prefix}-v{version}"

    def _generate(
        self,
        session: pkcs11.Session,
        key_type: pkcs11.KeyType,
        label: str,
        capabilities: pkcs11.MechanismFlag,
    ) -> None:
        try:
            session.generate_key(
                key_type,
                256,
                label=label,
                store=True,
                capabilities=capabilities,
                template={
                    pkcs11.Attribute.PRIVATE: True,
                    pkcs11.Attribute.SENSITIVE: True,
                    pkcs11.Attribute.EXTRACTABLE: False,
                },
            )
        except SESSION_LOST:
            raise
        except p11.PKCS11Error as exc:
            raise KeyProviderError(
                f"cannot generate key {label!r} on PKCS#11 token {self.token_label!r} "
                f"({type(exc).__name__})"
            ) from None

    def _generate_kek(self, session: pkcs11.Session, version: int) -> None:
        self._generate(
            session,
            pkcs11.KeyType.AES,
            self._kek_label(version),
            pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT,
        )

    # -- KeyProvider

    def current_version(self) -> int:
        return self._call(self._current)

    def versions(self) -> list[int]:
        return self._call(self._list_versions)

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[int, bytes]:
        check_data_key(data_key)

        def operation(session: pkcs11.Session) -> tuple[int, bytes]:
            version = self._current(session)
            cipher = _TokenCipher(self._kek(session, version), version, self.token_label)
            return version, seal_wrapped(cipher, version, data_key, aad)

        return self._call(operation)

    def unwrap(self, kek_version: int, wrapped: bytes, *, aad: bytes) -> bytes:
        def operation(session: pkcs11.Session) -> bytes:
            cipher = _TokenCipher(self._kek(session, kek_version), kek_version, self.token_label)
            return open_wrapped(cipher, kek_version, wrapped, aad)

        return self._call(operation)

    def create_version(self) -> int:
        def operation(session: pkcs11.Session) -> int:
            version = self._current(session) + 1
            self._generate_kek(session, version)
            return version

        return self._call(operation)

    def retire_version(self, version: int) -> None:
        def operation(session: pkcs11.Session) -> None:
            refuse_current(version, self._current(session))
            kek = self._kek(session, version)
            try:
                kek.destroy()
            except SESSION_LOST:
                raise
            except p11.PKCS11Error as exc:
                raise KeyProviderError(
                    f"cannot destroy key-encryption key version {version} ({type(exc).__name__})",
                    kek_version=version,
                ) from None

        self._call(operation)

    def index_key(self) -> bytes:
        if self._index_key is not None:
            return self._index_key

        def operation(session: pkcs11.Session) -> bytes:
            key = self._single(session, pkcs11.KeyType.GENERIC_SECRET, self._index_label)
            if not isinstance(key, pkcs11.SignMixin):
                raise KeyProviderError(f"index key {self._index_label!r} cannot sign")
            try:
                derived = key.sign(INDEX_ROOT_LABEL, mechanism=pkcs11.Mechanism.SHA256_HMAC)
            except SESSION_LOST:
                raise
            except p11.PKCS11Error as exc:
                raise KeyProviderError(
                    f"cannot derive the index root key ({type(exc).__name__})"
                ) from None
            if len(derived) != INDEX_KEY_SIZE:
                raise KeyProviderError("the token's HMAC returned an unexpected length")
            return derived

        self._index_key = self._call(operation)
        return self._index_key

    def __repr__(self) -> str:
        return (
            f"Pkcs11KeyProvider(module_path={self.module_path!r}, "
            f"token_label={self.token_label!r}, key_label_prefix={self.key_label_prefix!r})"
        )
