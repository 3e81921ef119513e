"""A Tarcza log and its witnesses as real processes (`tarcza serve`, `tarcza witness serve`), on SQLite
and PostgreSQL: cosignatures arrive in the background and ride on the served and exported
checkpoint; a forked log or a rewritten entry gets none; a restarted witness keeps refusing; a
witness that is down blocks nothing and is caught up; `tarcza audit verify --witness` counts only
valid cosignatures by the keys it is given.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from sqlalchemy import create_engine, text

from api.cli.common import initialise_runtime
from api.runtime import Runtime
from audit import merkle
from audit.checkpoint import parse_checkpoint_body, split_note
from audit.cosignature import CosignerKey, verify_cosignatures
from core.settings import load_settings
from tests.headers import client_headers
from tests.serving import tarcza_serve
from witness.storage import WitnessStore

from .conftest import WitnessProcess, running, tarcza, wait_for

SCOPES = ("audit:read", "audit:append", "audit:export")
PG_ADMIN_URL = os.environ.get("TARCZA_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def note(n: int) -> dict[str, Any]:
    """An operator note, the one event type an outside principal may append (ADR 0017)."""
    return {"type": "operator.note", "payload": {"code": f"witness_test_{n}"}}


@contextmanager
def log_server(env: dict[str, str], tmp_path: Path, name: str, witnesses: list[tuple[str, CosignerKey]],
               ) -> Iterator[str]:
    """`tarcza serve` for ``env`` with ``witnesses``, a checkpoint after every entry, retries every 0.3 s."""
    extra = {"TARCZA_WITNESSES": ",".join(f"{url} {key.to_string()}" for url, key in witnesses),
             "TARCZA_WITNESS_RETRY_SECONDS": "0.3", "TARCZA_CHECKPOINT_EVERY_ENTRIES": "1",
             "TARCZA_LOG_FORMAT": "json"}
    with tarcza_serve({**env, **extra}, tmp_path / f"{name}.log", timeout=90) as (url, _proc):
        yield url


class Log:
    """One running log as the test drives it over HTTP."""

    def __init__(self, url: str, headers: dict[str, str], output: Path) -> None:
        self.url, self.headers, self.output = url, headers, output
        self.appended = 0
        self.archive = b""

    def append(self, count: int = 1) -> int:
        """Append ``count`` events (each acknowledged 201); the tree size after the last."""
        size = 0
        for _ in range(count):
            self.appended += 1
            response = httpx.post(f"{self.url}/v1/audit/events", json=note(self.appended), headers=self.headers,
                                  timeout=60)
            assert response.status_code == 201, response.text
            size = int(response.json()["tree_size"])
        return size

    def checkpoint(self) -> str:
        response = httpx.get(f"{self.url}/v1/audit/checkpoint", headers=self.headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.text

    def cosigned_size(self, key: CosignerKey) -> int | None:
        """The size of the served checkpoint if it carries a valid cosignature by ``key``."""
        note = self.checkpoint()
        if not verify_cosignatures(note, [key]):
            return None
        return parse_checkpoint_body(split_note(note)[0]).size

    def wait_cosigned(self, key: CosignerKey, size: int) -> None:
        wait_for(f"a cosignature by {key.label} of the checkpoint of size {size}",
                 lambda: self.cosigned_size(key) == size, self.output)

    def submissions(self, key: CosignerKey, outcome: str) -> float:
        return self.metric("tarcza_witness_submissions_total", witness=key.label, outcome=outcome) or 0.0

    def metric(self, name: str, **labels: str) -> float | None:
        body = httpx.get(f"{self.url}/metrics", timeout=30).text
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return None

    def export(self, destination: Path) -> Path:
        response = httpx.get(f"{self.url}/v1/audit/export", headers=self.headers, timeout=120)
        assert response.status_code == 200, response.text
        self.archive = response.content
        with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as tar:
            tar.extractall(destination, filter="data")
        return destination / "audit-export"

    def verify_upload(self, archive: bytes, **params: Any) -> httpx.Response:
        """``POST /v1/audit/verify-export`` of ``archive`` with query ``params``."""
        return httpx.post(f"{self.url}/v1/audit/verify-export", params=params, headers=self.headers,
                          files={"file": ("export.tar.gz", archive)}, timeout=120)


def verify(export: Path, log_key: Path, *args: str) -> tuple[int, str]:
    """`tarcza audit verify` of an export with the pinned log key and ``args``; exit status and output."""
    result = tarcza("audit", "verify", str(export), "--key", str(log_key), *args)
    return result.returncode, result.stdout + result.stderr


def witness_key_file(witness: WitnessProcess, key: CosignerKey) -> Path:
    path = witness.directory.parent / f"{witness.directory.name}.pub"
    path.write_text(key.to_string() + "\n", encoding="ascii")
    return path


@pytest.fixture
def log_key_file(initialised_runtime: Runtime, tmp_path: Path) -> Path:
    path = tmp_path / "log.pub"
    path.write_text(initialised_runtime.audit.verifier().to_string() + "\n", encoding="ascii")
    return path


@pytest.fixture
def witness_for_log(make_witness: Callable[[str], WitnessProcess], log_key_file: Path,
                    ) -> Callable[[str], tuple[WitnessProcess, CosignerKey]]:
    """``witness_for_log(name)``: a witness (not started) configured for the test's log, and its key."""

    def make(name: str) -> tuple[WitnessProcess, CosignerKey]:
        witness = make_witness(name)
        key = CosignerKey.from_string(tarcza("witness", "verifier-key", "--dir", str(witness.directory)).stdout)
        witness.add_log(str(log_key_file))
        return witness, key

    return make


