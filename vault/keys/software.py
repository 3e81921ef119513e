"""KEKs held in process memory, wrapping done in this process; the in-memory provider for tests."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import ClassVar

from vault import aead
from vault.errors import KeyProviderError
from vault.keys.base import (
    INDEX_KEY_SIZE,
    KEK_SIZE,
    KeyProvider,
    open_wrapped,
    refuse_current,
    seal_wrapped,
    unknown_version,
)


class SoftwareKeyProvider(KeyProvider):
    """KEKs held in process memory; wrapping (the recipe's key-wrap frames) done here."""

    def __init__(self, keks: Mapping[int, bytes], index_key: bytes) -> None:
        if not keks:
            raise KeyProviderError("a key provider needs at least one key-encryption key")
        self._keks: dict[int, bytes] = dict(keks)
        self._ciphers: dict[int, aead.Cipher] = {}
        self._index_key = index_key
        self._lock = threading.RLock()
        self._closed = False

    def _open_keks(self) -> dict[int, bytes]:
        if self._closed:
            raise KeyProviderError(f"the {self.name} key provider is closed")
        return self._keks

    def _cipher(self, version: int) -> aead.Cipher | None:
        """The KEK of ``version`` as the recipe's cipher (made once); None if there is none. Hold the lock."""
        found = self._ciphers.get(version)
        if found is None:
            kek = self._open_keks().get(version)
            if kek is None:
                return None
            found = self._ciphers[version] = aead.cipher(kek)
        return found

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._keks = {}
            self._ciphers = {}
            self._index_key = b""

    def current_version(self) -> int:
        with self._lock:
            return max(self._open_keks())

    def versions(self) -> list[int]:
        with self._lock:
            return sorted(self._open_keks())

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[int, bytes]:
        with self._lock:
            version = max(self._open_keks())
            kek = self._cipher(version)
        if kek is None:  # pragma: no cover - the current version always has a key
            raise unknown_version(version)
        return version, seal_wrapped(kek, version, data_key, aad)

    def unwrap(self, kek_version: int, wrapped: bytes, *, aad: bytes) -> bytes:
        with self._lock:
            kek = self._cipher(kek_version)
        if kek is None:
            raise unknown_version(kek_version)
        return open_wrapped(kek, kek_version, wrapped, aad)

    def create_version(self) -> int:
        with self._lock:
            keks = self._open_keks()
            version = max(keks) + 1
            updated = {**keks, version: os.urandom(KEK_SIZE)}
            self._persist(updated)
            self._keks = updated
            return version

    def retire_version(self, version: int) -> None:
        with self._lock:
            keks = self._open_keks()
            refuse_current(version, max(keks))
            if version not in keks:
                raise unknown_version(version)
            updated = {v: k for v, k in keks.items() if v != version}
            self._persist(updated)
            self._keks = updated
            self._ciphers.pop(version, None)

    def index_key(self) -> bytes:
        with self._lock:
            self._open_keks()
            return self._index_key

    def _persist(self, keks: Mapping[int, bytes]) -> None:
        """Store ``keks`` durably before they take effect (no-op in memory)."""


class MemoryKeyProvider(SoftwareKeyProvider):
    """Random keys that live as long as the object. For tests."""

    name: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__({1: os.urandom(KEK_SIZE)}, os.urandom(INDEX_KEY_SIZE))

    def __repr__(self) -> str:
        return f"MemoryKeyProvider(versions={sorted(self._keks)})"
