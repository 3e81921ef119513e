"""What every CLI command shares: settings, the runtime, consoles and one-line errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from api.runtime import Runtime
from core.errors import ConfigurationError
from core.settings import Settings, load_settings

console = Console()
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

INIT_STEPS: list[InitStep] = []
