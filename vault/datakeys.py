"""Per-subject data keys: creation, wrapping under the KEK, and a small cache of unwrapped keys.

Every subject has its own random 256-bit data key (version 1; the version is in every
envelope, so a later data-key rotation can add version 2). It is stored only wrapped by
the current key-encryption key of the :class:`~vault.keys.KeyProvider`, with associated
data binding it to ``(subject token, data-key version)``: a wrapped key copied to another
subject or version does not unwrap.

Unwrapped keys are cached in process memory so a burst of reads does not call the KEK
(an HSM round trip with PKCS#11) every time. Invariants of :class:`DataKeyCache`:

- it holds at most ``max_entries`` keys (least recently used go first) and none longer
  than ``ttl`` seconds after it was unwrapped, measured by the injected clock;
- it is safe to use from several threads;
- :meth:`DataKeyCache.evict_subject` removes every key of a subject at once (shredding
  calls it); other processes' caches expire within ``ttl``, and the service refuses a
  shredded subject before it consults any cache anyway;
- ``repr`` never shows a key.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Connection

from core.clock import Clock
from core.logging import get_logger
from vault import repository
from vault.envelope import new_data_key
from vault.errors import VaultDecryptError
from vault.keys import KeyProvider

__all__ = ["DEFAULT_CACHE_SIZE", "DEFAULT_CACHE_TTL", "DataKeyCache", "DataKeys", "NewDataKey", "wrap_aad"]

log = get_logger(__name__)

DEFAULT_CACHE_TTL: Final = 60.0
DEFAULT_CACHE_SIZE: Final = 1024
FIRST_DEK_VERSION: Final = 1
_WRAP_DOMAIN: Final = b"tarcza/data-key/v1"


def wrap_aad(subject: str, dek_version: int) -> bytes:
    """The associated data of a wrapped data key: domain, subject token, data-key version."""
    token = subject.encode("utf-8")
    return b"".join((struct.pack(">I", len(_WRAP_DOMAIN)), _WRAP_DOMAIN, struct.pack(">I", len(token)), token,
                     struct.pack(">I", dek_version)))


class DataKeyCache:
    """A bounded, expiring, thread-safe map ``(subject, data-key version) -> data key``."""

    def __init__(self, clock: Clock, *, ttl: float = DEFAULT_CACHE_TTL,
                 max_entries: int = DEFAULT_CACHE_SIZE) -> None:
        if ttl < 0 or max_entries < 0:
            raise ValueError("ttl and max_entries must not be negative")
        self._clock = clock
        self._ttl = timedelta(seconds=ttl)
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, int], tuple[bytes, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, subject: str, dek_version: int) -> bytes | None:
        """The cached key, or None if absent or expired (an expired entry is dropped)."""
        key = (subject, dek_version)
        now = self._clock.now()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, subject: str, dek_version: int, data_key: bytes) -> None:
        if self._max == 0 or self._ttl <= timedelta(0):
            return
        expires = self._clock.now() + self._ttl
        with self._lock:
            self._entries[(subject, dek_version)] = (data_key, expires)
            self._entries.move_to_end((subject, dek_version))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def evict_subject(self, subject: str) -> int:
        """Forget every key of ``subject``; returns how many were cached."""
        with self._lock:
            doomed = [key for key in self._entries if key[0] == subject]
            for key in doomed:
                del self._entries[key]
        return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, item: object) -> bool:
        with self._lock:
            return item in self._entries

    def __repr__(self) -> str:
        return f"DataKeyCache(entries={len(self)}, max_entries={self._max}, ttl={self._ttl.total_seconds()})"


@dataclass(frozen=True)
class NewDataKey:
    """A data key just made for a subject: the key itself and its wrapped form to store."""

    subject: str
    dek_version: int
    kek_version: int
    wrapped: bytes
    key: bytes = field(repr=False)

    def row(self, now: datetime) -> dict[str, object]:
        return {"subject_token": self.subject, "dek_version": self.dek_version, "kek_version": self.kek_version,
                "wrapped": self.wrapped, "created_at": now, "rewrapped_at": None}


class DataKeys:
    """Makes, unwraps (through the cache) and rewraps subjects' data keys."""

    def __init__(self, provider: KeyProvider, cache: DataKeyCache) -> None:
        self.provider = provider
        self.cache = cache

    def new(self, subject: str) -> NewDataKey:
        """A fresh data key for ``subject``, wrapped under the current KEK, and cached."""
        key = new_data_key()
        kek_version, wrapped = self.provider.wrap(key, aad=wrap_aad(subject, FIRST_DEK_VERSION))
        self.cache.put(subject, FIRST_DEK_VERSION, key)
        return NewDataKey(subject, FIRST_DEK_VERSION, kek_version, wrapped, key)

    def get(self, conn: Connection, subject: str, dek_version: int) -> bytes:
        """The unwrapped data key; VaultDecryptError if it is gone (shredded) or does not unwrap."""
        key = self.get_many(conn, [(subject, dek_version)]).get((subject, dek_version))
        if key is None:  # get_many logged why
            raise VaultDecryptError()
        return key

    def get_many(self, conn: Connection, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], bytes]:
        """Unwrapped data keys of ``(subject, data-key version)`` pairs, reading the uncached in one query.

        A pair whose key is gone (shredded) or does not unwrap is left out, and logged.
        """
        out: dict[tuple[str, int], bytes] = {}
        missing: list[tuple[str, int]] = []
        for subject, version in wanted:
            cached = self.cache.get(subject, version)
            if cached is None:
                missing.append((subject, version))
            else:
                out[(subject, version)] = cached
        rows = repository.get_data_keys(conn, missing) if missing else {}
        for subject, version in missing:
            row = rows.get((subject, version))
            if row is None:
                log.error("vault_data_key_missing", subject=subject, dek_version=version)
                continue
            try:
                key = self.provider.unwrap(row.kek_version, row.wrapped, aad=wrap_aad(subject, version))
            except VaultDecryptError:
                log.error("vault_data_key_unwrap_failed", subject=subject, dek_version=version,
                          kek_version=row.kek_version)
                continue
            self.cache.put(subject, version, key)
            out[(subject, version)] = key
        return out

    def rewrap(self, row: repository.DataKeyRow) -> tuple[int, bytes]:
        """Unwrap ``row`` with its KEK version and wrap it again under the current one."""
        aad = wrap_aad(row.subject_token, row.dek_version)
        key = self.provider.unwrap(row.kek_version, row.wrapped, aad=aad)
        return self.provider.wrap(key, aad=aad)

    def forget(self, subject: str) -> int:
        return self.cache.evict_subject(subject)
