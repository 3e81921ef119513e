"""Plain personal data cannot reach the log's plain fields in disguise (issue 16, defect 9), and free text in
an operator note is sealed by the server under the subject's key; over HTTP and through ``tarcza audit
append``, on SQLite and PostgreSQL. Synthetic data only (Faker pl_PL).

``audit_entries.leaf_input`` can never be erased, so a name, ``601-555-777x``, a full-width ``＠`` or
``0227 0803 624`` that slips past the check is there in clear for ever.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
from dataclasses import dataclass

import pytest
from faker import Faker
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from api.runtime import Runtime
from audit.repository import EntryFilter
from identity.principal import Principal
from tests.headers import client_headers, person_headers
from tests.security.pii_variants import disguised_pii

SEED = 1609
TARCZA = [sys.executable, "-m", "api"]
DISGUISED = ["601-555-777x", "jan.nowak＠example.pl", "0227 0803 624", "0227-0803-624", "６０１５５５７７７",
             "PL61 1090-1014 0000-0712 1981 2874", "+48 (601) 555 777"]


@dataclass
class Api:
    http: TestClient
    runtime: Runtime

    def person(self, *roles: str) -> dict[str, str]:
        return person_headers(self.runtime, *roles)

    def system(self, *scopes: str) -> dict[str, str]:
        return client_headers(self.runtime, *scopes)


@pytest.fixture
def api(initialised_runtime: Runtime) -> Api:
    return Api(TestClient(create_app(runtime=initialised_runtime), raise_server_exceptions=False),
               initialised_runtime)


@pytest.fixture
def fake() -> Faker:
    faker = Faker("pl_PL")
    faker.seed_instance(SEED)
    return faker


def new_subject(api: Api, fake: Faker, last_name: str | None = None) -> str:
    fields = {"first_name": fake.first_name_female(), "last_name": last_name or fake.last_name_female(),
              "pesel": fake.pesel(), "phone": "+48 512 345 678", "email": "anna.testowa@example.pl"}
    created = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": fields},
                            headers=api.system("subjects:write"))
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


def leaf_inputs(runtime: Runtime) -> bytes:
    from sqlalchemy import text

    with runtime.engine.connect() as conn:
        return b"\n".join(bytes(r[0]) for r in conn.execute(text("SELECT leaf_input FROM audit_entries")))


def notes(runtime: Runtime) -> list[int]:
    """The log indexes of every operator note."""
    return [e.index for e in runtime.audit.query(EntryFilter(event_type="operator.note"), limit=100).items]


class TestDisguisedPii:
    @pytest.mark.parametrize("value", DISGUISED)
    def test_disguised_number_in_a_note_code_is_refused(self, api: Api, value: str) -> None:
        """An operator note whose code holds a phone, PESEL, e-mail or IBAN in disguise is a 422 that does not
        echo it, and nothing reaches the log."""
        answer = api.http.post("/v1/audit/events", headers=api.person("compliance_officer"), json={
            "type": "operator.note", "payload": {"code": value}})
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert value not in answer.text
        assert notes(api.runtime) == []

    @pytest.mark.parametrize("value", DISGUISED)
    def test_disguised_number_in_a_creditor_name_is_refused(self, api: Api, fake: Faker, value: str) -> None:
        """Free text that another route puts in a log entry (a debt's creditor) is checked the same way:
        422, and the value is nowhere in the log's leaf inputs."""
        subject = new_subject(api, fake)
        answer = api.http.post("/v1/debts", headers=api.system("contacts:write"), json={
            "id": "D-40401", "subject": subject, "creditor": f"Bank {value}", "kind": "general",
            "consumer": True, "amount_minor": 100_00, "due_date": "2025-06-30"})
        assert answer.status_code == 422, answer.text
        assert value.encode() not in leaf_inputs(api.runtime)

    def test_the_subject_s_own_name_in_a_note_is_refused(self, api: Api, fake: Faker) -> None:
        """A note about a subject whose code spells the subject's own name (in any case, without its accents,
        with other separators) is refused; the same code about another subject is accepted."""
        subject = new_subject(api, fake, last_name="Wójcik-Zielińska")
        other = new_subject(api, fake, last_name="Nowak")
        officer = api.person("compliance_officer")
        for code in ("called_wojcik_zielinska", "WOJCIKZIELINSKA:visit", "visit.wójcik"):
            answer = api.http.post("/v1/audit/events", headers=officer, json={
                "type": "operator.note", "subject": subject, "payload": {"code": code}})
            assert answer.status_code == 422, (code, answer.text)
            assert "wojcik" not in answer.text.lower()
        accepted = api.http.post("/v1/audit/events", headers=officer, json={
            "type": "operator.note", "subject": other, "payload": {"code": "called_wojcik_zielinska"}})
        assert accepted.status_code == 201, accepted.text

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(value=disguised_pii())
    def test_property_disguised_pii_never_reaches_the_log(self, api: Api, fake: Faker, value: str) -> None:
        """Property: PESEL, phone, e-mail and IBAN values with inserted separators, full-width forms, other
        scripts' digits and look-alike letters are refused in a note's code and in a creditor's name."""
        if id(api) not in _SUBJECTS:  # one subject for all the examples of this run
            _SUBJECTS.clear()
            _SUBJECTS[id(api)] = new_subject(api, fake)
        officer, crm = api.person("compliance_officer"), api.system("contacts:write")
        note = api.http.post("/v1/audit/events", headers=officer, json={
            "type": "operator.note", "payload": {"code": value}})
        debt = api.http.post("/v1/debts", headers=crm, json={
            "id": f"D-{next(_DEBT_IDS)}", "subject": _SUBJECTS[id(api)], "creditor": f"Bank {value}",
            "kind": "general", "consumer": True, "amount_minor": 100_00, "due_date": "2025-06-30"})
        assert (note.status_code, debt.status_code) == (422, 422), (note.text, debt.text)


_DEBT_IDS = itertools.count(50000)
_SUBJECTS: dict[int, str] = {}


class TestSealedDetails:
    def test_note_details_are_sealed_by_the_server_under_the_subject_s_key(self, api: Api, fake: Faker) -> None:
        """An operator note's details are sent in plain text and stored sealed under the subject's key: not in
        the leaf, and they open for the DPO; caller bytes that merely look sealed are sealed like any text."""
        subject = new_subject(api, fake)
        looks_sealed = base64.urlsafe_b64encode(b"\x01" * 48).decode().rstrip("=")
        for details in ("Dłużnik prosił o kontakt po 17:00, numer w aktach.", looks_sealed):
            answer = api.http.post("/v1/audit/events", headers=api.person("compliance_officer"), json={
                "type": "operator.note", "subject": subject, "payload": {"code": "callback_requested",
                                                                          "details": details}})
            assert answer.status_code == 201, answer.text
            entry = api.runtime.audit.get(answer.json()["index"]).event
            assert details.encode() not in leaf_inputs(api.runtime)
            sealed = base64.urlsafe_b64decode(entry["payload"]["details"] + "==")
            dpo = dpo_principal(api)
            opened = api.runtime.vault.open_event_values(dpo, subject, [("note", sealed)], "audit", full=True)
            assert opened == [details]

    def test_details_without_a_subject_are_refused(self, api: Api) -> None:
        """Details need a subject to be sealed under: without one the note is a 422 and nothing is logged."""
        answer = api.http.post("/v1/audit/events", headers=api.system("audit:append"), json={
            "type": "operator.note", "payload": {"code": "callback_requested", "details": "po 17:00"}})
        assert answer.status_code == 422, answer.text
        assert notes(api.runtime) == []


def dpo_principal(api: Api) -> Principal:
    headers = api.person("dpo")
    from api.auth import identity_transaction

    with identity_transaction(api.runtime) as identity:
        return identity.resolve_bearer(headers["Authorization"].removeprefix("Bearer "), source_ip=None)


class TestCliAppend:
    def test_cli_refuses_system_types_and_seals_details(self, cli_env: dict[str, str]) -> None:
        """`tarcza audit append` refuses a type only Tarcza writes with one error line naming it (exit 1), and
        refuses a disguised phone number in a note's code; a plain note is appended."""
        def tarcza(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*TARCZA, *args], env=cli_env, capture_output=True, text=True, timeout=120,
                                  check=False)

        assert tarcza("init").returncode == 0
        forged = tarcza("audit", "append", "--type", "policy.break_glass_reviewed", "--payload",
                        json.dumps({"entry_index": 0, "verdict": "justified"}))
        assert forged.returncode == 1, forged.stdout
        assert forged.stderr.strip().startswith("error:")
        assert "policy.break_glass_reviewed" in forged.stderr
        assert len(forged.stderr.strip().splitlines()) == 1
        disguised = tarcza("audit", "append", "--type", "operator.note", "--payload",
                           json.dumps({"code": "0227-0803-624"}))
        assert disguised.returncode == 1
        assert "0227-0803-624" not in disguised.stderr
        note = tarcza("audit", "append", "--type", "operator.note", "--payload", json.dumps({"code": "backup_done"}))
        assert note.returncode == 0, note.stderr
        assert json.loads(note.stdout)["index"] >= 0
