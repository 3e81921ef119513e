"""Idempotency-Key over HTTP (api/idempotency.py, ADR 0010), on SQLite and PostgreSQL: a retry gets the
first answer and has no second effect; a key reused for another request is refused; answers are sealed
at rest, expire, and a 5xx is not kept. Synthetic data only (Faker pl_PL, fixed seed)."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faker import Faker
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from api.app import create_app
from api.cli.common import initialise_runtime
from api.idempotency import (
    ANSWER_TTL,
    IN_PROGRESS_LEASE,
    TABLE,
    AnswerBox,
    IdempotencyStore,
    StoredAnswerError,
    fingerprint_of,
)
from api.runtime import Runtime
from audit.repository import EntryFilter
from core.clock import FixedClock
from core.settings import Settings
from identity.testing import add_client_token, add_session, add_user

SEED = 20261124
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TUESDAY_10 = "2026-11-17T10:00:00+01:00"


@dataclass
class Api:
    http: TestClient
    runtime: Runtime
    clock: FixedClock

    def person(self, *roles: str, user_id: str | None = None) -> tuple[str, dict[str, str]]:
        """(user id, headers) of a user with ``roles`` and a fresh second factor; a new session of
        ``user_id`` if given."""
        now = self.clock.now()
        with self.runtime.sessions.begin() as session:
            from identity.models import User

            user = session.get(User, user_id) if user_id else add_user(session, roles=roles, now=now)
            assert user is not None
            token = add_session(session, user, now=now, second_factor_at=now - timedelta(minutes=1))
            return user.id, {"Authorization": f"Bearer {token}"}

    def system(self, *scopes: str) -> dict[str, str]:
        with self.runtime.sessions.begin() as session:
            token = add_client_token(session, scopes=scopes, now=self.clock.now())
        return {"Authorization": f"Bearer {token}"}

    def count(self, table: str, where: str = "1=1", **params: Any) -> int:
        with self.runtime.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar_one())

    def stored(self) -> list[Any]:
        with self.runtime.engine.connect() as conn:
            return list(conn.execute(select(TABLE)).all())


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    clock = FixedClock(START)
    runtime = Runtime(settings, clock=clock)
    initialise_runtime(runtime)
    yield Api(TestClient(create_app(runtime=runtime), raise_server_exceptions=False), runtime, clock)
    runtime.close()


@pytest.fixture
def fake() -> Faker:
    faker = Faker("pl_PL")
    faker.seed_instance(SEED)
    return faker


def new_client(name: str) -> dict[str, Any]:
    return {"name": name, "scopes": ["audit:read"]}


class TestReplay:
    def test_retry_gets_the_first_answer_and_has_no_second_effect(self, api: Api) -> None:
        """Creating an API client twice with one key: one client, one audit entry, the same secret in both
        answers, the second marked Idempotent-Replayed; no-store kept on the replay."""
        _, admin = api.person("admin")
        key = {"Idempotency-Key": "client-7f3a"}
        first = api.http.post("/v1/clients", json=new_client("crm"), headers={**admin, **key})
        again = api.http.post("/v1/clients", json=new_client("crm"), headers={**admin, **key})
        assert (first.status_code, again.status_code) == (201, 201), again.text
        assert again.json() == first.json()
        assert first.json()["client_secret"]
        assert "idempotent-replayed" not in first.headers
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["cache-control"] == "no-store"
        assert api.count("identity_clients") == 1
        created = api.runtime.audit.query(EntryFilter(event_type="identity.client_created"), limit=10).items
        assert len(created) == 1

    def test_reuse_with_another_request_is_refused(self, api: Api) -> None:
        """The same key with another body, or on another path, is a 422 idempotency-key-reuse; nothing is created."""
        _, admin = api.person("admin")
        key = {"Idempotency-Key": "client-reuse"}
        assert api.http.post("/v1/clients", json=new_client("crm"), headers={**admin, **key}).status_code == 201
        other = api.http.post("/v1/clients", json=new_client("dialer"), headers={**admin, **key})
        assert other.status_code == 422
        assert other.headers["content-type"] == "application/problem+json"
        assert other.json()["type"] == "urn:tarcza:problem:idempotency-key-reuse"
        elsewhere = api.http.post("/v1/users", json={"username": "ewa.nowak", "password": "Zielony-Parasol-2026",
                                                     "roles": ["collector"]}, headers={**admin, **key})
        assert elsewhere.status_code == 422
        assert api.count("identity_clients") == 1
        assert api.count("identity_users", "username = :u", u="ewa.nowak") == 0

    def test_the_key_belongs_to_its_principal(self, api: Api) -> None:
        """Another principal with the same key gets its own effect, not the first principal's answer."""
        _, first_admin = api.person("admin")
        _, second_admin = api.person("admin")
        key = {"Idempotency-Key": "shared-looking-key"}
        one = api.http.post("/v1/clients", json=new_client("crm"), headers={**first_admin, **key})
        two = api.http.post("/v1/clients", json=new_client("crm"), headers={**second_admin, **key})
        assert (one.status_code, two.status_code) == (201, 201)
        assert one.json()["client_id"] != two.json()["client_id"]
        assert "idempotent-replayed" not in two.headers

    def test_a_kept_4xx_is_replayed(self, api: Api) -> None:
        """A refusal after the route ran (an unknown subject: 404) is kept and replayed as it was."""
        _, dpo = api.person("dpo")
        body = {"subject": "sub_nieznany", "kind": "access", "received_on": "2026-11-20", "channel": "letter"}
        key = {"Idempotency-Key": "dsr-404"}
        first = api.http.post("/v1/gdpr/requests", json=body, headers={**dpo, **key})
        again = api.http.post("/v1/gdpr/requests", json=body, headers={**dpo, **key})
        assert first.status_code == again.status_code == 404
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["type"] == first.json()["type"]
        assert again.headers["content-type"] == "application/problem+json"

    def test_no_header_no_row(self, api: Api) -> None:
        """Without Idempotency-Key nothing is written to http_idempotency."""
        _, admin = api.person("admin")
        assert api.http.post("/v1/clients", json=new_client("crm"), headers=admin).status_code == 201
        assert api.stored() == []

    def test_validation_failure_does_not_take_the_key(self, api: Api) -> None:
        """A body that fails validation never ran: the key stays free for the corrected request."""
        _, admin = api.person("admin")
        key = {"Idempotency-Key": "fix-and-retry"}
        bad = api.http.post("/v1/clients", json={"name": "crm", "scopes": ["audit:read"], "colour": "red"},
                            headers={**admin, **key})
        assert bad.status_code == 422
        assert api.http.post("/v1/clients", json=new_client("crm"), headers={**admin, **key}).status_code == 201


