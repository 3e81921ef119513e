"""The only place that queries the audit tables. Insert and select only: there is no update.

Every function takes a SQLAlchemy ``Connection`` whose transaction belongs to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, DateTime, Row, Select, Table, func, insert, select, text

from audit.merkle import NodeKey
from audit.models import AuditCheckpoint, AuditEntry, AuditNode

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
    value = conn.execute(select(func.max(entries.c.idx))).scalar()
    return 0 if value is None else int(value) + 1


_PG_NODES = text(
    "SELECT 0 AS level, idx, leaf_hash AS hash FROM audit_entries WHERE idx = ANY(:leaves) UNION ALL "
    "SELECT n.level, n.idx, n.hash FROM audit_nodes n "
    "JOIN unnest(CAST(:levels AS smallint[]), CAST(:idxs AS bigint[])) AS k(level, idx) "
    "ON n.level = k.level AND n.idx = k.idx"
)


def get_nodes(conn: Connection, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
    """Fetch perfect-subtree hashes (level 0 from the leaf hashes) in one round trip.

    PostgreSQL gets the keys as arrays; SQLite a statement of OR'ed primary-key lookups.
    Both answer with index probes, whatever the number of levels involved.
    """
    wanted = sorted(set(keys))
    found: dict[NodeKey, bytes] = {}
    if conn.dialect.name == "postgresql":
        inner = [k for k in wanted if k[0] > 0]
        rows = conn.execute(_PG_NODES, {"leaves": [k[1] for k in wanted if k[0] == 0],
                                        "levels": [k[0] for k in inner], "idxs": [k[1] for k in inner]})
        return {(int(level), int(idx)): bytes(h) for level, idx, h in rows}
    for i in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[i:i + _IN_CHUNK]
        params: dict[str, int] = {}
        leaf_terms, node_terms = [], []
        for n, (level, idx) in enumerate(chunk):
            params[f"i{n}"] = idx
            if level == 0:
                leaf_terms.append(f"idx = :i{n}")
            else:
                params[f"l{n}"] = level
                node_terms.append(f"(level = :l{n} AND idx = :i{n})")
        parts = []
        if leaf_terms:
            parts.append("SELECT 0 AS level, idx, leaf_hash AS hash FROM audit_entries WHERE "  # noqa: S608
                         + " OR ".join(leaf_terms))  # only bound-parameter names are interpolated
        if node_terms:
            parts.append("SELECT level, idx, hash FROM audit_nodes WHERE " + " OR ".join(node_terms))  # noqa: S608
        for level, idx, node_hash in conn.execute(text(" UNION ALL ".join(parts)), params):
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


_ENTRY_COLUMNS = ("idx", "event_id", "idempotency_key", "request_hash", "event_type", "subject_token", "actor_id",
                  "actor_kind", "occurred_at", "leaf_input", "leaf_hash")


def _placeholders(conn: Connection, count: int) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * count)


def insert_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert entry rows with one driver-level executemany (bytes go to the driver as they are)."""
    if not rows:
        return
    to_db = DateTime(timezone=True).dialect_impl(conn.dialect).bind_processor(conn.dialect)
    tuples = [tuple((to_db(r[c]) if to_db and c == "occurred_at" else r[c]) for c in _ENTRY_COLUMNS) for r in rows]
    columns, marks = ", ".join(_ENTRY_COLUMNS), _placeholders(conn, len(_ENTRY_COLUMNS))
    conn.exec_driver_sql(f"INSERT INTO audit_entries ({columns}) VALUES ({marks})", tuples)  # noqa: S608 - constants


def insert_nodes(conn: Connection, new_nodes: dict[NodeKey, bytes]) -> None:
    rows = [(level, idx, h) for (level, idx), h in new_nodes.items() if level > 0]
    if rows:
        marks = _placeholders(conn, 3)
        conn.exec_driver_sql(f"INSERT INTO audit_nodes (level, idx, hash) VALUES ({marks})", rows)  # noqa: S608


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


def count_nodes(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(nodes)).scalar() or 0)


def latest_checkpoint(conn: Connection) -> Row[Any] | None:
    return conn.execute(select(checkpoints).order_by(checkpoints.c.tree_size.desc()).limit(1)).first()


def checkpoint_at(conn: Connection, size: int) -> Row[Any] | None:
    return conn.execute(select(checkpoints).where(checkpoints.c.tree_size == size)).first()


def list_checkpoints(conn: Connection, *, max_size: int | None = None) -> list[Row[Any]]:
    stmt = select(checkpoints).order_by(checkpoints.c.tree_size)
    if max_size is not None:
        stmt = stmt.where(checkpoints.c.tree_size <= max_size)
    return list(conn.execute(stmt).all())


def insert_checkpoint(conn: Connection, *, tree_size: int, root_hash: bytes, note: str, issued_at: datetime) -> None:
    conn.execute(insert(checkpoints).values(tree_size=tree_size, root_hash=root_hash, note=note, issued_at=issued_at))
