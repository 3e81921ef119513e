"""KEK rotation: rewrap every data key under a new key-encryption key, online and resumably.

Steps, each safe to repeat:

1. Start: unless a rotation is ``running`` in ``vault_key_rotations``, create a new KEK
   version in the provider (it becomes current: new subjects use it from now on) and
   record the rotation as running. A partial unique index allows one running rotation.
2. Rewrap, in batches: read up to ``batch_size`` data keys wrapped under another version
   than the current one, unwrap and wrap them again outside any transaction, then store
   them in one short write transaction that checks each row still holds what was read
   (a concurrent shred wins). Each batch commits on its own; ``progress(done, total)``
   is called after each commit.
3. Retire: every provider version below the current one that no wrapped key uses any
   more is destroyed.
4. Log ``vault.key_rotated`` (idempotent per rotation) and mark the rotation completed.

Online: the data key itself never changes, only its wrapping, so envelopes and blobs are
untouched; a reader unwraps with whatever version the row names, and every old version
stays in the provider until no row names it. An interruption anywhere (crash, error,
``progress`` raising) leaves a consistent state; the next :meth:`KeyRotation.run`
resumes from step 2.

Caveat for the local keyfile: another process that opened the keyfile before the
rotation still holds the old versions in memory. The vault refuses to wrap a new key
under a version older than the newest rotation (``KeyProviderError``), but that process
cannot unwrap keys wrapped under the new version until it reopens the keyfile: rotate
with the server stopped, or from the server process. PKCS#11 tokens are shared live.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from audit.events import Actor, KeyRotatedPayload
from audit.service import AuditLog
from core.clock import Clock
from core.db import write_connection
from core.errors import ConflictError
from core.logging import get_logger
from identity.principal import SYSTEM
from vault import repository
from vault.datakeys import DataKeys
from vault.errors import KeyProviderError
from vault.keys import KeyProvider

__all__ = ["KeyRotation", "KeyStatus", "RotationProgress", "RotationReport", "key_status"]

log = get_logger(__name__)

RotationProgress = Callable[[int, int], None]
"""Called with (keys rewrapped in this run, keys that needed it when the run started)."""


@dataclass(frozen=True)
class RotationReport:
    from_version: int
    to_version: int
    rewrapped: int  # over the whole rotation, earlier interrupted runs included
    retired: list[int] = field(default_factory=list)
    resumed: bool = False

    def to_json(self) -> dict[str, object]:
        return {"from_version": self.from_version, "to_version": self.to_version, "rewrapped": self.rewrapped,
                "retired": self.retired, "resumed": self.resumed}


@dataclass(frozen=True)
class KeyStatus:
    """The KEK versions of the provider, how many data keys each wraps, and a rotation in progress."""

    current_version: int
    provider_versions: list[int]
    keys_by_version: dict[int, int]  # KEK version -> wrapped data keys (versions no key uses are absent)
    running: repository.RotationRow | None = None

    def to_json(self) -> dict[str, object]:
        running = None if self.running is None else {
            "from_version": self.running.from_version, "to_version": self.running.to_version,
            "rewrapped": self.running.rewrapped,
            "remaining": sum(n for v, n in self.keys_by_version.items() if v != self.running.to_version)}
        return {"current_version": self.current_version, "provider_versions": self.provider_versions,
                "keys_by_version": {str(v): n for v, n in sorted(self.keys_by_version.items())},
                "rotation_running": running}


def key_status(engine: Engine, provider: KeyProvider) -> KeyStatus:
    """What :class:`KeyStatus` says, read from the database and the provider (no key is used)."""
    with engine.connect() as conn:
        counts = repository.count_keys_by_kek_version(conn)
        running = repository.running_rotation(conn)
    return KeyStatus(provider.current_version(), sorted(provider.versions()), counts, running)


class KeyRotation:
    """One run of a (possibly resumed) KEK rotation."""

    def __init__(self, engine: Engine, keys: DataKeys, audit: AuditLog, clock: Clock,
                 actor: Actor | None = None) -> None:
        self.engine = engine
        self.keys = keys
        self.provider = keys.provider
        self.audit = audit
        self.clock = clock
        self.actor = actor or SYSTEM.actor

    def run(self, progress: RotationProgress | None = None, *, batch_size: int = 200) -> RotationReport:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        rotation, resumed = self._start()
        target = self.provider.current_version()
        with self.engine.connect() as conn:
            total = repository.count_keys_not_at(conn, target)
        log.info("vault_rotation_started", to_version=target, keys=total, resumed=resumed)
        done = 0
        if progress is not None:
            progress(done, total)
        previous: list[tuple[str, int, int]] = []
        while True:
            with self.engine.connect() as conn:
                batch = repository.keys_not_at(conn, target, batch_size)
            if not batch:
                break
            seen = [(row.subject_token, row.dek_version, row.kek_version) for row in batch]
            if seen == previous:  # nothing of the last batch could be stored, and it is still there
                raise ConflictError("data keys could not be rewrapped; is another rotation running?")
            previous = seen
            rewrapped = [(row, *self.keys.rewrap(row)) for row in batch]
            if any(version != target for _, version, _ in rewrapped):
                raise KeyProviderError("the current KEK version changed during the rotation; run it again")
            now = self.clock.now()
            with write_connection(self.engine) as conn:
                stored = repository.rewrap_keys(conn, rewrapped, now)
                repository.count_rewrapped(conn, rotation.to_version, stored)
            done += stored
            if progress is not None:
                progress(done, total)
        retired = self._retire(target)
        with self.engine.connect() as conn:
            count = repository.get_rotation(conn, rotation.to_version).rewrapped
        self._log(rotation.from_version, target, count, rotation.to_version)
        with write_connection(self.engine) as conn:
            repository.complete_rotation(conn, rotation.to_version, self.clock.now())
        log.info("vault_rotation_completed", to_version=target, rewrapped=count, retired=retired)
        return RotationReport(rotation.from_version, target, count, retired, resumed)

    def _start(self) -> tuple[repository.RotationRow, bool]:
        with self.engine.connect() as conn:
            running = repository.running_rotation(conn)
        if running is not None:
            return running, True
        from_version = self.provider.current_version()
        to_version = self.provider.create_version()
        try:
            with write_connection(self.engine) as conn:
                repository.insert_rotation(conn, to_version=to_version, from_version=from_version,
                                           now=self.clock.now())
        except IntegrityError:
            raise ConflictError("another key rotation is running; let it finish") from None
        return repository.RotationRow(to_version, from_version, "running", 0), False

    def _retire(self, current: int) -> list[int]:
        with self.engine.connect() as conn:
            in_use = repository.kek_versions_in_use(conn)
        retired = [v for v in self.provider.versions() if v < current and v not in in_use]
        for version in retired:
            self.provider.retire_version(version)
        return retired

    def _log(self, from_version: int, to_version: int, rewrapped: int, rotation_id: int) -> None:
        payload = KeyRotatedPayload(from_version=from_version, to_version=to_version, rewrapped=rewrapped)
        try:
            self.audit.record("vault.key_rotated", actor=self.actor, payload=payload,
                              idempotency_key=f"vault.key_rotated:{rotation_id}")
        except ConflictError:
            # An entry for this rotation is already in the log (an earlier run logged, then stopped).
            log.info("vault_rotation_already_logged", to_version=to_version)
