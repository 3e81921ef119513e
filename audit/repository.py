"""The only place that queries the audit tables. Insert and select only: there is no update.

Every function takes a SQLAlchemy ``Connection`` whose transaction belongs to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, DateTime, Row, Select, Table, insert, select, text

from audit import merkle
from audit.merkle import NodeKey
from audit.models import AuditCheckpoint, AuditEntry, AuditNode
from core.db import bulk_insert

entries = cast(Table, AuditEntry.__table__)
nodes = cast(Table, AuditNode.__table__)
checkpoints = cast(Table, AuditCheckpoint.__table__)

ADVISORY_LOCK_KEY = 0x7A72_6361_0001  # "tarcza" sequencer lock (PostgreSQL advisory lock id)
_IN_CHUNK = 400


def lock_log(conn: Connection) -> None:
    """Take the log's writer lock for this transaction (PostgreSQL advisory lock).

    On SQLite the caller's ``BEGIN IMMEDIATE`` already serialises writers.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})


def tree_size(conn: Connection) -> int:
    value = conn.exec_driver_sql("SELECT max(idx) FROM audit_entries").scalar()
    return 0 if value is None else int(value) + 1


STORED_FROM_LEVEL = 4
"""The lowest level of ``audit_nodes``: nodes of levels 1 to 3 are not stored but hashed from
their leaves when read (a proof reads at most 31 leaf hashes more), which cuts node rows sixteenfold
on the append path (ADR 0006). Any proof still costs one round trip and O(log n) rows."""

_PG_NODES = text(
    "SELECT 0 AS level, idx, leaf_hash AS hash FROM audit_entries WHERE idx = ANY(:leaves) UNION ALL "
    "SELECT n.level, n.idx, n.hash FROM audit_nodes n "
    "JOIN unnest(CAST(:levels AS smallint[]), CAST(:idxs AS bigint[])) AS k(level, idx) "
    "ON n.level = k.level AND n.idx = k.idx"
)


def stored_node_count(size: int) -> int:
    """How many rows ``audit_nodes`` holds for a log of ``size`` entries."""
    return sum(size >> level for level in range(STORED_FROM_LEVEL, max(size, 1).bit_length() + 1))


