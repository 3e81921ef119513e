"""Contacts over HTTP, end to end on SQLite and PostgreSQL: debts, cases, the firewall, recording
contacts with scrubbed notes, visits with GPS, refusals in the log, idempotent retries, preferences,
restriction and objection, and case assignment in the vault's decisions. Synthetic data only."""

from __future__ import annotations

import base64
import hashlib
import io
import wave
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from faker import Faker
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.runtime import Runtime
from audit.repository import EntryFilter
from tests.headers import client_headers, person_headers

SEED = 20261123
TUESDAY_10 = "2026-11-17T10:00:00+01:00"  # a working day in Europe/Warsaw
TUESDAY_05 = "2026-11-17T05:30:00+01:00"
SATURDAY_10 = "2026-11-21T10:00:00+01:00"
INDEPENDENCE_DAY = "2026-11-11T10:00:00+01:00"  # a Polish public holiday (a Wednesday)


@dataclass
class Api:
    http: TestClient
    runtime: Runtime

    def person(self, *roles: str, cases: tuple[str, ...] = (), minutes_ago: float = 1) -> dict[str, str]:
        return person_headers(self.runtime, *roles, cases=cases, second_factor_minutes_ago=minutes_ago)

    def system(self, *scopes: str) -> dict[str, str]:
        return client_headers(self.runtime, *scopes)

    def events(self, subject: str, event_type: str | None = None) -> list[dict[str, Any]]:
        page = self.runtime.audit.query(EntryFilter(subject=subject, event_type=event_type), limit=1000)
        return [item.event for item in page.items]

    def leaf_inputs(self) -> bytes:
        with self.runtime.engine.connect() as conn:
            return b"".join(bytes(r[0]) for r in conn.execute(text("SELECT leaf_input FROM audit_entries")))


@pytest.fixture
def api(initialised_runtime: Runtime) -> Api:
    return Api(TestClient(create_app(runtime=initialised_runtime), raise_server_exceptions=False),
               initialised_runtime)


@pytest.fixture
def fake() -> Faker:
    faker = Faker("pl_PL")
    faker.seed_instance(SEED)
    return faker


@dataclass
class Debtor:
    token: str
    fields: dict[str, str]
    debt_id: str
    case_id: str


def new_debtor(api: Api, fake: Faker, headers: dict[str, str], *, due: str = "2025-06-30", consumer: bool = True,
               kind: str = "general") -> Debtor:
    fields = {"first_name": fake.first_name_male(), "last_name": "Kowalski", "pesel": fake.pesel(),
              "address": f"ul. {fake.street_name()} {fake.building_number()}, {fake.postcode()} {fake.city()}"}
    created = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": fields}, headers=headers)
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    debt_id, case_id = f"D-{fake.unique.random_int(10000, 99999)}", f"C-{fake.unique.random_int(10000, 99999)}"
    debt = api.http.post("/v1/debts", headers=headers, json={
        "id": debt_id, "subject": token, "creditor": "Przykładowy Bank S.A.", "kind": kind, "consumer": consumer,
        "amount_minor": 1_250_000, "currency": "PLN", "due_date": due})
    assert debt.status_code == 201, debt.text
    case = api.http.post("/v1/cases", headers=headers, json={"id": case_id, "subject": token, "debt_id": debt_id})
    assert case.status_code == 201, case.text
    return Debtor(token, fields, debt_id, case_id)


def call(debtor: Debtor, at: str = TUESDAY_10, **extra: Any) -> dict[str, Any]:
    return {"subject": debtor.token, "channel": "phone", "direction": "outbound", "agent_id": "agent-007",
            "started_at": at, "debt_id": debtor.debt_id, "case_id": debtor.case_id, **extra}


