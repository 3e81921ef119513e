"""Private files in the data directory: created once (0600, never overwritten), read back only
if nobody else can read them, and made durable (file and directory fsync).
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import ConfigurationError


def fsync_directory(directory: Path) -> None:
    """Make a rename or creation in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_private_file(path: Path, text: str) -> bool:
    """Create ``path`` (mode 0600, parent 0700) holding ``text``; False if it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_directory(path.parent)
    return True


def read_private_file(path: Path, what: str, error: type[ConfigurationError] = ConfigurationError) -> str:
    """The text of ``path``; ``error`` naming ``what`` if it is missing or readable by others."""
    if not path.exists():
        raise error(f"{what} {path} is missing; run `tarcza init`")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise error(f"{what} {path} has permissions {mode:o}; expected 600")
    return path.read_text(encoding="ascii").strip()
