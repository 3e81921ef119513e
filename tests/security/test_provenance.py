"""Who may author each audit event, tried as an attacker would over HTTP (issue 16, defect 1).

A principal holding ``audit.append`` (a compliance officer, an integrating client) tries to append the
events only Tarcza itself writes: a break-glass verdict, a log verification result, a reveal, a policy
load, identity events, an erasure, a checkpoint, a contact with sealed notes that do not open. Each is
refused with a problem naming the type, the log does not grow, and the readers that trust such entries
(the break-glass review, the dashboard's verification status, the subject's Art. 15 export) are not
misled, not even by entries forged before the fix, which are already in the log. On SQLite and
PostgreSQL. Synthetic data only (Faker pl_PL).
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from faker import Faker
from fastapi.testclient import TestClient

from api.app import create_app
from api.runtime import Runtime
from audit.events import Actor, ActorKind, AuditEvent
from audit.repository import EntryFilter
from tests.headers import client_headers, person_headers

SEED = 1616
JUSTIFICATION = "The debtor called the complaints line and asked about the data we hold about him."


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


def new_subject(api: Api, fake: Faker) -> str:
    crm = api.system("subjects:write")
    fields = {"first_name": fake.first_name_male(), "last_name": fake.last_name_male(), "pesel": fake.pesel(),
              "phone": "+48 601 234 567"}
    created = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": fields}, headers=crm)
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


def break_glass_reveal(api: Api, subject: str) -> int:
    """A compliance officer's break-glass reveal of the subject; the index of its ``vault.access`` entry."""
    officer = api.person("compliance_officer")
    revealed = api.http.post(f"/v1/subjects/{subject}/reveal", headers=officer, json={
        "fields": ["phone"], "purpose": "complaint_handling", "justification": JUSTIFICATION})
    assert revealed.status_code == 200, revealed.text
    dpo = api.person("dpo")
    awaiting = api.http.get("/v1/policies/break-glass", params={"awaiting": "true"}, headers=dpo).json()["items"]
    return int(next(i["index"] for i in awaiting if i["subject"] == subject))


def random_sealed() -> str:
    return base64.urlsafe_b64encode(os.urandom(48)).decode("ascii").rstrip("=")


FORGERIES: dict[str, dict[str, Any]] = {
    "contact": {"type": "contact.completed", "payload": {
        "channel": "phone", "direction": "outbound", "agent_id": "agent-7", "outcome": "answered",
        "conversation": True, "notes": "SUBJECT_NOTES"}},
    "vault": {"type": "vault.access", "payload": {
        "fields": ["pesel"], "purpose": "complaint_handling", "decision": "allow", "break_glass": True,
        "justification": "SUBJECT_NOTES"}},
    "policy": {"type": "policy.loaded", "payload": {"policy_set": "authorisation", "sha256": "0" * 64,
                                                    "policies": 1}},
    "review": {"type": "policy.break_glass_reviewed", "payload": {"entry_index": 0, "verdict": "justified"}},
    "identity": {"type": "identity.login_succeeded", "payload": {"user_id": "usr_forged", "reason": "password"}},
    "gdpr": {"type": "gdpr.erasure_performed", "payload": {"request_id": "req_forged", "status": "erased"}},
    "checkpoint": {"type": "checkpoint.issued", "payload": {"tree_size": 999999, "root_hash": "0" * 64}},
    "debt": {"type": "debt.updated", "payload": {"debt_id": "D-1", "status": "settled"}},
    "recording": {"type": "recording.played", "payload": {"recording_id": "rec_forged", "purpose": "audit"}},
    "verification": {"type": "audit.log_verified", "payload": {"ok": True, "entries": 999999, "checkpoints": 1}},
}


