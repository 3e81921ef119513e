"""Servers running on an installation, and offline key operations that must not run beside them.

``tarcza serve`` registers itself in ``<data dir>/run/server-<pid>-<nonce>.json`` (its pid,
base URL, start time) and holds an exclusive ``flock`` on that file for as long as it runs.
The kernel releases the lock when the process ends however it ends, so a file whose lock can
be taken belongs to a server that is gone (stale): readers delete it. The file is written
under a temporary name, locked, then renamed into place, so a reader never sees a live
server's file unlocked.

An offline key operation (``tarcza keys rotate`` on this machine's keyfile) holds an
exclusive lock on ``<data dir>/run/keys.lock`` and refuses while any server is registered;
a starting server registers first and then refuses while that lock is held. Whichever of the
two comes second sees the other, so a rotation and a server never run side by side on one
data directory. Servers on other machines (PostgreSQL installations) are not seen here; they
pick up a newer key-encryption key themselves (``api.keyreload``, ADR 0022).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType

from core.errors import ConflictError

__all__ = ["RunningServer", "ServerRegistration", "check_no_key_operation", "offline_key_operation",
           "running_servers"]

RUN_DIR = "run"
KEYS_LOCK = "keys.lock"
_PREFIX, _SUFFIX = "server-", ".json"


def _run_dir(data_dir: Path) -> Path:
    path = data_dir / RUN_DIR
    path.mkdir(mode=0o700, exist_ok=True)
    return path


@dataclass(frozen=True)
class RunningServer:
    """A live ``tarcza serve`` on this installation."""

    pid: int
    url: str
    started_at: str


class ServerRegistration:
    """``with ServerRegistration(data_dir, url):`` marks this process as a server of the installation."""

    def __init__(self, data_dir: Path, url: str) -> None:
        self.data_dir = data_dir
        self.url = url
        self.path: Path | None = None
        self._fd: int | None = None

    def __enter__(self) -> ServerRegistration:
        run = _run_dir(self.data_dir)
        name = f"{_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
        temporary = run / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            body = {"pid": os.getpid(), "url": self.url, "started_at": datetime.now(UTC).isoformat()}
            os.write(fd, json.dumps(body).encode("utf-8") + b"\n")
            os.replace(temporary, run / name)
        except BaseException:
            os.close(fd)
            temporary.unlink(missing_ok=True)
            raise
        self._fd, self.path = fd, run / name
        return self

    def unregister_on_sigterm(self) -> None:
        """Unregister, then die of SIGTERM as before, when SIGTERM arrives (main thread only).

        uvicorn handles SIGTERM itself, shuts down, restores the previous handler (this one)
        and raises the signal again, so code after ``uvicorn.run`` never runs on SIGTERM.
        """
        def unregister_then_die(signum: int, _frame: FrameType | None) -> None:
            self.__exit__(None, None, None)
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

        signal.signal(signal.SIGTERM, unregister_then_die)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
        self.path, self._fd = None, None


def running_servers(data_dir: Path) -> list[RunningServer]:
    """The servers registered on this data directory that still run; stale registrations are removed."""
    run = data_dir / RUN_DIR
    if not run.is_dir():
        return []
    found: list[RunningServer] = []
    for path in sorted(run.glob(f"{_PREFIX}*{_SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # its server stopped meanwhile
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held: the server runs
                with os.fdopen(os.dup(fd), "rb") as fh:
                    body = json.loads(fh.read() or b"{}")
                found.append(RunningServer(int(body.get("pid", 0)), str(body.get("url", "?")),
                                           str(body.get("started_at", "?"))))
            else:  # nobody holds it: the server died without unregistering
                path.unlink(missing_ok=True)
        except (OSError, ValueError):
            continue  # unreadable: neither proof of a server nor of its absence worth failing on
        finally:
            os.close(fd)
    return found


def _servers_text(servers: list[RunningServer]) -> str:
    return ", ".join(f"{s.url} (pid {s.pid})" for s in servers)


@contextmanager
def offline_key_operation(data_dir: Path, what: str) -> Iterator[None]:
    """Hold the installation's key lock while ``what`` runs; refuse while a server or another one runs."""
    fd = os.open(_run_dir(data_dir) / KEYS_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError("another key operation (`tarcza keys ...`) is running on this installation; "
                                "wait for it to finish") from None
        servers = running_servers(data_dir)
        if servers:
            url = servers[0].url
            raise ConflictError(
                f"refusing {what}: a server is running on this installation: {_servers_text(servers)}. It would "
                f"keep the old keys; do it through the server instead: `tarcza login --server {url}` (as an "
                f"admin), then `tarcza keys rotate --server {url}`; or stop the server first")
        yield
    finally:
        os.close(fd)


def check_no_key_operation(data_dir: Path) -> None:
    """Refuse (for a starting server) while an offline key operation holds the installation's key lock."""
    fd = os.open(_run_dir(data_dir) / KEYS_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError("a key operation (`tarcza keys rotate`) is running on this installation; start "
                                "the server when it has finished") from None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
