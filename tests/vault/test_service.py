"""The vault service: tokens, the data-key cache, create, update, masked view, reveal, search,
recordings, and every way sealed data must fail closed. Each database test runs on SQLite and
PostgreSQL (the ``database_url`` fixture); all personal data is synthetic (Faker pl_PL)."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from faker import Faker
from sqlalchemy import Engine, inspect, select, update

from audit.checkpoint import Signer
from audit.events import SUBJECT_TOKEN_PATTERN, ActorKind
from audit.repository import EntryFilter
from audit.sequencer import PreparedEntry, Receipt
from audit.service import AuditLog
from core import migrate
from core.clock import FixedClock
from core.db import Base, make_engine, write_connection
from core.errors import ConflictError, InvalidInputError, PermissionDeniedError
from identity.principal import Principal, Role
from policies.authorizer import Decision, Resource
from vault import access as vault_access
from vault import models, repository
from vault.blobs import SEGMENT_SIZE, BlobNotFoundError, LocalBlobStore
from vault.datakeys import DataKeyCache
from vault.envelope import open_field
from vault.errors import InvalidFieldValueError, SubjectNotFoundError, VaultDecryptError
from vault.fields import load_catalogue
from vault.keys import MemoryKeyProvider
from vault.service import Action, NewSubject, SubjectShreddedError, VaultService
from vault.shredding import ErasureClearance
from vault.tokens import encode_base62, is_token, new_token
from vault.validators import normalise

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PURPOSE = "debt_collection"
TOKEN_RE = re.compile(SUBJECT_TOKEN_PATTERN)

COLLECTOR = Principal("u-collector", ActorKind.USER, frozenset({Role.COLLECTOR}),
                      second_factor_at=START - timedelta(minutes=1))
COLLECTOR_NO_2FA = Principal("u-collector-2", ActorKind.USER, frozenset({Role.COLLECTOR}))
AUDITOR = Principal("u-auditor", ActorKind.USER, frozenset({Role.AUDITOR}), second_factor_at=START)
NOBODY = Principal("u-nobody", ActorKind.USER)
CRM = Principal("crm", ActorKind.CLIENT, scopes=frozenset({"vault:write"}))


def cleared(*tokens: str) -> ErasureClearance:
    """What the erasure decision (gdpr.erasure) would hand the vault for ``tokens`` (these tests are the vault's)."""
    return ErasureClearance(frozenset(tokens))


class PolicyStub:
    """A small stand-in for the Cedar authorizer, with the rules these tests rely on.

    Users without a role are refused everything. A reveal needs a second factor verified in
    the last 15 minutes and is refused to auditors; purpose ``emergency`` with a
    justification is allowed as break-glass. Everything else is allowed.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str | None]] = []

    def decide(self, principal: Principal, action: str, resource: Resource, *, purpose: str | None,
               now: datetime, justification: str | None = None) -> Decision:
        self.calls.append((principal.id, action, resource.id, purpose))
        if principal.kind is ActorKind.USER and not principal.roles:
            return Decision(False, "role", "no role")
        if action == Action.REVEAL:
            if Role.AUDITOR in principal.roles:
                return Decision(False, "role", "auditors do not reveal")
            if principal.second_factor_at is None or now - principal.second_factor_at > timedelta(minutes=15):
                return Decision(False, "second_factor", "second factor too old")
            if purpose == "emergency" and justification:
                return Decision(True, "break_glass", break_glass=True)
        return Decision(True, "role")


class SwitchableAuditLog(AuditLog):
    """An audit log whose appends fail for chosen event types, and that notes each append in a journal.

    It hooks the sequencer, through which every append (``record``, ``append``, ``append_many``) goes.
    """

    def __init__(self, *args: Any, journal: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail_types: set[str] = set()
        self.journal = journal
        real_append = self.sequencer.append

        def append(entries: Sequence[PreparedEntry], *args: Any, **kwargs: Any) -> list[Receipt]:
            if any(entry.event.type in self.fail_types for entry in entries):
                raise OSError("audit storage unavailable")
            self.journal.extend(f"audit:{entry.event.type}" for entry in entries)
            return real_append(entries, *args, **kwargs)

        self.sequencer.append = append  # type: ignore[method-assign]


class CountingProvider(MemoryKeyProvider):
    """A memory key provider that counts unwraps."""

    def __init__(self) -> None:
        super().__init__()
        self.unwraps = 0

    def unwrap(self, kek_version: int, wrapped: bytes, *, aad: bytes) -> bytes:
        self.unwraps += 1
        return super().unwrap(kek_version, wrapped, aad=aad)


@dataclass
class Env:
    service: VaultService
    engine: Engine
    audit: SwitchableAuditLog
    clock: FixedClock
    provider: CountingProvider
    blobs: LocalBlobStore
    authorizer: PolicyStub
    journal: list[str]

    def events(self, subject: str | None = None, event_type: str | None = None) -> list[dict[str, Any]]:
        page = self.audit.query(EntryFilter(subject=subject, event_type=event_type), limit=10_000)
        return [entry.event for entry in page.items]


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """A vault on the test database, a memory key provider, a local blob store and a fixed clock; every
    opening of field rows by the gate is noted in the journal (``decrypt``)."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    clock = FixedClock(START)
    journal: list[str] = []
    audit = SwitchableAuditLog(engine, Signer.generate("tarcza/test"), clock=clock, journal=journal)
    provider = CountingProvider()
    blobs = LocalBlobStore(tmp_path / "blobs")
    authorizer = PolicyStub()
    service = VaultService(engine, provider, audit, authorizer, load_catalogue(), clock, blobs)
    original_open = vault_access.open_rows

    def spying_open(*args: Any, **kwargs: Any) -> dict[str, list[str]]:
        journal.append("decrypt")
        return original_open(*args, **kwargs)

    monkeypatch.setattr(vault_access, "open_rows", spying_open)
    yield Env(service, engine, audit, clock, provider, blobs, authorizer, journal)
    audit.close()
    provider.close()
    engine.dispose()


@pytest.fixture
def fake() -> Faker:
    faker = Faker("pl_PL")
    faker.seed_instance(20260302)
    return faker


def person(fake: Faker) -> dict[str, str | list[str]]:
    """Synthetic values for every common field, each valid for its validator."""
    while True:
        phone = fake.phone_number()
        try:
            normalise("phone", "phone", phone)
            break
        except InvalidFieldValueError:
            continue
    return {
        "first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel(),
        "phone": [phone], "email": [fake.unique.safe_email()], "iban": [fake.iban()],
        "address": [fake.address().replace("\n", ", ")],
    }


def canonical(fields: dict[str, str | list[str]]) -> dict[str, list[str]]:
    catalogue = load_catalogue()
    out: dict[str, list[str]] = {}
    for name, value in fields.items():
        values = [value] if isinstance(value, str) else value
        out[name] = [normalise(name, catalogue.get(name).kind, v) for v in values]
    return out


class TestSubjectToken:
    """vault.tokens."""

    def test_token_shape(self) -> None:
        """A subject token is sub_ and 22 base62 characters, and matches the audit log's subject pattern."""
        token = new_token()
        assert token.startswith("sub_")
        assert len(token) == 26
        assert TOKEN_RE.fullmatch(token)
        assert is_token(token)
        assert not is_token(token, "rec_")
        assert not is_token("sub_" + "!" * 22)

    def test_tokens_do_not_repeat(self) -> None:
        """Ten thousand fresh tokens are all different."""
        assert len({new_token() for _ in range(10_000)}) == 10_000

    def test_base62_is_fixed_width(self) -> None:
        """Every 16-byte value, the smallest and the largest, encodes to exactly 22 characters."""
        assert encode_base62(bytes(16), 22) == "0" * 22
        assert len(encode_base62(b"\xff" * 16, 22)) == 22
        with pytest.raises(ValueError, match="do not fit"):
            encode_base62(b"\xff" * 17, 22)


class TestDataKeyCache:
    """vault.datakeys.DataKeyCache."""

    def test_cache_is_bounded(self) -> None:
        """The cache holds at most max_entries keys and drops the least recently used first."""
        cache = DataKeyCache(FixedClock(START), ttl=60, max_entries=3)
        for i in range(3):
            cache.put(f"s{i}", 1, bytes([i]) * 32)
        assert cache.get("s0", 1) is not None  # s0 is now the most recently used
        cache.put("s3", 1, b"3" * 32)
        cache.put("s4", 1, b"4" * 32)
        assert len(cache) == 3
        assert cache.get("s1", 1) is None
        assert cache.get("s2", 1) is None
        assert cache.get("s0", 1) == bytes([0]) * 32

    def test_cache_expires(self) -> None:
        """A key is served for ttl seconds after it was cached, then dropped."""
        clock = FixedClock(START)
        cache = DataKeyCache(clock, ttl=60)
        cache.put("s", 1, b"k" * 32)
        clock.advance(timedelta(seconds=59))
        assert cache.get("s", 1) == b"k" * 32
        clock.advance(timedelta(seconds=2))
        assert cache.get("s", 1) is None
        assert len(cache) == 0

    def test_evict_subject_removes_all_its_keys(self) -> None:
        """Evicting a subject forgets each of its key versions and nothing else."""
        cache = DataKeyCache(FixedClock(START))
        cache.put("a", 1, b"1" * 32)
        cache.put("a", 2, b"2" * 32)
        cache.put("b", 1, b"3" * 32)
        assert cache.evict_subject("a") == 2
        assert ("a", 1) not in cache
        assert ("b", 1) in cache

    def test_cache_is_thread_safe(self) -> None:
        """Concurrent puts and gets from many threads never break the bound."""
        cache = DataKeyCache(FixedClock(START), max_entries=50)

        def work(n: int) -> None:
            for i in range(500):
                cache.put(f"s{n}-{i}", 1, b"k" * 32)
                cache.get(f"s{n}-{i // 2}", 1)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(cache) == 50

    def test_repr_shows_no_key(self) -> None:
        """The cache's repr tells its size, never a key."""
        cache = DataKeyCache(FixedClock(START))
        cache.put("s", 1, b"\x01secret-key-bytes-0123456789abcd")
        assert "secret" not in repr(cache)


class TestSchema:
    """core/migrations/versions/0003_vault.py against vault/models.py."""

    def test_migration_matches_models(self, database_url: str) -> None:
        """The migrated tables have exactly the columns the models declare."""
        engine = make_engine(database_url)
        migrate.upgrade(engine)
        try:
            inspector = inspect(engine)
            for name in models.VAULT_TABLES:
                table = Base.metadata.tables[name]
                assert {c["name"] for c in inspector.get_columns(name)} == set(table.columns.keys())
        finally:
            engine.dispose()


class TestCreateSubject:
    """VaultService.create_subject and create_subjects."""

    def test_create_seals_and_logs_field_names_only(self, env: Env, fake: Faker) -> None:
        """Creating a subject returns a token and logs its field names and kind, never a value."""
        fields = person(fake)
        token = env.service.create_subject(CRM, "debtor", fields)
        assert is_token(token)
        [event] = env.events(token, "vault.subject_created")
        assert event["payload"] == {"fields": sorted(fields), "subject_kind": "debtor"}
        assert event["actor"] == {"id": "crm", "kind": "client"}
        leaf = str(event)
        assert str(fields["pesel"]) not in leaf
        assert str(fields["last_name"]) not in leaf
        with env.engine.connect() as conn:
            rows = repository.select_fields(conn, token)
        assert len(rows) == len(fields)
        assert all(str(fields["pesel"]).encode() not in row.envelope for row in rows)

    def test_invalid_value_names_field_and_rule_not_value(self, env: Env, fake: Faker) -> None:
        """A refused value names the field and the rule, never the value, and nothing is stored or logged."""
        fields = person(fake)
        bad = str(fields["pesel"])[:-1] + str((int(str(fields["pesel"])[-1]) + 1) % 10)
        fields["pesel"] = bad
        with pytest.raises(InvalidFieldValueError) as caught:
            env.service.create_subject(CRM, "debtor", fields)
        assert (caught.value.field, caught.value.rule) == ("pesel", "pesel-checksum")
        assert bad not in str(caught.value)
        assert bad not in str(caught.value.problem())
        assert env.events() == []
        with env.engine.connect() as conn:
            assert conn.execute(select(repository.subjects)).first() is None

    def test_unknown_field_and_kind_are_refused(self, env: Env) -> None:
        """A field outside the catalogue, or an unknown subject kind, is refused."""
        with pytest.raises(InvalidFieldValueError) as caught:
            env.service.create_subject(CRM, "debtor", {"shoe_size": "44"})
        assert caught.value.rule == "unknown-field"
        with pytest.raises(InvalidInputError, match="kind"):
            env.service.create_subject(CRM, "neighbour", {"first_name": "Jan"})

    def test_single_valued_field_takes_one_value(self, env: Env) -> None:
        """A field that is not multi refuses two different values."""
        with pytest.raises(InvalidFieldValueError) as caught:
            env.service.create_subject(CRM, "debtor", {"first_name": ["Jan", "Piotr"]})
        assert caught.value.rule == "single-valued"

    def test_idempotent_retry_returns_the_same_token(self, env: Env, fake: Faker) -> None:
        """A retry with the same key returns the first token; another request with that key is a conflict."""
        fields = person(fake)
        first = env.service.create_subject(CRM, "debtor", fields, idempotency_key="import-1")
        again = env.service.create_subject(CRM, "debtor", fields, idempotency_key="import-1")
        assert again == first
        assert len(env.events(event_type="vault.subject_created")) == 1
        with pytest.raises(ConflictError):
            env.service.create_subject(CRM, "debtor", person(fake), idempotency_key="import-1")
        other_client = Principal("dialer", ActorKind.CLIENT)
        assert env.service.create_subject(other_client, "debtor", fields, idempotency_key="import-1") != first

    def test_bulk_create(self, env: Env, fake: Faker) -> None:
        """create_subjects makes one subject per request, each with its own entry and data key."""
        tokens = env.service.create_subjects(CRM, [NewSubject("debtor", person(fake)) for _ in range(20)]
                                             + [NewSubject("third_party", person(fake))])
        assert len(set(tokens)) == 21
        assert len(env.events(event_type="vault.subject_created")) == 21
        with env.engine.connect() as conn:
            assert conn.execute(select(repository.data_keys)).all().__len__() == 21

    def test_refused_create_is_logged(self, env: Env, fake: Faker) -> None:
        """A principal the policies refuse cannot create a subject, and the refusal is logged."""
        with pytest.raises(PermissionDeniedError, match="role"):
            env.service.create_subject(NOBODY, "debtor", person(fake))
        [event] = env.events(event_type="vault.access")
        assert event["payload"]["decision"] == "deny"
        assert event["payload"]["action"] == Action.CREATE

    def test_failed_audit_append_stores_nothing(self, env: Env, fake: Faker) -> None:
        """When the creation cannot be logged the subject is not stored."""
        env.audit.fail_types = {"vault.subject_created"}
        with pytest.raises(OSError, match="audit"):
            env.service.create_subject(CRM, "debtor", person(fake))
        with env.engine.connect() as conn:
            assert conn.execute(select(repository.subjects)).first() is None
        assert len(env.service.keys.cache) == 0


class TestUpdateField:
    """VaultService.update_field."""

    def test_update_replaces_values(self, env: Env, fake: Faker) -> None:
        """Updating a field replaces all its values, keeps the others, and is logged."""
        fields = person(fake)
        token = env.service.create_subject(CRM, "debtor", fields)
        env.service.update_field(CRM, token, "phone", ["+48 600 100 200", "22 397 29 80"])
        revealed = env.service.reveal(COLLECTOR, token, ["phone", "pesel"], PURPOSE)
        assert revealed == {"phone": ["+48600100200", "+48223972980"], "pesel": [str(fields["pesel"])]}
        [event] = env.events(token, "vault.field_updated")
        assert event["payload"]["fields"] == ["phone"]
        assert env.service.search(COLLECTOR, "phone", "600100200", PURPOSE) == [token]
        assert env.service.search(COLLECTOR, "phone", str(canonical(fields)["phone"][0]), PURPOSE) == []

    def test_update_refuses_invalid_value(self, env: Env, fake: Faker) -> None:
        """An invalid new value is refused before anything is logged or changed."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        with pytest.raises(InvalidFieldValueError):
            env.service.update_field(CRM, token, "email", "not-an-address")
        assert env.events(token, "vault.field_updated") == []


class TestMaskedView:
    """VaultService.masked_view."""

    def test_masked_view_needs_no_second_factor(self, env: Env, fake: Faker) -> None:
        """A collector without a second factor sees masked values; the read is authorised and logged."""
        fields = person(fake)
        token = env.service.create_subject(CRM, "debtor", fields)
        view = env.service.masked_view(COLLECTOR_NO_2FA, token)
        assert view["pesel"] == ["*******" + str(fields["pesel"])[-4:]]
        assert view["last_name"] == [fields["last_name"]]  # collectors see names in full
        assert view["address"] == [canonical(fields)["address"][0]]
        assert view["iban"][0].startswith("PL**")
        assert ("u-collector-2", Action.READ_MASKED, token, None) in env.authorizer.calls
        [event] = env.events(token, "vault.access")
        assert event["payload"]["view"] == "masked"
        assert event["payload"]["decision"] == "allow"
        assert event["payload"]["fields"] == sorted(fields)

    def test_masks_follow_the_role(self, env: Env, fake: Faker) -> None:
        """An auditor sees every field redacted; selected fields only are returned when asked."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        assert env.service.masked_view(AUDITOR, token, ["pesel", "last_name"]) == {
            "pesel": ["[redacted]"], "last_name": ["[redacted]"]}

    def test_refused_masked_view_is_logged(self, env: Env, fake: Faker) -> None:
        """A refused masked view raises and is logged with decision deny."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        with pytest.raises(PermissionDeniedError):
            env.service.masked_view(NOBODY, token)
        [event] = env.events(token, "vault.access")
        assert (event["payload"]["decision"], event["payload"]["view"]) == ("deny", "masked")
        assert "decrypt" not in env.journal


class TestReveal:
    """VaultService.reveal."""

    def test_reveal_writes_the_audit_entry_first(self, env: Env, fake: Faker) -> None:
        """The access entry is appended before anything is decrypted."""
        fields = person(fake)
        token = env.service.create_subject(CRM, "debtor", fields)
        env.journal.clear()
        revealed = env.service.reveal(COLLECTOR, token, ["pesel", "email"], PURPOSE)
        assert revealed == {"pesel": [fields["pesel"]], "email": fields["email"]}
        assert env.journal == ["audit:vault.access", "decrypt"]
        [event] = env.events(token, "vault.access")
        assert event["payload"] == {"fields": ["pesel", "email"], "purpose": PURPOSE, "decision": "allow",
                                    "view": "full", "break_glass": False, "action": "reveal"}

    def test_reveal_without_audit_entry_is_impossible(self, env: Env, fake: Faker) -> None:
        """If the access entry cannot be appended, the reveal fails and nothing is decrypted."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        env.audit.fail_types = {"vault.access"}
        env.journal.clear()
        with pytest.raises(OSError, match="audit"):
            env.service.reveal(COLLECTOR, token, ["pesel"], PURPOSE)
        assert env.journal == []

    def test_refused_reveal_is_logged_and_raises(self, env: Env, fake: Faker) -> None:
        """A reveal without a fresh second factor is logged as denied and raises naming the rule kind."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        with pytest.raises(PermissionDeniedError) as caught:
            env.service.reveal(COLLECTOR_NO_2FA, token, ["pesel"], PURPOSE)
        assert caught.value.extra["rule"] == "second_factor"
        [event] = env.events(token, "vault.access")
        assert event["payload"]["decision"] == "deny"
        assert event["payload"]["reason"] == "second_factor"
        assert "decrypt" not in env.journal

    def test_second_factor_goes_stale(self, env: Env, fake: Faker) -> None:
        """The decision uses the service clock: a second factor older than the policy allows is refused."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        env.service.reveal(COLLECTOR, token, ["pesel"], PURPOSE)
        env.clock.advance(timedelta(minutes=20))
        with pytest.raises(PermissionDeniedError):
            env.service.reveal(COLLECTOR, token, ["pesel"], PURPOSE)

    def test_justification_is_sealed_and_break_glass_recorded(self, env: Env, fake: Faker) -> None:
        """A justification reaches the log only sealed under the subject's key; break-glass is flagged."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        reason = "Dłużnik dzwoni w sprawie ugody, potwierdzenie tożsamości"
        env.service.reveal(COLLECTOR, token, ["pesel"], "emergency", justification=reason)
        [event] = env.events(token, "vault.access")
        assert event["payload"]["break_glass"] is True
        assert reason not in str(event)
        sealed = event["payload"]["justification"]
        import base64

        envelope = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        with env.engine.connect() as conn:
            data_key = env.service.keys.get(conn, token, 1)
        assert open_field(data_key, envelope, subject=token, field="~justification").decode() == reason

    def test_unknown_subject(self, env: Env) -> None:
        """An unknown or malformed token is SubjectNotFoundError, and nothing is asked or logged."""
        with pytest.raises(SubjectNotFoundError):
            env.service.reveal(COLLECTOR, new_token(), ["pesel"], PURPOSE)
        with pytest.raises(SubjectNotFoundError):
            env.service.reveal(COLLECTOR, "'; DROP TABLE x; --", ["pesel"], PURPOSE)
        assert env.events() == []

    def test_purpose_must_be_an_identifier(self, env: Env, fake: Faker) -> None:
        """A purpose that is not a policy identifier is refused before any decision."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        with pytest.raises(InvalidInputError, match="purpose"):
            env.service.reveal(COLLECTOR, token, ["pesel"], "call +48 600 100 200")

    def test_data_keys_are_cached_and_expire(self, env: Env, fake: Faker) -> None:
        """Repeated reveals reuse the unwrapped key until the cache entry expires."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        env.service.keys.cache.clear()
        env.service.reveal(COLLECTOR, token, ["pesel"], PURPOSE)
        env.service.reveal(COLLECTOR, token, ["last_name"], PURPOSE)
        assert env.provider.unwraps == 1
        env.clock.advance(timedelta(seconds=61))
        env.service.masked_view(COLLECTOR, token)
        assert env.provider.unwraps == 2


class RestrictedStub(PolicyStub):
    """The stub, refusing any action on a subject under a GDPR restriction."""

    def decide(self, principal: Principal, action: str, resource: Resource, *, purpose: str | None,
               now: datetime, justification: str | None = None) -> Decision:
        if resource.restricted:
            return Decision(False, "restriction", "restricted")
        return super().decide(principal, action, resource, purpose=purpose, now=now, justification=justification)


class TestRevealMany:
    """VaultService.reveal_many: one decision and one entry per subject, one commit, then decryption."""

    def test_values_match_single_reveals_and_come_in_order(self, env: Env, fake: Faker) -> None:
        """Every subject's values are what a single reveal gives, in the order asked (repeats once)."""
        people = [person(fake) for _ in range(5)]
        tokens = env.service.create_subjects(CRM, [NewSubject("debtor", p) for p in people])
        asked = [tokens[3], tokens[0], tokens[3], tokens[4]]
        results = env.service.reveal_many(COLLECTOR, asked, ["pesel", "phone", "last_name"], PURPOSE)
        assert [r.subject for r in results] == [tokens[3], tokens[0], tokens[4]]
        for result in results:
            assert result.error is None
            assert result.fields == env.service.reveal(COLLECTOR, result.subject, ["pesel", "phone", "last_name"],
                                                       PURPOSE)

    def test_every_entry_is_committed_before_anything_is_decrypted(self, env: Env, fake: Faker) -> None:
        """All the access entries go in one append, before the first decryption."""
        tokens = env.service.create_subjects(CRM, [NewSubject("debtor", person(fake)) for _ in range(4)])
        env.journal.clear()
        env.service.reveal_many(COLLECTOR, tokens, ["pesel"], PURPOSE)
        assert env.journal[:4] == ["audit:vault.access"] * 4
        assert set(env.journal[4:]) == {"decrypt"}
        for token in tokens:
            [event] = env.events(token, "vault.access")
            assert event["payload"]["decision"] == "allow"
            assert event["actor"]["id"] == COLLECTOR.id

    def test_failed_append_reveals_nothing(self, env: Env, fake: Faker) -> None:
        """If the entries cannot be appended, the call fails and nothing is decrypted."""
        tokens = env.service.create_subjects(CRM, [NewSubject("debtor", person(fake)) for _ in range(3)])
        env.audit.fail_types = {"vault.access"}
        env.journal.clear()
        with pytest.raises(OSError, match="audit"):
            env.service.reveal_many(COLLECTOR, tokens, ["pesel"], PURPOSE)
        assert "decrypt" not in env.journal

    def test_unknown_shredded_and_refused_subjects_get_errors_in_place(self, env: Env, fake: Faker) -> None:
        """Errors stand in for the subjects that cannot be revealed; a refusal is logged as denied."""
        tokens = env.service.create_subjects(CRM, [NewSubject("debtor", person(fake)) for _ in range(4)])
        env.service.shred(CRM, tokens[1], cleared(tokens[1]))
        service = VaultService(env.engine, env.provider, env.audit, RestrictedStub(), load_catalogue(), env.clock,
                               env.blobs,
                               resources_for=lambda ts: [Resource("subject", t, restricted=t == tokens[2]) for t in ts])
        unknown = new_token()
        results = service.reveal_many(COLLECTOR, [tokens[0], tokens[1], tokens[2], unknown, "not-a-token"],
                                      ["pesel"], PURPOSE)
        assert results[0].fields is not None
        assert results[0].error is None
        codes = [r.error.problem()["type"] if r.error else None for r in results]
        assert codes == [None, "urn:tarcza:problem:subject-shredded", "urn:tarcza:problem:forbidden",
                         "urn:tarcza:problem:subject-not-found", "urn:tarcza:problem:subject-not-found"]
        assert results[2].to_json() == {"subject": tokens[2], "error": results[2].error.problem()}  # type: ignore[union-attr]
        [denied] = env.events(tokens[2], "vault.access")
        assert (denied["payload"]["decision"], denied["payload"]["reason"]) == ("deny", "restriction")
        assert env.events(unknown) == []

    def test_refused_for_everyone_without_a_fresh_second_factor(self, env: Env, fake: Faker) -> None:
        """Without a fresh second factor every subject is refused, and each refusal is logged."""
        tokens = env.service.create_subjects(CRM, [NewSubject("debtor", person(fake)) for _ in range(3)])
        env.journal.clear()
        results = env.service.reveal_many(COLLECTOR_NO_2FA, tokens, ["pesel"], PURPOSE)
        assert all(r.fields is None and r.error is not None for r in results)
        assert "decrypt" not in env.journal
        assert [env.events(t, "vault.access")[0]["payload"]["reason"] for t in tokens] == ["second_factor"] * 3

    def test_bad_requests_are_refused_before_anything_happens(self, env: Env, fake: Faker) -> None:
        """No fields, a bad purpose, no subjects or too many: InvalidInputError, nothing logged."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        size = env.audit.size()
        for tokens, names, purpose in (([token], [], PURPOSE), ([token], ["pesel"], "Bad Purpose"),
                                       ([], ["pesel"], PURPOSE),
                                       ([new_token() for _ in range(1001)], ["pesel"], PURPOSE)):
            with pytest.raises(InvalidInputError):
                env.service.reveal_many(COLLECTOR, tokens, names, purpose)
        with pytest.raises(InvalidFieldValueError):
            env.service.reveal_many(COLLECTOR, [token], ["no_such_field"], PURPOSE)
        assert env.audit.size() == size


class TestSearch:
    """VaultService.search."""

    def test_search_matches_normalised_values(self, env: Env, fake: Faker) -> None:
        """Search finds a subject by any spelling of a value and logs the field, count and tokens."""
        fields = person(fake)
        fields["last_name"] = "Żółkiewska"
        fields["phone"] = ["600 100 200"]
        token = env.service.create_subject(CRM, "debtor", fields)
        env.service.create_subject(CRM, "debtor", person(fake))
        assert env.service.search(COLLECTOR, "last_name", "ZOLKIEWSKA", PURPOSE) == [token]
        assert env.service.search(COLLECTOR, "phone", "+48 600-100-200", PURPOSE) == [token]
        assert env.service.search(COLLECTOR, "pesel", str(fields["pesel"]), PURPOSE) == [token]
        assert env.service.search(COLLECTOR, "pesel", fake.pesel(), PURPOSE) == []
        events = env.events(event_type="vault.search")
        assert events[0]["payload"] == {"field": "last_name", "matches": 1, "purpose": PURPOSE, "subjects": [token]}
        assert "Żółkiewska" not in str(events)

    def test_field_without_blind_index_is_not_searchable(self, env: Env) -> None:
        """Searching a field that has no blind index is refused by name."""
        with pytest.raises(InvalidFieldValueError) as caught:
            env.service.search(COLLECTOR, "address", "ul. Długa 1", PURPOSE)
        assert caught.value.rule == "not-searchable"

    def test_refused_search_is_logged(self, env: Env) -> None:
        """A refused search raises and leaves a deny entry."""
        with pytest.raises(PermissionDeniedError):
            env.service.search(NOBODY, "pesel", "44051401359", PURPOSE)
        [event] = env.events(event_type="vault.access")
        assert (event["payload"]["action"], event["payload"]["decision"]) == ("search", "deny")


class TestRecordings:
    """VaultService.store_recording and read_recording."""

    def test_round_trip_and_audit(self, env: Env, fake: Faker) -> None:
        """A recording streams back whole and by range; storing and each playback are logged."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        audio = bytes(range(256)) * 1000
        info = env.service.store_recording(CRM, token, io.BytesIO(audio), "audio/ogg")
        assert (info.size, info.subject) == (len(audio), token)
        assert b"".join(env.service.read_recording(COLLECTOR, token, info.recording_id, PURPOSE)) == audio
        part = env.service.read_recording(COLLECTOR, token, info.recording_id, PURPOSE, start=70_000, end=140_000)
        assert b"".join(part) == audio[70_000:140_000]
        [stored] = env.events(token, "recording.stored")
        assert stored["payload"] == {"recording_id": info.recording_id, "sha256": info.sha256, "size": len(audio),
                                     "media_type": "audio/ogg"}
        played = env.events(token, "recording.played")
        assert [e["payload"].get("range_end") for e in played] == [None, 140_000]

    def test_playback_is_logged_before_streaming(self, env: Env, fake: Faker) -> None:
        """If the playback cannot be logged, no byte of the recording is returned."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        info = env.service.store_recording(CRM, token, [b"abc" * 1000], "audio/wav")
        env.audit.fail_types = {"recording.played"}
        with pytest.raises(OSError, match="audit"):
            env.service.read_recording(COLLECTOR, token, info.recording_id, PURPOSE)

    def test_failed_store_leaves_no_blob(self, env: Env, fake: Faker) -> None:
        """When storing cannot be logged, the sealed blob is removed again."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        env.audit.fail_types = {"recording.stored"}
        with pytest.raises(OSError, match="audit"):
            env.service.store_recording(CRM, token, [b"abc"], "audio/wav")
        assert [p for p in env.blobs.root.iterdir() if not p.name.startswith(".")] == []

    def test_recording_belongs_to_its_subject(self, env: Env, fake: Faker) -> None:
        """A recording cannot be played through another subject's token."""
        first = env.service.create_subject(CRM, "debtor", person(fake))
        second = env.service.create_subject(CRM, "debtor", person(fake))
        info = env.service.store_recording(CRM, first, [b"abc"], "audio/wav")
        with pytest.raises(BlobNotFoundError):
            env.service.read_recording(COLLECTOR, second, info.recording_id, PURPOSE)

    def test_media_type_is_checked(self, env: Env, fake: Faker) -> None:
        """A media type that is not type/subtype is refused."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        with pytest.raises(InvalidInputError, match="media type"):
            env.service.store_recording(CRM, token, [b"abc"], "Jan Kowalski")


class TestFailsClosed:
    """Sealed fields, wrapped keys and recordings that were tampered with or moved."""

    def _reveal_fails(self, env: Env, token: str, fields: list[str], secret: str) -> None:
        env.service.keys.cache.clear()
        with pytest.raises(VaultDecryptError) as caught:
            env.service.reveal(COLLECTOR, token, fields, PURPOSE)
        assert str(caught.value) == "sealed data could not be opened"
        assert secret not in repr(caught.value.problem())
        assert caught.value.__cause__ is None

    def _envelope(self, env: Env, token: str, field: str) -> bytes:
        with env.engine.connect() as conn:
            return repository.select_fields(conn, token, [field])[0].envelope

    def _set_envelope(self, env: Env, token: str, field: str, envelope: bytes) -> None:
        table = repository.fields
        with write_connection(env.engine) as conn:
            conn.execute(update(table).where(table.c.subject_token == token, table.c.field == field)
                         .values(envelope=envelope))

    def test_tampered_ciphertext_fails_closed(self, env: Env, fake: Faker) -> None:
        """One flipped bit in a stored envelope makes the reveal fail with the opaque VaultDecryptError."""
        fields = person(fake)
        token = env.service.create_subject(CRM, "debtor", fields)
        envelope = bytearray(self._envelope(env, token, "pesel"))
        envelope[25] ^= 0x01
        self._set_envelope(env, token, "pesel", bytes(envelope))
        self._reveal_fails(env, token, ["pesel"], str(fields["pesel"]))

    def test_envelope_moved_to_another_subject_does_not_open(self, env: Env, fake: Faker) -> None:
        """An envelope copied into another subject's row does not decrypt there."""
        first_fields = person(fake)
        first = env.service.create_subject(CRM, "debtor", first_fields)
        second = env.service.create_subject(CRM, "debtor", person(fake))
        self._set_envelope(env, second, "pesel", self._envelope(env, first, "pesel"))
        self._reveal_fails(env, second, ["pesel"], str(first_fields["pesel"]))

    def test_envelope_moved_to_another_field_does_not_open(self, env: Env, fake: Faker) -> None:
        """An envelope copied into another field of the same subject does not decrypt there."""
        fields = person(fake)
        token = env.service.create_subject(CRM, "debtor", fields)
        self._set_envelope(env, token, "last_name", self._envelope(env, token, "first_name"))
        self._reveal_fails(env, token, ["last_name"], str(fields["first_name"]))

    def test_wrapped_key_moved_to_another_subject_does_not_unwrap(self, env: Env, fake: Faker) -> None:
        """A wrapped data key copied to another subject does not unwrap for it."""
        first = env.service.create_subject(CRM, "debtor", person(fake))
        second_fields = person(fake)
        second = env.service.create_subject(CRM, "debtor", second_fields)
        table = repository.data_keys
        with write_connection(env.engine) as conn:
            wrapped = conn.execute(select(table.c.wrapped).where(table.c.subject_token == first)).scalar_one()
            conn.execute(update(table).where(table.c.subject_token == second).values(wrapped=wrapped))
        self._reveal_fails(env, second, ["pesel"], str(second_fields["pesel"]))

    def _recording(self, env: Env, fake: Faker) -> tuple[str, str, Path, bytes]:
        token = env.service.create_subject(CRM, "debtor", person(fake))
        audio = bytes(i % 251 for i in range(3 * SEGMENT_SIZE + 100))
        info = env.service.store_recording(CRM, token, io.BytesIO(audio), "audio/ogg")
        return token, info.recording_id, env.blobs.root / info.recording_id, audio

    def test_truncated_recording_is_refused(self, env: Env, fake: Faker) -> None:
        """A recording missing its last bytes fails to play to the end."""
        token, recording, path, _ = self._recording(env, fake)
        data = path.read_bytes()
        path.write_bytes(data[:-50])
        with pytest.raises(VaultDecryptError):
            b"".join(env.service.read_recording(COLLECTOR, token, recording, PURPOSE))
        path.write_bytes(data[: 28 + SEGMENT_SIZE + 16])  # whole segments only: the last one is gone
        with pytest.raises(VaultDecryptError):
            b"".join(env.service.read_recording(COLLECTOR, token, recording, PURPOSE))

    def test_reordered_recording_is_refused(self, env: Env, fake: Faker) -> None:
        """A recording with two segments swapped fails to play."""
        token, recording, path, _ = self._recording(env, fake)
        data = path.read_bytes()
        stride = SEGMENT_SIZE + 16
        header, first, second, rest = data[:28], data[28:28 + stride], data[28 + stride:28 + 2 * stride], data[
            28 + 2 * stride:]
        path.write_bytes(header + second + first + rest)
        with pytest.raises(VaultDecryptError):
            b"".join(env.service.read_recording(COLLECTOR, token, recording, PURPOSE))

    def test_shredded_subject_reads_are_refused(self, env: Env, fake: Faker) -> None:
        """After shredding, reads name the shredded state rather than failing to decrypt."""
        token = env.service.create_subject(CRM, "debtor", person(fake))
        env.service.shred(CRM, token, cleared(token))
        with pytest.raises(SubjectShreddedError) as caught:
            env.service.reveal(COLLECTOR, token, ["pesel"], PURPOSE)
        assert caught.value.status == 410
