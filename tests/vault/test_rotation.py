"""KEK rotation: nothing is lost, reads keep working, an interrupted rotation resumes, old KEKs go.

Each test runs on SQLite and PostgreSQL; the main one also on every key provider (memory,
local keyfile with and without passphrase, PKCS#11 on SoftHSM2)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from faker import Faker
from sqlalchemy import Engine, select

from audit.checkpoint import Signer
from audit.events import ActorKind
from audit.repository import EntryFilter
from audit.service import AuditLog
from core import migrate
from core.clock import FixedClock
from core.db import make_engine
from identity.principal import Principal, Role
from policies.authorizer import Decision, Resource
from vault import repository
from vault.blobs import MemoryBlobStore
from vault.errors import KeyProviderError
from vault.fields import load_catalogue
from vault.keys import KeyProvider, LocalKeyfileProvider, MemoryKeyProvider
from vault.service import NewSubject, VaultService

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PURPOSE = "debt_collection"
OFFICER = Principal("u-officer", ActorKind.USER, frozenset({Role.COMPLIANCE_OFFICER}), second_factor_at=START)


class AllowAll:
    """An authorizer that allows everything (rotation is not about authorisation)."""

    def decide(self, principal: Principal, action: str, resource: Resource, *, purpose: str | None,
               now: datetime, justification: str | None = None) -> Decision:
        return Decision(True, "role")


class RotationInterruptedError(Exception):
    """Injected to stop a rotation between batches."""


@dataclass
class Vault:
    service: VaultService
    engine: Engine
    audit: AuditLog
    provider: KeyProvider
    clock: FixedClock

    def reveal_all(self, tokens: dict[str, dict[str, str]]) -> None:
        """Reveal every subject with an empty cache, so each data key is unwrapped again."""
        self.service.keys.cache.clear()
        for token, expected in tokens.items():
            assert self.service.reveal(OFFICER, token, ["pesel", "last_name"], PURPOSE) == {
                "pesel": [expected["pesel"]], "last_name": [expected["last_name"]]}

    def kek_versions(self) -> list[int]:
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(repository.data_keys.c.kek_version)).scalars())


def _vault(database_url: str, provider: KeyProvider) -> Vault:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    clock = FixedClock(START)
    audit = AuditLog(engine, Signer.generate("tarcza/test"), clock=clock)
    service = VaultService(engine, provider, audit, AllowAll(), load_catalogue(), clock, MemoryBlobStore())
    return Vault(service, engine, audit, provider, clock)


@pytest.fixture
def memory_vault(database_url: str) -> Iterator[Vault]:
    """A vault with a memory key provider on the test database."""
    vault = _vault(database_url, MemoryKeyProvider())
    yield vault
    vault.audit.close()
    vault.provider.close()
    vault.engine.dispose()


def _subjects(vault: Vault, count: int, seed: int = 7) -> dict[str, dict[str, str]]:
    fake = Faker("pl_PL")
    fake.seed_instance(seed)
    people = [{"first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel()}
              for _ in range(count)]
    tokens = vault.service.create_subjects(OFFICER, [NewSubject("debtor", p) for p in people])
    return dict(zip(tokens, people, strict=True))


class TestKeyRotation:
    """VaultService.rotate_keys (vault.rotation.KeyRotation)."""

    def test_rotation_loses_nothing(self, database_url: str, key_provider: KeyProvider) -> None:
        """After a rotation every key is wrapped under the new KEK, the old one is gone, and all subjects reveal."""
        vault = _vault(database_url, key_provider)
        try:
            subjects = _subjects(vault, 12)
            before = key_provider.current_version()
            report = vault.service.rotate_keys(batch_size=5)
            assert report.to_version == key_provider.current_version() == before + 1
            assert (report.from_version, report.rewrapped, report.retired) == (before, 12, [before])
            assert report.resumed is False
            assert key_provider.versions() == [before + 1]
            assert vault.kek_versions() == [before + 1] * 12
            vault.reveal_all(subjects)
            [entry] = vault.audit.query(EntryFilter(event_type="vault.key_rotated")).items
            assert entry.event["payload"] == {"from_version": before, "to_version": before + 1, "rewrapped": 12}
        finally:
            vault.audit.close()
            vault.engine.dispose()

    def test_interrupted_rotation_resumes(self, memory_vault: Vault) -> None:
        """A rotation stopped after two batches keeps every subject readable and finishes on the next run."""
        vault = memory_vault
        subjects = _subjects(vault, 10)
        batches: list[int] = []

        def stop_after_two(done: int, total: int) -> None:
            if done:
                batches.append(done)
            if len(batches) == 2:
                raise RotationInterruptedError

        with pytest.raises(RotationInterruptedError):
            vault.service.rotate_keys(stop_after_two, batch_size=3)
        assert vault.kek_versions() == [1, 1, 1, 1, 2, 2, 2, 2, 2, 2]
        assert vault.provider.versions() == [1, 2]
        vault.reveal_all(subjects)  # half old, half new: both unwrap
        report = vault.service.rotate_keys(batch_size=3)
        assert report.resumed is True
        assert (report.from_version, report.to_version, report.rewrapped, report.retired) == (1, 2, 10, [1])
        assert vault.provider.versions() == [2]
        assert vault.kek_versions() == [2] * 10
        vault.reveal_all(subjects)
        assert len(vault.audit.query(EntryFilter(event_type="vault.key_rotated")).items) == 1

    def test_reads_and_writes_keep_working_during_rotation(self, memory_vault: Vault) -> None:
        """Between batches every subject reveals, and a subject created mid-rotation uses the new KEK."""
        vault = memory_vault
        subjects = _subjects(vault, 7)
        created: list[str] = []
        fake = Faker("pl_PL")
        fake.seed_instance(8)

        def between_batches(done: int, total: int) -> None:
            vault.reveal_all(subjects)
            if done == 2:
                fresh = {"first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel()}
                token = vault.service.create_subject(OFFICER, "third_party", fresh)
                created.append(token)
                subjects[token] = fresh

        vault.service.rotate_keys(between_batches, batch_size=2)
        assert created
        assert vault.kek_versions() == [2] * 8
        vault.reveal_all(subjects)

    def test_second_rotation_retires_the_previous_version(self, memory_vault: Vault) -> None:
        """Two rotations in a row leave only the newest KEK version."""
        vault = memory_vault
        subjects = _subjects(vault, 3)
        vault.service.rotate_keys()
        vault.clock.advance(timedelta(days=90))
        report = vault.service.rotate_keys()
        assert (report.from_version, report.to_version, report.retired) == (2, 3, [2])
        assert vault.provider.versions() == [3]
        vault.reveal_all(subjects)

    def test_stale_keyfile_cannot_wrap_under_a_retired_version(self, database_url: str, tmp_path: Path) -> None:
        """A process still holding the pre-rotation keyfile is refused when it creates a subject."""
        path = tmp_path / "kek.json"
        rotating = _vault(database_url, LocalKeyfileProvider.create(path))
        stale_provider = LocalKeyfileProvider.open(path)
        stale: Any = None
        try:
            _subjects(rotating, 2)
            rotating.service.rotate_keys()
            stale = VaultService(rotating.engine, stale_provider, rotating.audit, AllowAll(), load_catalogue(),
                                 rotating.clock, MemoryBlobStore())
            with pytest.raises(KeyProviderError, match="older than the newest key rotation"):
                stale.create_subject(OFFICER, "debtor", {"first_name": "Jan"})
            fresh = VaultService(rotating.engine, LocalKeyfileProvider.open(path), rotating.audit, AllowAll(),
                                 load_catalogue(), rotating.clock, MemoryBlobStore())
            assert fresh.create_subject(OFFICER, "debtor", {"first_name": "Jan"})
        finally:
            stale_provider.close()
            rotating.audit.close()
            rotating.provider.close()
            rotating.engine.dispose()
