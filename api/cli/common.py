"""What every CLI command shares: settings, the runtime, consoles and one-line errors."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from sqlalchemy import text

from api.cli.installation import installation_notice, require_installation
from api.runtime import Runtime
from core import migrate
from core.db import check_connection, write_connection
from core.errors import ConfigurationError
from core.settings import Settings, load_settings, parse_database_url

console = Console(soft_wrap=True)
err_console = Console(stderr=True)

_runtime: Runtime | None = None
_config: Path | None = None


def use_config(path: Path | None) -> None:
    """The configuration file named on the command line (``tarcza --config FILE ...``)."""
    global _config  # noqa: PLW0603 - one command line per CLI process
    _config = path


def runtime(*, installation: bool = True) -> Runtime:
    """The runtime of this CLI process, built from the environment and configuration file on first use.

    Says on stderr which installation it uses when that is not the one the user would expect,
    and, unless ``installation`` is false (``tarcza init``, ``config show``), refuses a data
    directory that ``tarcza init`` did not make.
    """
    global _runtime  # noqa: PLW0603 - one runtime per CLI process
    if _runtime is None:
        loaded = load_settings(config=_config)
        notice = installation_notice(loaded)
        if notice:
            err_console.print(notice, markup=False, highlight=False, soft_wrap=True)
        _runtime = Runtime(loaded)
    if installation:
        require_installation(_runtime.settings)
    return _runtime


def settings() -> Settings:
    """The effective settings; needs no installation."""
    return runtime(installation=False).settings


def ensure_data_dir(data_dir: Path) -> bool:
    """Create the data directory with 0700 permissions, or check an existing one; True if created."""
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigurationError(f"data directory {data_dir} exists but is not a directory")
    created = False
    if not data_dir.exists():
        try:
            data_dir.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise ConfigurationError(f"data directory {data_dir} cannot be created: {exc.strerror}") from None
        created = True
    if not os.access(data_dir, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigurationError(f"data directory {data_dir} is not readable and writable by this user")
    try:
        data_dir.chmod(0o700)
        probe = data_dir / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigurationError(f"data directory {data_dir} is not usable: {exc.strerror}") from None
    return created


InitStep = Callable[[Runtime], str | None]
"""A step of ``tarcza init``: creates what is missing and returns a line to print (or None)."""


def _record_installation(rt: Runtime) -> str | None:
    with write_connection(rt.engine) as conn:
        if conn.execute(text("SELECT id FROM installation")).scalar():
            return None
        conn.execute(text("INSERT INTO installation (id, created_at) VALUES (:id, :at)"),
                     {"id": str(uuid.uuid4()), "at": rt.clock.now()})
    return "installation recorded"


def _refuse_keys_for_someone_elses_database(rt: Runtime) -> None:
    """Refuse to create keys for a database that already belongs to an installation whose keys are not here.

    That is a command run from another directory with the same TARCZA_DATABASE_URL (the
    installation's data directory is elsewhere), or keys that were lost: new keys would make
    its log unverifiable under the pinned key and its subjects unreadable.
    """
    s = rt.settings
    with rt.engine.connect() as conn:
        installation = conn.execute(text("SELECT id FROM installation")).scalar()
        has_log = conn.execute(text("SELECT 1 FROM audit_entries LIMIT 1")).first() is not None
        has_keys = conn.execute(text("SELECT 1 FROM vault_data_keys LIMIT 1")).first() is not None
    missing = None
    if (installation is not None or has_log) and not s.log_key_path.exists():
        missing = "keys/audit-log.key"
    elif has_keys and s.key_provider == "local" and not s.keyfile_path.exists():
        missing = "keys/kek.json"
    if missing is not None:
        database = parse_database_url(s.effective_database_url).render_as_string(hide_password=True)
        raise ConfigurationError(
            f"refusing to create new keys: the database {database} already belongs to installation "
            f"{installation or '(unrecorded)'}, but {os.path.abspath(s.data_dir)} has no {missing}. Point "
            "TARCZA_DATA_DIR (or --config) at that installation's data directory, or restore its keys from a backup")


def initialise_runtime(rt: Runtime) -> list[str]:
    """``tarcza init`` for ``rt``: data directory, migrations, installation, keys; returns what it did."""
    s = rt.settings
    lines: list[str] = []
    if ensure_data_dir(s.data_dir):
        lines.append(f"created data directory {s.data_dir} (0700)")
    check_connection(rt.engine)
    before, after = migrate.upgrade(rt.engine, app_role=s.db_app_role)
    if before != after:
        lines.append(f"database migrated {before or 'empty'} -> {after}")
    _refuse_keys_for_someone_elses_database(rt)
    for step in (_record_installation, *INIT_STEPS):
        line = step(rt)
        if line:
            lines.append(line)
    return lines



def _create_log_key(rt: Runtime) -> str | None:
    from audit.service import create_log_signer

    path = rt.settings.log_key_path
    if path.exists():
        return None
    signer = create_log_signer(path, rt.audit_origin())
    return f"created audit log key {path} (0600) for origin {signer.name}"


def _init_vault_keys(rt: Runtime) -> str | None:
    from vault.bootstrap import init_keys

    return init_keys(rt)


def _create_identity_key(rt: Runtime) -> str | None:
    from identity.secretbox import create_identity_key, identity_key_path

    path = identity_key_path(rt.settings)
    return f"created identity key {path} (0600)" if create_identity_key(path) else None


INIT_STEPS: list[InitStep] = [_create_log_key, _init_vault_keys, _create_identity_key]
