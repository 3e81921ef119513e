"""Tests of gdpr.claims: what keeps a subject's data, read from each debt's legal history, per party and per data
category. Worked cases cite their source."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from contacts.legal_events import LegalEvent, LegalEventKind
from contacts.limitation import ClaimKind
from gdpr.claims import CATEGORY_RULES, DebtFacts, HoldFacts, erasure_assessment, erasure_possible_from

G, B = ClaimKind.GENERAL, ClaimKind.BUSINESS
TODAY = date(2026, 11, 23)
GUARANTOR = "sub_guarantor000000001"


def _categories(assessment: object) -> dict[str, tuple[bool, date | None, tuple[str, ...]]]:
    return {c.category: (c.kept, c.until, c.rules) for c in assessment.categories}  # type: ignore[attr-defined]


class TestPerCategory:
    def test_erasure_shreds_contact_data_and_keeps_accounting_evidence(self) -> None:
        """Art. 74 ust. 2 pkt 4 ustawy o rachunkowości covers accounting evidence only: a debt settled on 2024-03-10
        leaves no live claim, so contact data, notes and GPS positions may go today (GDPR Art. 17(1)(a)), while
        identification and payment data stay through 2029-12-31 (five years from 2025-01-01) and go on 2030-01-01."""
        settled = DebtFacts(id="D-1", kind=G, consumer=True, due_date=date(2021, 5, 1), status="settled",
                            settled_on=date(2024, 3, 10))
        assessment = erasure_assessment([settled], [], TODAY)
        assert assessment.allowed is False
        assert assessment.possible_from == date(2030, 1, 1)
        categories = _categories(assessment)
        for category in ("contact", "notes", "location"):
            assert categories[category] == (False, None, ()), category
        for category in ("identification", "financial"):
            assert categories[category] == (True, date(2029, 12, 31), ("accounting_retention",)), category
        as_json = {c["category"]: c for c in assessment.categories_json()["categories"]}
        assert as_json["contact"]["erasable_from"] == TODAY.isoformat()
        assert as_json["identification"]["erasable_from"] == "2030-01-01"
        assert "art. 74 ust. 2 pkt 4" in as_json["identification"]["basis"]

    def test_live_claim_keeps_every_category(self) -> None:
        """Art. 17(3)(e): while a claim can be pursued (general, due 2025-06-30: to 2031-12-31) everything used to
        pursue it is kept; identification and payment data then stay for the accounting duty to 2037-12-31."""
        live = DebtFacts(id="D-2", kind=G, consumer=True, due_date=date(2025, 6, 30))
        categories = _categories(erasure_assessment([live], [], TODAY))
        assert categories["contact"] == (True, date(2031, 12, 31), ("legal_claim",))
        assert categories["identification"] == (True, date(2037, 12, 31), ("legal_claim", "accounting_retention"))

    def test_a_hold_keeps_every_category(self) -> None:
        """A legal hold keeps everything of the subject, contact data included, whatever the accounting duty."""
        hold = HoldFacts(id="hold-1", reason="complaint", starts_on=date(2026, 1, 1), ends_on=date(2027, 6, 30))
        categories = _categories(erasure_assessment([], [hold], TODAY))
        assert {c: v[:2] for c, v in categories.items()} == {c: (True, date(2027, 6, 30)) for c in CATEGORY_RULES}


class TestHistoryInTheAssessment:
    def test_pending_enforcement_keeps_the_claim_without_an_end(self) -> None:
        """Art. 124 § 2 k.c.: enforcement begun and not ended stops the period; the claim keeps the data with no end
        date, so erasure has no date either (until the proceedings end)."""
        debt = DebtFacts(id="D-3", kind=B, consumer=True, due_date=date(2019, 2, 1), events=(
            LegalEvent(kind=LegalEventKind.JUDGMENT, on=date(2020, 1, 15)),
            LegalEvent(kind=LegalEventKind.ENFORCEMENT_STARTED, on=date(2021, 3, 1))))
        assessment = erasure_assessment([debt], [], TODAY)
        assert [(r.rule, r.until) for r in assessment.reasons] == [("legal_claim", None)]
        assert "art. 124 § 2" in assessment.reasons[0].detail
        assert assessment.possible_from is None
        assert erasure_possible_from(debt) is None

    def test_guarantors_claim_is_their_own(self) -> None:
        """Art. 372, 881 k.c.: a payment order against the guarantor alone (final 2022-10-03) keeps the claim against
        the guarantor to 2028-12-31; read for the debtor, the same debt (business, due 2019-06-01) ended 2022-12-31."""
        events = (LegalEvent(kind=LegalEventKind.PAYMENT_ORDER, on=date(2022, 10, 3), party=GUARANTOR),)
        theirs = DebtFacts(id="D-4", kind=B, consumer=True, due_date=date(2019, 6, 1), events=events,
                           role="guarantor", party=GUARANTOR)
        debtors = DebtFacts(id="D-4", kind=B, consumer=True, due_date=date(2019, 6, 1), events=events,
                            party="sub_debtor0000000001")
        claim = erasure_assessment([theirs], [], TODAY).reasons[0]
        assert (claim.rule, claim.until) == ("legal_claim", date(2028, 12, 31))
        assert "the guarantor of a consumer" in claim.detail
        assert [r.rule for r in erasure_assessment([debtors], [], TODAY).reasons] == ["accounting_retention"]

    def test_judgment_on_a_general_kind_is_accepted(self) -> None:
        """Defect 1 in the pure core: a general claim with a judgment date reads the judgment (art. 125 § 1)."""
        debt = DebtFacts(id="D-5", kind=G, consumer=True, due_date=date(2019, 3, 15), judgment_date=date(2023, 5, 4))
        assert debt.reading.end == date(2029, 12, 31)


DAYS = st.dates(min_value=date(2010, 1, 1), max_value=date(2035, 12, 31))


@st.composite
def debts(draw: st.DrawFn, debt_id: str) -> DebtFacts:
    due = draw(DAYS)
    if draw(st.booleans()):
        return DebtFacts(id=debt_id, kind=draw(st.sampled_from([G, B])), consumer=True, due_date=due)
    return DebtFacts(id=debt_id, kind=G, consumer=True, due_date=due, status="settled",
                     settled_on=draw(st.dates(min_value=due, max_value=date(2036, 12, 31))))


class TestProperties:
    @given(first=debts("D-1"), second=debts("D-2"), today=DAYS)
    def test_no_category_outlives_the_subject(self, first: DebtFacts, second: DebtFacts, today: date) -> None:
        """A category is kept exactly when a reason covering it is left, never past the subject's last day, and the
        subject is kept exactly when some category is."""
        assessment = erasure_assessment([first, second], [], today)
        kept = [c for c in assessment.categories if c.kept]
        assert bool(kept) is (not assessment.allowed)
        for category in assessment.categories:
            covering = [r for r in assessment.reasons if r.rule in CATEGORY_RULES[category.category][0]]
            assert category.kept is bool(covering)
            if category.kept and assessment.possible_from is not None:
                assert category.until is not None
                assert category.until < assessment.possible_from
