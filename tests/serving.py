"""``tarcza serve`` as a real process in tests: a free port, its log in a file, ready once it answers.

The log goes to a file, never to a pipe: a pipe nobody reads blocks the server once it fills.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

TARCZA = [sys.executable, "-m", "api"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no output)"


def healthz(url: str) -> bool:
    with urllib.request.urlopen(url + "/healthz", timeout=2) as response:  # noqa: S310 - a local test server
        return bool(response.status == 200)


def wait_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path, *, timeout: float = 90.0,
               ready: Callable[[str], bool] = healthz) -> None:
    """Poll ``ready(url)`` until it says yes; fail with the server's output if it exits or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready(url):
                return
        except OSError:  # refused while starting
            pass
        if proc.poll() is not None:
            pytest.fail(f"tarcza serve exited with {proc.returncode}: {log_tail(log_path)}")
        if time.monotonic() > deadline:
            pytest.fail(f"tarcza serve was not ready within {timeout:.0f} s: {log_tail(log_path)}")
        time.sleep(0.1)


@contextmanager
def tarcza_serve(env: Mapping[str, str], log_path: Path, *, args: Sequence[str] = (), scheme: str = "http",
                 timeout: float = 90.0, ready: Callable[[str], bool] = healthz,
                 ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``tarcza serve`` on a free port with ``env``; yields its base URL and process, stops it after."""
    port = free_port()
    with log_path.open("ab") as log:
        proc = subprocess.Popen([*TARCZA, "serve", "--port", str(port), *args], env=dict(env),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    url = f"{scheme}://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log_path, timeout=timeout, ready=ready)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
