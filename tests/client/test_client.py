"""The typed client against a real ``tarcza serve`` (SQLite; one case on PostgreSQL): authentication
and renewal, idempotent replays and retries, problem details as typed exceptions, and every
operation an integrating system uses. Synthetic data only (Faker pl_PL)."""

from __future__ import annotations

import base64
import hashlib
import io
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest
from faker import Faker

from audit.merkle import verify_inclusion
from tarcza_client import (
    Case,
    Contact,
    ContactRefusedError,
    Debt,
    ForbiddenError,
    Gps,
    NewGdprRequest,
    NewSubject,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    TarczaClient,
    TransportError,
    UnauthorizedError,
    UnprocessableError,
)
from tests.client.conftest import ALL_SCOPES, Fault, FlakyProxy, Server, running_server
from tests.serving import free_port

TUESDAY_10 = datetime.fromisoformat("2026-11-17T10:00:00+01:00")  # a Polish working day, 10:00 in Warsaw
TUESDAY_03 = datetime.fromisoformat("2026-11-17T03:00:00+01:00")  # outside the allowed hours
NO_WAIT = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05)


class ManualClock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Debtor:
    token: str
    debt_id: str
    case_id: str
    last_name: str
    pesel: str


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Faker:
    """Synthetic Polish data, seeded per test: the module's tests share one server, not their people."""
    faker = Faker("pl_PL")
    faker.seed_instance(zlib.crc32(request.node.nodeid.encode()))
    return faker


@pytest.fixture
def tarcza(sqlite_server: Server, credentials: tuple[str, str]) -> Iterator[TarczaClient]:
    with TarczaClient(sqlite_server.url, *credentials, retry=NO_WAIT) as client:
        yield client


def new_debtor(tarcza: TarczaClient, fake: Faker) -> Debtor:
    last_name, pesel = fake.last_name(), fake.pesel()
    token = tarcza.create_subject(NewSubject(kind="debtor", fields={
        "first_name": fake.first_name(), "last_name": last_name, "pesel": pesel, "phone": [fake.phone_number()]}))
    suffix = uuid.uuid4().hex[:12]  # debts and cases are global: ids unique across the module's tests
    debt = tarcza.add_debt(Debt(id=f"D-{suffix}", subject=token, creditor="Przykładowy Bank S.A.", kind="general",
                                consumer=True, amount_minor=1_250_000, due_date=date(2025, 6, 30)))
    case = tarcza.open_case(Case(id=f"C-{suffix}", subject=token, debt_id=debt.id))
    return Debtor(token, debt.id, case.id, last_name, pesel)


def call(debtor: Debtor, at: datetime = TUESDAY_10, **extra: object) -> Contact:
    return Contact.model_validate({"subject": debtor.token, "channel": "phone", "agent_id": "agent-007",
                                   "started_at": at, "debt_id": debtor.debt_id, "case_id": debtor.case_id,
                                   "outcome": "no_answer", **extra})


def logins(tarcza: TarczaClient, client_id: str) -> int:
    return sum(1 for _ in tarcza.audit_events(type="identity.login_succeeded", actor=client_id))


def carries(exc: BaseException, secret: str) -> bool:
    """Whether ``secret`` is anywhere in the exception: message, repr, attributes, or a chained exception."""
    texts = [str(exc), repr(exc), repr(exc.args), repr(vars(exc))]
    chained = [e for e in (exc.__cause__, exc.__context__) if e is not None]
    return any(secret in t for t in texts) or any(carries(e, secret) for e in chained)


