"""End-to-end fixtures: ``tarcza serve`` as a real process, and the real ``tarcza`` command beside it.

``tarcza_server`` is a server on a throwaway data directory and a free port, once on SQLite
(a file in the data directory) and once on PostgreSQL (a fresh database of its own, dropped
afterwards; see ``tests/conftest.py``: with ``CI=true`` an unreachable PostgreSQL fails the
test). It is not started by the fixture: a test sets what it needs in ``env`` first, then
calls :meth:`TarczaServer.start`, and may :meth:`~TarczaServer.kill` (SIGKILL) and start it
again on the same data directory and database as often as it likes. Every run's standard
output and error go to one file, ``output``, for the tests that read the server's logs.
Readiness is ``GET /readyz`` polled against a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.serving import free_port

READY_TIMEOUT = 60.0  # seconds for a (re)started server to answer /readyz
CLI_TIMEOUT = 180.0


def tarcza_command() -> list[str]:
    """The installed ``tarcza`` console script of this interpreter's environment (``python -m api`` without one)."""
    script = Path(sys.executable).with_name("tarcza")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "api"]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT does not count
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class TarczaServer:
    """One ``tarcza serve`` on a fixed data directory, database and port, started and stopped at will."""

    data_dir: Path
    database_url: str
    backend: str
    output: Path
    tmp_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start ``tarcza serve`` and return once ``/readyz`` answers 200; fail if it exits or the deadline passes.

        If another process took the port while the server was down, a new free port is chosen (``url`` changes).
        """
        assert not self.running, "the server is already running"
        if self.starts == 0:
            self.cli("init")  # `tarcza serve` creates no installation
        for _attempt in range(3):
            if not port_free(self.port):  # taken while the server was down: never poll someone else's server
                self.port = free_port()
            if self._start(timeout):
                return
            self.port = free_port()
        pytest.fail(f"tarcza serve found no free port; output: {self.tail()}")

    def _start(self, timeout: float) -> bool:
        offset = self.output.stat().st_size if self.output.exists() else 0
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen([*tarcza_command(), "serve", "--port", str(self.port)], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                try:
                    if client.get(f"{self.url}/readyz").status_code == 200 and self.proc.poll() is None:
                        return True
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None:
                    with self.output.open("rb") as out:
                        out.seek(offset)
                        said = out.read().decode("utf-8", "replace")
                    if "address already in use" in said.lower():
                        return False
                    pytest.fail(f"tarcza serve exited with {self.proc.returncode} before it was ready; "
                                f"output: {said[-4000:]}")
                if time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(f"tarcza serve was not ready within {timeout:.0f} s; output: {self.tail()}")
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server (no shutdown of any kind) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop the server as an operator would (SIGTERM: uvicorn shuts down cleanly); SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """Run the real ``tarcza`` command on this server's data directory and database; its stdout."""
        done = subprocess.run([*tarcza_command(), *args], env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT, check=False)
        if done.returncode != 0:
            pytest.fail(f"`tarcza {args[0]} {args[1] if len(args) > 1 else ''}` exited {done.returncode}: "
                        f"{done.stderr.strip()[-2000:]}")
        return done.stdout

    def add_client(self, name: str, *scopes: str) -> tuple[str, str]:
        """An API client made with ``tarcza client add``: its id and its secret (printed once)."""
        printed = self.cli("client", "add", name, *(arg for scope in scopes for arg in ("--scope", scope)))
        client_id = re.search(r"^client_id:\s+(\S+)$", printed, re.MULTILINE)
        secret = re.search(r"^client_secret:\s+(\S+)$", printed, re.MULTILINE)
        assert client_id is not None, "tarcza client add printed no client_id"
        assert secret is not None, "tarcza client add printed no client_secret"
        return client_id.group(1), secret.group(1)

    def client_token(self, client_id: str, secret: str) -> str:
        """An access token for the client from the OAuth client-credentials endpoint."""
        response = httpx.post(f"{self.url}/v1/oauth/token", auth=(client_id, secret),
                              data={"grant_type": "client_credentials"}, timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def tail(self, size: int = 4000) -> str:
        data = self.output.read_bytes() if self.output.exists() else b""
        return data[-size:].decode("utf-8", "replace")


@pytest.fixture
def tarcza_server(backend: str, data_dir: Path, database_url: str, tmp_path: Path) -> Iterator[TarczaServer]:
    """A ``tarcza serve`` for this backend, not yet started; stopped (and reaped) after the test."""
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
    env.update({
        "TARCZA_DATA_DIR": str(data_dir),
        "TARCZA_DATABASE_URL": database_url,
        "TARCZA_LOG_FORMAT": "json",
        "TARCZA_LOG_LEVEL": "INFO",
        "TARCZA_SESSION_FILE": str(tmp_path / "cli-session"),
        "TMPDIR": str(server_tmp),  # what the server writes to temporary files (exports) stays where tests look
        "TARCZA_KNOWN_LOGS": str(tmp_path / "known_logs"),  # keys the CLI pins: never the user's own file
    })
    server = TarczaServer(data_dir=data_dir, database_url=database_url, backend=backend,
                          output=tmp_path / "serve.log", tmp_dir=server_tmp, env=env)
    try:
        yield server
    finally:
        server.stop()
