"""VaultService.seal_for_event: personal parts of an audit event sealed under the subject's key,
on SQLite and PostgreSQL. All values are synthetic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from audit.checkpoint import Signer
from audit.events import ActorKind, build_event, sealed_b64
from audit.service import AuditLog
from core import migrate
from core.clock import FixedClock
from core.db import make_engine
from core.errors import InvalidInputError
from identity.principal import Principal
from policies.authorizer import Decision, Resource
from vault import repository
from vault.envelope import open_field
from vault.errors import InvalidFieldValueError, VaultDecryptError
from vault.fields import load_catalogue
from vault.keys import MemoryKeyProvider
from vault.service import NewSubject, SubjectShreddedError, VaultService, event_field_label
from vault.shredding import ErasureClearance

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEEDER = Principal("demo-seeder", ActorKind.SYSTEM)


def cleared(*tokens: str) -> ErasureClearance:
    """What the erasure decision (gdpr.erasure) would hand the vault for ``tokens`` (these tests are the vault's)."""
    return ErasureClearance(frozenset(tokens))


class AllowAll:
    """An authorizer that allows everything (this test is about sealing, not policy)."""

    def decide(self, principal: Principal, action: str, resource: Resource, *, purpose: str | None,
               now: Any, justification: str | None = None) -> Decision:
        return Decision(True, "role")


@pytest.fixture
def vault(database_url: str) -> Iterator[tuple[VaultService, Engine]]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    clock = FixedClock(START)
    audit = AuditLog(engine, Signer.generate("tarcza/test"), clock=clock)
    provider = MemoryKeyProvider()
    yield VaultService(engine, provider, audit, AllowAll(), load_catalogue(), clock), engine
    audit.close()
    provider.close()
    engine.dispose()


def data_key(service: VaultService, engine: Engine, token: str) -> bytes:
    service.keys.forget(token)
    with engine.connect() as conn:
        return service.keys.get(conn, token, 1)


class TestSealForEvent:
    def test_sealed_note_opens_only_as_an_event_value_of_its_subject(
            self, vault: tuple[VaultService, Engine]) -> None:
        """The bytes open under the subject's key with the event label, not as a stored field or another subject."""
        service, engine = vault
        token, other = service.create_subjects(SEEDER, [NewSubject("debtor", {"last_name": "Wiśniewska"}),
                                                        NewSubject("debtor", {"last_name": "Zając"})])
        sealed = service.seal_for_event(token, "note", "Obiecała  wpłatę do piątku. ")
        key = data_key(service, engine, token)
        assert open_field(key, sealed, subject=token, field=event_field_label("note")) == \
            "Obiecała wpłatę do piątku.".encode()
        with pytest.raises(VaultDecryptError):
            open_field(key, sealed, subject=token, field="note")
        with pytest.raises(VaultDecryptError):
            open_field(data_key(service, engine, other), sealed, subject=other, field=event_field_label("note"))

    def test_gps_is_normalised_and_fits_a_contact_event(self, vault: tuple[VaultService, Engine]) -> None:
        """A visit's position is validated, normalised, and accepted as the Sealed gps of a contact event."""
        service, engine = vault
        token = service.create_subject(SEEDER, "debtor", {"last_name": "Kowalczyk"})
        sealed = service.seal_for_event(token, "gps", "52.2297, 21.0122")
        assert open_field(data_key(service, engine, token), sealed, subject=token,
                          field=event_field_label("gps")) == b"52.229700,21.012200"
        event = build_event("contact.attempted", actor=SEEDER.actor, time=START, subject=token, payload={
            "channel": "visit", "direction": "outbound", "agent_id": "agent-3", "gps": sealed_b64(sealed)})
        assert event.payload["gps"] == sealed_b64(sealed)

    def test_invalid_values_and_unknown_fields_are_refused(self, vault: tuple[VaultService, Engine]) -> None:
        """A value its field's validator refuses, an unknown field, or a list, is refused before anything is sealed."""
        service, _ = vault
        token = service.create_subject(SEEDER, "debtor", {"last_name": "Nowak"})
        with pytest.raises(InvalidFieldValueError):
            service.seal_for_event(token, "gps", "north of Kraków")
        with pytest.raises(InvalidFieldValueError):
            service.seal_for_event(token, "mood", "calm")
        with pytest.raises(InvalidInputError):
            service.seal_for_event(token, "note", ["a", "b"])  # type: ignore[arg-type]

    def test_shredded_subject_cannot_seal(self, vault: tuple[VaultService, Engine]) -> None:
        """Once a subject is shredded nothing more is sealed under its (destroyed) key."""
        service, engine = vault
        token = service.create_subject(SEEDER, "debtor", {"last_name": "Lewandowski"})
        service.shred(SEEDER, token, cleared(token))
        with pytest.raises(SubjectShreddedError):
            service.seal_for_event(token, "note", "Wizyta bez kontaktu.")
        with engine.connect() as conn:
            assert repository.get_data_key(conn, token, 1) is None