class TestFirewallOverHttp:
    def test_check_names_the_rule_that_decides(self, api: Api, fake: Faker) -> None:
        """POST /v1/contacts/check allows a weekday call at 10:00 and refuses 05:30, a holiday and an
        unconsented Saturday, naming allowed_hours, public_holiday and weekend_consent; nothing is logged."""
        collector = api.person("collector")
        debtor = new_debtor(api, fake, collector)
        before = api.runtime.audit.size()
        cases = {TUESDAY_10: None, TUESDAY_05: "allowed_hours", INDEPENDENCE_DAY: "public_holiday",
                 SATURDAY_10: "weekend_consent"}
        for at, rule in cases.items():
            answer = api.http.post("/v1/contacts/check", json=call(debtor, at), headers=collector)
            assert answer.status_code == 200, answer.text
            verdict = answer.json()
            assert verdict["allowed"] is (rule is None), (at, verdict)
            assert [v["rule"] for v in verdict["violations"] if v["action"] == "refuse"] == ([rule] if rule else [])
            assert len(verdict["rules_sha256"]) == 64
        assert api.runtime.audit.size() == before

    def test_refused_contact_is_logged_and_answered_409(self, api: Api, fake: Faker) -> None:
        """A contact the firewall refuses is answered 409 contact-refused with the rules, and the refusal is
        itself a contact.blocked entry; the history lists it as refused."""
        collector = api.person("collector")
        debtor = new_debtor(api, fake, collector)
        refused = api.http.post("/v1/contacts", json=call(debtor, TUESDAY_05, outcome="no_answer"),
                                headers=collector)
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["type"].endswith("contact-refused")
        assert [r["rule"] for r in problem["rules"]] == ["allowed_hours"]
        [blocked] = api.events(debtor.token, "contact.blocked")
        assert blocked["payload"]["rules"] == ["allowed_hours"]
        history = api.http.get(f"/v1/subjects/{debtor.token}/contacts", headers=collector).json()["items"]
        assert [(h["decision"], h["rules"]) for h in history] == [("refuse", ["allowed_hours"])]

    def test_frequency_cap_and_cooldown(self, api: Api, fake: Faker) -> None:
        """Three unanswered calls in a week are allowed, the fourth is refused by frequency_cap; after a
        conversation, a call the next morning is refused by cooldown_after_conversation."""
        collector = api.person("collector")
        debtor = new_debtor(api, fake, collector)
        for day in (16, 17, 18):
            ok = api.http.post("/v1/contacts", json=call(debtor, f"2026-11-{day}T10:00:00+01:00",
                                                         outcome="no_answer"), headers=collector)
            assert ok.status_code == 201, ok.text
        fourth = api.http.post("/v1/contacts", json=call(debtor, "2026-11-19T10:00:00+01:00", outcome="no_answer"),
                               headers=collector)
        assert fourth.status_code == 409
        assert "frequency_cap" in [r["rule"] for r in fourth.json()["rules"]]

        other = new_debtor(api, fake, collector)
        talked = api.http.post("/v1/contacts", json=call(other, TUESDAY_10, outcome="answered"), headers=collector)
        assert talked.status_code == 201
        assert talked.json()["event_type"] == "contact.completed"
        again = api.http.post("/v1/contacts/check", json=call(other, "2026-11-18T08:00:00+01:00"),
                              headers=collector).json()
        assert [v["rule"] for v in again["violations"]] == ["cooldown_after_conversation"]

    def test_time_barred_consumer_debt_refuses_a_payment_demand_only(self, api: Api, fake: Faker) -> None:
        """A payment demand on a time-barred consumer debt is refused (art. 117 § 2¹ k.c.); the same contact
        without a demand, and a demand on a business debt as old, are allowed."""
        collector = api.person("collector")
        old = new_debtor(api, fake, collector, due="2012-03-15")
        debt = api.http.get(f"/v1/debts/{old.debt_id}", headers=collector).json()
        assert debt["time_barred"] is True
        demand = api.http.post("/v1/contacts/check", json=call(old, demands_payment=True), headers=collector).json()
        assert [v["rule"] for v in demand["violations"]] == ["time_barred_demand"]
        assert api.http.post("/v1/contacts/check", json=call(old), headers=collector).json()["allowed"] is True
        business = new_debtor(api, fake, collector, due="2012-03-15", consumer=False, kind="business")
        assert api.http.post("/v1/contacts/check", json=call(business, demands_payment=True),
                             headers=collector).json()["allowed"] is True

    def test_preferences_restriction_and_objection(self, api: Api, fake: Faker) -> None:
        """An opt-out, a cease-contact flag, an Art. 18 restriction and an Art. 21 objection each refuse a
        call with their own rule; withdrawing and lifting them allows it again."""
        collector, dpo = api.person("collector"), api.person("dpo")
        debtor = new_debtor(api, fake, collector)
        prefs = f"/v1/subjects/{debtor.token}/contact-preferences"

        def refusing() -> list[str]:
            verdict = api.http.post("/v1/contacts/check", json=call(debtor), headers=collector).json()
            return sorted(v["rule"] for v in verdict["violations"] if v["action"] == "refuse")

        assert api.http.put(prefs, json={"opted_out_channels": ["phone"]}, headers=collector).status_code == 200
        assert refusing() == ["channel_opt_out"]
        assert api.http.put(prefs, json={"opted_out_channels": [], "cease_contact": True},
                            headers=collector).status_code == 200
        assert refusing() == ["cease_contact"]
        api.http.put(prefs, json={"cease_contact": False}, headers=collector)
        restrict = api.http.put(f"/v1/subjects/{debtor.token}/restriction", json={"restricted": True},
                                headers=dpo)
        assert restrict.status_code == 200, restrict.text
        assert restrict.json()["restricted"] is True
        assert refusing() == ["restriction"]
        assert api.http.put(f"/v1/subjects/{debtor.token}/restriction", json={"restricted": True},
                            headers=collector).status_code == 403
        api.http.put(f"/v1/subjects/{debtor.token}/restriction", json={"restricted": False}, headers=dpo)
        objection = api.http.post(f"/v1/subjects/{debtor.token}/objections",
                                  json={"purpose": "debt_collection", "channel": "phone"}, headers=dpo)
        assert objection.status_code == 200
        assert refusing() == ["objection"]
        sms = api.http.post("/v1/contacts/check", json={**call(debtor), "channel": "sms"}, headers=collector).json()
        assert sms["allowed"] is True
        api.http.post(f"/v1/subjects/{debtor.token}/objections",
                      json={"purpose": "debt_collection", "channel": "phone", "withdraw": True}, headers=dpo)
        assert refusing() == []
        types = [e["type"] for e in api.events(debtor.token)]
        assert types.count("contact.preferences_changed") == 3
        assert {"gdpr.restriction_applied", "gdpr.restriction_lifted", "gdpr.objection_recorded"} <= set(types)


