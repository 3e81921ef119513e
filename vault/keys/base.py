"""The :class:`KeyProvider` contract, and the small rules every provider shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar, Final, Self

from vault.errors import KeyProviderError

KEK_SIZE: Final = 32
INDEX_KEY_SIZE: Final = 32
INDEX_ROOT_LABEL: Final = b"tarcza-index-root-v1"
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16


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
