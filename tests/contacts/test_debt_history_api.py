"""A debt's legal history over HTTP and the CLI's server, on SQLite and PostgreSQL: a judgment on an
ordinary debt (issue 17, defect 1), events that interrupt and restart the period with the reasoning,
claim kinds checked against the creditor (defect 7), guarantors with their own period. Synthetic data."""

from __future__ import annotations

from typing import Any

from faker import Faker

from tests.contacts.test_api import Api, Debtor, api, call, fake, new_debtor  # noqa: F401 - fixtures

__all__ = ["api", "fake"]


def _ok(answer: Any, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    value = answer.json()
    assert isinstance(value, dict)
    return value


class TestJudgmentOnAnOrdinaryDebt:
    def test_judgment_recorded_on_a_general_debt_leaves_every_read_working(self, api: Api, fake: Faker) -> None:
        """Defect 1: after a judgment date is recorded on a general debt (the old status route), the debt, the
        subject's debts, a contact check, the erasure assessment and the retention dry run all still answer
        200, and the debt is time-barred six years after the judgment (art. 125 § 1, year-end rule)."""
        collector, dpo = api.person("collector"), api.person("dpo")
        debtor = new_debtor(api, fake, collector, due="2019-03-15")
        judged = api.http.post(f"/v1/debts/{debtor.debt_id}/status", headers=collector,
                               json={"status": "open", "judgment_date": "2023-05-04"})
        assert _ok(judged)["time_barred_on"] == "2030-01-01"
        assert _ok(api.http.get(f"/v1/debts/{debtor.debt_id}", headers=collector))["time_barred_on"] == "2030-01-01"
        debts = _ok(api.http.get(f"/v1/subjects/{debtor.token}/debts", headers=collector))
        assert [d["id"] for d in debts["items"]] == [debtor.debt_id]
        _ok(api.http.post("/v1/contacts/check", headers=collector, json=call(debtor, demands_payment=True)))
        assessment = _ok(api.http.get(f"/v1/subjects/{debtor.token}/erasure-assessment", headers=dpo))
        assert assessment["allowed"] is False
        _ok(api.http.post("/v1/gdpr/retention/dry-run", headers=dpo))


def _debt(api: Api, headers: dict[str, str], token: str, debt_id: str, **extra: Any) -> Any:
    body = {"id": debt_id, "subject": token, "creditor": "Przykładowy Telekom S.A.", "consumer": True,
            "amount_minor": 45_000, "currency": "PLN", "due_date": "2020-01-10", "kind": "business", **extra}
    return api.http.post("/v1/debts", headers=headers, json=body)


def _subject(api: Api, fake: Faker, headers: dict[str, str]) -> str:
    created = api.http.post("/v1/subjects", headers=headers, json={"kind": "debtor", "fields": {
        "first_name": fake.first_name(), "last_name": fake.last_name()}})
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


class TestLegalHistoryOverHttp:
    def test_part_payment_then_enforcement_reasoned_step_by_step(self, api: Api, fake: Faker) -> None:
        """Art. 123 § 1 pkt 2, 124 § 1-2 k.c. over HTTP: a business claim due 2020-01-10 (to 2023-12-31), partly paid
        2022-05-04 (to 2025-12-31), enforcement from 2023-01-01 (no end while pending), ended 2024-02-01 (to
        2027-12-31); each answer carries the reasoning, each step naming its article, and each event is logged."""
        collector = api.person("collector")
        token = _subject(api, fake, collector)
        assert _ok(_debt(api, collector, token, "D-HIST-1", creditor_kind="telecom"), 201)["time_barred_on"] \
            == "2024-01-01"
        paid = _ok(api.http.post("/v1/debts/D-HIST-1/events", headers=collector, json={
            "kind": "part_payment", "on": "2022-05-04", "amount_minor": 15_000, "source": "wyciąg 2022/05/18"}), 201)
        assert paid["limitation"]["limitation_end"] == "2025-12-31"
        assert paid["limitation"]["steps"][-1]["article"] == "art. 123 § 1 pkt 2 k.c."
        pending = _ok(api.http.post("/v1/debts/D-HIST-1/events", headers=collector, json={
            "kind": "enforcement_started", "on": "2023-01-01", "source": "Km 12/23"}), 201)
        assert pending["time_barred_on"] is None
        assert pending["limitation"]["running"] is False
        ended = _ok(api.http.post("/v1/debts/D-HIST-1/events", headers=collector, json={
            "kind": "enforcement_ended", "on": "2024-02-01"}), 201)
        assert ended["time_barred_on"] == "2028-01-01"
        shown = _ok(api.http.get("/v1/debts/D-HIST-1", headers=collector))
        assert [s["article"] for s in shown["limitation"]["steps"]] == [
            "art. 120 § 1, art. 118 k.c.", "art. 123 § 1 pkt 2 k.c.", "art. 123 § 1 pkt 1 k.c.", "art. 124 § 2 k.c."]
        assert [e["kind"] for e in shown["events"]] == ["part_payment", "enforcement_started", "enforcement_ended"]
        logged = api.events(token, "debt.event_recorded")
        assert [(e["payload"]["event"], e["payload"].get("limitation_end")) for e in logged] == [
            ("part_payment", "2025-12-31"), ("enforcement_started", None), ("enforcement_ended", "2027-12-31")]
        assert [e["log_index"] is not None for e in shown["events"]] == [True, True, True]

    def test_inconsistent_event_is_refused_and_nothing_stored(self, api: Api, fake: Faker) -> None:
        """An enforcement that ends without having started, a future event, or a party that is no party of the
        debt is a 422 problem; the debt, its history and the log are unchanged."""
        collector = api.person("collector")
        token = _subject(api, fake, collector)
        _ok(_debt(api, collector, token, "D-HIST-2"), 201)
        before = api.runtime.audit.size()
        for body in ({"kind": "enforcement_ended", "on": "2023-01-01"},
                     {"kind": "acknowledgement", "on": "2999-01-01"},
                     {"kind": "acknowledgement", "on": "2023-01-01", "party": "sub_NoSuchParty000000001"},
                     {"kind": "suspension_started", "on": "2023-01-01"}):
            refused = api.http.post("/v1/debts/D-HIST-2/events", headers=collector, json=body)
            assert refused.status_code == 422, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
        assert api.runtime.audit.size() == before
        assert _ok(api.http.get("/v1/debts/D-HIST-2", headers=collector))["events"] == []

    def test_field_agent_cannot_record_events_on_debts_of_others(self, api: Api, fake: Faker) -> None:
        """A field agent with no case on the subject is refused 403; a reader without contact.record too."""
        collector = api.person("collector")
        token = _subject(api, fake, collector)
        _ok(_debt(api, collector, token, "D-HIST-3"), 201)
        event = {"kind": "acknowledgement", "on": "2023-01-01"}
        assert api.http.post("/v1/debts/D-HIST-3/events", headers=api.person("field_agent"),
                             json=event).status_code == 403
        assert api.http.post("/v1/debts/D-HIST-3/events", headers=api.person("auditor"), json=event).status_code == 403


class TestClaimKinds:
    def test_bought_consumer_telecom_debt_is_a_business_claim(self, api: Api, fake: Faker) -> None:
        """Defect 7 (art. 118 k.c.; art. 509 k.c.): a consumer's debt bought from a telecom entered as general is
        refused with a clear problem; as business it is time-barred after three years (due 2022-03-15: from
        2026-01-01), as the schema's enum documents."""
        collector = api.person("collector")
        token = _subject(api, fake, collector)
        refused = _debt(api, collector, token, "D-KIND-1", kind="general", creditor_kind="telecom",
                        due_date="2022-03-15")
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["type"].endswith("claim-kind")
        assert "business" in problem["detail"]
        assert "art. 118" in problem["detail"]
        debt = _ok(_debt(api, collector, token, "D-KIND-1", kind="business", creditor_kind="telecom",
                         due_date="2022-03-15"), 201)
        assert debt["time_barred_on"] == "2026-01-01"
        assert debt["kind_checked"] is True
        schema = api.http.get("/openapi.json").json()["components"]["schemas"]["DebtModel"]["properties"]
        assert set(schema["kind"]["enum"]) == {"general", "periodic", "business", "judgment", "judgment_periodic"}
        assert "telecom" in schema["creditor_kind"]["anyOf"][0]["enum"]

    def test_individual_creditor_has_no_consumer_and_no_business_claim(self, api: Api, fake: Faker) -> None:
        """Art. 22¹ and 118 k.c.: a private person's claim is not a business claim and its debtor not a consumer."""
        collector = api.person("collector")
        token = _subject(api, fake, collector)
        for extra in ({"kind": "business", "consumer": False}, {"kind": "general", "consumer": True}):
            refused = _debt(api, collector, token, "D-KIND-2", creditor_kind="individual", **extra)
            assert refused.status_code == 422, refused.text
        _ok(_debt(api, collector, token, "D-KIND-2", creditor_kind="individual", kind="general", consumer=False), 201)


class TestGuarantors:
    def test_guarantor_live_while_the_debtor_is_barred(self, api: Api, fake: Faker) -> None:
        """Art. 372, 881 and 125 § 1 k.c.: a payment order against the guarantor alone (final 2022-10-03) keeps the
        claim against them live to 2028-12-31 while the debtor's (business, due 2019-06-01) is barred since
        2023-01-01; each sees their own period,
        the firewall allows a payment demand to the guarantor but not to the consumer debtor, and the guarantor's
        erasure assessment names the live claim."""
        collector, dpo = api.person("collector"), api.person("dpo")
        debtor, guarantor = _subject(api, fake, collector), _subject(api, fake, collector)
        _ok(_debt(api, collector, debtor, "D-GUAR-1", due_date="2019-06-01", creditor_kind="bank"), 201)
        linked = _ok(api.http.post("/v1/debts/D-GUAR-1/parties", headers=collector,
                                   json={"subject": guarantor, "role": "guarantor"}), 201)
        assert [p["role"] for p in linked["parties"]] == ["guarantor"]
        _ok(api.http.post("/v1/debts/D-GUAR-1/events", headers=collector, json={
            "kind": "payment_order", "on": "2022-10-03", "party": guarantor, "source": "VI Nc-e 1234/22"}), 201)
        own = _ok(api.http.get(f"/v1/subjects/{debtor}/debts", headers=collector))["items"][0]
        theirs = _ok(api.http.get(f"/v1/subjects/{guarantor}/debts", headers=collector))["items"][0]
        assert (own["role"], own["time_barred_on"], own["time_barred"]) == ("debtor", "2023-01-01", True)
        assert (theirs["role"], theirs["time_barred_on"], theirs["time_barred"]) == ("guarantor", "2029-01-01", False)
        contact = {"channel": "letter", "agent_id": "agent-1", "started_at": "2026-11-17T10:00:00+01:00",
                   "debt_id": "D-GUAR-1", "demands_payment": True}
        to_debtor = _ok(api.http.post("/v1/contacts/check", headers=collector, json={**contact, "subject": debtor}))
        to_guarantor = _ok(api.http.post("/v1/contacts/check", headers=collector,
                                         json={**contact, "subject": guarantor}))
        assert "time_barred_demand" in [v["rule"] for v in to_debtor["violations"]]
        assert "time_barred_demand" not in [v["rule"] for v in to_guarantor["violations"]]
        assessment = _ok(api.http.get(f"/v1/subjects/{guarantor}/erasure-assessment", headers=dpo))
        claim = [r for r in assessment["reasons"] if r["rule"] == "legal_claim"]
        assert [(r["ref"], r["until"]) for r in claim] == [("D-GUAR-1", "2028-12-31")]
        assert "guarantor" in claim[0]["detail"]
        debtor_assessment = _ok(api.http.get(f"/v1/subjects/{debtor}/erasure-assessment", headers=dpo))
        assert "legal_claim" not in [r["rule"] for r in debtor_assessment["reasons"]]


class TestAssignment:
    def test_assignment_records_the_assignee_as_a_recipient(self, api: Api, fake: Faker) -> None:
        """Art. 509 k.c. leaves the period as it is; GDPR Art. 19: the assignee received the data, so it is a
        recipient of the debtor's data in the register."""
        collector, dpo = api.person("collector"), api.person("dpo")
        token = _subject(api, fake, collector)
        before = _ok(_debt(api, collector, token, "D-ASSN-1"), 201)
        after = _ok(api.http.post("/v1/debts/D-ASSN-1/events", headers=collector, json={
            "kind": "assignment", "on": "2024-06-30", "assignee": "Przykładowy Fundusz NSFIZ"}), 201)
        assert after["time_barred_on"] == before["time_barred_on"]
        recipients = _ok(api.http.get(f"/v1/subjects/{token}/recipients", headers=dpo))["items"]
        assert [(r["kind"], r["name"], r["disclosed_on"]) for r in recipients] == [
            ("assignee", "Przykładowy Fundusz NSFIZ", "2024-06-30")]