class TestRecordingContacts:
    def test_notes_are_scrubbed_sealed_and_revealed_only_with_a_logged_reveal(self, api: Api, fake: Faker) -> None:
        """PII in a note (a PESEL, a phone, the debtor's inflected surname) is replaced by placeholders and
        sealed: no value is in the log; a masked read shows placeholders, a full one the note, each logged."""
        collector = api.person("collector")
        debtor = new_debtor(api, fake, collector)
        phone = "601 234 567"
        note = (f"Rozmowa z panem Kowalskim. Podał PESEL {debtor.fields['pesel']} i nowy numer {phone}. "
                "Obiecał wpłatę 500 zł do 5 grudnia.")
        body = call(debtor, outcome="promise_to_pay", promise_amount_minor=50_000, promise_due="2026-12-05",
                    currency="PLN", demands_payment=True, notes=note, ended_at="2026-11-17T10:04:00+01:00")
        answer = api.http.post("/v1/contacts", json=body, headers=collector)
        assert answer.status_code == 201, answer.text
        receipt = answer.json()
        assert receipt["pii_found"] >= 3
        assert receipt["event_type"] == "contact.completed"
        leaves = api.leaf_inputs()
        for secret in (debtor.fields["pesel"], "601234567", "601 234 567", "Kowalskim"):
            assert secret.encode() not in leaves
        entry = api.runtime.audit.get(receipt["index"])
        assert base64.b64decode(receipt["leaf_hash"]) == entry.leaf_hash

        masked = api.http.get(f"/v1/contacts/{receipt['event_id']}", headers=collector)
        assert masked.status_code == 200, masked.text
        assert masked.headers["cache-control"] == "no-store"
        shown = masked.json()["notes"]
        assert "[PESEL#1]" in shown
        assert debtor.fields["pesel"] not in shown
        assert "Kowalskim" not in shown
        full = api.http.get(f"/v1/contacts/{receipt['event_id']}",
                            params={"view": "full", "purpose": "debt_collection"}, headers=collector)
        assert full.status_code == 200, full.text
        assert debtor.fields["pesel"] in full.json()["notes"]
        assert "Kowalskim" in full.json()["notes"]
        views = [(e["payload"]["view"], e["payload"]["fields"]) for e in api.events(debtor.token, "vault.access")
                 if e["payload"].get("action") in ("read_masked", "reveal")]
        assert ("masked", ["note"]) in views
        assert ("full", ["note"]) in views
        stale = api.person("collector", minutes_ago=11)
        refused = api.http.get(f"/v1/contacts/{receipt['event_id']}",
                               params={"view": "full", "purpose": "debt_collection"}, headers=stale)
        assert refused.status_code == 403
        assert debtor.fields["pesel"] not in refused.text

    def test_idempotent_retry_returns_the_first_receipt(self, api: Api, fake: Faker) -> None:
        """The same contact posted twice with one Idempotency-Key is recorded once; the retry gets the first
        receipt marked duplicate; a refused contact retried is refused again without a second entry."""
        collector = api.person("collector")
        debtor = new_debtor(api, fake, collector)
        body = call(debtor, outcome="no_answer", notes="Brak odpowiedzi.")
        first = api.http.post("/v1/contacts", json=body, headers={**collector, "Idempotency-Key": "k-1"})
        again = api.http.post("/v1/contacts", json=body, headers={**collector, "Idempotency-Key": "k-1"})
        assert first.status_code == again.status_code == 201
        assert (again.json()["event_id"], again.json()["index"]) == (first.json()["event_id"], first.json()["index"])
        assert again.json()["duplicate"] is True
        assert len(api.events(debtor.token, "contact.attempted")) == 1
        night = call(debtor, TUESDAY_05)
        for _ in range(2):
            refused = api.http.post("/v1/contacts", json=night, headers={**collector, "Idempotency-Key": "k-2"})
            assert refused.status_code == 409
        assert len(api.events(debtor.token, "contact.blocked")) == 1

    def test_field_visit_with_gps_signature_and_case_assignment(self, api: Api, fake: Faker) -> None:
        """A field agent assigned to the case records a visit with GPS and a signed agreement; an agent not
        assigned is refused (assignment) by the contacts service and by the vault."""
        collector = api.person("collector")
        debtor = new_debtor(api, fake, collector)
        agent = api.person("field_agent", cases=(debtor.case_id,))
        stranger = api.person("field_agent", cases=("C-other",))
        visit = {**call(debtor, "2026-11-17T12:00:00+01:00"), "channel": "visit", "agent_id": "agent-fa-1",
                 "ended_at": "2026-11-17T12:40:00+01:00", "outcome": "agreement_signed",
                 "gps": {"lat": 52.2297, "lon": 21.0122, "accuracy_m": 8},
                 "signature": {"document_sha256": hashlib.sha256(b"ugoda").hexdigest(), "signer": "debtor",
                               "signed_at": "2026-11-17T12:35:00+01:00", "method": "handwritten_tablet"}}
        recorded = api.http.post("/v1/contacts", json=visit, headers=agent)
        assert recorded.status_code == 201, recorded.text
        event = api.runtime.audit.get(recorded.json()["index"]).event
        assert event["type"] == "contact.visit"
        assert event["payload"]["signature"]["signer"] == "debtor"
        assert "52.2297" not in str(event)
        full = api.http.get(f"/v1/contacts/{recorded.json()['event_id']}",
                            params={"view": "full", "purpose": "field_visit"}, headers=agent).json()
        assert (full["gps"]["lat"], full["gps"]["lon"], full["gps"]["accuracy_m"]) == ("52.229700", "21.012200", 8)
        denied = api.http.post("/v1/contacts", json=visit, headers=stranger)
        assert denied.status_code == 403
        assert denied.json()["rule"] == "assignment"
        reveal = api.http.post(f"/v1/subjects/{debtor.token}/reveal",
                               json={"fields": ["last_name"], "purpose": "field_visit"}, headers=agent)
        assert reveal.status_code == 200, reveal.text
        assert api.http.post(f"/v1/subjects/{debtor.token}/reveal", json={"fields": ["last_name"],
                             "purpose": "field_visit"}, headers=stranger).status_code == 403

    def test_bad_input_is_refused_with_the_field_named(self, api: Api, fake: Faker) -> None:
        """Unknown fields, a naive time, an outcome of another channel, a promise without amount, GPS on a
        call and a recording not announced are each refused 422, and nothing is logged."""
        collector = api.person("collector")
        debtor = new_debtor(api, fake, collector)
        before = api.runtime.audit.size()
        bad = [
            {**call(debtor), "colour": "blue"},
            {**call(debtor), "started_at": "2026-11-17T10:00:00"},
            call(debtor, outcome="met_debtor"),
            call(debtor, outcome="promise_to_pay"),
            {**call(debtor), "gps": {"lat": 52.0, "lon": 21.0}},
            call(debtor, recording_id="rec_abcdefghijklmnopqrstuv"),
        ]
        for body in bad:
            answer = api.http.post("/v1/contacts", json=body, headers=collector)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
        assert api.runtime.audit.size() == before
        assert api.http.post("/v1/contacts", json={**call(debtor), "subject": "sub_" + "A" * 22},
                             headers=collector).status_code == 404

    def test_batch_records_each_with_its_own_result(self, api: Api, fake: Faker) -> None:
        """POST /v1/contacts/batch records what the firewall allows and answers a problem for the rest."""
        system = api.system("contacts:write", "subjects:write")
        debtor = new_debtor(api, fake, system)
        answer = api.http.post("/v1/contacts/batch", headers=system, json={"contacts": [
            call(debtor, outcome="no_answer"), call(debtor, TUESDAY_05), {**call(debtor), "channel": "sms",
                                                                         "outcome": "delivered"}]})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert "receipt" in results[0]
        assert "receipt" in results[2]
        assert results[1]["error"]["status"] == 409


    def test_batch_decides_each_contact_with_the_earlier_ones_of_the_batch(self, api: Api, fake: Faker) -> None:
        """In one batch, the fourth and fifth calls on a debt within 7 days break the cap of 3 that the first
        three filled, and a call the morning after a conversation in the same batch breaks the cooldown:
        the batch is decided as if its contacts had come one by one. Every result is in the log and in the
        history at the index its receipt (or refusal) names."""
        system = api.system("contacts:write", "subjects:read-masked", "subjects:write")
        debtor = new_debtor(api, fake, system)
        days = ["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"]
        calls = [call(debtor, f"{day}T10:00:00+01:00", outcome="no_answer") for day in days]
        answer = api.http.post("/v1/contacts/batch", headers=system, json={"contacts": calls})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert ["receipt" in r for r in results] == [True, True, True, False, False]
        assert {r["error"]["rules"][0]["rule"] for r in results[3:]} == {"frequency_cap"}

        other = new_debtor(api, fake, system)
        talk = [call(other, "2026-11-16T10:00:00+01:00", outcome="promise_to_pay", promise_amount_minor=10_000,
                     promise_due="2026-12-01", currency="PLN"),
                call(other, "2026-11-17T09:00:00+01:00", outcome="no_answer")]
        second = api.http.post("/v1/contacts/batch", headers=system, json={"contacts": talk}).json()["results"]
        assert "receipt" in second[0], second
        assert second[1]["error"]["rules"][0]["rule"] == "cooldown_after_conversation"

        indexes = {r["receipt"]["index"] if "receipt" in r else r["error"]["index"] for r in results + second}
        listed = {item["log_index"] for token in (debtor.token, other.token) for item in api.http.get(
            f"/v1/subjects/{token}/contacts", headers=system).json()["items"]}
        assert indexes <= listed
        assert all(api.runtime.audit.get(i).event["subject"] in (debtor.token, other.token) for i in indexes)