class TestInProgressAndFailures:
    def test_a_retry_while_the_first_runs_is_409_until_the_lease_passes(self, api: Api) -> None:
        """A claimed key without an answer: 409 idempotency-in-progress with Retry-After; once the lease
        has passed (the first process stopped), the retry takes the claim over and runs."""
        user_id, admin = api.person("admin")
        body = json.dumps(new_client("crm")).encode()
        store = IdempotencyStore(api.runtime.engine, api.clock, lambda: pytest.fail("no sealing here"))
        _, row = store.claim(f"user:{user_id}", "in-flight", "POST", "/v1/clients",
                             fingerprint_of("POST", "/v1/clients", hashlib.sha256(body).digest()))
        assert row is None
        headers = {**admin, "Idempotency-Key": "in-flight", "Content-Type": "application/json"}
        busy = api.http.post("/v1/clients", content=body, headers=headers)
        assert busy.status_code == 409
        assert busy.json()["type"] == "urn:tarcza:problem:idempotency-in-progress"
        assert int(busy.headers["retry-after"]) > 0
        assert api.count("identity_clients") == 0
        api.clock.advance(IN_PROGRESS_LEASE + timedelta(seconds=1))
        _, admin = api.person(user_id=user_id)
        taken = api.http.post("/v1/clients", content=body, headers={**headers, **admin})
        assert taken.status_code == 201, taken.text
        assert api.count("identity_clients") == 1

    def test_a_5xx_is_not_kept(self, api: Api, fake: Faker) -> None:
        """With the keyfile gone the request fails (500) and the claim is released; once the keyfile is
        back, the same retry runs and succeeds."""
        _, dpo = api.person("dpo")
        keyfile = api.runtime.settings.keyfile_path
        moved = keyfile.with_name("kek.json.away")
        keyfile.rename(moved)
        body = {"subject": "sub_x", "kind": "access", "received_on": "2026-11-20", "channel": "letter"}
        key = {"Idempotency-Key": "dsr-5xx"}
        failed = api.http.post("/v1/gdpr/requests", json=body, headers={**dpo, **key})
        assert failed.status_code >= 500
        assert api.stored() == []
        moved.rename(keyfile)
        token = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": {
            "first_name": fake.first_name(), "last_name": fake.last_name()}}, headers=dpo).json()["token"]
        body["subject"] = token
        first = api.http.post("/v1/gdpr/requests", json=body, headers={**dpo, "Idempotency-Key": "dsr-ok"})
        again = api.http.post("/v1/gdpr/requests", json=body, headers={**dpo, "Idempotency-Key": "dsr-ok"})
        assert first.status_code == again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        assert api.count("gdpr_requests") == 1


