"""Tests of contacts.limitation: the limitation clock of the Kodeks cywilny."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contacts.limitation import (
    NEW_RULES_FROM,
    PERIOD_YEARS,
    ClaimKind,
    add_years,
    due_date_after_deadline,
    is_time_barred,
    limitation_end,
    limitation_start,
    period_end,
    time_barred_on,
)
from core.errors import InvalidInputError

G, P, B, J, JP = (
    ClaimKind.GENERAL,
    ClaimKind.PERIODIC,
    ClaimKind.BUSINESS,
    ClaimKind.JUDGMENT,
    ClaimKind.JUDGMENT_PERIODIC,
)

# (kind, due date, judgment final on, last day of the period)
NEW_RULES = [
    (G, date(2019, 3, 15), None, date(2025, 12, 31)),
    (P, date(2021, 6, 10), None, date(2024, 12, 31)),
    (B, date(2022, 1, 1), None, date(2025, 12, 31)),
    (B, date(2021, 12, 31), None, date(2024, 12, 31)),
    (G, date(2020, 2, 29), None, date(2026, 12, 31)),
    (J, date(2019, 1, 10), date(2020, 5, 4), date(2026, 12, 31)),
    (JP, date(2021, 2, 10), date(2020, 5, 4), date(2024, 12, 31)),  # instalment due after the judgment
    (JP, date(2020, 3, 1), date(2020, 5, 4), date(2026, 12, 31)),  # instalment confirmed by it
    (JP, date(2020, 5, 4), date(2020, 5, 4), date(2026, 12, 31)),  # due the day it became final
]

# claims whose period started before 9 July 2018 (art. 5 of the 2018 Act)
TRANSITION = [
    (G, date(2015, 3, 1), None, date(2024, 12, 31)),  # new 6 years from 2018-07-09, year end
    (G, date(2012, 5, 10), None, date(2022, 5, 10)),  # the old 10 years end first
    (G, date(2014, 12, 31), None, date(2024, 12, 31)),  # both end the same day
    (G, date(2008, 1, 15), None, date(2018, 1, 15)),  # time-barred before the reform
    (G, date(2008, 7, 9), None, date(2018, 7, 9)),  # not yet barred on 2018-07-09; old end first
    (G, date(2018, 7, 8), None, date(2024, 12, 31)),
    (P, date(2016, 3, 1), None, date(2019, 12, 31)),  # same length, ends at the year end
    (P, date(2015, 3, 1), None, date(2018, 3, 1)),  # barred before the reform
    (J, date(2010, 1, 1), date(2016, 9, 1), date(2024, 12, 31)),  # SN resolution of 23 Oct 2025
    (J, date(2005, 1, 1), date(2010, 2, 1), date(2020, 2, 1)),
]


def _ids(rows: list[tuple[ClaimKind, date, date | None, date]]) -> list[str]:
    return [f"{kind.value}-{due}" + (f"-j{judgment}" if judgment else "") for kind, due, judgment, _ in rows]


class TestTimeBarredOn:
    @pytest.mark.parametrize(("kind", "due", "judgment", "end"), NEW_RULES, ids=_ids(NEW_RULES))
    def test_new_rules(self, kind: ClaimKind, due: date, judgment: date | None, end: date) -> None:
        """Under the rules since 2018 the period ends on the expected 31 December; barred the day after."""
        assert limitation_end(kind, due, judgment) == end
        assert time_barred_on(kind, due, judgment) == end + timedelta(days=1)

    @pytest.mark.parametrize(("kind", "due", "judgment", "end"), TRANSITION, ids=_ids(TRANSITION))
    def test_transition(self, kind: ClaimKind, due: date, judgment: date | None, end: date) -> None:
        """A period that started before 9 July 2018 ends as art. 5 of the 2018 Act says."""
        assert limitation_end(kind, due, judgment) == end

    def test_is_time_barred_turns_on_the_day_after_the_end(self) -> None:
        """A general claim due 2019-03-15 can be pursued on 2025-12-31 and is barred from 2026-01-01."""
        assert not is_time_barred(G, date(2019, 3, 15), on=date(2025, 12, 31))
        assert is_time_barred(G, date(2019, 3, 15), on=date(2026, 1, 1))


class TestCounting:
    @pytest.mark.parametrize(
        ("start", "years", "expected"),
        [
            (date(2019, 3, 15), 6, date(2025, 3, 15)),
            (date(2020, 2, 29), 1, date(2021, 2, 28)),
            (date(2020, 2, 29), 3, date(2023, 2, 28)),
            (date(2020, 2, 29), 4, date(2024, 2, 29)),
            (date(2021, 1, 31), 0, date(2021, 1, 31)),
        ],
    )
    def test_add_years_art_112(self, start: date, years: int, expected: date) -> None:
        """Years end on the corresponding date, or the month's last day when it has none."""
        assert add_years(start, years) == expected

    def test_short_periods_keep_their_day(self) -> None:
        """A period shorter than two years ends on its own day, not at the year end."""
        assert period_end(date(2020, 2, 29), 1) == date(2021, 2, 28)
        assert period_end(date(2022, 6, 12), 1) == date(2023, 6, 12)

    def test_special_two_year_period_ends_at_year_end(self) -> None:
        """A special two-year period (e.g. art. 554 k.c.) ends on 31 December."""
        assert period_end(date(2020, 2, 29), 2) == date(2022, 12, 31)
        assert period_end(date(2018, 6, 12), 2) == date(2020, 12, 31)

    def test_due_date_is_the_day_after_the_deadline(self) -> None:
        """An invoice payable by 10 June becomes due on 11 June, and the period runs from then."""
        assert due_date_after_deadline(date(2021, 6, 10)) == date(2021, 6, 11)
        assert limitation_start(date(2021, 6, 11)) == date(2021, 6, 11)


