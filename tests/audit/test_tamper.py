"""Tampering with any stored byte is detected by `verify --db`, at the right index, on both backends.

The append-only triggers are switched off for the length of each edit, as an attacker with
the database owner's rights could; that is exactly the case verification exists for.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Connection, Engine, text

from audit.errors import TamperedLogError
from audit.service import AuditLog

from .conftest import contact

TRIGGERS_SQLITE = {
    (table, action): f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                     f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
    for table in ("audit_entries", "audit_nodes", "audit_checkpoints") for action in ("UPDATE", "DELETE")
}


@contextmanager
def triggers_off(engine: Engine, table: str) -> Iterator[Connection]:
    """A transaction in which ``table`` can be updated despite its append-only triggers."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(f"DROP TRIGGER {table}_no_update"))
            yield conn
            conn.execute(text(TRIGGERS_SQLITE[(table, "UPDATE")]))
        else:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
            yield conn
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only"))


def flip(engine: Engine, table: str, column: str, where: str, params: dict[str, int], position: int) -> None:
    """Flip one bit of one byte of a stored value (bytes or text)."""
    with triggers_off(engine, table) as conn:
        value = conn.execute(text(f"SELECT {column} FROM {table} WHERE {where}"), params).scalar_one()
        raw = bytearray(value.encode() if isinstance(value, str) else bytes(value))
        pos = position % len(raw)
        raw[pos] ^= 0x01
        new: object = bytes(raw)
        if isinstance(value, str):
            new = raw.decode("utf-8", errors="replace")
        conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE {where}"), {"v": new, **params})


def delete_rows(engine: Engine, table: str, where: str) -> None:
    """DELETE rows of a log table past its append-only trigger (dropped, or disabled, for good)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(f"DROP TRIGGER {table}_no_delete"))
        else:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
        conn.execute(text(f"DELETE FROM {table} WHERE {where}"))


@pytest.fixture
def populated(audit_log: AuditLog) -> AuditLog:
    """A log of 37 entries with checkpoints at 16, 30 and 37."""
    for i in range(37):
        contact(audit_log)
        if i + 1 in (16, 30):
            audit_log.issue_checkpoint()
    audit_log.issue_checkpoint()
    audit_log.verify_database()
    return audit_log


POSITIONS = random.Random(9162).sample(range(200), 3)
STORED_NODES_OF_37 = [(4, 0), (4, 1), (5, 0)]


class TestTamperDetection:
    @pytest.mark.parametrize("index", [0, 17, 36])
    def test_flipped_event_byte_names_the_entry(self, populated: AuditLog, index: int) -> None:
        """Any flipped byte of a stored event is reported at that entry's index."""
        for position in POSITIONS:
            flip(populated.engine, "audit_entries", "leaf_input", "idx = :i", {"i": index}, position)
            with pytest.raises(TamperedLogError) as info:
                populated.verify_database()
            assert info.value.index == index
            flip(populated.engine, "audit_entries", "leaf_input", "idx = :i", {"i": index}, position)
            populated.verify_database()

    @pytest.mark.parametrize("index", [3, 31])
    def test_flipped_leaf_hash_names_the_entry(self, populated: AuditLog, index: int) -> None:
        """Any flipped byte of a stored leaf hash is reported at that entry's index."""
        for position in POSITIONS:
            flip(populated.engine, "audit_entries", "leaf_hash", "idx = :i", {"i": index}, position)
            with pytest.raises(TamperedLogError) as info:
                populated.verify_database()
            assert (info.value.index, info.value.what) == (index, "leaf")
            flip(populated.engine, "audit_entries", "leaf_hash", "idx = :i", {"i": index}, position)

    def test_changed_index_column_names_the_entry(self, populated: AuditLog) -> None:
        """Rewriting the searchable columns (not the event) is detected too."""
        with triggers_off(populated.engine, "audit_entries") as conn:
            conn.execute(text("UPDATE audit_entries SET subject_token = 'sub_SOMEONEELSE01' WHERE idx = 12"))
        with pytest.raises(TamperedLogError) as info:
            populated.verify_database()
        assert (info.value.index, info.value.what) == (12, "event")

    def test_these_are_all_the_stored_nodes(self, populated: AuditLog) -> None:
        """37 entries keep the nodes of levels 4 and up: the cases below cover every stored node."""
        with populated.engine.connect() as conn:
            stored = {(int(r.level), int(r.idx)) for r in conn.execute(text("SELECT level, idx FROM audit_nodes"))}
        assert stored == set(STORED_NODES_OF_37)

    @pytest.mark.parametrize(("level", "idx"), STORED_NODES_OF_37)
    def test_flipped_node_names_its_first_entry(self, populated: AuditLog, level: int, idx: int) -> None:
        """Any flipped byte of a stored Merkle node is reported at the first entry it covers."""
        for position in POSITIONS:
            flip(populated.engine, "audit_nodes", "hash", "level = :l AND idx = :i", {"l": level, "i": idx}, position)
            with pytest.raises(TamperedLogError) as info:
                populated.verify_database()
            assert (info.value.index, info.value.what) == (idx << level, "node")
            flip(populated.engine, "audit_nodes", "hash", "level = :l AND idx = :i", {"l": level, "i": idx}, position)

    @pytest.mark.parametrize("column", ["note", "root_hash"])
    @pytest.mark.parametrize("size", [16, 37])
    def test_flipped_checkpoint_is_detected(self, populated: AuditLog, column: str, size: int) -> None:
        """Any flipped byte of a stored checkpoint (its note or its root) is reported for that checkpoint."""
        positions = POSITIONS if column == "root_hash" else [0, 30, 60, 90, 120]
        for position in positions:
            flip(populated.engine, "audit_checkpoints", column, "tree_size = :s", {"s": size}, position)
            with pytest.raises(TamperedLogError) as info:
                populated.verify_database()
            assert (info.value.index, info.value.what) == (size, "checkpoint")
            flip(populated.engine, "audit_checkpoints", column, "tree_size = :s", {"s": size}, position)
        populated.verify_database()

    def test_deleted_entry_is_detected(self, populated: AuditLog) -> None:
        """Removing an entry in the middle is reported at its index."""
        delete_rows(populated.engine, "audit_entries", "idx = 20")
        with pytest.raises(TamperedLogError) as info:
            populated.verify_database()
        assert info.value.index == 20

    def test_deleted_node_is_detected(self, populated: AuditLog) -> None:
        """A stored node removed (so nothing is there to compare) is reported at the entries it covered."""
        delete_rows(populated.engine, "audit_nodes", "level = 4 AND idx = 1")
        with pytest.raises(TamperedLogError) as info:
            populated.verify_database()
        assert (info.value.index, info.value.what) == (16, "node")

    def test_stray_node_is_detected(self, populated: AuditLog) -> None:
        """A node row for entries the log does not have is reported too."""
        with populated.engine.begin() as conn:
            conn.execute(text("INSERT INTO audit_nodes (level, idx, hash) VALUES (4, 9, :h)"), {"h": b"\x00" * 32})
        with pytest.raises(TamperedLogError) as info:
            populated.verify_database()
        assert info.value.what == "nodes"


