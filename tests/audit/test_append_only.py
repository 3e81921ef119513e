"""The log tables refuse UPDATE and DELETE in the database itself, on both backends."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from audit.service import AuditLog
from core import migrate
from core.db import make_engine

from .conftest import contact

STATEMENTS = [
    "UPDATE audit_entries SET event_type = 'x'",
    "DELETE FROM audit_entries",
    "UPDATE audit_nodes SET hash = hash",
    "DELETE FROM audit_nodes",
    "UPDATE audit_checkpoints SET note = ''",
    "DELETE FROM audit_checkpoints",
]


class TestAppendOnly:
    @pytest.mark.parametrize("statement", STATEMENTS)
    def test_plain_sql_cannot_rewrite_the_log(self, audit_log: AuditLog, statement: str) -> None:
        """UPDATE and DELETE on the log tables fail, and the log still verifies."""
        for _ in range(20):  # enough for a stored Merkle node (level 4 and up)
            contact(audit_log)
        audit_log.issue_checkpoint()
        with audit_log.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_nodes")).scalar_one() == 1
        with pytest.raises(DBAPIError, match="append-only"), audit_log.engine.begin() as conn:
            conn.execute(text(statement))
        assert audit_log.verify_database().entries == 20

    def test_truncate_is_refused_on_postgresql(self, pg_database: str, signer) -> None:  # type: ignore[no-untyped-def]
        """TRUNCATE, which skips row triggers, is refused by a statement trigger on PostgreSQL."""
        engine = make_engine(pg_database)
        migrate.upgrade(engine)
        log = AuditLog(engine, signer)
        try:
            contact(log)
            for table in ("audit_entries", "audit_nodes", "audit_checkpoints"):
                with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {table} CASCADE"))
            assert log.verify_database().entries == 1
        finally:
            log.close()
            engine.dispose()


def _as_role(engine: Engine, role: str, statement: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(f'SET LOCAL ROLE "{role}"'))
        conn.execute(text(statement))


class TestApplicationRole:
    def test_app_role_may_insert_and_select_only(self, pg_database: str) -> None:
        """With TARCZA_DB_APP_ROLE set, the migration grants that role INSERT and SELECT only."""
        role = f"tarcza_app_{uuid.uuid4().hex[:8]}"
        engine: Engine = make_engine(pg_database)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
        try:
            migrate.upgrade(engine, app_role=role)
            with engine.begin() as conn:
                conn.execute(text(f'SET LOCAL ROLE "{role}"'))
                conn.execute(text("INSERT INTO audit_checkpoints (tree_size, root_hash, note, issued_at) "
                                  "VALUES (0, :r, 'n', now())"), {"r": bytes(32)})
                assert conn.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar() == 1
            for statement in ("UPDATE audit_checkpoints SET note = 'x'", "DELETE FROM audit_nodes",
                              "TRUNCATE audit_entries"):
                with pytest.raises(DBAPIError, match="permission denied"):
                    _as_role(engine, role, statement)
        finally:
            with engine.begin() as conn:
                conn.execute(text(f'DROP OWNED BY "{role}"'))
                conn.execute(text(f'DROP ROLE "{role}"'))
            engine.dispose()
