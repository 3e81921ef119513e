"""Database engine, sessions and the declarative base, for SQLite and PostgreSQL.

SQLite (the embedded default) runs in WAL mode with foreign keys on, a busy timeout and
``synchronous=FULL``, so a committed transaction survives a power cut. Transactions on
SQLite start with a plain ``BEGIN`` issued by us (pysqlite's own implicit transaction
handling is turned off); code that reads and then writes under a lock asks for
``BEGIN IMMEDIATE`` through :func:`write_connection`.

Invariant: schema changes happen only through Alembic migrations (:mod:`core.migrate`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from core.errors import DatabaseUnavailableError
from core.settings import parse_database_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 65_536  # page cache per connection (default is 2 MiB)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every Tarcza table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for a supported URL, with the per-backend settings Tarcza needs."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("pool_size", 8)
        kwargs.setdefault("max_overflow", 8)
        engine = create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}, **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(parsed, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_idle_connections(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 5.0
"""A pooled PostgreSQL connection idle this long is pinged before it is handed out."""


def _ping_idle_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling, for connections that sat in the pool a while only.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip for every
    short read (a blind-index lookup is two round trips instead of one). A connection
    that was in use a moment ago is as alive as one pinged now; one that idled (the server
    may have restarted, a firewall may have dropped it) is pinged, and if the ping fails
    the pool replaces it (``DisconnectionError``) before anyone sees an error.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure of the ping means a dead connection
            raise DisconnectionError("idle connection failed its ping") from exc
        if not alive:
            raise DisconnectionError("idle connection failed its ping")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")  # keeps random-key index pages (subjects, ids) hot
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that takes the write lock up front (SQLite ``BEGIN IMMEDIATE``).

    Commits when the block ends without error, rolls back otherwise.
    """
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for reads of append-only data, which need no transaction of their own.

    On PostgreSQL it runs in autocommit, which saves the BEGIN and ROLLBACK round trips of
    a read (the latency of a proof is mostly round trips); every statement still sees a
    consistent snapshot. On SQLite it is a plain connection.
    """
    with engine.connect() as conn:
        if not is_sqlite(engine):
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert many rows at once, in ``conn``'s transaction: COPY on PostgreSQL, one
    driver-level executemany on SQLite. Values go to the driver as they are (bytes, times).

    ``table`` and ``columns`` are names of ours, never input. A constraint violation raises
    SQLAlchemy's :class:`~sqlalchemy.exc.IntegrityError` on both backends.

    COPY, not executemany, on PostgreSQL: it is several times faster per row, and
    psycopg's pipelined executemany was seen to stall for 100-250 ms on large batches.
    """
    if not rows:
        return
    names = ", ".join(columns)
    if is_sqlite(conn):
        marks = ", ".join(["?"] * len(columns))
        conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(rows))  # noqa: S608
        return
    import psycopg

    driver = conn.connection.driver_connection  # the same connection, inside the same transaction
    assert isinstance(driver, psycopg.Connection)  # noqa: S101 - the only PostgreSQL driver configured
    try:
        with driver.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.IntegrityError as exc:
        raise IntegrityError(f"COPY {table}", None, exc) from None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; the caller (request, command, job) commits."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def check_connection(engine: Engine) -> None:
    """Raise :class:`DatabaseUnavailableError` with one line if the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means "unavailable"
        raise DatabaseUnavailableError(
            f"cannot reach the {engine.dialect.name} database: {type(exc).__name__}: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    line = str(orig).strip().splitlines()
    return line[0][:200] if line else type(orig).__name__
