"""Group commit: concurrent appenders share one transaction per batch.

Appenders hand :class:`PreparedEntry` objects (leaf input and hash computed outside any
lock) to the sequencer thread and wait. The thread takes what has queued up (at most
``batch_max``), and in ONE write transaction: takes the log lock (``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL, so several processes can append), reads the tree
size and the O(log n) frontier nodes, assigns consecutive indexes, inserts the entries and
every newly completed Merkle node, and commits. Only then are the waiting callers told
their index: an acknowledged entry is durable.

Invariants: indexes are a gap-free total order; an entry, the nodes it completes and its
side rows (:class:`SideRow`, e.g. a contact's index row) are in the same transaction; a
failed batch acknowledges nobody (callers may retry, and their idempotency keys make the
retry safe). A side row with a ``guard`` (a unique key of its table ending in a number, such as a
subject's next contact number) is an optimistic lock: an entry whose guard is taken, in the
table or earlier in the batch, is refused with :class:`StaleDecisionError`, and so is every
later guarded entry of the batch on the same prefix once one of them was not newly appended
(a chain never lands after a hole); their callers decide again on fresh data.
"""

from __future__ import annotations

import base64
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert, select, tuple_
from sqlalchemy.exc import IntegrityError

from audit import merkle, repository
from audit.events import AuditEvent
from core.db import write_connection
from core.errors import ConflictError
from core.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class SideRow:
    """A row of another table that must exist exactly when its entry does (an index of the log,
    such as a contact's row): inserted in the entry's own transaction, with the entry's index in
    ``index_column``, and only when the entry is new (never for a retry that the idempotency key
    answers with the earlier entry)."""

    table: Table
    values: dict[str, Any]
    index_column: str = "log_index"
    guard: tuple[str, ...] = ()
    """Columns of a unique key of ``table`` (in ``values``), the last a number the caller took as
    the next one after what it read (a subject's next contact number). Taken already, or earlier
    in the batch, the entry is refused with :class:`StaleDecisionError` (see the module docs)."""

    def guard_key(self) -> tuple[Any, ...] | None:
        return tuple(self.values[c] for c in self.guard) if self.guard else None


class StaleDecisionError(ConflictError):
    """The entry was decided on data that changed before it could be committed (its side row's
    guard was taken); nothing of it was written. Decide again on fresh data and append again."""


@dataclass(frozen=True)
class PreparedEntry:
    """An event ready to append: its canonical bytes and leaf hash are computed."""

    event: AuditEvent
    leaf_input: bytes
    leaf_hash: bytes
    request_hash: bytes | None
    idempotency_key: str | None = None
    side: SideRow | None = None

    @classmethod
    def of(cls, event: AuditEvent, idempotency_key: str | None = None, side: SideRow | None = None) -> PreparedEntry:
        data = event.canonical()
        fingerprint = event.request_fingerprint() if idempotency_key else None
        return cls(event, data, merkle.leaf_hash(data), fingerprint, idempotency_key, side)


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


_Outcome = list["Receipt | Exception"]
_Group = tuple[list[PreparedEntry], "Future[_Outcome]"]
LINGER_SECONDS = 0.002  # longest wait for companions once appends are seen to arrive together


