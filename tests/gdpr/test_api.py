"""The GDPR toolkit over HTTP, end to end on SQLite and PostgreSQL: requests with their deadlines and
verification, an erasure that shreds a subject whose debt is settled long ago (the log still verifies),
an erasure refused for an open debt with the date it becomes possible and a restriction that then
blocks contacts, legal holds, objection and rectification, and an access request answered with an
archive that verifies offline. Synthetic data only (Faker pl_PL)."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from faker import Faker
from fastapi.testclient import TestClient

from api.app import create_app
from api.runtime import Runtime
from audit.repository import EntryFilter
from identity.testing import add_session, add_user
from tests.headers import client_headers, person_headers

SEED = 2611


@dataclass
class Api:
    http: TestClient
    runtime: Runtime

    def person(self, *roles: str) -> dict[str, str]:
        return person_headers(self.runtime, *roles)

    def system(self, *scopes: str) -> dict[str, str]:
        return client_headers(self.runtime, *scopes)

    def events(self, subject: str, event_type: str | None = None) -> list[dict[str, Any]]:
        page = self.runtime.audit.query(EntryFilter(subject=subject, event_type=event_type), limit=1000)
        return [item.event for item in page.items]

    def today(self) -> date:
        return self.runtime.clock.now().date()


@pytest.fixture
def api(initialised_runtime: Runtime) -> Api:
    return Api(TestClient(create_app(runtime=initialised_runtime), raise_server_exceptions=False),
               initialised_runtime)


@pytest.fixture
def fake() -> Faker:
    faker = Faker("pl_PL")
    faker.seed_instance(SEED)
    return faker


def debtor(api: Api, fake: Faker, crm: dict[str, str], *, due: str, settled_on: str | None = None) -> str:
    fields = {"first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel(),
              "phone": "+48 601 234 567", "email": fake.unique.safe_email()}
    token = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": fields}, headers=crm).json()["token"]
    debt_id = f"D-{fake.unique.random_int(10000, 99999)}"
    created = api.http.post("/v1/debts", headers=crm, json={
        "id": debt_id, "subject": token, "creditor": "Przykładowy Bank S.A.", "kind": "general", "consumer": True,
        "amount_minor": 250_000, "due_date": due})
    assert created.status_code == 201, created.text
    if settled_on:
        settled = api.http.post(f"/v1/debts/{debt_id}/status", json={"status": "settled", "settled_on": settled_on},
                                headers=crm)
        assert settled.status_code == 200, settled.text
    return token


def new_request(api: Api, dpo: dict[str, str], subject: str, kind: str, received_on: date | None = None,
                *, verify: bool = True) -> dict[str, Any]:
    created = api.http.post("/v1/gdpr/requests", headers=dpo, json={
        "subject": subject, "kind": kind, "received_on": (received_on or api.today()).isoformat(),
        "channel": "letter"})
    assert created.status_code == 201, created.text
    request = created.json()
    if verify:
        verified = api.http.post(f"/v1/gdpr/requests/{request['id']}/verify", json={"method": "id_document"},
                                 headers=dpo)
        assert verified.status_code == 200, verified.text
        request = verified.json()
    return request


class TestRequests:
    def test_deadline_verification_extension_and_lists(self, api: Api, fake: Faker) -> None:
        """A request's deadline follows from its receipt; nothing runs before verification; it may be extended
        within the first month; lists show it open, overdue or due soon; every step is logged."""
        crm, dpo = api.system("subjects:write", "contacts:write"), api.person("dpo")
        subject = debtor(api, fake, crm, due="2025-06-30")
        january = new_request(api, dpo, subject, "access", date(2026, 1, 31), verify=False)
        assert january["due_on"] == "2026-03-02"  # 28 Feb 2026 is a Saturday
        assert january["overdue"] is True
        early = api.http.post(f"/v1/gdpr/requests/{january['id']}/erase", json={}, headers=dpo)
        assert early.status_code == 409
        late = api.http.post(f"/v1/gdpr/requests/{january['id']}/extend", json={"months": 2,
                             "reason": "complexity"}, headers=dpo)
        assert late.status_code == 409  # the first month has passed

        recent = new_request(api, dpo, subject, "access", api.today() - timedelta(days=3))
        extended = api.http.post(f"/v1/gdpr/requests/{recent['id']}/extend", json={"months": 2,
                                 "reason": "complexity"}, headers=dpo)
        assert extended.status_code == 200, extended.text
        assert extended.json()["extended_months"] == 2
        assert extended.json()["due_on"] > recent["due_on"]
        overdue = api.http.get("/v1/gdpr/requests", params={"view": "overdue"}, headers=dpo).json()["items"]
        assert [r["id"] for r in overdue] == [january["id"]]
        open_ids = [r["id"] for r in api.http.get("/v1/gdpr/requests", headers=dpo).json()["items"]]
        assert open_ids == [january["id"], recent["id"]]
        types = [e["type"] for e in api.events(subject) if e["type"].startswith(("gdpr.request", "gdpr.identity"))]
        assert types == ["gdpr.request_received", "gdpr.request_received", "gdpr.identity_verified",
                         "gdpr.request_extended"]
        assert api.http.get("/v1/gdpr/requests", headers=api.person("collector")).status_code == 403

    def test_bad_input_is_refused(self, api: Api, fake: Faker) -> None:
        """An unknown kind, a future receipt date, an unknown subject and a request id that does not exist are
        each refused with problem details."""
        crm, dpo = api.system("subjects:write", "contacts:write"), api.person("dpo")
        subject = debtor(api, fake, crm, due="2025-06-30")
        body = {"subject": subject, "kind": "access", "received_on": api.today().isoformat(), "channel": "letter"}
        assert api.http.post("/v1/gdpr/requests", json={**body, "kind": "delete"}, headers=dpo).status_code == 422
        future = (api.today() + timedelta(days=2)).isoformat()
        assert api.http.post("/v1/gdpr/requests", json={**body, "received_on": future},
                             headers=dpo).status_code == 422
        assert api.http.post("/v1/gdpr/requests", json={**body, "subject": "sub_" + "B" * 22},
                             headers=dpo).status_code == 404
        assert api.http.get("/v1/gdpr/requests/dsr_nothing", headers=dpo).status_code == 404


class TestErasure:
    def test_settled_old_debt_is_erased_and_the_log_still_verifies(self, api: Api, fake: Faker) -> None:
        """A subject whose only debt was settled in 2019 is crypto-shredded: fields can no longer be read,
        a tombstone entry closes the request, and the whole log verifies."""
        crm, dpo = api.system("subjects:write", "contacts:write"), api.person("dpo")
        subject = debtor(api, fake, crm, due="2018-03-31", settled_on="2019-06-10")
        preview = api.http.get(f"/v1/subjects/{subject}/erasure-assessment", headers=dpo).json()
        assert preview["allowed"] is True
        request = new_request(api, dpo, subject, "erasure")
        erased = api.http.post(f"/v1/gdpr/requests/{request['id']}/erase", json={}, headers=dpo)
        assert erased.status_code == 200, erased.text
        assert erased.json()["erased"] is True
        tombstone = api.runtime.audit.get(erased.json()["tombstone_index"]).event
        assert (tombstone["type"], tombstone["subject"]) == ("gdpr.erasure_performed", subject)
        reveal = api.http.post(f"/v1/subjects/{subject}/reveal", json={"fields": ["pesel"],
                               "purpose": "debt_collection"}, headers=dpo)
        assert reveal.status_code == 410
        assert api.http.get(f"/v1/gdpr/requests/{request['id']}", headers=dpo).json()["status"] == "completed"
        report = api.runtime.audit.verify_database()
        assert report.entries == api.runtime.audit.size()
        access = new_request(api, dpo, subject, "access")
        archive = api.http.post(f"/v1/gdpr/requests/{access['id']}/export", headers=dpo)
        assert archive.status_code == 200, archive.text
        with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
            data = json.loads(z.read("data.json"))
        assert data["subject"]["status"] == "shredded"
        assert data["erasure"]["tombstone_log_index"] == erased.json()["tombstone_index"]
        assert all(values == [] for values in data["fields"].values())

    def test_open_debt_refuses_erasure_with_a_date_and_restriction_blocks_contacts(self, api: Api,
                                                                                  fake: Faker) -> None:
        """An open consumer debt that is not time-barred keeps the data: erasure is refused naming legal_claim
        and the date it becomes possible; with restrict_if_refused the firewall then refuses a call."""
        crm, dpo = api.system("subjects:write", "contacts:write"), api.person("dpo")
        subject = debtor(api, fake, crm, due="2025-06-30")
        request = new_request(api, dpo, subject, "erasure")
        refused = api.http.post(f"/v1/gdpr/requests/{request['id']}/erase", json={"restrict_if_refused": True},
                                headers=dpo)
        assert refused.status_code == 200, refused.text
        result = refused.json()
        assert result["erased"] is False
        assert result["restricted"] is True
        assert "legal_claim" in {r["rule"] for r in result["reasons"]}
        assert result["possible_from"] is not None
        assert result["possible_from"] > "2031-12-31"
        assert api.http.get(f"/v1/gdpr/requests/{request['id']}", headers=dpo).json()["status"] == "refused"
        call = {"subject": subject, "channel": "phone", "agent_id": "agent-1",
                "started_at": "2026-11-17T10:00:00+01:00"}
        verdict = api.http.post("/v1/contacts/check", json=call, headers=crm).json()
        assert [v["rule"] for v in verdict["violations"]] == ["restriction"]
        assert api.http.post(f"/v1/subjects/{subject}/reveal", json={"fields": ["pesel"],
                             "purpose": "debt_collection"}, headers=api.person("collector")).status_code == 403
        assert "gdpr.erasure_refused" in [e["type"] for e in api.events(subject)]

    def test_legal_hold_blocks_erasure_until_released(self, api: Api, fake: Faker) -> None:
        """A legal hold refuses erasure with no date; once released, the same subject can be erased."""
        crm, dpo = api.system("subjects:write", "contacts:write"), api.person("dpo")
        subject = debtor(api, fake, crm, due="2018-03-31", settled_on="2019-06-10")
        hold = api.http.post("/v1/gdpr/holds", json={"subject": subject, "reason": "litigation",
                             "starts_on": api.today().isoformat()}, headers=dpo)
        assert hold.status_code == 201, hold.text
        held = api.http.get(f"/v1/subjects/{subject}/erasure-assessment", headers=dpo).json()
        assert held["allowed"] is False
        assert held["possible_from"] is None
        assert [r["rule"] for r in held["reasons"]] == ["legal_hold"]
        assert api.http.post(f"/v1/gdpr/holds/{hold.json()['id']}/release", headers=dpo).json()["active"] is False
        assert api.http.get(f"/v1/subjects/{subject}/erasure-assessment", headers=dpo).json()["allowed"] is True
        types = [e["type"] for e in api.events(subject)]
        assert "gdpr.legal_hold_set" in types
        assert "gdpr.legal_hold_released" in types


class TestOtherRights:
    def test_restriction_is_lifted_only_after_the_subject_is_told(self, api: Api, fake: Faker) -> None:
        """A restriction request blocks calls; lifting it without confirming the subject was informed is refused
        (Art. 18(3)); with the confirmation it is lifted and calls are allowed again."""
        crm, dpo = api.system("subjects:write", "contacts:write"), api.person("dpo")
        subject = debtor(api, fake, crm, due="2025-06-30")
        call = {"subject": subject, "channel": "phone", "agent_id": "agent-1",
                "started_at": "2026-11-17T10:00:00+01:00"}
        applied = api.http.post(f"/v1/gdpr/requests/{new_request(api, dpo, subject, 'restriction')['id']}/restrict",
                                json={}, headers=dpo)
        assert applied.status_code == 200, applied.text
        assert api.http.post("/v1/contacts/check", json=call, headers=crm).json()["allowed"] is False
        lift = new_request(api, dpo, subject, "restriction")
        early = api.http.post(f"/v1/gdpr/requests/{lift['id']}/restrict", json={"lift": True}, headers=dpo)
        assert early.status_code == 409
        lifted = api.http.post(f"/v1/gdpr/requests/{lift['id']}/restrict",
                               json={"lift": True, "subject_informed": True}, headers=dpo)
        assert lifted.status_code == 200, lifted.text
        assert api.http.post("/v1/contacts/check", json=call, headers=crm).json()["allowed"] is True

    def test_objection_and_rectification(self, api: Api, fake: Faker) -> None:
        """An objection to calls makes the firewall refuse a call; a rectification replaces a field's value
        and logs the field name only."""
        crm, dpo = api.system("subjects:write", "contacts:write"), api.person("dpo")
        subject = debtor(api, fake, crm, due="2025-06-30")
        objection = new_request(api, dpo, subject, "objection")
        done = api.http.post(f"/v1/gdpr/requests/{objection['id']}/object",
                             json={"purpose": "debt_collection", "channel": "phone"}, headers=dpo)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "completed"
        call = {"subject": subject, "channel": "phone", "agent_id": "agent-1",
                "started_at": "2026-11-17T10:00:00+01:00"}
        assert [v["rule"] for v in api.http.post("/v1/contacts/check", json=call, headers=crm).json()["violations"]
                ] == ["objection"]
        new_name = fake.last_name()
        rectification = new_request(api, dpo, subject, "rectification")
        fixed = api.http.post(f"/v1/gdpr/requests/{rectification['id']}/rectify",
                              json={"field": "last_name", "values": [new_name]}, headers=dpo)
        assert fixed.status_code == 200, fixed.text
        shown = api.http.post(f"/v1/subjects/{subject}/reveal", json={"fields": ["last_name"],
                              "purpose": "gdpr_request"}, headers=dpo).json()
        assert shown["fields"]["last_name"] == [new_name]
        applied = api.events(subject, "gdpr.rectification_applied")
        assert applied[0]["payload"]["reason"] == "field:last_name"
        assert new_name not in str(applied)


class TestExport:
    def test_access_request_is_answered_with_an_archive_that_verifies(self, api: Api, fake: Faker,
                                                                      tmp_path: Path) -> None:
        """An access request produces a zip with data.json, report.html and manifest.json whose hashes and
        log part verify offline; the request is then completed and the export logged."""
        from gdpr.export import verify_archive

        crm, dpo = api.system("subjects:write", "contacts:write"), api.person("dpo")
        subject = debtor(api, fake, crm, due="2025-06-30")
        recorded = api.http.post("/v1/contacts", headers=crm, json={
            "subject": subject, "channel": "phone", "agent_id": "agent-1", "started_at": "2026-11-17T10:00:00+01:00",
            "outcome": "answered", "notes": "Dłużnik prosi o kontakt na numer +48 601 234 567."})
        assert recorded.status_code == 201, recorded.text
        api.runtime.audit.issue_checkpoint()
        request = new_request(api, dpo, subject, "access")
        answer = api.http.post(f"/v1/gdpr/requests/{request['id']}/export", headers=dpo)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/zip"
        assert answer.headers["cache-control"] == "no-store"
        archive = tmp_path / "export.zip"
        archive.write_bytes(answer.content)
        with zipfile.ZipFile(archive) as z:
            names = set(z.namelist())
        assert {"data.json", "report.html", "manifest.json"} <= names
        verify_archive(archive)
        assert api.http.get(f"/v1/gdpr/requests/{request['id']}", headers=dpo).json()["status"] == "completed"
        assert "gdpr.export_created" in [e["type"] for e in api.events(subject)]


class TestBreachAndRecord:
    def test_breach_report_names_what_a_user_revealed(self, api: Api, fake: Faker) -> None:
        """POST /v1/gdpr/breach lists the subjects a collector revealed in the window (high risk for a PESEL in
        clear), not the others, with the 72-hour clock from the moment of awareness."""
        from datetime import UTC, datetime

        crm, dpo = api.system("subjects:write", "contacts:write"), api.person("dpo")
        seen, unseen = (debtor(api, fake, crm, due="2025-06-30") for _ in range(2))
        now = api.runtime.clock.now()
        with api.runtime.sessions.begin() as session:
            user = add_user(session, roles=("collector",), now=now)
            token = add_session(session, user, now=now, second_factor_at=now)
            user_id = user.id
        revealed = api.http.post(f"/v1/subjects/{seen}/reveal", json={"fields": ["pesel"],
                                 "purpose": "debt_collection"}, headers={"Authorization": f"Bearer {token}"})
        assert revealed.status_code == 200
        aware = datetime.now(UTC)
        report = api.http.post("/v1/gdpr/breach", headers=dpo, json={
            "actor_id": user_id, "since": (aware - timedelta(hours=1)).isoformat(),
            "until": (aware + timedelta(minutes=5)).isoformat(), "aware_at": aware.isoformat()})
        assert report.status_code == 200, report.text
        body = report.json()
        assert [s["subject"] for s in body["subjects"]] == [seen]
        assert unseen not in report.text
        assert body["totals"]["high_risk_subjects"] == 1
        assert body["notification"]["overdue"] is False

    def test_record_of_processing_in_json_and_html(self, api: Api) -> None:
        """GET /v1/gdpr/ropa gives the Art. 30 record built from the policy files, as JSON and as HTML."""
        dpo = api.person("dpo")
        record = api.http.get("/v1/gdpr/ropa", headers=dpo)
        assert record.status_code == 200, record.text
        assert record.json()["format"] == "tarcza-ropa/v1"
        assert {p["purpose"] for p in record.json()["purposes"]} >= {"debt_collection", "legal_claim"}
        page = api.http.get("/v1/gdpr/ropa", params={"format": "html"}, headers=dpo)
        assert page.headers["content-type"].startswith("text/html")
        assert 'lang="pl"' in page.text
        assert 'lang="en"' in page.text