class TestAuthentication:
    def test_token_is_renewed_before_it_expires(self, sqlite_server: Server, credentials: tuple[str, str]) -> None:
        """The client keeps its access token while it is fresh and fetches a new one shortly before expiry."""
        clock = ManualClock()
        client_id = credentials[0]
        with TarczaClient(sqlite_server.url, *credentials, clock=clock, renew_before=60) as tarcza:
            before = logins(tarcza, client_id)  # the first call fetched a token (15 minutes)
            clock.now = 14 * 60 - 1  # a minute and a second left: kept
            assert logins(tarcza, client_id) == before
            clock.now = 14 * 60  # within renew_before of the expiry: renewed
            assert logins(tarcza, client_id) == before + 1

    def test_a_token_revoked_on_the_server_is_renewed_once(self, sqlite_server: Server,
                                                           credentials: tuple[str, str], fake: Faker) -> None:
        """A 401 for a token the server no longer accepts makes the client get a new token and retry."""
        with TarczaClient(sqlite_server.url, *credentials, retry=NO_WAIT) as tarcza:
            debtor = new_debtor(tarcza, fake)
            stale = tarcza._token
            assert stale is not None
            logout = httpx.post(sqlite_server.url + "/v1/auth/logout", headers={"Authorization": f"Bearer {stale}"})
            assert logout.status_code == 204
            assert [d.id for d in tarcza.subject_debts(debtor.token)] == [debtor.debt_id]
            assert tarcza._token not in (None, stale)

    def test_wrong_secret_is_an_unauthorized_problem_without_the_secret(self, sqlite_server: Server,
                                                                        credentials: tuple[str, str]) -> None:
        """A wrong secret raises UnauthorizedError (invalid-client, with the request id) that does not carry it."""
        wrong = "tzc_" + "x" * 43
        with TarczaClient(sqlite_server.url, credentials[0], wrong, retry=NO_WAIT) as tarcza, \
                pytest.raises(UnauthorizedError) as raised:
            tarcza.subject_debts("sub_nobody")
        problem = raised.value
        assert (problem.status, problem.code, problem.extensions["error"]) == (401, "invalid-client", "invalid_client")
        assert problem.request_id
        assert not carries(problem, wrong)
        assert not carries(problem, credentials[1])


