"""A real ``tarcza serve`` for the client tests, API clients made with the real CLI, and a small HTTP
proxy between them that loses an answer or answers 503 once, as a network or a load balancer does."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.serving import tarcza_serve

ALL_SCOPES = ("contacts:write", "subjects:read-masked", "subjects:reveal", "subjects:write", "audit:read",
              "audit:append", "gdpr:manage")


@dataclass
class Server:
    url: str
    env: dict[str, str]
    port: int

    def add_client(self, name: str, *scopes: str) -> tuple[str, str]:
        """An API client made with ``tarcza client add``; its id and secret."""
        args = [sys.executable, "-m", "api", "client", "add", name]
        for scope in scopes:
            args += ["--scope", scope]
        done = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        client_id = re.search(r"client_id:\s+(\S+)", done.stdout)
        secret = re.search(r"client_secret:\s+(\S+)", done.stdout)
        assert client_id, done.stdout
        assert secret, done.stdout
        return client_id.group(1), secret.group(1)


def server_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
    env.update({"TARCZA_DATA_DIR": str(data_dir), "TARCZA_DATABASE_URL": database_url, "TARCZA_LOG_FORMAT": "json",
                **extra})
    return env


@contextmanager
def running_server(data_dir: Path, database_url: str, **extra_env: str) -> Iterator[Server]:
    """``tarcza serve`` on a free port until the block ends; its log goes to a file beside the data."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = server_env(data_dir, database_url, **extra_env)
    subprocess.run([sys.executable, "-m", "api", "init"], env=env, check=True, capture_output=True,
                   timeout=300)  # `tarcza serve` creates no installation
    with tarcza_serve(env, data_dir.parent / "server.log") as (url, _proc):
        yield Server(url, env, int(url.rsplit(":", 1)[1]))


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on SQLite for the module (the tests use subjects of their own)."""
    base = tmp_path_factory.mktemp("client-sqlite")
    with running_server(base / "var", f"sqlite:///{base / 'var' / 'tarcza.db'}") as server:
        yield server


@pytest.fixture(scope="module")
def credentials(sqlite_server: Server) -> tuple[str, str]:
    """A client holding every scope an integrating system uses."""
    return sqlite_server.add_client("crm-test", *ALL_SCOPES)


# -- a proxy that misbehaves once ------------------------------------------------------------------------


@dataclass
class Fault:
    method: str
    path_prefix: str
    kind: str  # "drop_answer": forward, then close without answering; "503": answer 503 Retry-After 1


@dataclass
class FlakyProxy:
    """An HTTP/1.1 proxy (Content-Length bodies, keep-alive) in front of ``upstream_port``.

    Each fault applies once, to the first request matching it; ``seen`` lists every request
    (method, path, Idempotency-Key) that reached the proxy.
    """

    upstream_port: int
    faults: list[Fault] = field(default_factory=list)
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and path.startswith(fault.path_prefix):
                    self.faults.remove(fault)
                    return fault
        return None

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            while True:
                request_line = reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers: list[tuple[str, str]] = []
                while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers.append((name.strip(), value.strip()))
                lowered = {k.lower(): v for k, v in headers}
                body = reader.read(int(lowered.get("content-length", "0")))
                self.seen.append((method, path, lowered.get("idempotency-key")))
                fault = self._take_fault(method, path)
                if fault is not None and fault.kind == "503":
                    payload = (b'{"type":"about:blank","title":"Service Unavailable","status":503,'
                               b'"detail":"upstream restarting"}')
                    conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                                 b"Content-Type: application/problem+json\r\n"
                                 + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
                    continue
                upstream.request(method, path, body=body,
                                 headers={k: v for k, v in headers if k.lower() not in ("connection", "host")})
                response = upstream.getresponse()
                data = response.read()
                if fault is not None and fault.kind == "drop_answer":
                    return  # the server did the work; the caller never hears of it
                out = [f"HTTP/1.1 {response.status} {response.reason}\r\n".encode()]
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        out.append(f"{name}: {value}\r\n".encode("latin-1"))
                out.append(f"Content-Length: {len(data)}\r\n\r\n".encode())
                conn.sendall(b"".join(out) + data)
        except OSError:
            return
        finally:
            upstream.close()
            conn.close()


@pytest.fixture
def flaky_proxy(sqlite_server: Server) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(sqlite_server.port)
    try:
        yield proxy
    finally:
        proxy.close()
