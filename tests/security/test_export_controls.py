"""Issue 16, defect 2: the GDPR export is a reveal by the officer who runs it, under every reveal control.

Before: an officer refused a direct reveal, a client holding only ``gdpr:manage`` or an officer
with a stale second factor created a request, "verified" it and downloaded ``data.json`` in
clear; the access entries named the system principal ``gdpr-exporter``, with no justification
and no review.
"""

from __future__ import annotations

from faker import Faker

from tests.security.conftest import JUSTIFICATION, TUESDAY_10, Api, Who, archive_data, csrf, debtor_fields


def _verified_request(api: Api, who: Who, token: str, kind: str = "access") -> str:
    """An access request about ``token``, registered and verified by ``who``; returns its id."""
    today = api.runtime.clock.now().date().isoformat()
    created = api.http.post("/v1/gdpr/requests", json={"subject": token, "kind": kind, "received_on": today,
                                                      "channel": "letter"}, headers=who.headers)
    assert created.status_code == 201, created.text
    request_id = str(created.json()["id"])
    verified = api.http.post(f"/v1/gdpr/requests/{request_id}/verify",
                             json={"method": "id_document", "reference": "EVID-2026-0042"}, headers=who.headers)
    assert verified.status_code == 200, verified.text
    return request_id


def _with_note(api: Api, token: str, secret: str) -> None:
    """A recorded phone call about ``token`` whose note holds ``secret`` (sealed in the log)."""
    recorder = api.client("contacts:write")
    answer = api.http.post("/v1/contacts", json={
        "subject": token, "channel": "phone", "agent_id": "agent-7", "started_at": TUESDAY_10,
        "outcome": "answered", "notes": f"Rozmowa; dłużnik podał nowy adres e-mail {secret}."},
        headers=recorder.headers)
    assert answer.status_code == 201, answer.text