def get_nodes(conn: Connection, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
    """Perfect-subtree hashes in one round trip: level 0 from the leaf hashes, levels below
    :data:`STORED_FROM_LEVEL` hashed here from their (at most 8) leaves, the rest stored.

    A key whose leaves are not all in the log is left out of the answer, as a missing
    stored node is.
    """
    wanted = set(keys)
    derived = sorted(k for k in wanted if 0 < k[0] < STORED_FROM_LEVEL)
    fetch = (wanted - set(derived)) | {(0, leaf) for level, idx in derived
                                       for leaf in range(idx << level, (idx + 1) << level)}
    found = _fetch_nodes(conn, fetch)
    for level, idx in derived:
        try:
            leaves = [found[(0, leaf)] for leaf in range(idx << level, (idx + 1) << level)]
        except KeyError:
            continue
        found[(level, idx)] = merkle.root_from_leaf_hashes(leaves)
    return found


def _fetch_nodes(conn: Connection, keys: set[NodeKey]) -> dict[NodeKey, bytes]:
    """Stored hashes (level 0 from the leaf hashes) in one round trip.

    PostgreSQL gets the keys as arrays; SQLite a statement of OR'ed primary-key lookups.
    Both answer with index probes, whatever the number of levels involved.
    """
    wanted = sorted(keys)
    found: dict[NodeKey, bytes] = {}
    if conn.dialect.name == "postgresql":
        inner = [k for k in wanted if k[0] > 0]
        rows = conn.execute(_PG_NODES, {"leaves": [k[1] for k in wanted if k[0] == 0],
                                        "levels": [k[0] for k in inner], "idxs": [k[1] for k in inner]})
        return {(int(level), int(idx)): bytes(h) for level, idx, h in rows}
    for i in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[i:i + _IN_CHUNK]
        leaves = [idx for level, idx in chunk if level == 0]
        pairs = [value for key in chunk if key[0] > 0 for value in key]  # level, idx, level, idx, ...
        parts = []
        if leaves:  # statements of constant text and "?" marks only, sent straight to the driver
            parts.append("SELECT 0 AS level, idx, leaf_hash AS hash FROM audit_entries WHERE "  # noqa: S608
                         + " OR ".join(["idx = ?"] * len(leaves)))
        if pairs:
            parts.append("SELECT level, idx, hash FROM audit_nodes WHERE "  # noqa: S608
                         + " OR ".join(["(level = ? AND idx = ?)"] * (len(pairs) // 2)))
        for level, idx, node_hash in conn.exec_driver_sql(" UNION ALL ".join(parts), (*leaves, *pairs)):
            found[(int(level), int(idx))] = bytes(node_hash)
    return found


_SIZE_AND_LATEST = text("SELECT (SELECT max(idx) FROM audit_entries) AS max_idx, tree_size, root_hash, note, issued_at "
                        "FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1")


def size_and_latest_checkpoint(conn: Connection) -> tuple[int, Row[Any] | None]:
    """The tree size and the newest checkpoint, in one round trip when a checkpoint exists."""
    row = conn.execute(_SIZE_AND_LATEST).first()
    if row is None:
        return tree_size(conn), None
    return (-1 if row.max_idx is None else int(row.max_idx)) + 1, row


@dataclass(frozen=True)
class StoredReceipt:
    idx: int
    event_id: str
    leaf_hash: bytes
    request_hash: bytes | None


def find_idempotent(conn: Connection, keys: Sequence[str]) -> dict[str, StoredReceipt]:
    out: dict[str, StoredReceipt] = {}
    for i in range(0, len(keys), _IN_CHUNK):
        rows = conn.execute(select(entries.c.idempotency_key, entries.c.idx, entries.c.event_id, entries.c.leaf_hash,
                                   entries.c.request_hash).where(entries.c.idempotency_key.in_(keys[i:i + _IN_CHUNK])))
        for key, idx, event_id, leaf_hash, request_hash in rows:
            out[str(key)] = StoredReceipt(int(idx), str(event_id), bytes(leaf_hash),
                                          None if request_hash is None else bytes(request_hash))
    return out


ENTRY_COLUMNS = ("idx", "event_id", "idempotency_key", "request_hash", "event_type", "subject_token", "actor_id",
                  "actor_kind", "occurred_at", "leaf_input", "leaf_hash")
_TIME_COLUMN = ENTRY_COLUMNS.index("occurred_at")


def insert_entries(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert entry rows (tuples in :data:`ENTRY_COLUMNS` order) in one bulk insert.

    The time goes through SQLAlchemy's own bind processing, so that stored times read back
    as any other column of the type.
    """
    to_db = DateTime(timezone=True).dialect_impl(conn.dialect).bind_processor(conn.dialect)
    if to_db is not None:
        t = _TIME_COLUMN
        rows = [(*r[:t], to_db(r[t]), *r[t + 1:]) for r in rows]
    bulk_insert(conn, "audit_entries", ENTRY_COLUMNS, rows)


def insert_nodes(conn: Connection, new_nodes: dict[NodeKey, bytes]) -> None:
    """Store the nodes of ``new_nodes`` that are kept (level >= :data:`STORED_FROM_LEVEL`)."""
    bulk_insert(conn, "audit_nodes", ("level", "idx", "hash"),
                [(level, idx, h) for (level, idx), h in new_nodes.items() if level >= STORED_FROM_LEVEL])


def taken_event_ids(conn: Connection, ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(ids), _IN_CHUNK):
        out |= {str(e) for e in conn.execute(select(entries.c.event_id)
                                             .where(entries.c.event_id.in_(ids[i:i + _IN_CHUNK]))).scalars()}
    return out


def get_entry(conn: Connection, idx: int) -> Row[Any] | None:
    return conn.execute(select(entries).where(entries.c.idx == idx)).first()


def get_entry_by_event_id(conn: Connection, event_id: str) -> Row[Any] | None:
    return conn.execute(select(entries).where(entries.c.event_id == event_id)).first()


def iter_entries(conn: Connection, start: int = 0, end: int | None = None, batch: int = 5000) -> Iterator[Row[Any]]:
    """Entries with start <= idx < end in index order, fetched in batches (bounded memory)."""
    cursor = start
    while True:
        stmt = select(entries).where(entries.c.idx >= cursor).order_by(entries.c.idx).limit(batch)
        if end is not None:
            stmt = stmt.where(entries.c.idx < end)
        rows = conn.execute(stmt).all()
        if not rows:
            return
        yield from rows
        cursor = int(rows[-1].idx) + 1


@dataclass(frozen=True)
class EntryFilter:
    subject: str | None = None
    event_type: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    start: int | None = None
    end: int | None = None


def query_entries(conn: Connection, flt: EntryFilter, *, after: int | None = None,
                  limit: int | None = None) -> list[Row[Any]]:
    """Entries matching ``flt`` in index order, strictly after index ``after`` (cursor pagination)."""
    return list(conn.execute(_filtered(select(entries), flt, after, limit)).all())


def query_indexes(conn: Connection, flt: EntryFilter) -> list[int]:
    """The indexes of every entry matching ``flt``, in order."""
    return [int(i) for i in conn.execute(_filtered(select(entries.c.idx), flt, None, None)).scalars()]


def _filtered(stmt: Select[Any], flt: EntryFilter, after: int | None, limit: int | None) -> Select[Any]:
    stmt = stmt.order_by(entries.c.idx)
    if flt.subject is not None:
        stmt = stmt.where(entries.c.subject_token == flt.subject)
    if flt.event_type is not None:
        if flt.event_type.endswith(".*"):
            stmt = stmt.where(entries.c.event_type.startswith(flt.event_type[:-1], autoescape=True))
        else:
            stmt = stmt.where(entries.c.event_type == flt.event_type)
    if flt.actor is not None:
        stmt = stmt.where(entries.c.actor_id == flt.actor)
    if flt.since is not None:
        stmt = stmt.where(entries.c.occurred_at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(entries.c.occurred_at < flt.until)
    if flt.start is not None:
        stmt = stmt.where(entries.c.idx >= flt.start)
    if flt.end is not None:
        stmt = stmt.where(entries.c.idx < flt.end)
    if after is not None:
        stmt = stmt.where(entries.c.idx > after)
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt


def nodes_at_level(conn: Connection, level: int, lo: int, hi: int) -> dict[int, bytes]:
    """Stored nodes of ``level`` with lo <= idx < hi."""
    rows = conn.execute(select(nodes.c.idx, nodes.c.hash)
                        .where(nodes.c.level == level, nodes.c.idx >= lo, nodes.c.idx < hi))
    return {int(i): bytes(h) for i, h in rows}


def count_nodes(conn: Connection, size: int) -> int:
    """Stored nodes that cover only entries below ``size``."""
    return int(conn.execute(text("SELECT count(*) FROM audit_nodes WHERE ((idx + 1) << level) <= :size"),
                            {"size": size}).scalar_one())


def count_stray_nodes(conn: Connection) -> int:
    """Stored nodes that cover an entry the log does not have (one statement: one snapshot)."""
    return int(conn.exec_driver_sql(
        "SELECT count(*) FROM audit_nodes WHERE ((idx + 1) << level) > "
        "(SELECT coalesce(max(idx), -1) + 1 FROM audit_entries)").scalar_one())


def latest_checkpoint(conn: Connection) -> Row[Any] | None:
    return conn.execute(select(checkpoints).order_by(checkpoints.c.tree_size.desc()).limit(1)).first()


def checkpoint_at(conn: Connection, size: int) -> Row[Any] | None:
    return conn.execute(select(checkpoints).where(checkpoints.c.tree_size == size)).first()


def list_checkpoints(conn: Connection, *, max_size: int | None = None, after_size: int | None = None,
                     limit: int | None = None) -> list[Row[Any]]:
    stmt = select(checkpoints).order_by(checkpoints.c.tree_size)
    if max_size is not None:
        stmt = stmt.where(checkpoints.c.tree_size <= max_size)
    if after_size is not None:
        stmt = stmt.where(checkpoints.c.tree_size > after_size)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(conn.execute(stmt).all())


def insert_checkpoint(conn: Connection, *, tree_size: int, root_hash: bytes, note: str, issued_at: datetime) -> None:
    conn.execute(insert(checkpoints).values(tree_size=tree_size, root_hash=root_hash, note=note, issued_at=issued_at))


@dataclass(frozen=True)
class Misfit:
    """A log value stored with another type than the bytes Tarcza writes (possible in SQLite only)."""

    kind: str  # entry, node or checkpoint: what TamperedLogError names
    what: str  # how a message names it
    position: int  # the entry index (a node: its first entry; a checkpoint: its tree size)
    column: str
    stored_as: str


_BYTE_COLUMNS = (("audit_entries", "idx", ("leaf_input", "leaf_hash"), "entry", "entry"),
                 ("audit_nodes", "idx", ("hash",), "node", "Merkle node covering entry"),
                 ("audit_checkpoints", "tree_size", ("root_hash",), "checkpoint", "checkpoint at size"))


def first_value_of_another_type(conn: Connection) -> Misfit | None:
    """On SQLite, the first log value whose storage class is not BLOB (a row rewritten as TEXT, say).

    Such a value may not even be readable (TEXT that is not UTF-8 fails in the driver), so it is
    found by its type before any row is read. PostgreSQL's ``bytea`` holds only bytes: None.
    """
    if conn.dialect.name != "sqlite":
        return None
    for table, key, columns, kind, what in _BYTE_COLUMNS:
        for column in columns:
            extra = ", level" if table == "audit_nodes" else ""
            row = conn.execute(text(  # fixed table and column names from _BYTE_COLUMNS
                f"SELECT {key}{extra}, typeof({column}) FROM {table} WHERE typeof({column}) != 'blob' "  # noqa: S608
                f"ORDER BY {key} LIMIT 1")).first()
            if row is not None:
                position = int(row[0]) << int(row[1]) if table == "audit_nodes" else int(row[0])
                return Misfit(kind, what, position, column, str(row[-1]).upper())
    return None
