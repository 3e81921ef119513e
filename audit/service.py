"""The audit log service: append, checkpoints, proofs, queries and verification of the stored log.

Unlike other services, appends commit on their own (through the :class:`Sequencer`): an
entry must be durable before the caller goes on, whatever happens to the caller's own
transaction (a refused reveal is still logged). Everything else only reads.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from audit import cosignature_store, merkle, repository
from audit.checkpoint import Checkpoint, Signer, Verifier, open_checkpoint, time_line
from audit.errors import CheckpointError, ProofRangeError, TamperedLogError
from audit.events import Actor, AuditEvent, Payload, build_event, parse_leaf_input
from audit.repository import EntryFilter
from audit.sequencer import PreparedEntry, Receipt, Sequencer, SideRow
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection, write_connection
from core.errors import ConfigurationError, NotFoundError
from core.files import create_private_file, read_private_file
from core.logging import get_logger

log = get_logger(__name__)
Progress = Callable[[int, int], None]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class CheckpointInfo:
    tree_size: int
    root_hash: bytes
    note: str
    issued_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"tree_size": self.tree_size, "root_hash": b64(self.root_hash), "note": self.note,
                "issued_at": self.issued_at.isoformat()}


@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    leaf_hash: bytes
    proof: list[bytes]
    root_hash: bytes
    checkpoint: str | None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "tree_size": self.tree_size, "leaf_hash": b64(self.leaf_hash),
                "proof": [b64(p) for p in self.proof], "root_hash": b64(self.root_hash),
                "checkpoint": self.checkpoint}


@dataclass(frozen=True)
class ConsistencyProof:
    size1: int
    size2: int
    root1: bytes
    root2: bytes
    proof: list[bytes]

    def to_json(self) -> dict[str, Any]:
        return {"size1": self.size1, "size2": self.size2, "root1": b64(self.root1), "root2": b64(self.root2),
                "proof": [b64(p) for p in self.proof]}


@dataclass(frozen=True)
class StoredEntry:
    index: int
    event: dict[str, Any]
    leaf_hash: bytes

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "leaf_hash": b64(self.leaf_hash), "event": self.event}


@dataclass(frozen=True)
class Page:
    items: list[StoredEntry]
    next_cursor: str | None


@dataclass(frozen=True)
class DbVerifyReport:
    entries: int
    nodes: int
    checkpoints: int
    root_hash: bytes

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "entries": self.entries, "nodes": self.nodes, "checkpoints": self.checkpoints,
                "root_hash": b64(self.root_hash)}


def create_log_signer(path: Path, origin: str) -> Signer:
    """Generate the Ed25519 log key into ``path`` (0600, never overwritten)."""
    signer = Signer.generate(origin)
    if not create_private_file(path, signer.to_string() + "\n"):
        raise ConfigurationError(f"audit log key {path} already exists; it is never overwritten")
    return signer


def load_log_signer(path: Path) -> Signer:
    """Read the log key; refuse a missing file or one readable by others."""
    text = read_private_file(path, "audit log key")
    try:
        return Signer.from_string(text)
    except CheckpointError:
        raise ConfigurationError(f"audit log key {path} is not a signed-note private key") from None


def encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"i:{index}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        if kind != "i":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        from core.errors import InvalidInputError

        raise InvalidInputError("cursor is not one this server issued") from None


class AuditLog:
    """One process's handle on the audit log."""

    def __init__(
        self, engine: Engine, signer: Signer, *, clock: Clock = SYSTEM_CLOCK, batch_max: int = 1000,
        checkpoint_every_entries: int = 1000, checkpoint_every_seconds: float = 60.0,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.clock = clock
        self.checkpoint_every_entries = checkpoint_every_entries
        self.checkpoint_every_seconds = checkpoint_every_seconds
        self.sequencer = Sequencer(engine, batch_max=batch_max, on_commit=self._after_commit)
        self._last_checkpoint_size: int | None = None
        self._checkpoint_lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.checkpoint_listeners: list[Callable[[CheckpointInfo], None]] = []
        """Called after each new checkpoint (e.g. to wake the witness client); must not block."""

    @property
    def origin(self) -> str:
        return self.signer.name

    def verifier(self) -> Verifier:
        return self.signer.verifier()

    # -- appending ---------------------------------------------------------------------------------

    def record(self, event_type: str, *, actor: Actor, payload: dict[str, Any] | Payload,
               subject: str | None = None, idempotency_key: str | None = None,
               event_id: str | None = None) -> Receipt:
        """Build an event from the catalogue and append it; durable when this returns."""
        event = build_event(event_type, actor=actor, time=self.clock.now(), payload=payload, subject=subject,
                            event_id=event_id)
        entry = PreparedEntry.of(event, idempotency_key)
        return self.sequencer.append([entry])[0]

    def append(self, event: AuditEvent, *, idempotency_key: str | None = None, side: SideRow | None = None) -> Receipt:
        """Append a built event (whose id may be the caller's: it is checked for reuse); ``side``
        is a row committed with the entry when the entry is new (see :class:`SideRow`)."""
        return self.sequencer.append([PreparedEntry.of(event, idempotency_key, side)])[0]

    def append_many(self, events: Sequence[tuple[AuditEvent, str | None]],
                    sides: Sequence[SideRow | None] | None = None) -> list[Receipt]:
        """Append several events (one group: committed together); they share commits with everyone else's."""
        if sides is not None and len(sides) != len(events):
            raise ValueError("one side row (or None) per event")
        return self.sequencer.append([PreparedEntry.of(e, k, sides[i] if sides is not None else None)
                                      for i, (e, k) in enumerate(events)])

    def append_group(self, events: Sequence[tuple[AuditEvent, str | None, SideRow | None]],
                     ) -> list[Receipt | Exception]:
        """Append several events as one group; per event its receipt or the error that refused it
        (a reused idempotency key, a taken event id), the others committed all the same."""
        return self.sequencer.append_outcomes([PreparedEntry.of(e, k, side) for e, k, side in events])

    def known_idempotency_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` earlier appends used.

        For a caller that re-runs a job whose events it cannot rebuild byte for byte (their
        sealed parts change with every seal): it skips what is logged instead of retrying it.
        """
        with read_connection(self.engine) as conn:
            return set(repository.find_idempotent(conn, list(keys)))

    def receipts_for_keys(self, keys: Sequence[str]) -> dict[str, Receipt]:
        """The receipts of the earlier appends that used ``keys`` (marked duplicate), by key."""
        with read_connection(self.engine) as conn:
            found = repository.find_idempotent(conn, list(keys))
            size = repository.tree_size(conn) if found else 0
        return {key: Receipt(r.idx, r.event_id, r.leaf_hash, size, duplicate=True) for key, r in found.items()}

    def size(self) -> int:
        with read_connection(self.engine) as conn:
            return repository.tree_size(conn)

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        self.sequencer.close()

    # -- checkpoints -------------------------------------------------------------------------------

    def issue_checkpoint(self) -> CheckpointInfo:
        """Sign the current tree head; an existing checkpoint at the same size is returned as is."""
        with self._checkpoint_lock, write_connection(self.engine) as conn:
            repository.lock_log(conn)
            size = repository.tree_size(conn)
            row = repository.checkpoint_at(conn, size)
            new = row is None
            if row is not None:
                info = _checkpoint_info(row)
            else:
                root = merkle.root_from_nodes(size, repository.get_nodes(conn, merkle.root_keys(size)))
                issued_at = self.clock.now()
                # The issue time as a C2SP extension line, so that an auditor can judge freshness (ADR 0019).
                note = self.signer.sign_checkpoint(
                    Checkpoint(self.origin, size, root, (time_line(int(issued_at.timestamp())),)))
                repository.insert_checkpoint(conn, tree_size=size, root_hash=root, note=note, issued_at=issued_at)
                info = CheckpointInfo(size, root, note, issued_at)
        self._last_checkpoint_size = info.tree_size
        log.info("audit_checkpoint", tree_size=info.tree_size)
        if new:
            for listener in self.checkpoint_listeners:
                listener(info)
        return info

    def latest_checkpoint(self) -> CheckpointInfo | None:
        """The newest checkpoint, its note carrying the witnesses' cosignature lines (ADR 0021)."""
        with read_connection(self.engine) as conn:
            row = repository.latest_checkpoint(conn)
            cosigned = cosignature_store.lines_for(conn, [] if row is None else [int(row.tree_size)])
        return None if row is None else _checkpoint_info(row, cosigned)

    def checkpoints(self, *, after_size: int | None = None, limit: int | None = None) -> list[CheckpointInfo]:
        """Checkpoints by tree size, oldest first: those of a larger tree than ``after_size``, at most ``limit``;
        notes with the witnesses' cosignature lines."""
        with read_connection(self.engine) as conn:
            rows = repository.list_checkpoints(conn, after_size=after_size, limit=limit)
            cosigned = cosignature_store.lines_for(conn, [int(r.tree_size) for r in rows])
        return [_checkpoint_info(r, cosigned) for r in rows]

    def maybe_checkpoint(self, *, size: int | None = None, timer: bool = False) -> CheckpointInfo | None:
        """Issue a checkpoint if N entries arrived since the last one (or, from the timer, any)."""
        if self._last_checkpoint_size is None:
            latest = self.latest_checkpoint()
            self._last_checkpoint_size = 0 if latest is None else latest.tree_size
        current = self.size() if size is None else size
        grown = current - self._last_checkpoint_size
        if grown >= self.checkpoint_every_entries or (timer and grown > 0):
            return self.issue_checkpoint()
        return None

    def _after_commit(self, size: int) -> None:
        self.maybe_checkpoint(size=size)

    def start_periodic_checkpoints(self) -> None:
        """Issue a checkpoint every ``checkpoint_every_seconds`` while the log grows."""
        if self._ticker is not None:
            return

        def tick() -> None:
            while not self._stop.wait(self.checkpoint_every_seconds):
                try:
                    self.maybe_checkpoint(timer=True)
                except Exception as exc:  # noqa: BLE001 - keep ticking; the log says why
                    log.error("audit_periodic_checkpoint_failed", error=type(exc).__name__)

        self._ticker = threading.Thread(target=tick, name="tarcza-audit-checkpoints", daemon=True)
        self._ticker.start()

    # -- proofs ------------------------------------------------------------------------------------

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of ``size`` (default: newest checkpoint covering it)."""
        with read_connection(self.engine) as conn:
            current, latest = repository.size_and_latest_checkpoint(conn)
            if size is None:
                size = int(latest.tree_size) if latest is not None and latest.tree_size > index else current
            if not 0 <= index < size <= current:
                raise ProofRangeError(f"no entry {index} in a tree of size {size} (log size {current})",
                                      index=index, size=size, log_size=current)
            keys = merkle.inclusion_proof_keys(index, size) | set(merkle.root_keys(size)) | {(0, index)}
            found = repository.get_nodes(conn, keys)
            if latest is not None and int(latest.tree_size) == size:
                note: str | None = str(latest.note)
            else:
                cp = repository.checkpoint_at(conn, size)
                note = None if cp is None else str(cp.note)
        return InclusionProof(index, size, found[(0, index)], merkle.inclusion_proof(index, size, found),
                              merkle.root_from_nodes(size, found), note)

    def consistency_proof(self, size1: int, size2: int | None = None) -> ConsistencyProof:
        """Proof that the tree of ``size1`` is a prefix of the tree of ``size2`` (default: newest checkpoint)."""
        with read_connection(self.engine) as conn:
            current = repository.tree_size(conn)
            if size2 is None:
                latest = repository.latest_checkpoint(conn)
                size2 = int(latest.tree_size) if latest is not None else current
            if not 0 <= size1 <= size2 <= current:
                raise ProofRangeError(f"cannot prove {size1} -> {size2} in a log of size {current}",
                                      size1=size1, size2=size2, log_size=current)
            keys = merkle.consistency_proof_keys(size1, size2) | set(merkle.root_keys(size1)) | set(
                merkle.root_keys(size2))
            found = repository.get_nodes(conn, keys)
        return ConsistencyProof(size1, size2, merkle.root_from_nodes(size1, found),
                                merkle.root_from_nodes(size2, found), merkle.consistency_proof(size1, size2, found))

    def inclusion_proofs(self, conn: Connection, indexes: Sequence[int], size: int) -> dict[int, list[bytes]]:
        """Proofs for many entries against one tree size, fetching each node once."""
        keys: set[merkle.NodeKey] = set()
        for index in indexes:
            keys |= merkle.inclusion_proof_keys(index, size)
        found = repository.get_nodes(conn, keys)
        return {index: merkle.inclusion_proof(index, size, found) for index in indexes}

    # -- reading -----------------------------------------------------------------------------------

    def get(self, index: int) -> StoredEntry:
        with read_connection(self.engine) as conn:
            row = repository.get_entry(conn, index)
        if row is None:
            raise NotFoundError(f"no audit entry {index}", index=index)
        return _stored(row)

    def query(self, flt: EntryFilter, *, cursor: str | None = None, limit: int = 100) -> Page:
        """Entries matching ``flt``, oldest first, ``limit`` at a time; pass ``next_cursor`` on."""
        after = decode_cursor(cursor) if cursor else None
        with read_connection(self.engine) as conn:
            rows = repository.query_entries(conn, flt, after=after, limit=limit + 1)
        items = [_stored(r) for r in rows[:limit]]
        return Page(items, encode_cursor(items[-1].index) if len(rows) > limit else None)

    # -- verifying the stored log ------------------------------------------------------------------

    def verify_database(self, progress: Progress | None = None, chunk: int = 5000) -> DbVerifyReport:
        """Recompute every leaf, node and checkpoint of the stored log; raise at the first disagreement."""
        verifier = self.verifier()
        with read_connection(self.engine) as conn:
            misfit = repository.first_value_of_another_type(conn)
            if misfit is not None:  # SQLite keeps any type a row is rewritten with; Tarcza writes only bytes
                raise TamperedLogError(f"{misfit.what} {misfit.position}: its {misfit.column} is stored as "
                                       f"{misfit.stored_as}, not as the bytes Tarcza writes: the row was rewritten "
                                       "outside Tarcza", index=misfit.position, what=misfit.kind)
            # Checkpoints first, then the size: the log may grow while it is verified (each
            # read sees the log as it is then), and every checkpoint read is then within it.
            cps = repository.list_checkpoints(conn)
            size = repository.tree_size(conn)
            stops = sorted({int(c.tree_size) for c in cps if 0 < c.tree_size <= size} | {size})
            roots: dict[int, bytes] = {0: merkle.empty_root()}
            frontier: dict[merkle.NodeKey, bytes] = {}
            done = 0
            rows = repository.iter_entries(conn, 0, size)
            for stop in stops:
                while done < stop:
                    end = min(done + chunk, stop)
                    batch = [next(rows) for _ in range(end - done)]
                    leaf_hashes = [_check_entry(done + i, row) for i, row in enumerate(batch)]
                    new = merkle.append_leaves(done, frontier, leaf_hashes)
                    _compare_nodes(conn, new)
                    known = {**frontier, **new}
                    done = end
                    frontier = {k: known[k] for k in merkle.root_keys(done)}
                    if progress:
                        progress(done, size)
                roots[stop] = merkle.root_from_nodes(stop, frontier) if stop else merkle.empty_root()
            expected_nodes = repository.stored_node_count(size)
            stored_nodes = repository.count_nodes(conn, size)
            if stored_nodes != expected_nodes:
                raise TamperedLogError(f"{stored_nodes} Merkle nodes stored, {expected_nodes} expected for "
                                       f"{size} entries", what="nodes")
            stray = repository.count_stray_nodes(conn)
            if stray:
                raise TamperedLogError(f"{stray} Merkle nodes stored for entries the log does not have",
                                       index=size, what="nodes")
            for cp in cps:
                _check_checkpoint(cp, roots, verifier, self.origin, size)
        return DbVerifyReport(size, expected_nodes, len(cps), roots[size])


def _checkpoint_info(row: Any, cosigned: dict[int, list[str]] | None = None) -> CheckpointInfo:
    """A stored checkpoint; with ``cosigned``, its note followed by its cosignature lines."""
    lines = "".join((cosigned or {}).get(int(row.tree_size), []))
    return CheckpointInfo(int(row.tree_size), bytes(row.root_hash), str(row.note) + lines, row.issued_at)


def _stored(row: Any) -> StoredEntry:
    return StoredEntry(int(row.idx), parse_leaf_input(bytes(row.leaf_input)), bytes(row.leaf_hash))


def _check_entry(expected_index: int, row: Any) -> bytes:
    index = int(row.idx)
    if index != expected_index:
        raise TamperedLogError(f"entry {expected_index} is missing (found {index} in its place)",
                               index=expected_index, what="entry")
    data = bytes(row.leaf_input)
    computed = merkle.leaf_hash(data)
    if computed != bytes(row.leaf_hash):
        raise TamperedLogError(
            f"entry {index}: stored leaf hash {bytes(row.leaf_hash).hex()} does not match the event "
            f"(computed {computed.hex()})", index=index, what="leaf")
    try:
        event = parse_leaf_input(data)
        columns = (row.event_id, row.event_type, row.subject_token, row.actor_id, row.actor_kind)
        recorded = (event["id"], event["type"], event.get("subject"), event["actor"]["id"], event["actor"]["kind"])
        if columns != recorded:
            raise ValueError("indexed columns differ from the event")
    except (ValueError, KeyError, TypeError) as exc:
        raise TamperedLogError(f"entry {index}: {exc}", index=index, what="event") from None
    return computed


def _compare_nodes(conn: Connection, computed: dict[merkle.NodeKey, bytes]) -> None:
    by_level: dict[int, list[int]] = {}
    for level, idx in computed:
        if level >= repository.STORED_FROM_LEVEL:
            by_level.setdefault(level, []).append(idx)
    for level in sorted(by_level):
        idxs = by_level[level]
        stored = repository.nodes_at_level(conn, level, min(idxs), max(idxs) + 1)
        for idx in sorted(idxs):
            if stored.get(idx) != computed[(level, idx)]:
                first = idx << level
                raise TamperedLogError(
                    f"Merkle node (level {level}, index {idx}) covering entries {first}..{((idx + 1) << level) - 1} "
                    f"is {'missing' if idx not in stored else 'altered'}", index=first, what="node")


def _check_checkpoint(cp: Any, roots: dict[int, bytes], verifier: Verifier, origin: str, size: int) -> None:
    cp_size = int(cp.tree_size)
    if cp_size > size:
        raise TamperedLogError(f"checkpoint at size {cp_size} is beyond the log's size {size}",
                               index=cp_size, what="checkpoint")
    try:
        signed = open_checkpoint(str(cp.note), verifier, origin=origin)
    except CheckpointError as exc:
        raise TamperedLogError(f"checkpoint at size {cp_size}: {exc.detail}", index=cp_size,
                               what="checkpoint") from None
    root = roots[cp_size]
    if signed.size != cp_size or signed.root_hash != root or bytes(cp.root_hash) != root:
        raise TamperedLogError(
            f"checkpoint at size {cp_size} does not match the log: signed size {signed.size}, signed root "
            f"{signed.root_hash.hex()}, stored root {bytes(cp.root_hash).hex()}, computed root {root.hex()}",
            index=cp_size, what="checkpoint")


def iter_chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
