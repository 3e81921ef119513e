"""Engines and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core import migrate
from core.db import make_engine, write_connection
from core.errors import DatabaseUnavailableError


class TestEngine:
    def test_sqlite_pragmas_are_set(self, data_dir) -> None:  # type: ignore[no-untyped-def]
        """SQLite connections use WAL, foreign keys, a busy timeout and synchronous=FULL."""
        engine = make_engine(f"sqlite:///{data_dir / 't.db'}")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000

    def test_write_connection_commits_and_rolls_back(self, database_url: str) -> None:
        """A write transaction commits on success and leaves nothing behind on error."""
        engine = make_engine(database_url)
        with write_connection(engine) as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        def failing_write() -> None:
            with write_connection(engine) as conn:
                conn.execute(text("INSERT INTO t VALUES (2)"))
                raise RuntimeError("abort")

        with pytest.raises(RuntimeError):
            failing_write()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT x FROM t")).scalars().all() == [1]

    def test_idle_connection_killed_by_the_server_is_replaced(self, pg_database: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
        """A pooled PostgreSQL connection the server terminated while it idled is pinged at checkout and
        replaced, so the next query succeeds; a connection back from use is not pinged at all."""
        import core.db

        engine = make_engine(pg_database, pool_size=1, max_overflow=0)
        with engine.connect() as conn:
            first_pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        pings: list[int] = []
        original = engine.dialect.do_ping
        monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(1) or original(c))
        with engine.connect() as conn:  # just checked in: not pinged
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == first_pid
        assert pings == []
        killer = make_engine(pg_database)
        with killer.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_terminate_backend(%s)", (first_pid,)).scalar() is True
        killer.dispose()
        monkeypatch.setattr(core.db, "PING_AFTER_IDLE_SECONDS", 0.0)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != first_pid
        assert pings
        engine.dispose()

    def test_unreachable_database_is_one_line(self) -> None:
        """A PostgreSQL server that does not answer gives DatabaseUnavailableError with one line."""
        from core.db import check_connection

        engine = make_engine("postgresql://nobody@127.0.0.1:1/none")
        with pytest.raises(DatabaseUnavailableError) as info:
            check_connection(engine)
        assert "\n" not in info.value.detail


class TestMigrations:
    def test_upgrade_reaches_head_and_is_idempotent(self, database_url: str) -> None:
        """Migrations apply on an empty database and a second run changes nothing."""
        engine = make_engine(database_url)
        assert migrate.current_revision(engine) is None
        before, after = migrate.upgrade(engine)
        assert (before, after) == (None, migrate.head_revision())
        assert migrate.upgrade(engine) == (after, after)
        assert migrate.is_current(engine)

    def test_older_schema_is_upgraded(self, database_url: str) -> None:
        """A database left at the first migration is brought to the newest."""
        engine = make_engine(database_url)
        migrate.upgrade(engine, "0001_foundation")
        assert migrate.current_revision(engine) == "0001_foundation"
        migrate.upgrade(engine)
        assert migrate.is_current(engine)
