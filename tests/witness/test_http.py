"""``tarcza witness serve`` as a real process: the C2SP tlog-witness HTTP protocol, status by status,
concurrent submissions, a restart from its directory, and the CLI's one-line errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from audit.cosignature import CosignerKey, verify_cosignatures
from audit.witness_client import format_add_checkpoint
from witness.service import origin_hash

from .conftest import TreeLog, WitnessProcess, running, tarcza

ORIGIN = "tarcza.example/http-log"


def post(witness: WitnessProcess, log: TreeLog, old: int, size: int | None = None,
         proof: list[bytes] | None = None) -> httpx.Response:
    size = log.size if size is None else size
    body = format_add_checkpoint(old, log.proof(old, size) if proof is None else proof, log.note(size))
    return httpx.post(f"{witness.url}/add-checkpoint", content=body, timeout=30)


def configured(make_witness: Callable[[str], WitnessProcess], log: TreeLog) -> tuple[WitnessProcess, CosignerKey]:
    witness = make_witness("witness.example/http")
    key = CosignerKey.from_string(tarcza("witness", "verifier-key", "--dir", str(witness.directory)).stdout)
    witness.add_log(log.signer.verifier().to_string())
    return witness, key


class TestProtocol:
    def test_each_answer_of_add_checkpoint_over_http(self, make_witness: Callable[[str], WitnessProcess]) -> None:
        """404, 403, 400, 200 (a valid cosignature), 409 (text/x.tlog.size), 422, and the monitoring GET."""
        log = TreeLog(ORIGIN).grow(5)
        witness, key = configured(make_witness, log)
        with running(witness):
            unknown = post(witness, TreeLog("tarcza.example/nobody").grow(1), 0)
            assert unknown.status_code == 404
            assert unknown.headers["content-type"] == "application/problem+json"
            assert post(witness, TreeLog(ORIGIN).grow(5), 0).status_code == 403  # another key, same name
            malformed = httpx.post(f"{witness.url}/add-checkpoint", content=b"old 00\n\n", timeout=30)
            assert malformed.status_code == 400
            assert post(witness, log, 6, size=5, proof=[]).status_code == 400

            cosigned = post(witness, log, 0)
            assert cosigned.status_code == 200
            assert cosigned.headers["content-type"].startswith("text/plain")
            assert len(verify_cosignatures(log.note() + cosigned.text, [key])) == 1

            log.grow(2)
            conflict = post(witness, log, 0)
            assert (conflict.status_code, conflict.text) == (409, "5\n")
            assert conflict.headers["content-type"] == "text/x.tlog.size"

            fork = log.fork(2).grow(6)
            assert post(witness, fork, 5).status_code == 422
            assert post(witness, log, 5).status_code == 200

            monitored = httpx.get(f"{witness.url}/{origin_hash(ORIGIN)}/checkpoint", timeout=30)
            assert monitored.status_code == 200
            assert monitored.text.startswith(log.note())
            assert len(verify_cosignatures(monitored.text, [key])) == 1
            assert httpx.get(f"{witness.url}/{'0' * 64}/checkpoint", timeout=30).status_code == 404

    def test_concurrent_submissions_over_http_cosign_once(self, make_witness: Callable[[str], WitnessProcess]) -> None:
        """Six simultaneous requests from one old size with six different checkpoints: one 200, five 409."""
        log = TreeLog(ORIGIN).grow(3)
        witness, _ = configured(make_witness, log)
        with running(witness):
            assert post(witness, log, 0).status_code == 200
            log.grow(6)
            bodies = [format_add_checkpoint(3, log.proof(3, size), log.note(size)) for size in range(4, 10)]
            barrier = threading.Barrier(len(bodies))
            statuses: list[int] = []

            def run(body: bytes) -> None:
                barrier.wait()
                statuses.append(httpx.post(f"{witness.url}/add-checkpoint", content=body, timeout=60).status_code)

            threads = [threading.Thread(target=run, args=(b,)) for b in bodies]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert sorted(statuses) == [200] + [409] * 5

    def test_restarted_witness_process_keeps_refusing(self, make_witness: Callable[[str], WitnessProcess]) -> None:
        """Stopped and started again on its directory, the witness refuses the same fork and lists the refusals."""
        log = TreeLog(ORIGIN).grow(4)
        witness, _ = configured(make_witness, log)
        fork = log.fork(1).grow(3)
        with running(witness):
            assert post(witness, log, 0).status_code == 200
            assert post(witness, fork, 4).status_code == 422
        with running(witness):
            assert post(witness, fork, 4).status_code == 422
            assert post(witness, fork, 0).status_code == 409
        listing = tarcza("witness", "logs", "--dir", str(witness.directory))
        assert listing.returncode == 0
        row = next(line for line in listing.stdout.splitlines() if ORIGIN in line)
        assert row.split("│")[3].strip() == "4"
        assert row.split("│")[4].strip() == "2"


class TestCli:
    def test_bad_input_is_one_error_line(self, tmp_path: Path, make_witness: Callable[[str], WitnessProcess]) -> None:
        """A bad log key, a log added twice, a name with a space, and a missing directory each fail with one line."""
        witness = make_witness("witness.example/cli")
        log_key = TreeLog(ORIGIN).signer.verifier().to_string()
        directory = str(witness.directory)
        for args in (["add-log", "--key", "not-a-key", "--dir", directory],
                     ["init", "--name", "has space", "--dir", str(tmp_path / "other")],
                     ["serve", "--dir", str(tmp_path / "missing")]):
            result = tarcza("witness", *args)
            assert result.returncode == 1, args
            assert result.stderr.startswith("error: "), result.stderr
            assert result.stderr.count("\n") == 1, result.stderr
        assert tarcza("witness", "add-log", "--key", log_key, "--dir", directory).returncode == 0
        twice = tarcza("witness", "add-log", "--key", log_key, "--dir", directory)
        assert twice.returncode == 1
        assert "--replace" in twice.stderr
        replaced = tarcza("witness", "add-log", "--key", TreeLog(ORIGIN).signer.verifier().to_string(),
                          "--replace", "--dir", directory)
        assert replaced.returncode == 0

    def test_init_prints_only_the_key_on_stdout_and_keeps_it(self, tmp_path: Path) -> None:
        """`witness init` prints the vkey alone on stdout (0600 key file) and a second run keeps the same key."""
        directory = tmp_path / "w"
        first = tarcza("witness", "init", "--name", "witness.example/keep", "--dir", str(directory))
        second = tarcza("witness", "init", "--name", "witness.example/keep", "--dir", str(directory))
        assert first.returncode == second.returncode == 0
        assert first.stdout == second.stdout
        assert CosignerKey.from_string(first.stdout).name == "witness.example/keep"
        assert (directory / "witness.key").stat().st_mode & 0o777 == 0o600
        assert directory.stat().st_mode & 0o777 == 0o700
        other = tarcza("witness", "init", "--name", "witness.example/other", "--dir", str(directory))
        assert other.returncode == 1
        assert "never overwritten" in other.stderr