class Sequencer:
    """Assigns indexes in batches on a background thread; one per process and database.

    Each ``append`` call is one group, with one future: its entries are committed together,
    in one transaction (a group is never split), and share it with other callers' groups
    up to ``batch_max`` entries.
    """

    def __init__(self, engine: Engine, *, batch_max: int = 1000,
                 on_commit: Callable[[int], None] | None = None) -> None:
        self._engine = engine
        self._batch_max = batch_max
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Group | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._frontier = Frontier()  # touched by the sequencer thread only

    def append(self, entries: Sequence[PreparedEntry], timeout: float | None = 120.0) -> list[Receipt]:
        """Queue ``entries`` and wait until they are committed; receipts in the same order.

        A refused entry (an idempotency key reused for another event, an event id already
        in the log) raises its error; the group's other entries are committed all the same.
        """
        outcome = self.append_outcomes(entries, timeout)
        for result in outcome:
            if isinstance(result, Exception):
                raise result
        return outcome  # type: ignore[return-value]  # no exception left: all receipts

    def append_outcomes(self, entries: Sequence[PreparedEntry], timeout: float | None = 120.0) -> _Outcome:
        """Like :meth:`append`, but a refused entry is its error in its place (nothing raised for it);
        a failed batch still raises."""
        if self._closed:
            raise RuntimeError("sequencer is closed")
        if not entries:
            return []
        self._ensure_thread()
        fut: Future[_Outcome] = Future()
        self._queue.put((list(entries), fut))
        return fut.result(timeout=timeout)

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
        last_groups = 1
        pending: _Group | None = None
        while True:
            first = pending if pending is not None else self._queue.get()
            pending = None
            if first is None:
                return
            groups = [first]
            count = len(first[0])
            stop = False
            # Linger briefly for more groups only when the last batch showed concurrent
            # appenders: a lone appender pays no extra latency, a crowd shares one commit.
            deadline = time.monotonic() + (LINGER_SECONDS if last_groups > 1 else 0.0)
            while count < self._batch_max:
                remaining = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                if count + len(item[0]) > self._batch_max:
                    pending = item  # starts the next batch; groups are never split
                    break
                groups.append(item)
                count += len(item[0])
            self._commit_and_resolve(groups)
            last_groups = len(groups)
            if stop:
                if pending is not None:
                    self._commit_and_resolve([pending])
                return

    def _commit_and_resolve(self, groups: list[_Group]) -> None:
        entries = [entry for group, _ in groups for entry in group]
        try:
            results, size = commit_batch(self._engine, entries, self._frontier)
        except Exception as exc:  # noqa: BLE001 - every waiter learns the batch failed
            log.error("audit_batch_failed", entries=len(entries), error=type(exc).__name__)
            for _, fut in groups:
                fut.set_exception(exc)
            return
        if self._on_commit is not None:
            # Before the waiters are released, so that "a checkpoint every N entries" holds
            # for whoever appended the N-th entry. The batch itself is already durable.
            try:
                self._on_commit(size)
            except Exception as exc:  # noqa: BLE001 - a checkpoint failure must not fail the appends
                log.error("audit_on_commit_failed", error=type(exc).__name__)
        start = 0
        for group, fut in groups:
            fut.set_result(results[start:start + len(group)])
            start += len(group)


class Frontier:
    """The root nodes of the tree as this process last committed it, keyed by its size.

    Valid exactly while the log still has that size (the log is append-only: another
    process's append changes the size, and the nodes are then read again).
    """

    def __init__(self) -> None:
        self._size = -1
        self._nodes: dict[merkle.NodeKey, bytes] = {}

    def get(self, size: int) -> dict[merkle.NodeKey, bytes] | None:
        return self._nodes if size == self._size else None

    def put(self, size: int, nodes: dict[merkle.NodeKey, bytes]) -> None:
        self._size, self._nodes = size, {key: nodes[key] for key in merkle.root_keys(size)}


def commit_batch(engine: Engine, batch: Sequence[PreparedEntry],
                 frontier: Frontier | None = None) -> tuple[list[Receipt | Exception], int]:
    """Append ``batch`` in one transaction; return per-entry receipts (or refusals) and the new size.

    Optimistic: the batch is inserted without looking anything up first, and the unique
    indexes on event ids and idempotency keys refuse a repeat. Only then (rare: a retried
    append, a reused id) is the transaction rolled back and the batch planned entry by entry.
    """
    frontier = frontier or Frontier()
    try:
        return _commit(engine, batch, frontier, careful=False)
    except IntegrityError:
        return _commit(engine, batch, frontier, careful=True)


def _commit(engine: Engine, batch: Sequence[PreparedEntry], frontier: Frontier, *,
            careful: bool) -> tuple[list[Receipt | Exception], int]:
    known: dict[merkle.NodeKey, bytes] | None = None
    with write_connection(engine) as conn:
        repository.lock_log(conn)
        size = repository.tree_size(conn)
        if careful:
            plan, accepted = _plan(conn, batch, size)
        else:
            plan, accepted = None, list(batch)
        if accepted:
            roots = frontier.get(size)
            if roots is None:
                roots = repository.get_nodes(conn, merkle.root_keys(size))
            new_nodes = merkle.append_leaves(size, roots, [p.leaf_hash for p in accepted])
            repository.insert_entries(conn, [_row(size + i, p) for i, p in enumerate(accepted)])
            repository.insert_nodes(conn, new_nodes)
            _insert_side_rows(conn, size, accepted)
            known = {**roots, **new_nodes}
    new_size = size + len(accepted)
    if known is not None:  # committed: the new frontier is the log's
        frontier.put(new_size, known)
    if plan is None:
        return [Receipt(size + i, p.event.id, p.leaf_hash, new_size) for i, p in enumerate(accepted)], new_size
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


