"""Tests of contacts.calendar: Polish public holidays and working days."""

from __future__ import annotations

from datetime import date

import pytest

from contacts.calendar import (
    holiday_name,
    holidays_in_year,
    is_public_holiday,
    is_weekend,
    is_working_day,
    next_working_day,
    working_day_on_or_after,
)

# (day, public holiday?, working day?, English name or None)
TABLE = [
    (date(2024, 3, 31), True, False, "Easter Sunday"),
    (date(2024, 4, 1), True, False, "Easter Monday"),
    (date(2024, 5, 30), True, False, "Corpus Christi"),
    (date(2025, 6, 8), True, False, "Pentecost"),
    (date(2025, 12, 24), True, False, "Christmas Eve"),
    (date(2024, 12, 24), False, True, None),
    (date(2026, 1, 6), True, False, "Epiphany"),
    (date(2026, 11, 11), True, False, "National Independence Day"),
    (date(2026, 8, 15), True, False, "Assumption Day"),
    (date(2025, 6, 10), False, True, None),
    (date(2025, 6, 14), False, False, None),
]


class TestPublicHolidays:
    @pytest.mark.parametrize(("day", "holiday", "working", "name"), TABLE, ids=[str(row[0]) for row in TABLE])
    def test_table(self, day: date, holiday: bool, working: bool, name: str | None) -> None:
        """Each day of the table is (or is not) a public holiday and a working day, with its name."""
        assert is_public_holiday(day) is holiday
        assert is_working_day(day) is working
        assert holiday_name(day) == name

    def test_christmas_eve_from_2025_only(self) -> None:
        """24 December is a public holiday from 2025 on, and was not before."""
        assert [is_public_holiday(date(year, 12, 24)) for year in (2023, 2024, 2025, 2026, 2030)] == [
            False,
            False,
            True,
            True,
            True,
        ]

    def test_thirteen_or_fourteen_holidays_a_year(self) -> None:
        """2024 has thirteen statutory holidays, 2025 and 2026 fourteen (with Christmas Eve)."""
        assert [len(holidays_in_year(year)) for year in (2024, 2025, 2026)] == [13, 14, 14]

    def test_table_is_immutable(self) -> None:
        """The cached holiday table cannot be changed by a caller."""
        table = holidays_in_year(2025)
        with pytest.raises(TypeError):
            table[date(2025, 6, 10)] = "Not a holiday"  # type: ignore[index]


class TestWorkingDays:
    def test_weekend_is_never_a_working_day(self) -> None:
        """Saturdays and Sundays are weekends and never working days."""
        weekend = (date(2025, 6, 14), date(2025, 6, 15))
        assert [is_weekend(day) for day in weekend] == [True, True]
        assert [is_working_day(day) for day in weekend] == [False, False]
        assert not is_weekend(date(2025, 6, 13))

    @pytest.mark.parametrize(
        ("day", "expected"),
        [
            (date(2025, 6, 10), date(2025, 6, 11)),  # Tuesday -> Wednesday
            (date(2025, 6, 13), date(2025, 6, 16)),  # Friday -> Monday
            (date(2025, 4, 18), date(2025, 4, 22)),  # Good Friday (working) -> over Easter Monday
            (date(2025, 12, 23), date(2025, 12, 29)),  # over Wigilia, Christmas and the weekend
            (date(2026, 4, 30), date(2026, 5, 4)),  # over 1 May (Fri) and the weekend with 3 May
        ],
    )
    def test_next_working_day(self, day: date, expected: date) -> None:
        """The next working day skips weekends and public holidays, and is strictly later."""
        assert next_working_day(day) == expected

    def test_working_day_on_or_after(self) -> None:
        """A working day stays; a weekend or holiday moves to the next working day (1182/71 art. 3(4))."""
        assert working_day_on_or_after(date(2025, 6, 10)) == date(2025, 6, 10)
        assert working_day_on_or_after(date(2025, 6, 14)) == date(2025, 6, 16)
        assert working_day_on_or_after(date(2026, 11, 11)) == date(2026, 11, 12)