class TestIdempotency:
    def test_replayed_contact_has_one_effect(self, tarcza: TarczaClient, fake: Faker) -> None:
        """The same Idempotency-Key twice: the same receipt, marked duplicate, and one contact in the history."""
        debtor = new_debtor(tarcza, fake)
        first = tarcza.record_contact(call(debtor), idempotency_key="dialer-call-0001")
        again = tarcza.record_contact(call(debtor), idempotency_key="dialer-call-0001")
        assert (again.event_id, again.index, again.duplicate) == (first.event_id, first.index, True)
        assert first.duplicate is False
        assert [c.event_id for c in tarcza.contact_history(debtor.token)] == [first.event_id]

    def test_replayed_subject_creation_returns_the_same_token(self, tarcza: TarczaClient, fake: Faker) -> None:
        """Creating a subject twice with one key gives one token."""
        subject = NewSubject(kind="debtor", fields={"last_name": fake.last_name(), "pesel": fake.pesel()})
        assert tarcza.create_subject(subject, idempotency_key="crm-42") == tarcza.create_subject(
            subject, idempotency_key="crm-42")

    def test_a_lost_answer_is_retried_with_the_same_key(self, tarcza: TarczaClient, credentials: tuple[str, str],
                                                        flaky_proxy: FlakyProxy, fake: Faker) -> None:
        """The server records the contact but the answer is lost: the retry carries the same key and gets the
        first receipt, so the contact is recorded once."""
        debtor = new_debtor(tarcza, fake)
        flaky_proxy.faults.append(Fault("POST", "/v1/contacts", "drop_answer"))
        with TarczaClient(flaky_proxy.url, *credentials, retry=NO_WAIT) as through_proxy:
            receipt = through_proxy.record_contact(call(debtor))
        posts = [key for method, path, key in flaky_proxy.seen if (method, path) == ("POST", "/v1/contacts")]
        assert len(posts) == 2
        assert posts[0] == posts[1]
        assert posts[0]
        assert receipt.duplicate is True
        assert [c.event_id for c in tarcza.contact_history(debtor.token)] == [receipt.event_id]

    def test_503_is_retried_after_the_wait_the_server_asks(self, credentials: tuple[str, str],
                                                           flaky_proxy: FlakyProxy, fake: Faker,
                                                           tarcza: TarczaClient) -> None:
        """A 503 with Retry-After (a load balancer while the backend restarts) is retried after that wait."""
        debtor = new_debtor(tarcza, fake)
        flaky_proxy.faults.append(Fault("POST", "/v1/contacts/batch", "503"))
        waits: list[float] = []
        with TarczaClient(flaky_proxy.url, *credentials, retry=NO_WAIT, sleep=waits.append) as through_proxy:
            results = through_proxy.record_contacts([call(debtor), call(debtor, TUESDAY_03)])
        assert waits == [1.0]
        assert results[0].receipt is not None
        assert results[0].error is None
        assert results[1].error is not None
        assert results[1].error.type.endswith("contact-refused")
        batches = [key for method, path, key in flaky_proxy.seen if path == "/v1/contacts/batch"]
        assert len(batches) == 2
        assert batches[0] == batches[1]

    def test_connection_refused_is_retried_then_raised_without_the_body(self, credentials: tuple[str, str],
                                                                        fake: Faker) -> None:
        """Nothing listens: the client tries ``attempts`` times with growing waits, then raises a
        TransportError that carries neither the note nor the secret."""
        waits: list[float] = []
        note = f"Dłużnik podał PESEL {fake.pesel()}"
        contact = Contact(subject="sub_x", channel="phone", agent_id="a", started_at=TUESDAY_10, notes=note)
        with TarczaClient(f"http://127.0.0.1:{free_port()}", *credentials, sleep=waits.append,
                          retry=RetryPolicy(attempts=3, backoff=0.5, max_backoff=10)) as tarcza, \
                pytest.raises(TransportError) as raised:
            tarcza.record_contact(contact)
        assert raised.value.attempts == 3
        assert len(waits) == 2
        assert 0.25 <= waits[0] <= 0.5
        assert 0.5 <= waits[1] <= 1.0
        assert raised.value.__context__ is None
        assert raised.value.__cause__ is None
        assert not carries(raised.value, note)
        assert not carries(raised.value, credentials[1])
        assert note not in repr(contact)


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server allowing each client 2 requests per second."""
    base = tmp_path_factory.mktemp("client-limited")
    with running_server(base / "var", f"sqlite:///{base / 'var' / 'tarcza.db'}",
                        TARCZA_RATE_LIMIT_CLIENT="2/second") as server:
        yield server


class TestRateLimits:
    def test_429_is_retried_after_the_servers_retry_after(self, limited_server: Server, fake: Faker) -> None:
        """Creating five subjects at once against 2/second: the client waits what Retry-After says (whole
        seconds, not its own short backoff) and every subject is created, once."""
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(seconds)

        credentials = limited_server.add_client("crm-limited", "subjects:write")
        with TarczaClient(limited_server.url, *credentials, retry=NO_WAIT, sleep=sleep) as tarcza:
            tokens = [tarcza.create_subject(NewSubject(kind="debtor", fields={"pesel": fake.pesel()}))
                      for _ in range(5)]
        assert len(set(tokens)) == 5
        assert waits
        assert all(w >= 1 and w == int(w) for w in waits), waits

    def test_a_wait_longer_than_the_policy_allows_raises_rate_limited(self, limited_server: Server) -> None:
        """With ``max_retry_after`` below the server's Retry-After, the 429 is raised as RateLimitedError."""
        credentials = limited_server.add_client("crm-impatient", "gdpr:manage")
        impatient = RetryPolicy(attempts=4, backoff=0.01, max_retry_after=0.5)

        def list_until_refused(tarcza: TarczaClient) -> None:
            for _ in range(10):
                list(tarcza.gdpr_requests())

        with TarczaClient(limited_server.url, *credentials, retry=impatient) as tarcza, \
                pytest.raises(RateLimitedError) as raised:
            list_until_refused(tarcza)
        assert raised.value.status == 429
        assert raised.value.retry_after is not None
        assert raised.value.retry_after >= 1
        assert raised.value.request_id