class TestDebtsAndCases:
    def test_debt_is_idempotent_and_conflicts_on_change(self, api: Api, fake: Faker) -> None:
        """Posting the same debt again returns it; the same id with another amount is 409; settling it logs
        debt.updated and the history of cases lists the case."""
        collector = api.person("collector")
        debtor = new_debtor(api, fake, collector)
        body = {"id": debtor.debt_id, "subject": debtor.token, "creditor": "Przykładowy Bank S.A.",
                "kind": "general", "consumer": True, "amount_minor": 1_250_000, "currency": "PLN",
                "due_date": "2025-06-30"}
        assert api.http.post("/v1/debts", json=body, headers=collector).status_code == 201
        assert api.http.post("/v1/debts", json={**body, "amount_minor": 1}, headers=collector).status_code == 409
        assert api.http.post("/v1/debts", json={**body, "id": "D-x1", "kind": "weird"},
                             headers=collector).status_code == 422
        settled = api.http.post(f"/v1/debts/{debtor.debt_id}/status", json={"status": "settled",
                                "settled_on": "2026-11-20"}, headers=collector)
        assert settled.status_code == 200
        assert settled.json()["status"] == "settled"
        assert [d["id"] for d in api.http.get(f"/v1/subjects/{debtor.token}/debts",
                                              headers=collector).json()["items"]] == [debtor.debt_id]
        assert api.http.post(f"/v1/cases/{debtor.case_id}/close", headers=collector).json()["status"] == "closed"
        types = [e["type"] for e in api.events(debtor.token)]
        assert types.count("debt.recorded") == 1
        assert "debt.updated" in types
        assert "case.closed" in types
        due = date.fromisoformat(settled.json()["time_barred_on"])
        assert due == date(2032, 1, 1)


