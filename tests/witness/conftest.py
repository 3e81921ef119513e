"""Fixtures of the witness tests: a real ``tarcza witness serve`` process, a log built in the test
(a Merkle tree of random leaves signed with a real log key), and the ``tarcza`` command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from audit import merkle
from audit.checkpoint import Checkpoint, Signer
from audit.cosignature import CosignerKey
from tests.serving import free_port, log_tail

TARCZA = [sys.executable, "-m", "api"]
DEADLINE = 60.0  # seconds for any wait on a background process


def tarcza(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``tarcza`` command; never raises for its exit status."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
    return subprocess.run([*TARCZA, *args], env={**base, **(env or {}), "COLUMNS": "200"}, capture_output=True,
                          text=True, timeout=180, check=False, cwd=cwd)


def wait_for(what: str, condition: Callable[[], bool], log: Path | None = None) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` (and the log's tail) at the deadline."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {DEADLINE:.0f} s" +
                        (f"; log: {log_tail(log)}" if log is not None else ""))
        time.sleep(0.1)


@dataclass
class WitnessProcess:
    """A witness directory (initialised, with the logs added) served by ``tarcza witness serve`` on demand."""

    directory: Path
    name: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> Path:
        return self.directory.parent / f"{self.directory.name}.log"

    def init(self) -> CosignerKey:
        result = tarcza("witness", "init", "--name", self.name, "--dir", str(self.directory))
        assert result.returncode == 0, result.stderr
        return CosignerKey.from_string(result.stdout.strip())

    def add_log(self, key: str, *extra: str) -> None:
        result = tarcza("witness", "add-log", "--key", key, "--dir", str(self.directory), *extra)
        assert result.returncode == 0, result.stderr

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen([*TARCZA, "witness", "serve", "--dir", str(self.directory), "--port",
                                          str(self.port)], env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"tarcza witness serve exited with {proc.returncode}: {log_tail(self.output)}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("the witness answering /healthz", ready, self.output)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


@pytest.fixture
def make_witness(tmp_path: Path) -> Iterator[Callable[[str], WitnessProcess]]:
    """``make_witness(name)``: an initialised (not started) witness in its own directory; stopped after."""
    made: list[WitnessProcess] = []

    def make(name: str) -> WitnessProcess:
        witness = WitnessProcess(tmp_path / f"witness-{len(made)}", name)
        witness.init()
        made.append(witness)
        return witness

    yield make
    for witness in made:
        witness.stop()


@contextmanager
def running(witness: WitnessProcess) -> Iterator[WitnessProcess]:
    witness.start()
    try:
        yield witness
    finally:
        witness.stop()


class TreeLog:
    """A transparency log built in the test: random leaves, a real Ed25519 log key, real proofs."""

    def __init__(self, origin: str, signer: Signer | None = None) -> None:
        self.origin = origin
        self.signer = signer or Signer.generate(origin)
        self.leaves: list[bytes] = []

    def grow(self, count: int) -> TreeLog:
        self.leaves += [merkle.leaf_hash(os.urandom(24)) for _ in range(count)]
        return self

    @property
    def size(self) -> int:
        return len(self.leaves)

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return merkle.root_from_leaf_hashes(self.leaves[:size]) if size else merkle.empty_root()

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        size = self.size if size is None else size
        return Checkpoint(self.origin, size, self.root(size))

    def note(self, size: int | None = None) -> str:
        return self.signer.sign_checkpoint(self.checkpoint(size))

    def proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = self.size if new is None else new
        if old in (0, new):
            return []
        nodes = {(level, idx): merkle.root_from_leaf_hashes(self.leaves[idx << level:(idx + 1) << level])
                 for level, idx in merkle.consistency_proof_keys(old, new)}
        return merkle.consistency_proof(old, new, nodes)

    def fork(self, keep: int) -> TreeLog:
        """A log with the same key and origin that shares the first ``keep`` leaves, then differs."""
        forked = TreeLog(self.origin, self.signer)
        forked.leaves = list(self.leaves[:keep])
        return forked
