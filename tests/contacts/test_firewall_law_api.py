"""The firewall's legal rules over HTTP, on SQLite and PostgreSQL: the cap per person across debts and channels
(issue 17, defect 5), requests to pay a consumer's time-barred claim (defect 4), and every refusal naming the
rule and the kind of source it rests on. Synthetic data only."""

from __future__ import annotations

from typing import Any

from faker import Faker

from tests.contacts.test_api import Api, api, fake

__all__ = ["api", "fake"]

MONDAY = "2026-11-23"  # a working week without public holidays in Poland: 23-27 November 2026


def _subject_with_debts(api: Api, fake: Faker, headers: dict[str, str], debts: int,
                        **debt: Any) -> tuple[str, list[str]]:
    created = api.http.post("/v1/subjects", headers=headers, json={"kind": "debtor", "fields": {
        "first_name": fake.first_name(), "last_name": fake.last_name()}})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    ids = [f"D-{fake.unique.random_int(10000, 99999)}" for _ in range(debts)]
    for debt_id in ids:
        body = {"id": debt_id, "subject": token, "creditor": "Przykładowy Bank S.A.", "creditor_kind": "bank",
                "kind": "business", "consumer": True, "amount_minor": 10_000, "due_date": "2025-03-01", **debt}
        answer = api.http.post("/v1/debts", headers=headers, json=body)
        assert answer.status_code == 201, answer.text
    return token, ids


def _contact(token: str, debt_id: str, channel: str, at: str, **extra: Any) -> dict[str, Any]:
    outcome = "no_answer" if channel == "phone" else "sent"
    return {"subject": token, "channel": channel, "direction": "outbound", "agent_id": "agent-007",
            "started_at": at, "debt_id": debt_id, "outcome": outcome, **extra}


class TestCapPerPerson:
    def test_sixth_contact_in_a_week_across_three_debts_and_two_channels_is_refused(self, api: Api,
                                                                                     fake: Faker) -> None:
        """Five outbound contacts with one person in a week, spread over three debts and two channels, pass every
        per-debt, per-channel cap; the sixth is refused 409 by person_cap, the answer naming the rule, its source
        kind (firm policy) and its citation (k.k. art. 190a), and the refusal is in the log."""
        collector = api.person("collector")
        token, (d1, d2, d3) = _subject_with_debts(api, fake, collector, 3)
        plan = [(d1, "phone", "23T10:00"), (d2, "sms", "23T11:00"), (d3, "phone", "24T10:00"),
                (d1, "sms", "24T11:00"), (d2, "phone", "25T10:00")]
        for debt_id, channel, when in plan:
            done = api.http.post("/v1/contacts", headers=collector,
                                 json=_contact(token, debt_id, channel, f"2026-11-{when}:00+01:00"))
            assert done.status_code == 201, done.text
        sixth = api.http.post("/v1/contacts", headers=collector,
                              json=_contact(token, d3, "sms", "2026-11-26T10:00:00+01:00"))
        assert sixth.status_code == 409, sixth.text
        problem = sixth.json()
        assert problem["type"].endswith("contact-refused")
        [refusal] = [r for r in problem["rules"] if r["action"] == "refuse"]
        assert refusal["rule"] == "person_cap"
        assert refusal["source_kind"] == "firm_policy"
        assert "190a" in refusal["source"]
        assert "5 outbound contact(s) with this person" in refusal["message"]
        assert "on 3 debt(s) and 2 channel(s)" in refusal["message"]
        [blocked] = api.events(token, "contact.blocked")
        assert blocked["payload"]["rules"] == ["person_cap"]


class TestTimeBarredConsumerClaims:
    def test_voluntary_request_needs_the_notice_and_no_threat(self, api: Api, fake: Faker) -> None:
        """Art. 117 § 2¹ k.c. and UOKiK practice: on a consumer's claim time-barred since 2024-01-01 a demand is refused
        (statute), a request for voluntary payment without the time-barred notice or with a threat of a bailiff is
        refused (regulator guidance), and a request with the notice and no threat goes and is logged with both."""
        collector = api.person("collector")
        token, (debt_id,) = _subject_with_debts(api, fake, collector, 1, due_date="2020-03-01")
        at = f"{MONDAY}T10:00:00+01:00"
        cases = [({"demands_payment": True}, "time_barred_demand", "statute"),
                 ({"voluntary_payment_request": True}, "time_barred_voluntary_request", "regulator_guidance"),
                 ({"voluntary_payment_request": True, "time_barred_notice": True, "threats": ["bailiff"]},
                  "time_barred_voluntary_request", "regulator_guidance")]
        for flags, rule, kind in cases:
            answer = api.http.post("/v1/contacts/check", headers=collector,
                                   json=_contact(token, debt_id, "letter", at, **flags))
            assert answer.status_code == 200, answer.text
            verdict = answer.json()
            assert verdict["allowed"] is False, flags
            assert [(v["rule"], v["source_kind"]) for v in verdict["violations"]] == [(rule, kind)]
        sent = api.http.post("/v1/contacts", headers=collector, json=_contact(
            token, debt_id, "letter", at, voluntary_payment_request=True, time_barred_notice=True))
        assert sent.status_code == 201, sent.text
        [entry] = api.events(token, "contact.attempted")
        assert entry["payload"]["voluntary_payment_request"] is True
        assert entry["payload"]["time_barred_notice"] is True
