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