class TestProblems:
    def test_problems_become_typed_exceptions(self, tarcza: TarczaClient, sqlite_server: Server,
                                              fake: Faker) -> None:
        """404, 409 contact-refused, 422 and 403 each raise their own ProblemError subclass, with the request
        id and the server's words, and none carries the note that was sent."""
        debtor = new_debtor(tarcza, fake)
        with pytest.raises(NotFoundError) as missing:
            tarcza.get_debt("D-does-not-exist")
        assert (missing.value.status, missing.value.code) == (404, "debt-not-found")
        assert missing.value.request_id

        note = f"Rozmówca podał numer {fake.phone_number()} i PESEL {debtor.pesel}"
        with pytest.raises(ContactRefusedError) as refused:
            tarcza.record_contact(call(debtor, TUESDAY_03, notes=note))
        assert [r["rule"] for r in refused.value.rules] == ["allowed_hours"]
        assert not carries(refused.value, note)
        assert not carries(refused.value, debtor.pesel)

        with pytest.raises(UnprocessableError) as invalid:
            tarcza.record_contact(call(debtor, TUESDAY_10.replace(tzinfo=None), notes=note))  # no offset
        assert invalid.value.status == 422
        assert "time zone" in (invalid.value.detail or "")
        assert not carries(invalid.value, note)

        limited_id, limited_secret = sqlite_server.add_client("dialer-only", "contacts:write")
        with TarczaClient(sqlite_server.url, limited_id, limited_secret, retry=NO_WAIT) as dialer, \
                pytest.raises(ForbiddenError) as forbidden:
            dialer.reveal(debtor.token, ["pesel"], "debt_collection")
        assert (forbidden.value.status, forbidden.value.rule) == (403, "scope")
        assert not carries(forbidden.value, debtor.pesel)