class TestInvalidInput:
    def test_judgment_kinds_need_the_judgment_date(self) -> None:
        """A judgment claim without the date the judgment became final is refused."""
        for kind in (J, JP):
            with pytest.raises(InvalidInputError, match="judgment became final"):
                time_barred_on(kind, date(2020, 1, 1))

    def test_other_kinds_refuse_a_judgment_date(self) -> None:
        """A judgment date on a non-judgment claim is a mistake of kind and is refused."""
        with pytest.raises(InvalidInputError, match="use a judgment kind"):
            time_barred_on(G, date(2020, 1, 1), date(2021, 1, 1))

    def test_periods_are_at_least_one_year(self) -> None:
        """Zero or negative periods are refused."""
        with pytest.raises(InvalidInputError):
            period_end(date(2020, 1, 1), 0)
        with pytest.raises(InvalidInputError):
            add_years(date(2020, 1, 1), -1)

    def test_far_future_is_refused(self) -> None:
        """A period ending past the calendar's range is an input error, not an OverflowError."""
        with pytest.raises(InvalidInputError):
            time_barred_on(G, date(9995, 1, 1))


DUES = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
NEW_DUES = st.dates(min_value=NEW_RULES_FROM, max_value=date(2100, 12, 31))
SIMPLE_KINDS = st.sampled_from([G, P, B])


class TestProperties:
    @given(kind=SIMPLE_KINDS, due=NEW_DUES)
    def test_ends_on_31_december(self, kind: ClaimKind, due: date) -> None:
        """Under the new rules every period (all of two years or more) ends on 31 December."""
        end = limitation_end(kind, due)
        assert (end.month, end.day) == (12, 31)

    @given(due=NEW_DUES, judgment=NEW_DUES)
    def test_judgment_ends_on_31_december(self, due: date, judgment: date) -> None:
        """Judgment claims, periodic or not, also end on 31 December (SN, 23 October 2025)."""
        for kind in (J, JP):
            end = limitation_end(kind, due, judgment)
            assert (end.month, end.day) == (12, 31)

    @given(kind=SIMPLE_KINDS, due=DUES)
    def test_never_earlier_than_the_period(self, kind: ClaimKind, due: date) -> None:
        """The end is never before the due date plus the period, whatever the start."""
        assert limitation_end(kind, due) >= add_years(due, PERIOD_YEARS[kind])

    @given(due=DUES, judgment=DUES)
    def test_judgment_never_earlier_than_the_period(self, due: date, judgment: date) -> None:
        """A judgment claim ends no earlier than six years after the judgment became final."""
        assert limitation_end(J, due, judgment) >= add_years(judgment, 6)

    @given(kind=SIMPLE_KINDS, first=DUES, second=DUES)
    def test_monotonic_in_due_date(self, kind: ClaimKind, first: date, second: date) -> None:
        """A claim that became due later is never time-barred earlier, across the 2018 reform too."""
        earlier, later = sorted((first, second))
        assert limitation_end(kind, earlier) <= limitation_end(kind, later)

    @given(kind=SIMPLE_KINDS, due=DUES)
    def test_barred_exactly_from_the_day_after_the_end(self, kind: ClaimKind, due: date) -> None:
        """is_time_barred is false on the last day of the period and true on the next."""
        end = limitation_end(kind, due)
        assert not is_time_barred(kind, due, on=end)
        assert is_time_barred(kind, due, on=end + timedelta(days=1))