class TestRecordingsOverHttp:
    def test_wav_upload_has_duration_limits_and_announcement(self, api: Api) -> None:
        """A WAV recording's duration comes from its header into the log; an unannounced, oversized or
        disallowed-type upload is refused and leaves no blob."""
        collector = api.person("collector")
        token = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": {"last_name": "Nowak"}},
                              headers=collector).json()["token"]
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(8000)
            writer.writeframes(b"\x00\x01" * 8000 * 3)
        audio = buffer.getvalue()
        url = f"/v1/subjects/{token}/recordings"
        headers = {**collector, "Content-Type": "audio/wav"}
        assert api.http.post(url, content=audio, headers=headers).status_code == 422
        assert api.http.post(url, content=audio, params={"announced": "true"},
                             headers={**collector, "Content-Type": "application/x-msdownload"}).status_code == 415
        stored = api.http.post(url, content=audio, params={"announced": "true"}, headers=headers)
        assert stored.status_code == 201, stored.text
        assert stored.json()["duration_ms"] == 3000
        [entry] = api.events(token, "recording.stored")
        assert (entry["payload"]["duration_ms"], entry["payload"]["announced"]) == (3000, True)
        api.runtime.settings.max_recording_bytes = 1000
        try:
            big = api.http.post(url, content=audio, params={"announced": "true"}, headers=headers)
            assert big.status_code == 413
            chunked = api.http.post(url, content=iter([audio[:600], audio[600:]]), params={"announced": "true"},
                                    headers=headers)
            assert chunked.status_code == 413
        finally:
            api.runtime.settings.max_recording_bytes = 512 * 1024 * 1024
        blobs = [p for p in api.runtime.settings.blob_dir.rglob("*") if p.is_file()]
        assert len(blobs) == 1


