"""A key provider that picks up a newer key-encryption key without a restart (ADR 0022).

A process opens the keyfile once; a rotation run by another process (a second server on the
same installation, or an operator) rewrites the file with a new KEK version, rewraps every
data key under it and retires the old versions. A process still holding the old versions can
then neither wrap (the vault refuses a version older than the newest rotation) nor unwrap: it
answered 503 until restarted. :class:`ReloadingKeyProvider` stands in front of the real
provider and reopens it, through the public ``open`` callable (``vault.bootstrap.open_key_provider``):

- before every operation, when the watched keyfile is no longer the file it opened (device,
  inode, size or modification time differ: the keyfile is only ever replaced atomically by a
  rename, so a rewrite is a new inode); one ``stat`` call, no read;
- once, when asked to unwrap under a version newer than any it holds, in case the change
  escaped the ``stat`` (a file system with coarse times that reused the inode).

A PKCS#11 token is shared live by every process, so there is nothing to watch (``watch`` is
None) and nothing to reload. Invariants: a failed reopen keeps the provider that works (and
is logged); a provider replaced by a reload is closed only when this one is, since another
thread may be using it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from core.errors import ConfigurationError
from core.logging import get_logger
from vault.errors import KeyProviderError
from vault.keys import KeyProvider

__all__ = ["ReloadingKeyProvider"]

log = get_logger(__name__)

_Stamp = tuple[int, int, int, int] | None


class ReloadingKeyProvider(KeyProvider):
    """Delegates to the provider ``open()`` returns, reopening it when the keyfile ``watch`` changes."""

    name: ClassVar[str] = "reloading"

    def __init__(self, open_provider: Callable[[], KeyProvider], watch: Path | None) -> None:
        self._open = open_provider
        self._watch = watch
        self._lock = threading.Lock()
        self._stamp = self._stat()  # before opening: a change in between shows as a change later
        self._inner = open_provider()
        self._replaced: list[KeyProvider] = []
        self.reloads = 0

    def _stat(self) -> _Stamp:
        if self._watch is None:
            return None
        try:
            st = self._watch.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _provider(self) -> KeyProvider:
        if self._watch is not None and self._stat() != self._stamp:
            self.reload()
        return self._inner

    def reload(self) -> bool:
        """Reopen the provider now; True if it was reopened, False (old one kept, logged) if that failed."""
        with self._lock:
            stamp = self._stat()
            try:
                fresh = self._open()
            except (KeyProviderError, ConfigurationError) as exc:
                self._stamp = stamp  # do not retry on every call; the next change of the file retries
                log.warning("key_provider.reload_failed", error=exc.detail)
                return False
            self._replaced.append(self._inner)
            self._inner, self._stamp = fresh, stamp
            self.reloads += 1
        log.info("key_provider.reloaded", kek_versions=fresh.versions(), current=fresh.current_version())
        return True

    def _after_own_change(self) -> None:
        """This process rewrote the keyfile: what is on disk now is what the provider holds."""
        with self._lock:
            self._stamp = self._stat()

    # -- KeyProvider

    def current_version(self) -> int:
        return self._provider().current_version()

    def versions(self) -> list[int]:
        return self._provider().versions()

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[int, bytes]:
        return self._provider().wrap(data_key, aad=aad)

    def unwrap(self, kek_version: int, wrapped: bytes, *, aad: bytes) -> bytes:
        provider = self._provider()
        try:
            return provider.unwrap(kek_version, wrapped, aad=aad)
        except KeyProviderError:
            newer = self._watch is not None and kek_version > max(provider.versions(), default=0)
            if not newer or not self.reload():
                raise
        return self._inner.unwrap(kek_version, wrapped, aad=aad)

    def create_version(self) -> int:
        version = self._provider().create_version()
        self._after_own_change()
        return version

    def retire_version(self, version: int) -> None:
        self._provider().retire_version(version)
        self._after_own_change()

    def index_key(self) -> bytes:
        return self._provider().index_key()

    def close(self) -> None:
        with self._lock:
            providers, self._replaced = [*self._replaced, self._inner], []
        for provider in providers:
            provider.close()

    def __repr__(self) -> str:
        return f"ReloadingKeyProvider({self._inner!r}, reloads={self.reloads})"