_Plan = list[tuple[str, "int | Receipt | Exception"]]


def _plan(conn: Connection, batch: Sequence[PreparedEntry], size: int) -> tuple[_Plan, list[PreparedEntry]]:
    """Decide per entry: ("new", index), ("again", index) for a retry inside this batch,
    ("stored", receipt) for a retry of an earlier batch, or ("refused", error)."""
    keys = [p.idempotency_key for p in batch if p.idempotency_key]
    existing = repository.find_idempotent(conn, keys) if keys else {}
    taken_ids = repository.taken_event_ids(conn, [p.event.id for p in batch])
    taken_guards = _taken_guards(conn, batch)
    broken: set[tuple[Any, ...]] = set()  # guard prefixes whose chain has an entry that is not new
    plan: _Plan = []
    accepted: list[PreparedEntry] = []
    in_batch: dict[str, tuple[PreparedEntry, int]] = {}
    for p in batch:
        key = p.idempotency_key
        guard = _guard_of(p)
        if key and key in existing:
            stored = existing[key]
            if stored.request_hash != p.request_hash:
                plan.append(("refused", _idempotency_conflict(key)))
            else:
                plan.append(("stored", Receipt(stored.idx, stored.event_id, stored.leaf_hash, -1, duplicate=True)))
        elif key and key in in_batch:
            first, index = in_batch[key]
            if first.request_hash != p.request_hash:
                plan.append(("refused", _idempotency_conflict(key)))
            else:
                plan.append(("again", index))
        elif guard is not None and (guard in taken_guards or guard[:-1] in broken):
            plan.append(("refused", StaleDecisionError(
                "the data this entry was decided on changed before it was committed; decide again")))
        elif p.event.id in taken_ids:
            plan.append(("refused", ConflictError(f"event id {p.event.id} is already in the log",
                                                  event_id=p.event.id)))
        else:
            taken_ids.add(p.event.id)
            if guard is not None:
                taken_guards.add(guard)
            index = size + len(accepted)
            if key:
                in_batch[key] = (p, index)
            plan.append(("new", index))
            accepted.append(p)
        if guard is not None and plan[-1][0] != "new":
            # Its number stays free: a later number of the chain must not land after a hole.
            broken.add(guard[:-1])
    return plan, accepted


def _guard_of(p: PreparedEntry) -> tuple[Any, ...] | None:
    """The entry's guard, with its table's name first (guards of two tables never meet)."""
    if p.side is None or not p.side.guard:
        return None
    key = p.side.guard_key()
    return None if key is None else (p.side.table.name, *key)


def _taken_guards(conn: Connection, batch: Sequence[PreparedEntry]) -> set[tuple[Any, ...]]:
    """The guards of ``batch`` already in their tables."""
    wanted: dict[tuple[str, tuple[str, ...]], tuple[Table, list[tuple[Any, ...]]]] = {}
    for p in batch:
        if p.side is not None and p.side.guard:
            key = p.side.guard_key()
            assert key is not None  # noqa: S101 - a guard names columns
            wanted.setdefault((p.side.table.name, p.side.guard), (p.side.table, []))[1].append(key)
    taken: set[tuple[Any, ...]] = set()
    for (name, columns), (table, keys) in wanted.items():
        cols = [table.c[c] for c in columns]
        for i in range(0, len(keys), 400):
            for row in conn.execute(select(*cols).where(tuple_(*cols).in_(keys[i:i + 400]))):
                taken.add((name, *row))
    return taken


def _insert_side_rows(conn: Connection, size: int, accepted: Sequence[PreparedEntry]) -> None:
    """The side rows of the entries just inserted, one executemany per table."""
    by_table: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
    for i, p in enumerate(accepted):
        if p.side is not None:
            rows = by_table.setdefault(p.side.table.name, (p.side.table, []))[1]
            rows.append({**p.side.values, p.side.index_column: size + i})
    for table, rows in by_table.values():
        conn.execute(insert(table), rows)


def _idempotency_conflict(key: str) -> ConflictError:
    return ConflictError("idempotency key was already used for a different event", idempotency_key=key)


def _row(index: int, p: PreparedEntry) -> tuple[object, ...]:
    """An ``audit_entries`` row, in :data:`repository.ENTRY_COLUMNS` order."""
    e = p.event
    return (index, e.id, p.idempotency_key, p.request_hash, e.type, e.subject, e.actor.id, e.actor.kind._value_,
            e.time, p.leaf_input, p.leaf_hash)