class TestCrashBetweenLogAndIndex:
    def test_retry_rebuilds_a_lost_index_row_from_the_log(self, api: Api, fake: Faker) -> None:
        """If the index row of a logged contact is missing (the process stopped after the append), a retry
        with the same Idempotency-Key answers the first receipt and the row is rebuilt from the entry."""
        collector = api.person("collector")
        debtor = new_debtor(api, fake, collector)
        body = call(debtor, outcome="no_answer")
        first = api.http.post("/v1/contacts", json=body, headers={**collector, "Idempotency-Key": "crash-1"}).json()
        with api.runtime.engine.begin() as conn:
            conn.execute(text("DELETE FROM contact_events WHERE id = :id"), {"id": first["event_id"]})
        again = api.http.post("/v1/contacts", json=body, headers={**collector, "Idempotency-Key": "crash-1"})
        assert again.status_code == 201, again.text
        assert (again.json()["event_id"], again.json()["index"]) == (first["event_id"], first["index"])
        history = api.http.get(f"/v1/subjects/{debtor.token}/contacts", headers=collector).json()["items"]
        assert [(h["event_id"], h["log_index"], h["outcome"], h["decision"]) for h in history] == [
            (first["event_id"], first["index"], "no_answer", "allow")]
        assert len(api.events(debtor.token, "contact.attempted")) == 1
