"""Group commit: concurrent appenders share one transaction per batch.

Appenders hand :class:`PreparedEntry` objects (leaf input and hash computed outside any
lock) to the sequencer thread and wait. The thread takes what has queued up (at most
``batch_max``), and in ONE write transaction: takes the log lock (``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL, so several processes can append), reads the tree
size and the O(log n) frontier nodes, assigns consecutive indexes, inserts the entries and
every newly completed Merkle node, and commits. Only then are the waiting callers told
their index: an acknowledged entry is durable.

Invariants: indexes are a gap-free total order; an entry and the nodes it completes are in
the same transaction; a failed batch acknowledges nobody (callers may retry, and their
idempotency keys make the retry safe).
"""

from __future__ import annotations

import base64
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import Engine

from audit import merkle, repository
from audit.events import AuditEvent
from core.db import write_connection
from core.errors import ConflictError
from core.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class PreparedEntry:
    """An event ready to append: its canonical bytes and leaf hash are computed."""

    event: AuditEvent
    leaf_input: bytes
    leaf_hash: bytes
    request_hash: bytes | None
    idempotency_key: str | None = None
    caller_chose_id: bool = False  # a random UUID of ours needs no duplicate check

    @classmethod
    def of(cls, event: AuditEvent, idempotency_key: str | None = None, *,
           caller_chose_id: bool = False) -> PreparedEntry:
        data = event.canonical()
        fingerprint = event.request_fingerprint() if idempotency_key else None
        return cls(event, data, merkle.leaf_hash(data), fingerprint, idempotency_key, caller_chose_id)


@dataclass(frozen=True)
class Receipt:
    """What an appender gets back: where its entry is in the log."""

    index: int
    event_id: str
    leaf_hash: bytes
    tree_size: int
    duplicate: bool = False

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "event_id": self.event_id, "leaf_hash": base64.b64encode(self.leaf_hash).decode(),
                "tree_size": self.tree_size, "duplicate": self.duplicate}


_Item = tuple[PreparedEntry, "Future[Receipt]"]
LINGER_SECONDS = 0.002  # longest wait for companions once appends are seen to arrive together


class Sequencer:
    """Assigns indexes in batches on a background thread; one per process and database."""

    def __init__(self, engine: Engine, *, batch_max: int = 1000,
                 on_commit: Callable[[int], None] | None = None) -> None:
        self._engine = engine
        self._batch_max = batch_max
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    def append(self, entries: Sequence[PreparedEntry], timeout: float | None = 120.0) -> list[Receipt]:
        """Queue ``entries`` and wait until they are committed; receipts in the same order."""
        if self._closed:
            raise RuntimeError("sequencer is closed")
        self._ensure_thread()
        futures: list[Future[Receipt]] = []
        for entry in entries:
            fut: Future[Receipt] = Future()
            self._queue.put((entry, fut))
            futures.append(fut)
        return [f.result(timeout=timeout) for f in futures]

    def close(self) -> None:
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tarcza-audit-sequencer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        last_batch = 1
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            # Linger briefly for more entries only when the last batch showed concurrent
            # appenders: a lone appender pays no extra latency, a crowd shares one commit.
            deadline = time.monotonic() + (LINGER_SECONDS if last_batch > 1 else 0.0)
            while len(batch) < self._batch_max:
                remaining = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit_and_resolve(batch)
            last_batch = len(batch)
            if stop:
                return

    def _commit_and_resolve(self, batch: list[_Item]) -> None:
        try:
            results, size = commit_batch(self._engine, [entry for entry, _ in batch])
        except Exception as exc:  # noqa: BLE001 - every waiter learns the batch failed
            log.error("audit_batch_failed", entries=len(batch), error=type(exc).__name__)
            for _, fut in batch:
                fut.set_exception(exc)
            return
        if self._on_commit is not None:
            # Before the waiters are released, so that "a checkpoint every N entries" holds
            # for whoever appended the N-th entry. The batch itself is already durable.
            try:
                self._on_commit(size)
            except Exception as exc:  # noqa: BLE001 - a checkpoint failure must not fail the appends
                log.error("audit_on_commit_failed", error=type(exc).__name__)
        for (_, fut), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)


def commit_batch(engine: Engine, batch: Sequence[PreparedEntry]) -> tuple[list[Receipt | Exception], int]:
    """Append ``batch`` in one transaction; return per-entry receipts (or refusals) and the new size."""
    with write_connection(engine) as conn:
        repository.lock_log(conn)
        keys = [p.idempotency_key for p in batch if p.idempotency_key]
        existing = repository.find_idempotent(conn, keys) if keys else {}
        taken_ids = repository.taken_event_ids(conn, [p.event.id for p in batch if p.caller_chose_id])
        size = repository.tree_size(conn)
        # Per entry: ("new", index), ("again", index) for a retry inside this batch,
        # ("stored", receipt) for a retry of an earlier batch, or ("refused", error).
        plan: list[tuple[str, int | Receipt | Exception]] = []
        accepted: list[PreparedEntry] = []
        in_batch: dict[str, PreparedEntry] = {}
        for p in batch:
            key = p.idempotency_key
            if key and key in existing:
                stored = existing[key]
                if stored.request_hash != p.request_hash:
                    plan.append(("refused", _idempotency_conflict(key)))
                else:
                    plan.append(("stored", Receipt(stored.idx, stored.event_id, stored.leaf_hash, -1, duplicate=True)))
            elif key and key in in_batch:
                first = in_batch[key]
                if first.request_hash != p.request_hash:
                    plan.append(("refused", _idempotency_conflict(key)))
                else:
                    plan.append(("again", size + accepted.index(first)))
            elif p.event.id in taken_ids:
                plan.append(("refused", ConflictError(f"event id {p.event.id} is already in the log",
                                                      event_id=p.event.id)))
            else:
                taken_ids.add(p.event.id)
                if key:
                    in_batch[key] = p
                plan.append(("new", size + len(accepted)))
                accepted.append(p)
        if accepted:
            frontier = repository.get_nodes(conn, merkle.root_keys(size))
            new_nodes = merkle.append_leaves(size, frontier, [p.leaf_hash for p in accepted])
            repository.insert_entries(conn, [_row(size + i, p) for i, p in enumerate(accepted)])
            repository.insert_nodes(conn, new_nodes)
    new_size = size + len(accepted)
    out: list[Receipt | Exception] = []
    for kind, value in plan:
        if isinstance(value, Exception):
            out.append(value)
        elif isinstance(value, Receipt):
            out.append(Receipt(value.index, value.event_id, value.leaf_hash, new_size, duplicate=True))
        else:
            entry = accepted[value - size]
            out.append(Receipt(value, entry.event.id, entry.leaf_hash, new_size, duplicate=kind == "again"))
    return out, new_size


def _idempotency_conflict(key: str) -> ConflictError:
    return ConflictError("idempotency key was already used for a different event", idempotency_key=key)


def _row(index: int, p: PreparedEntry) -> dict[str, object]:
    e = p.event
    return {
        "idx": index, "event_id": e.id, "idempotency_key": p.idempotency_key, "request_hash": p.request_hash,
        "event_type": e.type, "subject_token": e.subject, "actor_id": e.actor.id, "actor_kind": e.actor.kind.value,
        "occurred_at": e.time, "leaf_input": p.leaf_input, "leaf_hash": p.leaf_hash,
    }