def test_verifying_a_growing_log_reports_no_tampering(audit_log: AuditLog) -> None:
    """`verify --db` on a live log: appends that land while it runs are not mistaken for tampering."""
    for _ in range(40):
        contact(audit_log)
    audit_log.issue_checkpoint()
    stop = threading.Event()

    def appender() -> None:
        while not stop.is_set():
            contact(audit_log)
            audit_log.maybe_checkpoint(timer=True)

    worker = threading.Thread(target=appender)
    worker.start()
    try:
        reports = [audit_log.verify_database(chunk=7) for _ in range(15)]
    finally:
        stop.set()
        worker.join()
    assert reports[-1].entries > 40  # the log did grow while it was verified
    assert audit_log.verify_database().entries == audit_log.size()


class TestRowsOfAnotherType:
    """SQLite keeps whatever type is written into a column; a tampered row may come back as TEXT."""

    @pytest.mark.parametrize("column", ["leaf_input", "leaf_hash"])
    def test_text_typed_row_names_the_entry(self, populated: AuditLog, column: str) -> None:
        """A row rewritten with a TEXT value (SQLite) or other bytes (PostgreSQL) is reported at its index."""
        with triggers_off(populated.engine, "audit_entries") as conn:
            if populated.engine.dialect.name == "sqlite":
                conn.execute(text(f"UPDATE audit_entries SET {column} = CAST({column} AS TEXT) WHERE idx = 9"))
                stored = conn.execute(text(f"SELECT typeof({column}) FROM audit_entries WHERE idx = 9")).scalar_one()
                assert stored == "text"
            else:
                conn.execute(text(f"UPDATE audit_entries SET {column} = :v WHERE idx = 9"), {"v": b"\xff\xfe"})
        with pytest.raises(TamperedLogError) as info:
            populated.verify_database()
        assert info.value.index == 9
        assert "entry 9" in info.value.detail


def test_cli_reports_a_text_typed_row_without_a_traceback(cli_env: dict[str, str], database_url: str) -> None:
    """`tarcza audit verify --db` on a row stored as TEXT prints one `error:` line naming the entry."""
    import json
    import subprocess
    import sys

    def tarcza(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api", *args], env=cli_env, capture_output=True, text=True,
                              timeout=120, check=False)

    assert tarcza("init").returncode == 0
    for i in range(5):
        assert tarcza("audit", "append", "--type", "operator.note", "--payload", json.dumps({"code": f"n{i}"})
                      ).returncode == 0
    from core.db import make_engine

    engine = make_engine(database_url)
    try:
        with triggers_off(engine, "audit_entries") as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(text("UPDATE audit_entries SET leaf_input = CAST(leaf_input AS TEXT) WHERE idx = 3"))
            else:
                conn.execute(text("UPDATE audit_entries SET leaf_input = :v WHERE idx = 3"), {"v": b"\xff"})
    finally:
        engine.dispose()
    result = tarcza("audit", "verify", "--db")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: entry 3")
    assert len(result.stderr.strip().splitlines()) == 1
