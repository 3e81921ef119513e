"""Issue 16, defect 4: roles are limited to the purposes policies/authorisation.yaml gives them, and
``legal_claim`` is a reviewed purpose of the roles the policy names.

Before: a collector revealed with ``audit``, ``erasure``, ``field_visit``, ``gdpr_request`` and
``payment_processing`` (all 200), and a self-declared ``legal_claim`` lifted a GDPR Art. 18
restriction for a collector, a client holding ``subjects:reveal`` and a compliance officer.
"""

from __future__ import annotations

import pytest
from faker import Faker

from tests.security.conftest import JUSTIFICATION, Api, csrf, debtor_fields

NOT_A_COLLECTORS = ("audit", "erasure", "field_visit", "gdpr_request", "payment_processing")


class TestPurposesPerRole:
    @pytest.mark.parametrize("purpose", NOT_A_COLLECTORS)
    def test_a_collector_may_not_reveal_for_another_roles_purpose(self, api: Api, fake: Faker, purpose: str) -> None:
        """A collector's reveal for a purpose its role is not given is refused (rule purpose), logged, and shows
        no value; single and bulk alike."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        collector = api.person("collector")

        single = api.http.post(f"/v1/subjects/{token}/reveal", json={"fields": ["pesel"], "purpose": purpose},
                               headers=collector.headers)
        bulk = api.http.post("/v1/subjects/reveal", json={"subjects": [token], "fields": ["pesel"],
                                                          "purpose": purpose}, headers=collector.headers)

        assert single.status_code == 403, single.text
        assert single.json()["rule"] == "purpose"
        assert bulk.status_code == 200
        assert bulk.json()["results"][0]["error"]["rule"] == "purpose"
        assert fields["pesel"] not in single.text + bulk.text
        denied = [e for e in api.events(token, "vault.access") if e["actor"]["id"] == collector.id]
        assert [e["payload"]["decision"] for e in denied] == ["deny", "deny"]

    def test_a_collector_reveals_for_debt_collection(self, api: Api, fake: Faker) -> None:
        """The purposes of the collector's role still work."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        answer = api.http.post(f"/v1/subjects/{token}/reveal", json={"fields": ["pesel"], "purpose": "debt_collection"},
                               headers=api.person("collector").headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["fields"]["pesel"] == [fields["pesel"]]

    def test_the_console_reveal_asks_the_same_purpose_rule(self, api: Api, fake: Faker) -> None:
        """A collector's console reveal for gdpr_request is refused and the page shows no value."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        collector = api.person("collector")
        page = api.console(collector).post(f"/console/subjects/{token}/reveal", data={
            "csrf": csrf(collector), "fields": "pesel", "purpose": "gdpr_request"})
        assert page.status_code == 403, page.status_code
        assert fields["pesel"] not in page.text


class TestLegalClaim:
    def test_legal_claim_does_not_lift_a_restriction_for_a_collector(self, api: Api, fake: Faker) -> None:
        """A collector stating legal_claim on a restricted subject is refused."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        api.restrict(token)
        answer = api.http.post(f"/v1/subjects/{token}/reveal", json={
            "fields": ["pesel"], "purpose": "legal_claim", "justification": JUSTIFICATION},
            headers=api.person("collector").headers)
        assert answer.status_code == 403, answer.text
        assert fields["pesel"] not in answer.text

    def test_legal_claim_does_not_lift_a_restriction_for_a_client(self, api: Api, fake: Faker) -> None:
        """A client holding subjects:reveal stating legal_claim on a restricted subject is refused."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        api.restrict(token)
        answer = api.http.post(f"/v1/subjects/{token}/reveal", json={"fields": ["pesel"], "purpose": "legal_claim"},
                               headers=api.client("subjects:reveal").headers)
        assert answer.status_code == 403, answer.text
        assert fields["pesel"] not in answer.text

    def test_legal_claim_does_not_lift_a_restriction_for_a_compliance_officer(self, api: Api, fake: Faker) -> None:
        """A compliance officer's break-glass stating legal_claim on a restricted subject is refused."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        api.restrict(token)
        answer = api.http.post(f"/v1/subjects/{token}/reveal", json={
            "fields": ["pesel"], "purpose": "legal_claim", "justification": JUSTIFICATION},
            headers=api.person("compliance_officer").headers)
        assert answer.status_code == 403, answer.text
        assert fields["pesel"] not in answer.text

    def test_legal_claim_needs_a_justification_and_is_reviewed(self, api: Api, fake: Faker) -> None:
        """The DPO's legal_claim reveal needs a written justification; it is sealed in the access entry and the
        access waits for review in the break-glass queue."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        dpo = api.person("dpo")
        bare = api.http.post(f"/v1/subjects/{token}/reveal", json={"fields": ["pesel"], "purpose": "legal_claim"},
                             headers=dpo.headers)
        assert bare.status_code == 403, bare.text

        answer = api.http.post(f"/v1/subjects/{token}/reveal", json={
            "fields": ["pesel"], "purpose": "legal_claim", "justification": JUSTIFICATION}, headers=dpo.headers)

        assert answer.status_code == 200, answer.text
        [entry] = [e for e in api.entries(token, "vault.access") if e.event["payload"]["decision"] == "allow"]
        assert entry.event["payload"]["review"] is True
        assert entry.event["payload"]["justification"]
        queue = api.http.get("/v1/policies/break-glass", headers=api.person("auditor").headers).json()["items"]
        assert entry.index in {item["index"] for item in queue}