class TestOperations:
    def test_contacts_debts_and_cases(self, tarcza: TarczaClient, fake: Faker) -> None:
        """Check, record (a visit with a note and GPS), batch, read masked and in full, history across
        pages, debts and cases."""
        debtor = new_debtor(tarcza, fake)
        assert tarcza.check_contact(call(debtor)).allowed
        verdict = tarcza.check_contact(call(debtor, TUESDAY_03))
        assert not verdict.allowed
        assert [v.rule for v in verdict.violations] == ["allowed_hours"]
        phone = fake.phone_number()
        visit = tarcza.record_contact(call(debtor, channel="visit", outcome="not_at_home",
                                           notes=f"Sąsiad podał nowy numer {phone}.",
                                           gps=Gps(lat=52.2297, lon=21.0122, accuracy_m=15)))
        assert visit.pii_found >= 1
        masked = tarcza.get_contact(visit.event_id)
        assert masked.notes is not None
        assert phone not in masked.notes
        assert masked.gps is None
        full = tarcza.get_contact(visit.event_id, view="full", purpose="debt_collection")
        assert full.notes is not None
        assert phone in full.notes
        assert full.gps is not None

        days = [datetime.fromisoformat(f"2026-10-{d:02d}T11:00:00+02:00") for d in (6, 13, 20)]
        results = tarcza.record_contacts([call(debtor, at) for at in days])
        receipts = [r.receipt for r in results]
        assert all(r is not None and not r.duplicate for r in receipts)
        history = list(tarcza.contact_history(debtor.token, page_size=1))
        assert [h.event_id for h in history] == [visit.event_id] + [r.event_id for r in reversed(receipts) if r]

        [debt] = tarcza.subject_debts(debtor.token)
        assert (debt.id, debt.status, debt.time_barred) == (debtor.debt_id, "open", False)
        assert debt.time_barred_on > debt.due_date
        assert tarcza.get_debt(debtor.debt_id) == debt
        [case] = tarcza.subject_cases(debtor.token)
        assert (case.id, case.status) == (debtor.case_id, "open")
        assert tarcza.close_case(debtor.case_id).status == "closed"

    def test_vault_and_recordings(self, tarcza: TarczaClient, fake: Faker) -> None:
        """Masked read, reveal for a purpose, search by blind index, upload a recording and play it back
        whole and by range."""
        debtor = new_debtor(tarcza, fake)
        masked = tarcza.masked_view(debtor.token, ["pesel", "last_name"])
        assert set(masked.fields) == {"pesel", "last_name"}
        assert debtor.pesel not in str(masked.fields)
        revealed = tarcza.reveal(debtor.token, ["pesel", "last_name"], "debt_collection")
        assert revealed.fields == {"pesel": [debtor.pesel], "last_name": [debtor.last_name]}
        assert debtor.pesel not in repr(revealed)
        assert tarcza.search("pesel", debtor.pesel, "debt_collection") == [debtor.token]

        audio = bytes(range(256)) * 700  # 175 KiB: several encrypted segments
        info = tarcza.upload_recording(debtor.token, io.BytesIO(audio), "audio/ogg", announced=True,
                                       duration_ms=4000)
        assert (info.size, info.sha256, info.duration_ms) == (len(audio), hashlib.sha256(audio).hexdigest(), 4000)
        whole = io.BytesIO()
        assert tarcza.download_recording(debtor.token, info.recording_id, "debt_collection", whole) == len(audio)
        assert whole.getvalue() == audio
        part = io.BytesIO()
        tarcza.download_recording(debtor.token, info.recording_id, "debt_collection", part,
                                  byte_range=(70_000, 70_099))
        assert part.getvalue() == audio[70_000:70_100]

    def test_audit_log_and_gdpr(self, tarcza: TarczaClient, fake: Faker, tmp_path: Path) -> None:
        """Audit entries page by page, a checkpoint and a verifying inclusion proof; a GDPR request created,
        read, listed, verified and exported as a zip archive."""
        debtor = new_debtor(tarcza, fake)
        receipt = tarcza.record_contact(call(debtor))
        entries = list(tarcza.audit_events(subject=debtor.token, page_size=2))
        assert receipt.index in [e.index for e in entries]
        assert len(entries) >= 4
        assert [e.index for e in entries] == sorted(e.index for e in entries)
        checkpoint = tarcza.issue_checkpoint()
        assert checkpoint.tree_size > receipt.index
        assert str(checkpoint.tree_size) in tarcza.latest_checkpoint()
        proof = tarcza.inclusion_proof(receipt.index, checkpoint.tree_size)
        assert proof.leaf_hash == receipt.leaf_hash
        assert proof.root_hash == checkpoint.root_hash
        verify_inclusion(base64.b64decode(proof.leaf_hash), proof.index, proof.tree_size,
                         [base64.b64decode(p) for p in proof.proof], base64.b64decode(proof.root_hash))

        request = tarcza.create_gdpr_request(NewGdprRequest(subject=debtor.token, kind="access",
                                                            received_on=date(2026, 11, 20), channel="letter"))
        assert request.due_on > request.received_on
        assert request.status == "received"
        assert tarcza.gdpr_request(request.id) == request
        assert request.id in [r.id for r in tarcza.gdpr_requests(subject=debtor.token, page_size=1)]
        assert tarcza.verify_gdpr_request(request.id, "id_document").verification is not None
        archive = tmp_path / "export.zip"
        with archive.open("wb") as out:
            assert tarcza.export_gdpr_request(request.id, out) > 0
        with zipfile.ZipFile(archive) as zipped:
            assert zipped.testzip() is None
            assert len(zipped.namelist()) > 1
        assert tarcza.gdpr_request(request.id).status == "completed"


class TestPostgresql:
    @pytest.mark.parametrize("backend", ["postgresql"])
    def test_records_batches_and_replays_on_postgresql(self, pg_database: str, tmp_path: Path, fake: Faker,
                                                       backend: str) -> None:
        """On PostgreSQL too: a client made with the CLI records a contact once for a replayed key, and a batch."""
        with running_server(tmp_path / "var", pg_database) as server:
            client_id, secret = server.add_client("crm-pg", *ALL_SCOPES)
            with TarczaClient(server.url, client_id, secret, retry=NO_WAIT) as tarcza:
                debtor = new_debtor(tarcza, fake)
                first = tarcza.record_contact(call(debtor), idempotency_key="pg-call-1")
                again = tarcza.record_contact(call(debtor), idempotency_key="pg-call-1")
                assert (again.event_id, again.duplicate) == (first.event_id, True)
                later = datetime.fromisoformat("2026-11-20T12:00:00+01:00")
                [result] = tarcza.record_contacts([call(debtor, later)])
                assert result.receipt is not None
                assert len(list(tarcza.contact_history(debtor.token))) == 2