class TestExportIsARevealByTheOfficer:
    def test_an_officer_refused_a_reveal_cannot_export_in_clear(self, api: Api, fake: Faker) -> None:
        """A compliance officer who gets 403 on a direct reveal gets 403 on the export too, and sees no value."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        officer = api.person("compliance_officer")
        direct = api.http.post(f"/v1/subjects/{token}/reveal", json={"fields": ["pesel"], "purpose": "gdpr_request"},
                               headers=officer.headers)
        assert direct.status_code == 403
        request_id = _verified_request(api, officer, token)

        exported = api.http.post(f"/v1/gdpr/requests/{request_id}/export", headers=officer.headers)

        assert exported.status_code == 403, exported.status_code
        assert fields["pesel"].encode() not in exported.content
        assert api.http.get(f"/v1/gdpr/requests/{request_id}", headers=officer.headers).json()["status"] == "verified"

    def test_a_client_with_only_gdpr_manage_cannot_export(self, api: Api, fake: Faker) -> None:
        """An API client holding gdpr:manage but not subjects:reveal is refused the archive (scope)."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        manager = api.client("gdpr:manage")
        request_id = _verified_request(api, manager, token)

        exported = api.http.post(f"/v1/gdpr/requests/{request_id}/export", headers=manager.headers)

        assert exported.status_code == 403
        assert exported.json()["rule"] == "scope"
        assert fields["pesel"].encode() not in exported.content

    def test_a_stale_second_factor_cannot_export(self, api: Api, fake: Faker) -> None:
        """A DPO whose second factor is 11 minutes old may handle the request but not open it: step up first."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        stale = api.person("dpo", minutes_ago=11)
        request_id = _verified_request(api, stale, token)

        exported = api.http.post(f"/v1/gdpr/requests/{request_id}/export", headers=stale.headers)

        assert exported.status_code == 403
        assert exported.json()["rule"] == "second_factor"
        assert fields["pesel"].encode() not in exported.content

    def test_the_export_is_logged_as_the_officers_reveal(self, api: Api, fake: Faker) -> None:
        """Every access entry of an export names the officer who ran it, the exporter as the component acting
        for them, and the purpose gdpr_request; none names the exporter as the principal."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        _with_note(api, token, fields["email"])
        dpo = api.person("dpo")
        request_id = _verified_request(api, dpo, token)
        before = api.runtime.audit.size()

        exported = api.http.post(f"/v1/gdpr/requests/{request_id}/export", headers=dpo.headers)

        assert exported.status_code == 200, exported.text
        data = archive_data(exported.content)
        assert data["fields"]["pesel"] == [fields["pesel"]]
        assert any(fields["email"] in (c["note"] or "") for c in data["contacts"])
        accesses = [e.event for e in api.entries(token, "vault.access", start=before)]
        assert accesses, "the export opened data without an access entry"
        for event in accesses:
            assert event["actor"] == {"id": dpo.id, "kind": "user"}
            assert event["payload"]["via"] == "gdpr-exporter"
            assert event["payload"]["purpose"] == "gdpr_request"
            assert event["payload"]["decision"] == "allow"
        opened = {name for event in accesses for name in event["payload"]["fields"]}
        assert {"pesel", "note"} <= opened
        assert not [e for e in api.events(token) if e["actor"]["id"] == "gdpr-exporter"]

    def test_a_compliance_officer_exports_by_break_glass_and_it_is_reviewed(self, api: Api, fake: Faker) -> None:
        """A compliance officer exports only with a written justification: the access is break-glass, its
        justification sealed, and it waits in the review queue the DPO and auditors read."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        officer = api.person("compliance_officer")
        request_id = _verified_request(api, officer, token)
        before = api.runtime.audit.size()

        exported = api.http.post(f"/v1/gdpr/requests/{request_id}/export", json={"justification": JUSTIFICATION},
                                 headers=officer.headers)

        assert exported.status_code == 200, exported.text
        accesses = list(api.entries(token, "vault.access", start=before))
        assert accesses
        for entry in accesses:
            payload = entry.event["payload"]
            assert entry.event["actor"]["id"] == officer.id
            assert payload["break_glass"] is True
            assert payload["justification"]
            assert JUSTIFICATION not in str(payload["justification"])
        queue = api.http.get("/v1/policies/break-glass", headers=api.person("auditor").headers)
        assert queue.status_code == 200, queue.text
        listed = {item["index"]: item for item in queue.json()["items"]}
        assert {entry.index for entry in accesses} <= set(listed)
        assert all(listed[entry.index]["actor"]["id"] == officer.id for entry in accesses)

    def test_the_verification_evidence_and_who_verified_are_on_the_request(self, api: Api, fake: Faker) -> None:
        """Verifying records the method, a reference to the evidence and who verified; a reference that looks
        like personal data is refused."""
        token = api.new_subject(debtor_fields(fake))
        officer = api.person("compliance_officer")
        request_id = _verified_request(api, officer, token)

        shown = api.http.get(f"/v1/gdpr/requests/{request_id}", headers=officer.headers).json()

        assert shown["verification"]["method"] == "id_document"
        assert shown["verification"]["reference"] == "EVID-2026-0042"
        assert shown["verification"]["by"] == officer.id
        today = api.runtime.clock.now().date().isoformat()
        other = api.http.post("/v1/gdpr/requests", json={"subject": token, "kind": "access", "received_on": today,
                                                        "channel": "email"}, headers=officer.headers).json()["id"]
        leaking = api.http.post(f"/v1/gdpr/requests/{other}/verify",
                                json={"method": "id_document", "reference": fake.pesel()}, headers=officer.headers)
        assert leaking.status_code == 422


class TestConsoleExport:
    def test_the_console_export_asks_the_same_gate(self, api: Api, fake: Faker) -> None:
        """The console's export by a compliance officer without a justification is refused and opens nothing;
        with one it is a reviewed break-glass reveal by that officer."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        officer = api.person("compliance_officer")
        request_id = _verified_request(api, officer, token)
        browser = api.console(officer)

        refused = browser.post(f"/console/requests/{request_id}/export", data={"csrf": csrf(officer)})
        assert refused.status_code in (403, 422), refused.status_code  # the form asks for the justification
        assert fields["pesel"].encode() not in refused.content

        assert "application/zip" not in refused.headers.get("content-type", "")
        short = browser.post(f"/console/requests/{request_id}/export", data={"csrf": csrf(officer),
                                                                             "justification": "because"})
        assert short.status_code in (403, 422), short.status_code
        assert fields["pesel"].encode() not in short.content
        before = api.runtime.audit.size()
        done = browser.post(f"/console/requests/{request_id}/export",
                            data={"csrf": csrf(officer), "justification": JUSTIFICATION})
        assert done.status_code == 200, done.text[:500]
        assert archive_data(done.content)["fields"]["pesel"] == [fields["pesel"]]
        accesses = api.entries(token, "vault.access", start=before)
        assert accesses
        assert all(e.event["actor"]["id"] == officer.id and e.event["payload"]["break_glass"]
                                for e in accesses)
