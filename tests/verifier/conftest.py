"""Fixtures of the verifier tests: a real audit log on each backend, its exports, a forger's export,
and the environment for running the real `tarcza` and `tarcza-verify` commands offline."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from audit.checkpoint import Signer, Verifier
from audit.events import Actor, ActorKind
from audit.export import export_log
from audit.repository import EntryFilter
from audit.service import AuditLog
from core import migrate
from core.db import make_engine

ORIGIN = "tarcza.example.pl/audit"
AGENT = Actor(id="agent-7", kind=ActorKind.USER)
SUBJECT = "sub_VERIFYSUBJECT01"
OTHER = "sub_OTHERSUBJECT001"
TARCZA = [sys.executable, "-m", "api"]


def contact(log: AuditLog, subject: str = SUBJECT, channel: str = "sms") -> int:
    """Append a synthetic contact attempt; its index."""
    return log.record("contact.attempted", actor=AGENT, subject=subject,
                      payload={"channel": channel, "direction": "outbound", "agent_id": AGENT.id}).index


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def audit_log(engine: Engine, signer: Signer) -> Iterator[AuditLog]:
    log = AuditLog(engine, signer, checkpoint_every_entries=10_000)
    yield log
    log.close()


@dataclass(frozen=True)
class Exported:
    """A log of 40 entries with checkpoints at 10 and 25, exported whole, and what an auditor keeps."""

    log: AuditLog
    directory: Path
    first_checkpoint: str
    key_file: Path


@pytest.fixture
def exported(audit_log: AuditLog, tmp_path: Path) -> Exported:
    first = ""
    for i in range(40):
        contact(audit_log, subject=SUBJECT if i % 3 == 0 else OTHER)
        if i + 1 == 10:
            first = audit_log.issue_checkpoint().note
        if i + 1 == 25:
            audit_log.issue_checkpoint()
    out = tmp_path / "export"
    export_log(audit_log, out, EntryFilter())
    key_file = tmp_path / "log.pub"
    key_file.write_text(audit_log.verifier().to_string() + "\n", encoding="ascii")
    return Exported(audit_log, out, first, key_file)


def forge_export(origin: str, out: Path) -> Path:
    """What a forger can make: a fresh log under the real origin, a new key, a made-up entry, exported."""
    base = out.parent / f"{out.name}-forger"
    base.mkdir()
    engine = make_engine(f"sqlite:///{base / 'forged.db'}")
    migrate.upgrade(engine)
    log = AuditLog(engine, Signer.generate(origin), checkpoint_every_entries=10_000)
    try:
        for _ in range(3):
            contact(log, channel="phone")
        export_log(log, out, EntryFilter())
    finally:
        log.close()
        engine.dispose()
    return out


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no database and a known-logs file of this test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
    env["TARCZA_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    env["TARCZA_DATA_DIR"] = str(tmp_path / "no-data-dir")
    env["TARCZA_KNOWN_LOGS"] = str(tmp_path / "known_logs")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    return env


def tarcza(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `tarcza` command."""
    return subprocess.run([*TARCZA, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def server_archive(runtime: object, out: Path) -> Path:
    """A subject archive made by the server over HTTP: a debtor (Faker pl_PL), a contact, an access request
    verified and answered. ``runtime`` is an initialised :class:`api.runtime.Runtime`."""
    from faker import Faker
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.runtime import Runtime
    from tests.headers import client_headers, person_headers

    assert isinstance(runtime, Runtime)
    fake = Faker("pl_PL")
    fake.seed_instance(1962)
    http = TestClient(create_app(runtime=runtime), raise_server_exceptions=False)
    crm = client_headers(runtime, "subjects:write", "contacts:write")
    dpo = person_headers(runtime, "dpo")
    fields = {"first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel()}
    created = http.post("/v1/subjects", json={"kind": "debtor", "fields": fields}, headers=crm)
    assert created.status_code == 201, created.text
    subject = created.json()["token"]
    contact_answer = http.post("/v1/contacts", headers=crm, json={
        "subject": subject, "channel": "phone", "agent_id": "agent-1", "started_at": "2026-11-17T10:00:00+01:00",
        "outcome": "answered"})
    assert contact_answer.status_code == 201, contact_answer.text
    today = runtime.clock.now().date().isoformat()
    request = http.post("/v1/gdpr/requests", headers=dpo, json={
        "subject": subject, "kind": "access", "received_on": today, "channel": "letter"})
    assert request.status_code == 201, request.text
    request_id = request.json()["id"]
    verified = http.post(f"/v1/gdpr/requests/{request_id}/verify", json={"method": "id_document"}, headers=dpo)
    assert verified.status_code == 200, verified.text
    answer = http.post(f"/v1/gdpr/requests/{request_id}/export", headers=dpo)
    assert answer.status_code == 200, answer.text
    out.write_bytes(answer.content)
    return out


@dataclass(frozen=True)
class Sample:
    """A SQLite log of 40 entries (checkpoints at 10 and 25) with a range export of all of it, a proofs
    export of one subject, and its signer: built once per module, copied by tests that change it."""

    signer: Signer
    whole: Path
    subject: Path
    first_checkpoint: str


def build_sample(base: Path) -> Sample:
    engine = make_engine(f"sqlite:///{base / 'sample.db'}")
    migrate.upgrade(engine)
    signer = Signer.generate(ORIGIN)
    log = AuditLog(engine, signer, checkpoint_every_entries=10_000)
    first = ""
    try:
        for i in range(40):
            contact(log, subject=SUBJECT if i % 3 == 0 else OTHER)
            if i + 1 == 10:
                first = log.issue_checkpoint().note
            if i + 1 == 25:
                log.issue_checkpoint()
        export_log(log, base / "whole", EntryFilter())
        export_log(log, base / "subject", EntryFilter(subject=SUBJECT))
    finally:
        log.close()
        engine.dispose()
    return Sample(signer, base / "whole", base / "subject", first)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return build_sample(tmp_path_factory.mktemp("sample"))


@dataclass(frozen=True)
class ArchiveSample:
    """A subject archive the server made (SQLite), its log's key, and an audit export it sent (.tar.gz)."""

    archive: Path
    tarball: Path
    key: Verifier


@pytest.fixture(scope="module")
def server_exports(tmp_path_factory: pytest.TempPathFactory) -> ArchiveSample:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.cli.common import initialise_runtime
    from api.runtime import Runtime
    from core.settings import load_settings
    from tests.headers import client_headers

    base = tmp_path_factory.mktemp("server")
    data_dir = base / "var"
    data_dir.mkdir(mode=0o700)
    runtime = Runtime(load_settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'tarcza.db'}"))
    initialise_runtime(runtime)
    try:
        archive = server_archive(runtime, base / "subject.zip")
        http = TestClient(create_app(runtime=runtime), headers=client_headers(runtime, "audit:export"))
        answer = http.get("/v1/audit/export")
        assert answer.status_code == 200, answer.text
        tarball = base / "audit-export.tar.gz"
        tarball.write_bytes(answer.content)
        return ArchiveSample(archive, tarball, runtime.audit.verifier())
    finally:
        runtime.close()
