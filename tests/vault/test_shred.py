"""Crypto-shredding: the subject's keys, blind indexes and recordings go; everyone else stays readable.

Each test runs on SQLite and PostgreSQL, with synthetic data (Faker pl_PL)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from faker import Faker
from sqlalchemy import Engine, func, select

from audit.checkpoint import Signer
from audit.events import ActorKind
from audit.repository import EntryFilter
from audit.service import AuditLog
from core import migrate
from core.clock import FixedClock
from core.db import make_engine
from core.errors import PermissionDeniedError
from identity.principal import Principal, Role
from policies.authorizer import Decision, Resource
from vault import repository
from vault.blobs import LocalBlobStore, decrypt_stream
from vault.errors import VaultDecryptError
from vault.fields import load_catalogue
from vault.keys import MemoryKeyProvider
from vault.service import Action, SubjectShreddedError, VaultService
from vault.shredding import ErasureClearance

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PURPOSE = "debt_collection"
DPO = Principal("u-dpo", ActorKind.USER, frozenset({Role.DPO}), second_factor_at=START)
COLLECTOR = Principal("u-collector", ActorKind.USER, frozenset({Role.COLLECTOR}), second_factor_at=START)


def cleared(*tokens: str) -> ErasureClearance:
    """What the erasure decision (gdpr.erasure) would hand the vault for ``tokens`` (these tests are the vault's)."""
    return ErasureClearance(frozenset(tokens))


class OnlyDpoShreds:
    """An authorizer that allows everything except shredding, which only the DPO may do."""

    def decide(self, principal: Principal, action: str, resource: Resource, *, purpose: str | None,
               now: datetime, justification: str | None = None) -> Decision:
        if action == Action.SHRED and Role.DPO not in principal.roles:
            return Decision(False, "role")
        return Decision(True, "role")


@dataclass
class Env:
    service: VaultService
    engine: Engine
    audit: AuditLog
    blobs: LocalBlobStore
    fake: Faker

    def subject(self) -> tuple[str, dict[str, Any], str, bytes]:
        """A subject with a recording: token, fields, recording id and audio."""
        fields = {"first_name": self.fake.first_name(), "last_name": self.fake.last_name(),
                  "pesel": self.fake.pesel(), "email": [self.fake.unique.safe_email()]}
        token = self.service.create_subject(DPO, "debtor", fields)
        audio = self.fake.binary(length=150_000)
        recording = self.service.store_recording(DPO, token, io.BytesIO(audio), "audio/ogg").recording_id
        return token, fields, recording, audio

    def count(self, table: Any, token: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)
                                    .where(table.c.subject_token == token)).scalar_one())


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[Env]:
    """A vault with a local blob store on the test database."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    clock = FixedClock(START)
    audit = AuditLog(engine, Signer.generate("tarcza/test"), clock=clock)
    provider = MemoryKeyProvider()
    blobs = LocalBlobStore(tmp_path / "blobs")
    fake = Faker("pl_PL")
    fake.seed_instance(1717)
    service = VaultService(engine, provider, audit, OnlyDpoShreds(), load_catalogue(), clock, blobs)
    yield Env(service, engine, audit, blobs, fake)
    audit.close()
    provider.close()
    engine.dispose()


class TestShred:
    """VaultService.shred."""

    def test_shredded_subject_is_unreadable(self, env: Env) -> None:
        """After shredding, reads are refused and the kept envelopes can no longer be opened by the vault."""
        token, _, _, _ = env.subject()
        with env.engine.connect() as conn:
            envelopes = repository.select_fields(conn, token)
        env.service.shred(DPO, token, cleared(token))
        for read in (lambda: env.service.reveal(COLLECTOR, token, ["pesel"], PURPOSE),
                     lambda: env.service.masked_view(COLLECTOR, token)):
            with pytest.raises(SubjectShreddedError):
                read()
        assert env.count(repository.data_keys, token) == 0
        assert env.count(repository.fields, token) == len(envelopes)  # kept, but sealed under a destroyed key
        assert env.service.keys.cache.evict_subject(token) == 0
        with env.engine.connect() as conn, pytest.raises(VaultDecryptError):
            env.service.keys.get(conn, token, 1)

    def test_shredded_recordings_are_unreadable(self, env: Env) -> None:
        """Shredding deletes the recordings' blobs, and a restored copy of one cannot be decrypted."""
        token, _, recording, _ = env.subject()
        path = env.blobs.root / recording
        backup = path.read_bytes()
        env.service.shred(DPO, token, cleared(token))
        assert not path.exists()
        with pytest.raises(SubjectShreddedError):
            env.service.read_recording(COLLECTOR, token, recording, PURPOSE)
        path.write_bytes(backup)  # as if from a backup taken before the erasure
        with pytest.raises(SubjectShreddedError):
            env.service.read_recording(COLLECTOR, token, recording, PURPOSE)
        with env.engine.connect() as conn, pytest.raises(VaultDecryptError):
            env.service.keys.get(conn, token, 1)  # no key is left to decrypt the restored copy with
        other, _, _, _ = env.subject()
        with env.engine.connect() as conn:
            other_key = env.service.keys.get(conn, other, 1)
        with pytest.raises(VaultDecryptError):
            b"".join(decrypt_stream(other_key, env.blobs, subject=token, blob_id=recording))

    def test_other_subjects_are_untouched(self, env: Env) -> None:
        """Shredding one subject leaves every other subject's fields, search and recordings as they were."""
        doomed, doomed_fields, _, _ = env.subject()
        kept, kept_fields, kept_recording, audio = env.subject()
        env.service.shred(DPO, doomed, cleared(doomed))
        env.service.keys.cache.clear()
        assert env.service.reveal(COLLECTOR, kept, ["pesel", "email"], PURPOSE) == {
            "pesel": [kept_fields["pesel"]], "email": kept_fields["email"]}
        assert b"".join(env.service.read_recording(COLLECTOR, kept, kept_recording, PURPOSE)) == audio
        assert env.service.search(COLLECTOR, "pesel", kept_fields["pesel"], PURPOSE) == [kept]
        assert env.service.search(COLLECTOR, "pesel", doomed_fields["pesel"], PURPOSE) == []
        with env.engine.connect() as conn:
            doomed_index = conn.execute(select(repository.fields.c.blind_index)
                                        .where(repository.fields.c.subject_token == doomed)).scalars().all()
        assert set(doomed_index) == {None}

    def test_shred_is_logged_and_idempotent(self, env: Env) -> None:
        """Shredding logs the subject and each recording once; shredding again changes and logs nothing."""
        token, fields, recording, _ = env.subject()
        report = env.service.shred(DPO, token, cleared(token))
        assert (report.fields, report.recordings, report.already_shredded) == (sorted(fields), [recording], False)
        entries = [e.event for e in env.audit.query(EntryFilter(subject=token)).items]
        shredded = [e for e in entries if e["type"].endswith("shredded")]
        assert [e["type"] for e in shredded] == ["vault.subject_shredded", "recording.shredded"]
        assert shredded[0]["payload"] == {"fields": sorted(fields), "subject_kind": "debtor"}
        assert shredded[1]["payload"] == {"recording_id": recording, "purpose": "erasure"}
        again = env.service.shred(DPO, token, cleared(token))
        assert again.already_shredded is True
        assert len(env.audit.query(EntryFilter(subject=token)).items) == len(entries)

    def test_shred_needs_permission(self, env: Env) -> None:
        """A principal the policies refuse cannot shred; the refusal is logged and the subject stays readable."""
        token, fields, _, _ = env.subject()
        with pytest.raises(PermissionDeniedError):
            env.service.shred(COLLECTOR, token, cleared(token))
        [denied] = env.audit.query(EntryFilter(subject=token, event_type="vault.access")).items
        assert (denied.event["payload"]["action"], denied.event["payload"]["decision"]) == ("shred", "deny")
        assert env.service.reveal(COLLECTOR, token, ["pesel"], PURPOSE) == {"pesel": [fields["pesel"]]}
