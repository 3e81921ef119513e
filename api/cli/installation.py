"""Which installation a command uses, whether it is one, and when to say so.

An *installation* is a data directory that ``tarcza init`` made: it holds the audit log's
signing key (``keys/audit-log.key``), which only ``tarcza init`` creates (and, with SQLite,
the database file it names). Every command
that works on an installation checks this first and refuses with one line naming the
directory, so a command run from the wrong directory never creates a second installation
(new keys for an existing database, or a new empty database) behind the operator's back.

Invariant: only ``tarcza init`` (and ``make run`` through it) creates an installation.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import ConfigurationError
from core.settings import DEFAULT_DATA_DIR, Settings, parse_database_url, user_config_path

__all__ = ["data_dir_origin", "installation_notice", "is_installation", "require_installation"]


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def data_dir_origin(settings: Settings) -> str:
    """Where the data directory setting came from, in words."""
    source = settings.source_of("data_dir")
    found = settings.config_file
    if source == "config file" and found is not None:
        return f"TARCZA_DATA_DIR in {found.path}"
    if source == "environment":
        return "the environment variable TARCZA_DATA_DIR"
    if source == "argument":
        return "the command line"
    return "the default ./var of the working directory"


def _sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file, which opening would create empty; None on PostgreSQL."""
    url = parse_database_url(settings.effective_database_url)
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None


def is_installation(settings: Settings) -> bool:
    """True if the data directory is one ``tarcza init`` made."""
    return settings.data_dir.is_dir() and settings.log_key_path.is_file()


def require_installation(settings: Settings) -> None:
    """Refuse (one line, naming the directory and the way out) unless the data directory is an installation."""
    where = _absolute(settings.data_dir)
    if not where.exists():
        problem = "the directory does not exist"
    elif not where.is_dir():
        problem = "it is not a directory"
    elif not settings.log_key_path.is_file():
        problem = "it has no keys/audit-log.key"
    elif (database := _sqlite_file(settings)) is not None and not database.exists():
        problem = f"its database {database} does not exist"
    else:
        return
    raise ConfigurationError(
        f"no Tarcza installation at {where} (from {data_dir_origin(settings)}): {problem}. Run the command where "
        f"the installation is, name it with TARCZA_DATA_DIR, --config FILE or {user_config_path()}, or create "
        "one with `tarcza init`")


def installation_notice(settings: Settings, cwd: Path | None = None) -> str | None:
    """One line saying which installation is used, when it is not the one the user would expect.

    That is when a configuration file chose the data directory and it is not ``./var`` of the
    working directory (the directory the user stands in may even hold another installation).
    A directory the user set in the environment, or the default ``./var``, is expected.
    """
    if settings.source_of("data_dir") != "config file":
        return None
    here = _absolute(cwd or Path.cwd())
    used = _absolute(settings.data_dir)
    if used == here / DEFAULT_DATA_DIR:
        return None
    return f"using the installation in {used} ({data_dir_origin(settings)})"
