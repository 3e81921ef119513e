"""Tests of contacts.limitation.read_limitation and contacts.legal_events: the limitation period read
from a debt's legal history, worked statutory cases first (each citing its source), then properties."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contacts.legal_events import LegalEvent, LegalEventKind, ordered
from contacts.limitation import (
    BASE_KINDS,
    ClaimKind,
    legacy_history,
    limitation_end,
    read_limitation,
)
from core.errors import InvalidInputError

K = LegalEventKind
G, P, B = ClaimKind.GENERAL, ClaimKind.PERIODIC, ClaimKind.BUSINESS
DEBTOR, GUARANTOR = "sub_debtor00000001", "sub_guarantor00001"


def ev(kind: LegalEventKind, on: date, **extra: object) -> LegalEvent:
    return LegalEvent(kind=kind, on=on, **extra)  # type: ignore[arg-type]


class TestWorkedCases:
    def test_judgment_after_an_ordinary_debt(self) -> None:
        """Art. 125 § 1 k.c. with the art. 118 year-end rule: a general claim due 2019-03-15 (six years to
        2025-12-31) confirmed by a judgment final on 2023-05-04 runs six years from it, to 2029-12-31."""
        reading = read_limitation(G, date(2019, 3, 15), [ev(K.JUDGMENT, date(2023, 5, 4), source="I C 123/22")])
        assert reading.steps[0].end == date(2025, 12, 31)
        assert reading.end == date(2029, 12, 31)
        assert reading.time_barred_on == date(2030, 1, 1)
        assert reading.steps[-1].article == "art. 125 § 1 k.c."
        assert "I C 123/22" in reading.steps[-1].text

    def test_payment_order_on_a_business_claim(self) -> None:
        """Art. 125 § 1 k.c.: a final payment order turns a three-year business claim into a six-year one."""
        reading = read_limitation(B, date(2021, 4, 1), [ev(K.PAYMENT_ORDER, date(2022, 9, 12))])
        assert reading.end == date(2028, 12, 31)

    def test_acknowledgement_by_part_payment_restarts_the_period(self) -> None:
        """Art. 123 § 1 pkt 2 and art. 124 § 1 k.c.: a business claim due 2020-01-10 (to 2023-12-31) partly paid
        on 2022-05-04 runs anew for three years from that day, to 2025-12-31."""
        reading = read_limitation(B, date(2020, 1, 10), [ev(K.PART_PAYMENT, date(2022, 5, 4), amount_minor=15_000)])
        assert reading.end == date(2025, 12, 31)
        assert reading.steps[-1].article == "art. 123 § 1 pkt 2 k.c."
        assert "art. 124 § 1" in reading.steps[-1].text

    def test_enforcement_that_ran_and_ended(self) -> None:
        """Art. 123 § 1 pkt 1 and 124 § 2 k.c.: a judgment final 2020-06-01 (to 2026-12-31); enforcement from
        2021-02-01 stops the clock (no end while pending); ended 2024-09-30, six years run anew: 2030-12-31."""
        history = [ev(K.JUDGMENT, date(2020, 6, 1)), ev(K.ENFORCEMENT_STARTED, date(2021, 2, 1), source="Km 77/21")]
        pending = read_limitation(G, date(2019, 1, 10), history)
        assert pending.end is None
        assert pending.time_barred_on is None
        assert not pending.time_barred(date(2040, 1, 1))
        ended = read_limitation(G, date(2019, 1, 10), [*history, ev(K.ENFORCEMENT_ENDED, date(2024, 9, 30))])
        assert ended.end == date(2030, 12, 31)
        assert [s.article for s in ended.steps][-2:] == ["art. 123 § 1 pkt 1 k.c.", "art. 124 § 2 k.c."]

    def test_claim_due_before_the_2018_reform(self) -> None:
        """Art. 5 ust. 1 of the Act of 13 April 2018: a business claim due 2016-02-01 ends at the year end,
        2019-12-31; partly paid on 2017-10-01 (art. 123 § 1 pkt 2) it runs anew to 2020-12-31."""
        assert read_limitation(B, date(2016, 2, 1)).end == date(2019, 12, 31)
        reading = read_limitation(B, date(2016, 2, 1), [ev(K.PART_PAYMENT, date(2017, 10, 1), amount_minor=100)])
        assert reading.end == date(2020, 12, 31)

    def test_general_claim_due_before_the_reform_keeps_the_shorter_end(self) -> None:
        """Art. 5 ust. 2 of the 2018 Act: due 2015-03-01, acknowledged 2017-05-10: the old ten years would end
        2027-05-10, the new six counted from 2018-07-09 end 2024-12-31, which is earlier and applies."""
        reading = read_limitation(G, date(2015, 3, 1), [ev(K.ACKNOWLEDGEMENT, date(2017, 5, 10))])
        assert reading.end == date(2024, 12, 31)
        assert "art. 5 ust. 2" in reading.steps[-1].text

    def test_mediation_interrupts_until_it_ends(self) -> None:
        """Art. 123 § 1 pkt 3 and 124 § 2 k.c.: mediation from 2023-03-01 to 2023-07-15 restarts six years."""
        reading = read_limitation(G, date(2019, 5, 1), [ev(K.MEDIATION_STARTED, date(2023, 3, 1)),
                                                        ev(K.MEDIATION_ENDED, date(2023, 7, 15))])
        assert reading.end == date(2029, 12, 31)

    def test_suspension_for_force_majeure_lengthens_the_period(self) -> None:
        """Art. 121 pkt 4 k.c.: a business claim due 2021-11-15 would end 2024-12-31 (unshifted 2024-11-15); 60
        days of force majeure move the unshifted end to 2025-01-14, so the year end is 2025-12-31."""
        reading = read_limitation(B, date(2021, 11, 15), [
            ev(K.SUSPENSION_STARTED, date(2022, 3, 1), ground="force_majeure"),
            ev(K.SUSPENSION_ENDED, date(2022, 4, 30))])
        assert reading.end == date(2025, 12, 31)
        during = read_limitation(B, date(2021, 11, 15), [ev(K.SUSPENSION_STARTED, date(2022, 3, 1),
                                                             ground="force_majeure")])
        assert during.end is None

    def test_withdrawn_court_action_has_no_effect(self) -> None:
        """Art. 203 § 2 k.p.c.: a withdrawn claim has none of the effects of bringing it, so no interruption."""
        plain = read_limitation(B, date(2021, 3, 1))
        reading = read_limitation(B, date(2021, 3, 1), [ev(K.COURT_ACTION_STARTED, date(2022, 1, 10)),
                                                        ev(K.COURT_ACTION_ENDED, date(2022, 6, 1), withdrawn=True)])
        assert reading.end == plain.end == date(2024, 12, 31)

    def test_court_action_ended_by_a_judgment(self) -> None:
        """Art. 124 § 2, 125 § 1 k.c.: a pending action keeps the period from running; the final judgment ends the
        proceedings and starts six years."""
        history = [ev(K.COURT_ACTION_STARTED, date(2023, 2, 1))]
        assert read_limitation(B, date(2021, 3, 1), history).end is None
        reading = read_limitation(B, date(2021, 3, 1), [*history, ev(K.JUDGMENT, date(2024, 4, 20))])
        assert reading.end == date(2030, 12, 31)

    def test_interruption_after_the_end_has_no_effect(self) -> None:
        """Art. 123 k.c. interrupts a running period only: a part payment on a barred claim leaves it barred,
        and the step says so; a judgment still confirms the claim (art. 125 § 1)."""
        reading = read_limitation(B, date(2018, 9, 1), [ev(K.PART_PAYMENT, date(2023, 2, 1), amount_minor=500)])
        assert reading.end == date(2021, 12, 31)
        assert "no effect" in reading.steps[-1].text
        judged = read_limitation(B, date(2018, 9, 1), [ev(K.JUDGMENT, date(2023, 2, 1))])
        assert judged.end == date(2029, 12, 31)

    def test_guarantor_live_while_the_debtor_is_barred(self) -> None:
        """Art. 372 and 881 k.c.: the guarantor's acknowledgement interrupts the period against the guarantor
        only; the debtor's claim (business, due 2019-06-01) is barred from 2023-01-01, the guarantor, who
        acknowledged it on 2022-03-05, answers for it to 2025-12-31."""
        history = [ev(K.ACKNOWLEDGEMENT, date(2022, 3, 5), party=GUARANTOR)]
        debtor = read_limitation(B, date(2019, 6, 1), history, party=DEBTOR)
        guarantor = read_limitation(B, date(2019, 6, 1), history, party=GUARANTOR)
        assert debtor.end == date(2022, 12, 31)
        assert debtor.time_barred(date(2024, 6, 1))
        assert guarantor.end == date(2025, 12, 31)
        assert not guarantor.time_barred(date(2024, 6, 1))
        assert "another party" in debtor.steps[-1].text
        assert debtor.steps[-1].article == "art. 372, 881 k.c."

    def test_assignment_changes_nothing(self) -> None:
        """Art. 509 and 513 § 1 k.c.: the assignee takes the claim with the debtor's limitation defence."""
        reading = read_limitation(G, date(2020, 2, 1), [ev(K.ASSIGNMENT, date(2022, 1, 3), assignee="Fundusz X NSFIZ")])
        assert reading.end == limitation_end(G, date(2020, 2, 1))
        assert "Fundusz X NSFIZ" in reading.steps[-1].text


