"""What every CLI command shares: settings, the runtime, consoles and one-line errors."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from sqlalchemy import text

from api.runtime import Runtime
from core import migrate
from core.db import check_connection, write_connection
from core.errors import ConfigurationError
from core.settings import Settings, load_settings

console = Console(soft_wrap=True)
err_console = Console(stderr=True)

_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The runtime of this CLI process, built from the environment on first use."""
    global _runtime  # noqa: PLW0603 - one runtime per CLI process
    if _runtime is None:
        _runtime = Runtime(load_settings())
    return _runtime


def settings() -> Settings:
    return runtime().settings


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
