"""The :class:`KeyProvider` contract, and what every provider shares: the wrapped-key format.

A wrapped data key is a frame of the sealing recipe (:mod:`vault.aead`) for the purpose
``key wrap``: key id = the KEK version, one context item = the caller's ``aad``. Keys
wrapped before the recipe (``nonce || ciphertext || tag`` with ``aad`` as associated data)
still unwrap; a KEK rotation rewraps them as frames.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar, Final, Self

from vault import aead
from vault.errors import KeyProviderError, VaultDecryptError

KEK_SIZE: Final = 32
INDEX_KEY_SIZE: Final = 32
INDEX_ROOT_LABEL: Final = b"tarcza-index-root-v1"


class KeyProvider(ABC):
    """Holds the versioned key-encryption keys and the blind-index root key."""

    name: ClassVar[str]

    @abstractmethod
    def current_version(self) -> int:
        """The KEK version that :meth:`wrap` uses now."""

    @abstractmethod
    def versions(self) -> list[int]:
        """Every KEK version that can still unwrap, ascending."""

    @abstractmethod
    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[int, bytes]:
        """Wrap ``data_key`` under the current KEK; returns ``(kek_version, wrapped)``."""

    @abstractmethod
    def unwrap(self, kek_version: int, wrapped: bytes, *, aad: bytes) -> bytes:
        """Unwrap what :meth:`wrap` returned.

        Raises :class:`KeyProviderError` if ``kek_version`` is unknown or unavailable,
        :class:`VaultDecryptError` on any other failure.
        """

    @abstractmethod
    def create_version(self) -> int:
        """Create a new KEK version, which becomes current; returns its number."""

    @abstractmethod
    def retire_version(self, version: int) -> None:
        """Destroy an old KEK version. Refuses the current one with KeyProviderError."""

    @abstractmethod
    def index_key(self) -> bytes:
        """The 32-byte root key for blind indexes (never a KEK)."""

    @abstractmethod
    def close(self) -> None:
        """Release what the provider holds (sessions, key references). Idempotent.

        Every other method raises :class:`KeyProviderError` afterwards.
        """

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def refuse_current(version: int, current: int) -> None:
    if version == current:
        raise KeyProviderError(
            f"refusing to retire key-encryption key version {version}: it is the current version",
            kek_version=version,
        )


def unknown_version(version: int) -> KeyProviderError:
    return KeyProviderError(
        f"key-encryption key version {version} is not available", kek_version=version
    )


def check_data_key(data_key: bytes) -> None:
    if not data_key:
        raise ValueError("data key must not be empty")


def seal_wrapped(kek: aead.Cipher, kek_version: int, data_key: bytes, aad: bytes) -> bytes:
    """``data_key`` wrapped under ``kek`` (of ``kek_version``) for ``aad``: a key-wrap frame."""
    check_data_key(data_key)
    return aead.Sealer(kek, aead.KEY_WRAP).seal(data_key, aead.context(aad), key_id=kek_version)


def open_wrapped(kek: aead.Cipher, kek_version: int, wrapped: bytes, aad: bytes) -> bytes:
    """Unwrap a key-wrap frame of ``kek_version``, or a key wrapped before the recipe.

    A frame is recognised by its header naming this KEK version; a pre-recipe wrap starts
    with its random nonce, which looks like that header once in 2**56 wraps, so such a
    frame that fails is tried as a pre-recipe wrap too. Raises :class:`VaultDecryptError`.
    """
    if aead.is_frame(wrapped) and aead.key_id_of(wrapped) == kek_version:
        try:
            return aead.Sealer(kek, aead.KEY_WRAP).open(wrapped, aead.context(aad), key_id=kek_version)
        except VaultDecryptError:
            pass
    return aead.legacy_open_nonce_first(kek, wrapped, aad)