@contextmanager
def second_database(backend: str, directory: Path) -> Iterator[str]:
    """Another empty database of the backend under test (for a forked installation)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'tarcza.db'}"
        return
    name = f"tarcza_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"{PG_ADMIN_URL.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def forked_installation(original: Runtime, backend: str, directory: Path) -> Iterator[tuple[Runtime, dict[str, str]]]:
    """A second installation holding a copy of the log key and the same origin: whoever has the key can fork."""
    directory.mkdir(mode=0o700)
    (directory / "keys").mkdir(mode=0o700)
    shutil.copy2(original.settings.log_key_path, directory / "keys" / "audit-log.key")
    origin = original.audit.origin
    with second_database(backend, directory) as url:
        runtime = Runtime(load_settings(data_dir=directory, database_url=url, audit_origin=origin))
        initialise_runtime(runtime)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
        env.update({"TARCZA_DATA_DIR": str(directory), "TARCZA_DATABASE_URL": url, "TARCZA_AUDIT_ORIGIN": origin})
        try:
            yield runtime, env
        finally:
            runtime.close()


def refusals(witness: WitnessProcess, origin: str) -> list[tuple[int, int]]:
    """(old size, tree size) of every inconsistent checkpoint the witness recorded for ``origin``."""
    return [(r.old_size, r.tree_size) for r in WitnessStore.open(witness.directory / "witness.db").refusals(origin)]


class TestWitnessedLog:
    def test_cosignature_is_served_exported_and_verified(
            self, initialised_runtime: Runtime, cli_env: dict[str, str], tmp_path: Path, log_key_file: Path,
            witness_for_log: Callable[[str], tuple[WitnessProcess, CosignerKey]]) -> None:
        """Each new checkpoint is cosigned in the background; the served and exported note carries the line,
        `audit verify --witness` and `POST /v1/audit/verify-export?witness=` accept it, a missing witness is
        refused (422) unless --min-witnesses allows it; the metric reports a finite age."""
        witness, key = witness_for_log("witness.example/w1")
        headers = client_headers(initialised_runtime, *SCOPES)
        with running(witness), log_server(cli_env, tmp_path, "log", [(witness.url, key)]) as url:
            log = Log(url, headers, tmp_path / "log.log")
            size = log.append(3)
            log.wait_cosigned(key, size)
            age = log.metric("tarcza_witness_checkpoint_age_seconds", witness=key.label)
            assert age is not None
            assert 0 <= age < float("inf")
            export = log.export(tmp_path / "export")
            uploaded = log.verify_upload(log.archive, witness=[key.to_string()])
            assert uploaded.status_code == 200, uploaded.text
            assert uploaded.json()["cosigned_by"] == [key.label]
            stranger = CosignerKey.from_string(tarcza("witness", "init", "--name", "other.example/w",
                                                      "--dir", str(tmp_path / "stranger")).stdout)
            refused = log.verify_upload(log.archive, witness=[key.to_string(), stranger.to_string()])
            assert refused.status_code == 422
            assert refused.json()["type"] == "urn:tarcza:problem:cosignature"
            assert log.verify_upload(log.archive, witness=[key.to_string(), stranger.to_string()],
                                     min_witnesses=1).status_code == 200
        status, output = verify(export, log_key_file, "--witness", str(witness_key_file(witness, key)))
        assert status == 0, output
        assert f"cosigned by 1 witness(es): {key.label}" in output

    def test_forked_log_gets_no_cosignature_even_from_a_restarted_witness(
            self, initialised_runtime: Runtime, cli_env: dict[str, str], tmp_path: Path, backend: str,
            log_key_file: Path, witness_for_log: Callable[[str], tuple[WitnessProcess, CosignerKey]]) -> None:
        """A second installation with the log's key and origin (a fork) is refused at the same size and larger,
        before and after the witness restarts; the honest log goes on being cosigned."""
        witness, key = witness_for_log("witness.example/w1")
        origin = initialised_runtime.audit.origin
        headers = client_headers(initialised_runtime, *SCOPES)
        witness.start()
        with log_server(cli_env, tmp_path, "log", [(witness.url, key)]) as url, \
                forked_installation(initialised_runtime, backend, tmp_path / "fork") as (fork_rt, fork_env), \
                log_server(fork_env, tmp_path, "fork", [(witness.url, key)]) as fork_url:
            log = Log(url, headers, tmp_path / "log.log")
            fork = Log(fork_url, client_headers(fork_rt, *SCOPES), tmp_path / "fork.log")
            size = log.append(4)
            log.wait_cosigned(key, size)

            fork_size = fork.append(1)
            assert fork_size <= size, "the fork must start below the honest log"
            fork_size = fork.append(size - fork_size) if fork_size < size else fork_size
            assert fork_size == size
            wait_for("the witness refusing the same-size fork", lambda: (size, size) in refusals(witness, origin))

            larger = fork.append(2)
            wait_for("the witness refusing the larger fork", lambda: (size, larger) in refusals(witness, origin))

            witness.stop()
            witness.start()
            again = fork.append(1)
            wait_for("the restarted witness refusing the fork", lambda: (size, again) in refusals(witness, origin))
            assert fork.cosigned_size(key) is None
            assert fork.submissions(key, "refused") >= 3

            honest = log.append(1)
            log.wait_cosigned(key, honest)
            fork_export = fork.export(tmp_path / "fork-export")
        witness.stop()
        status, output = verify(fork_export, log_key_file, "--witness", str(witness_key_file(witness, key)))
        assert status == 1, output
        assert "0 valid cosignature" in output, output

    def test_rewritten_old_entry_gets_no_cosignature(
            self, initialised_runtime: Runtime, cli_env: dict[str, str], tmp_path: Path, database_url: str,
            witness_for_log: Callable[[str], tuple[WitnessProcess, CosignerKey]]) -> None:
        """Entry 0 rewritten in the database (triggers off, as its owner could): the next checkpoint is refused."""
        witness, key = witness_for_log("witness.example/w1")
        origin = initialised_runtime.audit.origin
        with running(witness), log_server(cli_env, tmp_path, "log", [(witness.url, key)]) as url:
            log = Log(url, client_headers(initialised_runtime, *SCOPES), tmp_path / "log.log")
            size = log.append(3)
            log.wait_cosigned(key, size)
            rewrite_first_entry(database_url)
            after = log.append(1)
            wait_for("the witness refusing the rewritten log", lambda: (size, after) in refusals(witness, origin))
            assert log.cosigned_size(key) is None

    def test_witness_down_blocks_nothing_and_is_caught_up(
            self, initialised_runtime: Runtime, cli_env: dict[str, str], tmp_path: Path,
            witness_for_log: Callable[[str], tuple[WitnessProcess, CosignerKey]]) -> None:
        """With the witness down, appends are acknowledged and checkpoints issued; once it is up, the newest
        checkpoint gets its cosignature without any further append."""
        witness, key = witness_for_log("witness.example/late")
        with log_server(cli_env, tmp_path, "log", [(witness.url, key)]) as url:
            log = Log(url, client_headers(initialised_runtime, *SCOPES), tmp_path / "log.log")
            size = log.append(5)
            wait_for("a failed submission", lambda: log.submissions(key, "unreachable") >= 1, log.output)
            assert log.cosigned_size(key) is None
            assert log.metric("tarcza_witness_checkpoint_age_seconds", witness=key.label) == float("inf")
            with running(witness):
                log.wait_cosigned(key, size)
                age = log.metric("tarcza_witness_checkpoint_age_seconds", witness=key.label)
                assert age is not None
                assert age < float("inf")

    def test_only_valid_cosignatures_by_given_keys_count(
            self, initialised_runtime: Runtime, cli_env: dict[str, str], tmp_path: Path, log_key_file: Path,
            witness_for_log: Callable[[str], tuple[WitnessProcess, CosignerKey]]) -> None:
        """A witness answering with a key other than the configured one is not stored; the verifier counts only
        valid cosignatures by the --witness keys, and --min-witnesses is enforced."""
        w1, key1 = witness_for_log("witness.example/w1")
        w2, key2 = witness_for_log("witness.example/w2")  # never started: down
        w3, key3 = witness_for_log("witness.example/w3")  # its key is configured for w1's URL
        with running(w1), log_server(cli_env, tmp_path, "log", [(w1.url, key1), (w2.url, key2),
                                                                 (w1.url, key3)]) as url:
            log = Log(url, client_headers(initialised_runtime, *SCOPES), tmp_path / "log.log")
            size = log.append(2)
            log.wait_cosigned(key1, size)
            wait_for("w1's answer refused under w3's key", lambda: log.submissions(key3, "bad-cosignature") >= 1,
                     log.output)
            assert [c.key for c in verify_cosignatures(log.checkpoint(), [key1, key2, key3])] == [key1]
            export = log.export(tmp_path / "export")
        k1, k2, k3 = (str(witness_key_file(w, k)) for w, k in ((w1, key1), (w2, key2), (w3, key3)))
        assert verify(export, log_key_file, "--witness", k1)[0] == 0
        assert verify(export, log_key_file, "--witness", k3)[0] == 1  # w1's line does not count for w3
        status, output = verify(export, log_key_file, "--witness", k1, "--witness", k2)
        assert status == 1
        assert "1 valid cosignature(s) from the 2 trusted witness(es), 2 required" in output
        assert verify(export, log_key_file, "--witness", k1, "--witness", k2, "--min-witnesses", "1")[0] == 0
        assert verify(export, log_key_file, "--witness", k2, "--witness", k3, "--min-witnesses", "1")[0] == 1
        status, output = verify(export, log_key_file, "--witness", k1, "--min-witnesses", "2")
        assert status == 1, output
        assert output.startswith("error: --min-witnesses 2"), output


def rewrite_first_entry(database_url: str) -> None:
    """Rewrite entry 0's bytes and leaf hash past the append-only trigger, as the database's owner could."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(text("DROP TRIGGER audit_entries_no_update"))
            else:
                conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only"))
            data = bytes(conn.execute(text("SELECT leaf_input FROM audit_entries WHERE idx = 0")).scalar_one())
            rewritten = data.replace(b"}", b" }", 1)
            conn.execute(text("UPDATE audit_entries SET leaf_input = :d, leaf_hash = :h WHERE idx = 0"),
                         {"d": rewritten, "h": merkle.leaf_hash(rewritten)})
            if engine.dialect.name != "sqlite":
                conn.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only"))
    finally:
        engine.dispose()