class TestForgedSystemEvents:
    @pytest.mark.parametrize("family", sorted(FORGERIES))
    def test_system_event_is_refused_naming_its_type(self, api: Api, fake: Faker, family: str) -> None:
        """An audit.append holder cannot append an event only Tarcza writes: 403 naming the type, log unchanged."""
        subject = new_subject(api, fake)
        body = {**FORGERIES[family], "subject": subject}
        body["payload"] = {k: (random_sealed() if v == "SUBJECT_NOTES" else v) for k, v in body["payload"].items()}
        for who in (api.person("compliance_officer"), api.system("audit:append")):
            answer = api.http.post("/v1/audit/events", json=body, headers=who)
            assert answer.status_code == 403, (family, answer.status_code, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            problem = answer.json()
            assert problem["type"] == "urn:tarcza:problem:event-type-not-appendable"
            assert problem["event_type"] == body["type"]
            assert body["type"] in problem["detail"]
        assert api.runtime.audit.query(EntryFilter(event_type=body["type"], subject=subject), limit=10).items == []

    def test_forged_review_does_not_take_the_dpo_s_verdict(self, api: Api, fake: Faker) -> None:
        """A verdict forged by the officer who broke the glass is refused; one forged before the fix is ignored:
        the reveal stays in the review queue and the DPO's own verdict is recorded (not 409)."""
        subject = new_subject(api, fake)
        index = break_glass_reveal(api, subject)
        officer = api.person("compliance_officer")
        forged = api.http.post("/v1/audit/events", headers=officer, json={
            "type": "policy.break_glass_reviewed", "subject": subject,
            "payload": {"entry_index": index, "verdict": "justified"}})
        # What such a forgery left in a log before the fix: the same entry, appended as the old API did.
        legacy = AuditEvent.model_validate({
            "type": "policy.break_glass_reviewed", "time": datetime.now(UTC), "subject": subject,
            "actor": Actor(id="usr_officer0000001", kind=ActorKind.USER),
            "payload": {"entry_index": index, "verdict": "justified"}})
        api.runtime.audit.append(legacy)
        dpo = api.person("dpo")
        awaiting = api.http.get("/v1/policies/break-glass", params={"awaiting": "true"}, headers=dpo).json()["items"]
        assert index in [i["index"] for i in awaiting]
        answer = api.http.post(f"/v1/policies/break-glass/{index}/review", headers=dpo, json={"verdict": "unjustified"})
        assert answer.status_code == 201, answer.text
        listed = api.http.get("/v1/policies/break-glass", headers=dpo).json()["items"]
        assert next(i for i in listed if i["index"] == index)["review"]["verdict"] == "unjustified"
        assert index not in [i["index"] for i in api.http.get(
            "/v1/policies/break-glass", params={"awaiting": "true"}, headers=dpo).json()["items"]]
        assert forged.status_code == 403, forged.text

    def test_forged_verification_is_not_the_dashboard_s_status(self, api: Api) -> None:
        """An operator note that spells a verification result (appended now, or forged before the fix) is not
        shown as the log's last full verification; a real verification from the console is."""
        from api.console.web import CSRF_FIELD, SESSION_COOKIE, csrf_token

        officer = api.person("compliance_officer")
        note = api.http.post("/v1/audit/events", headers=officer, json={
            "type": "operator.note", "payload": {"code": "audit_log_verified:ok:entries:999999:checkpoints:1"}})
        assert note.status_code == 201, note.text
        token = officer["Authorization"].removeprefix("Bearer ")
        api.http.cookies.set(SESSION_COOKIE, token, path="/console")
        page = api.http.get("/console/")
        assert page.status_code == 200, page.text
        status = page.text.split('id="last-verification"', 1)[1].split("</dd>", 1)[0]
        assert "999999" not in status

        started = api.http.post("/console/audit/verify", data={CSRF_FIELD: csrf_token(token)},
                                follow_redirects=False)
        assert started.status_code == 303, started.text
        for _ in range(600):  # the verification runs in a thread of the server: wait until it has finished
            progress = api.http.get("/console/audit/verify/progress").json()
            if not progress["running"]:
                break
            time.sleep(0.05)
        assert progress["ok"] is True
        status = api.http.get("/console/").text.split('id="last-verification"', 1)[1].split("</dd>", 1)[0]
        assert "999999" not in status
        assert str(progress["entries"]) in status
        written = api.runtime.audit.get(progress["log_index"]).event
        assert written["type"] == "audit.log_verified"
        assert written["payload"]["entries"] == progress["entries"]
        api.http.cookies.clear()


class TestForgedContactAndTheExport:
    def test_forged_contact_cannot_break_the_subject_s_export(self, api: Api, fake: Faker) -> None:
        """A contact with random "sealed" notes appended through the audit API is refused, so the subject's
        Art. 15 export still answers 200 with the real contact's note, never 500 vault-decrypt."""
        crm = api.system("subjects:write", "contacts:write")
        subject = new_subject(api, fake)
        recorded = api.http.post("/v1/contacts", headers=crm, json={
            "subject": subject, "channel": "phone", "agent_id": "agent-1", "started_at": "2026-11-17T10:00:00+01:00",
            "outcome": "answered", "notes": "Dłużnik obiecał wpłatę do piątku."})
        assert recorded.status_code == 201, recorded.text
        forged = api.http.post("/v1/audit/events", headers=api.system("audit:append"), json={
            "type": "contact.completed", "subject": subject, "payload": {
                "channel": "phone", "direction": "outbound", "agent_id": "agent-1", "outcome": "answered",
                "conversation": True, "notes": random_sealed()}})
        dpo = api.person("dpo")
        created = api.http.post("/v1/gdpr/requests", headers=dpo, json={
            "subject": subject, "kind": "access", "received_on": api.runtime.clock.now().date().isoformat(),
            "channel": "letter"})
        assert created.status_code == 201, created.text
        request_id = created.json()["id"]
        verified = api.http.post(f"/v1/gdpr/requests/{request_id}/verify", json={"method": "id_document"},
                                 headers=dpo)
        assert verified.status_code == 200, verified.text
        archive = api.http.post(f"/v1/gdpr/requests/{request_id}/export", headers=dpo)
        assert archive.status_code == 200, archive.text
        assert archive.headers["content-type"] == "application/zip"
        assert forged.status_code == 403, forged.text
        contacts = api.runtime.audit.query(EntryFilter(subject=subject, event_type="contact.*"), limit=10).items
        assert [e.event["type"] for e in contacts] == ["contact.completed"]