class TestInvalidHistory:
    def test_end_without_start_is_refused(self) -> None:
        """An enforcement that ends without having started is an inconsistent history."""
        with pytest.raises(InvalidInputError, match="no enforcement_started is open"):
            read_limitation(G, date(2020, 1, 1), [ev(K.ENFORCEMENT_ENDED, date(2021, 1, 1))])

    def test_start_repeated_while_open_is_refused(self) -> None:
        """A second mediation cannot begin while the first has not ended."""
        with pytest.raises(InvalidInputError, match="has not ended"):
            read_limitation(G, date(2020, 1, 1), [ev(K.MEDIATION_STARTED, date(2021, 1, 1)),
                                                  ev(K.MEDIATION_STARTED, date(2021, 2, 1))])

    def test_suspension_only_for_force_majeure(self) -> None:
        """Art. 121 pkt 1-3 (family and guardianship) never apply to a collection firm's claim."""
        with pytest.raises(InvalidInputError, match="force majeure"):
            ev(K.SUSPENSION_STARTED, date(2021, 1, 1), ground="marriage")
        with pytest.raises(InvalidInputError, match="claim itself"):
            ev(K.SUSPENSION_STARTED, date(2021, 1, 1), ground="force_majeure", party=DEBTOR)

    def test_details_belong_to_their_kind(self) -> None:
        """An assignment names its assignee, a part payment its positive amount, and nothing else does."""
        for bad in ({"kind": K.ASSIGNMENT}, {"kind": K.PART_PAYMENT}, {"kind": K.PART_PAYMENT, "amount_minor": 0},
                    {"kind": K.JUDGMENT, "amount_minor": 5}, {"kind": K.ENFORCEMENT_ENDED, "withdrawn": True},
                    {"kind": "verdict"}):
            with pytest.raises(InvalidInputError):
                LegalEvent(on=date(2021, 1, 1), **bad)  # type: ignore[arg-type]

    def test_judgment_kinds_are_history_not_kinds(self) -> None:
        """read_limitation takes a base kind; the old judgment kinds convert through legacy_history."""
        with pytest.raises(InvalidInputError, match="base kind"):
            read_limitation(ClaimKind.JUDGMENT, date(2020, 1, 1))
        assert legacy_history(ClaimKind.JUDGMENT_PERIODIC, date(2020, 5, 4))[0] is P


DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))
SIMPLE = st.sampled_from([K.ACKNOWLEDGEMENT, K.PART_PAYMENT, K.JUDGMENT, K.PAYMENT_ORDER, K.ASSIGNMENT])


def _simple(kind: LegalEventKind, on: date) -> LegalEvent:
    extra: dict[str, object] = {}
    if kind is K.PART_PAYMENT:
        extra["amount_minor"] = 100
    if kind is K.ASSIGNMENT:
        extra["assignee"] = "Fundusz NSFIZ"
    return LegalEvent(kind=kind, on=on, **extra)  # type: ignore[arg-type]


class TestProperties:
    @given(kind=st.sampled_from(BASE_KINDS), due=DAYS)
    def test_no_history_agrees_with_limitation_end(self, kind: ClaimKind, due: date) -> None:
        """Without events the reading is exactly the plain clock of art. 118 with the 2018 transition."""
        assert read_limitation(kind, due).end == limitation_end(kind, due)

    @given(kind=st.sampled_from([ClaimKind.JUDGMENT, ClaimKind.JUDGMENT_PERIODIC]), due=DAYS, judgment=DAYS)
    def test_legacy_judgment_kinds_agree(self, kind: ClaimKind, due: date, judgment: date) -> None:
        """A judgment kind with its date reads as its base kind with one judgment event, with the same end."""
        base, events = legacy_history(kind, judgment)
        assert read_limitation(base, due, events).end == limitation_end(kind, due, judgment)

    @given(kind=st.sampled_from(BASE_KINDS), due=DAYS,
           history=st.lists(st.tuples(SIMPLE, st.integers(0, 9000)), max_size=5),
           last=st.tuples(SIMPLE, st.integers(0, 9000)))
    def test_an_event_never_makes_the_end_earlier(self, kind: ClaimKind, due: date,
                                                  history: list[tuple[LegalEventKind, int]],
                                                  last: tuple[LegalEventKind, int]) -> None:
        """An event on or after the due date, added after the others, never moves the end earlier."""
        events = ordered(_simple(k, due + timedelta(days=d)) for k, d in history)
        latest = max([due, *(e.on for e in events)])
        extra = _simple(last[0], latest + timedelta(days=last[1]))
        before = read_limitation(kind, due, events).end
        after = read_limitation(kind, due, [*events, extra]).end
        assert before is not None
        assert after is not None
        assert after >= before

    @given(kind=st.sampled_from(BASE_KINDS), due=DAYS, start=st.integers(0, 4000), length=st.integers(0, 2000))
    def test_proceedings_end_is_none_then_later(self, kind: ClaimKind, due: date, start: int, length: int) -> None:
        """While enforcement is pending the period has no end; once ended the end is no earlier than before."""
        begun = ev(K.ENFORCEMENT_STARTED, due + timedelta(days=start))
        plain = read_limitation(kind, due).end
        assert plain is not None
        pending = read_limitation(kind, due, [begun]).end
        assert pending is None or begun.on > plain
        ended = read_limitation(kind, due, [begun, ev(K.ENFORCEMENT_ENDED, begun.on + timedelta(days=length))]).end
        assert ended is not None
        assert ended >= plain