class TestStorage:
    def test_stored_answers_are_sealed(self, api: Api) -> None:
        """The stored answer holds neither the client secret nor any other value of the answer in clear."""
        _, admin = api.person("admin")
        answer = api.http.post("/v1/clients", json=new_client("crm-sealed"),
                               headers={**admin, "Idempotency-Key": "sealed-1"}).json()
        (row,) = api.stored()
        assert row.status_code == 201
        stored = bytes(row.response)
        assert stored.startswith(b"TZ\x01")  # a frame of the sealing recipe (vault/aead.py)
        for value in (answer["client_secret"], answer["client_id"], "crm-sealed", "audit:read"):
            assert value.encode() not in stored
        assert b"client_secret" not in stored

    def test_a_sealed_answer_opens_only_for_its_principal_and_key(self) -> None:
        """The associated data binds principal and key: an answer copied to another row does not open."""
        box = AnswerBox(random.Random(SEED).randbytes(32))
        sealed = box.seal(b'{"client_secret":"x"}', principal="user:a", key="k")
        assert box.open(sealed, principal="user:a", key="k") == b'{"client_secret":"x"}'
        for principal, key in (("user:b", "k"), ("user:a", "k2")):
            with pytest.raises(StoredAnswerError):
                box.open(sealed, principal=principal, key=key)
        tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
        with pytest.raises(StoredAnswerError):
            box.open(tampered, principal="user:a", key="k")

    def test_answers_expire(self, api: Api) -> None:
        """After 24 hours a retry runs again (a second client), and expired rows are deleted as claims go by."""
        user_id, admin = api.person("admin")
        key = {"Idempotency-Key": "old-key"}
        first = api.http.post("/v1/clients", json=new_client("crm"), headers={**admin, **key})
        api.clock.advance(ANSWER_TTL + timedelta(seconds=1))
        _, admin = api.person(user_id=user_id)
        again = api.http.post("/v1/clients", json=new_client("crm"), headers={**admin, **key})
        assert again.status_code == 201
        assert "idempotent-replayed" not in again.headers
        assert again.json()["client_id"] != first.json()["client_id"]
        api.clock.advance(ANSWER_TTL + timedelta(seconds=1))
        _, admin = api.person(user_id=user_id)
        api.http.post("/v1/clients", json=new_client("later"), headers={**admin, "Idempotency-Key": "new"})
        with api.runtime.engine.connect() as conn:
            keys = set(conn.execute(select(TABLE.c.key)).scalars())
            expired = conn.execute(select(func.count()).select_from(TABLE).where(
                TABLE.c.expires_at <= api.clock.now())).scalar_one()
        assert keys == {"new"}
        assert expired == 0


