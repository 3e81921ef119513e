"""The witness's own storage: one SQLite file in its directory (never Tarcza's database).

Tables:

- ``witness_logs``: the logs it witnesses, origin and the log's verifier key (signed-note vkey);
- ``witness_checkpoints``: per origin, the latest checkpoint it cosigned (size, root, the note
  with the log's signature and the witness's cosignature, and when);
- ``witness_refusals``: checkpoints signed by a known log that it refused as inconsistent,
  kept as evidence of the log's misbehaviour.

Invariants: the latest cosigned checkpoint of a log only ever moves by compare-and-swap on
the (size, root) the decision was made against, in one statement, so two submissions made
against the same old size cannot both be stored (C2SP tlog-witness's race); a cosignature
is returned only once its checkpoint is durably stored (WAL, ``synchronous=FULL``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from core.errors import ConfigurationError, ConflictError

SCHEMA_VERSION: Final = 1
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS witness_logs (
    origin TEXT PRIMARY KEY,
    verifier_key TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS witness_checkpoints (
    origin TEXT PRIMARY KEY REFERENCES witness_logs (origin),
    tree_size INTEGER NOT NULL CHECK (tree_size >= 0),
    root_hash BLOB NOT NULL,
    note TEXT NOT NULL,
    cosigned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS witness_refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    received_at TEXT NOT NULL,
    old_size INTEGER NOT NULL,
    tree_size INTEGER NOT NULL,
    reason TEXT NOT NULL,
    note TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class KnownLog:
    origin: str
    verifier_key: str


@dataclass(frozen=True)
class Latest:
    """The latest checkpoint cosigned for a log."""

    origin: str
    size: int
    root_hash: bytes
    note: str
    cosigned_at: int


@dataclass(frozen=True)
class Refusal:
    origin: str
    received_at: str
    old_size: int
    tree_size: int
    reason: str


class WitnessStore:
    """The SQLite file of one witness; a connection per operation, safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path) -> WitnessStore:
        """Create (or open and upgrade) the file with its schema."""
        store = cls(path)
        with store._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return store

    @classmethod
    def open(cls, path: Path) -> WitnessStore:
        """Open an existing witness database; refuse a missing one or one of another version."""
        if not path.is_file():
            raise ConfigurationError(f"witness database {path} is missing; run `tarcza witness init`")
        store = cls(path)
        with store._connect() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise ConfigurationError(f"witness database {path} has schema version {version}, "
                                     f"this version knows {SCHEMA_VERSION}")
        return store

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
        finally:
            conn.close()

    # -- configured logs ---------------------------------------------------------------------------

    def add_log(self, origin: str, verifier_key: str, *, now: datetime, replace: bool = False) -> None:
        """Witness the log ``origin`` signed by ``verifier_key``; replacing a key needs ``replace``."""
        with self._connect() as conn:
            if replace:
                conn.execute("INSERT INTO witness_logs (origin, verifier_key, added_at) VALUES (?, ?, ?) "
                             "ON CONFLICT (origin) DO UPDATE SET verifier_key = excluded.verifier_key, "
                             "added_at = excluded.added_at", (origin, verifier_key, now.isoformat()))
                return
            try:
                conn.execute("INSERT INTO witness_logs (origin, verifier_key, added_at) VALUES (?, ?, ?)",
                             (origin, verifier_key, now.isoformat()))
            except sqlite3.IntegrityError:
                raise ConflictError(f"log {origin!r} is already configured; give --replace to change its key",
                                    origin=origin) from None

    def log(self, origin: str) -> KnownLog | None:
        with self._connect() as conn:
            row = conn.execute("SELECT origin, verifier_key FROM witness_logs WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else KnownLog(row[0], row[1])

    def logs(self) -> list[KnownLog]:
        with self._connect() as conn:
            rows = conn.execute("SELECT origin, verifier_key FROM witness_logs ORDER BY origin").fetchall()
        return [KnownLog(r[0], r[1]) for r in rows]

    # -- latest cosigned checkpoints ---------------------------------------------------------------

    def latest(self, origin: str) -> Latest | None:
        with self._connect() as conn:
            row = conn.execute("SELECT origin, tree_size, root_hash, note, cosigned_at FROM witness_checkpoints "
                               "WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else Latest(row[0], int(row[1]), bytes(row[2]), row[3], int(row[4]))

    def compare_and_swap(self, expected: Latest | None, new: Latest) -> bool:
        """Store ``new`` as the latest of its log if the latest is still ``expected``; False if it moved."""
        with self._connect() as conn:
            if expected is None:
                cursor = conn.execute(
                    "INSERT INTO witness_checkpoints (origin, tree_size, root_hash, note, cosigned_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (origin) DO NOTHING",
                    (new.origin, new.size, new.root_hash, new.note, new.cosigned_at))
            else:
                cursor = conn.execute(
                    "UPDATE witness_checkpoints SET tree_size = ?, root_hash = ?, note = ?, cosigned_at = ? "
                    "WHERE origin = ? AND tree_size = ? AND root_hash = ?",
                    (new.size, new.root_hash, new.note, new.cosigned_at, expected.origin, expected.size,
                     expected.root_hash))
            return cursor.rowcount == 1

    # -- evidence ----------------------------------------------------------------------------------

    def record_refusal(self, origin: str, *, old_size: int, tree_size: int, reason: str, note: str,
                       now: datetime) -> None:
        with self._connect() as conn:
            conn.execute("INSERT INTO witness_refusals (origin, received_at, old_size, tree_size, reason, note) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (origin, now.isoformat(), old_size, tree_size, reason, note))

    def refusals(self, origin: str | None = None) -> list[Refusal]:
        with self._connect() as conn:
            query = "SELECT origin, received_at, old_size, tree_size, reason FROM witness_refusals"
            rows = (conn.execute(query + " WHERE origin = ? ORDER BY id", (origin,)) if origin is not None
                    else conn.execute(query + " ORDER BY id")).fetchall()
        return [Refusal(r[0], r[1], int(r[2]), int(r[3]), r[4]) for r in rows]
