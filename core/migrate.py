"""Schema migrations through Alembic, on SQLite and PostgreSQL.

All migrations form one linear chain in ``core/migrations/versions``; each capability adds
its own revision there. ``tarcza init`` and ``tarcza db upgrade`` apply them.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from core.db import write_connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the chain always has 0001
        raise RuntimeError("no migrations found")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def upgrade(engine: Engine, revision: str = "head", *, app_role: str | None = None) -> tuple[str | None, str | None]:
    """Apply migrations up to ``revision``; return (revision before, revision after).

    ``app_role`` (PostgreSQL) is the role the audit migration grants INSERT and SELECT only.
    """
    before = current_revision(engine)
    cfg = alembic_config()
    with write_connection(engine) as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes["app_role"] = app_role
        command.upgrade(cfg, revision)
    return before, current_revision(engine)