class TestServiceDeduplication:
    def test_contacts_replay_is_the_services_answer(self, api: Api, fake: Faker) -> None:
        """POST /v1/contacts retried: one log entry, the first receipt marked duplicate and replayed; the
        service answers the same even when the HTTP row is gone (a crash before it was kept, or expiry);
        another body under the key is a 422."""
        collector = api.system("contacts:write", "subjects:write")
        token = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": {
            "first_name": fake.first_name(), "last_name": fake.last_name()}}, headers=collector).json()["token"]
        body = {"subject": token, "channel": "phone", "agent_id": "agent-007", "started_at": TUESDAY_10,
                "outcome": "no_answer"}
        key = {"Idempotency-Key": "contact-1"}
        first = api.http.post("/v1/contacts", json=body, headers={**collector, **key})
        again = api.http.post("/v1/contacts", json=body, headers={**collector, **key})
        assert (first.status_code, again.status_code) == (201, 201), first.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["duplicate"] is True
        assert (again.json()["event_id"], again.json()["index"]) == (first.json()["event_id"], first.json()["index"])
        with api.runtime.engine.begin() as conn:
            conn.execute(TABLE.delete())
        after_loss = api.http.post("/v1/contacts", json=body, headers={**collector, **key})
        assert after_loss.status_code == 201
        assert after_loss.json()["event_id"] == first.json()["event_id"]
        assert after_loss.headers["idempotent-replayed"] == "true"
        other = api.http.post("/v1/contacts", json={**body, "outcome": "answered"}, headers={**collector, **key})
        assert other.status_code == 422
        assert other.json()["type"] == "urn:tarcza:problem:idempotency-key-reuse"
        entries = api.runtime.audit.query(EntryFilter(subject=token, event_type="contact.attempted"), limit=10)
        assert len(entries.items) == 1

    def test_audit_append_retry(self, api: Api, fake: Faker) -> None:
        """POST /v1/audit/events retried: one entry, 200 with the first receipt and the replay header, although
        the note's details are sealed again (into other bytes) on the retry."""
        token = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": {
            "first_name": fake.first_name(), "last_name": fake.last_name()}},
            headers=api.system("subjects:write")).json()["token"]
        appender = api.system("audit:append")
        event = {"type": "operator.note", "subject": token,
                 "payload": {"code": "callback_requested", "details": "Prosi o telefon po 17:00."}}
        first = api.http.post("/v1/audit/events", json=event, headers={**appender, "Idempotency-Key": "ev-1"})
        again = api.http.post("/v1/audit/events", json=event, headers={**appender, "Idempotency-Key": "ev-1"})
        assert (first.status_code, again.status_code) == (201, 200), first.text
        assert again.json()["index"] == first.json()["index"]
        assert again.headers["idempotent-replayed"] == "true"
        assert len(api.runtime.audit.query(EntryFilter(event_type="operator.note"), limit=10).items) == 1

    def test_upload_is_answered_once(self, api: Api, fake: Faker) -> None:
        """A recording uploaded twice with one key is stored once; the retry gets the first answer; other
        bytes under the key are a 422."""
        dialer = api.system("subjects:write", "contacts:write")
        token = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": {
            "first_name": fake.first_name(), "last_name": fake.last_name()}}, headers=dialer).json()["token"]
        audio = random.Random(SEED).randbytes(200_000)
        url = f"/v1/subjects/{token}/recordings"
        headers = {**dialer, "Content-Type": "audio/ogg", "Idempotency-Key": "rec-1"}
        first = api.http.post(url, content=audio, params={"announced": "true"}, headers=headers)
        again = api.http.post(url, content=audio, params={"announced": "true"}, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201), first.text
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert api.count("vault_recordings") == 1
        other = api.http.post(url, content=audio[:-1], params={"announced": "true"}, headers=headers)
        assert other.status_code == 422
        assert api.count("vault_recordings") == 1
