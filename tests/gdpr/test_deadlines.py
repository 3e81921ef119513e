"""Tests of gdpr.deadlines: GDPR time limits counted as Regulation 1182/71 counts them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contacts.calendar import is_working_day
from core.errors import InvalidInputError
from gdpr.deadlines import (
    MAX_SHIFT_DAYS,
    InvalidPeriodError,
    add_months,
    breach_notification_due,
    can_extend,
    due_soon,
    extended_deadline,
    overdue,
    response_deadline,
)

WARSAW = ZoneInfo("Europe/Warsaw")

# (received, last day to answer, why): worked out by hand against a calendar
RESPONSE = [
    (date(2026, 3, 10), date(2026, 4, 10), "same date, a Friday"),
    (date(2026, 1, 15), date(2026, 2, 16), "15 Feb 2026 is a Sunday"),
    (date(2026, 1, 31), date(2026, 3, 2), "no 31 Feb: 28 Feb 2026, a Saturday"),
    (date(2027, 1, 31), date(2027, 3, 1), "no 31 Feb: 28 Feb 2027, a Sunday"),
    (date(2028, 1, 31), date(2028, 2, 29), "leap year: 29 Feb 2028, a Tuesday"),
    (date(2028, 2, 29), date(2028, 3, 29), "from 29 Feb: 29 Mar, a Wednesday"),
    (date(2025, 2, 28), date(2025, 3, 28), "28 Feb runs to 28 Mar, not to the month end"),
    (date(2026, 3, 31), date(2026, 4, 30), "no 31 Apr: 30 Apr 2026, a Thursday"),
    (date(2026, 4, 30), date(2026, 6, 1), "30 May 2026 is a Saturday"),
    (date(2026, 2, 28), date(2026, 3, 30), "received on a Saturday; 28 Mar 2026 is a Saturday"),
    (date(2026, 10, 11), date(2026, 11, 12), "11 Nov is Independence Day"),
    (date(2026, 3, 6), date(2026, 4, 7), "6 Apr 2026 is Easter Monday"),
    (date(2027, 2, 28), date(2027, 3, 30), "28 Mar 2027 is Easter Sunday, 29 Mar Easter Monday"),
    (date(2026, 5, 4), date(2026, 6, 5), "4 Jun 2026 is Corpus Christi"),
    (date(2026, 4, 3), date(2026, 5, 4), "3 May 2026 is a Sunday and a holiday"),
    (date(2026, 11, 24), date(2026, 12, 28), "24-26 Dec 2026 are holidays (Thu-Sat), then Sunday"),
    (date(2025, 11, 24), date(2025, 12, 29), "24 Dec is a holiday from 2025: Wed 24 to Sun 28"),
    (date(2024, 11, 24), date(2024, 12, 24), "24 Dec 2024 was still a working day (Tuesday)"),
    (date(2026, 12, 1), date(2027, 1, 4), "New Year 2027 is a Friday, then the weekend"),
    (date(2026, 12, 6), date(2027, 1, 7), "6 Jan 2027 is Epiphany"),
    (date(2026, 12, 31), date(2027, 2, 1), "across the year end: 31 Jan 2027 is a Sunday"),
    (date(2029, 11, 22), date(2029, 12, 27), "Sat 22 Dec 2029 to Wed 26 Dec are all off: five days"),
]


def _ids(table: list[tuple[date, date, str]]) -> list[str]:
    return [received.isoformat() for received, _, _ in table]


RECEIVED = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 9, 30))


class TestAddMonths:
    @pytest.mark.parametrize(
        ("start", "months", "end"),
        [
            (date(2026, 1, 15), 1, date(2026, 2, 15)),
            (date(2026, 1, 31), 1, date(2026, 2, 28)),
            (date(2028, 1, 31), 1, date(2028, 2, 29)),
            (date(2026, 1, 31), 3, date(2026, 4, 30)),
            (date(2026, 11, 30), 3, date(2027, 2, 28)),
            (date(2026, 12, 31), 1, date(2027, 1, 31)),
            (date(2026, 5, 20), 0, date(2026, 5, 20)),
            (date(2026, 5, 20), 24, date(2028, 5, 20)),
        ],
    )
    def test_same_date_or_month_end(self, start: date, months: int, end: date) -> None:
        """The unshifted end falls on the same date, or on the last day of a shorter month."""
        assert add_months(start, months) == end

    def test_refuses_negative_and_overflow(self) -> None:
        """A negative number of months, or an end past the calendar, is an InvalidPeriodError."""
        with pytest.raises(InvalidPeriodError, match="negative"):
            add_months(date(2026, 1, 1), -1)
        with pytest.raises(InvalidPeriodError, match="after the year"):
            add_months(date(9999, 12, 1), 1)


class TestResponseDeadline:
    @pytest.mark.parametrize(("received", "deadline", "why"), RESPONSE, ids=_ids(RESPONSE))
    def test_worked_examples(self, received: date, deadline: date, why: str) -> None:
        """One month from receipt, moved past weekends and Polish public holidays."""
        assert response_deadline(received) == deadline, why

    def test_longest_shift_is_reached(self) -> None:
        """The five-day shift of the invariant actually happens (24 Dec on a Monday, 2029)."""
        unshifted = add_months(date(2029, 11, 22), 1)
        assert (response_deadline(date(2029, 11, 22)) - unshifted).days == MAX_SHIFT_DAYS

    def test_refuses_less_than_a_month(self) -> None:
        """A period of zero months is refused, as an InvalidInputError and a ValueError."""
        with pytest.raises(InvalidPeriodError) as caught:
            response_deadline(date(2026, 1, 1), 0)
        assert isinstance(caught.value, InvalidInputError)
        assert isinstance(caught.value, ValueError)

    @given(received=RECEIVED)
    def test_is_a_working_day_after_receipt(self, received: date) -> None:
        """The deadline is always a working day and always after the day of receipt."""
        deadline = response_deadline(received)
        assert is_working_day(deadline)
        assert deadline > received

    @given(received=RECEIVED)
    def test_close_to_the_unshifted_end(self, received: date) -> None:
        """The deadline is never before the same date next month (or its end), and at most five days after."""
        unshifted = add_months(received, 1)
        assert unshifted <= response_deadline(received) <= unshifted + timedelta(days=MAX_SHIFT_DAYS)

    @given(first=RECEIVED, second=RECEIVED)
    def test_monotonic_in_receipt(self, first: date, second: date) -> None:
        """A later receipt never gives an earlier deadline."""
        early, late = sorted((first, second))
        assert response_deadline(early) <= response_deadline(late)


class TestExtendedDeadline:
    @pytest.mark.parametrize(
        ("received", "extra", "deadline"),
        [
            (date(2026, 1, 31), 1, date(2026, 3, 31)),
            (date(2026, 1, 31), 2, date(2026, 4, 30)),  # not 4 May: counted from receipt
            (date(2026, 1, 15), 2, date(2026, 4, 15)),
            (date(2025, 11, 24), 1, date(2026, 1, 26)),  # 24 Jan 2026 is a Saturday
            (date(2025, 11, 24), 2, date(2026, 2, 24)),
            (date(2026, 9, 11), 2, date(2026, 12, 11)),
            (date(2026, 9, 24), 2, date(2026, 12, 28)),  # 24-27 Dec 2026 are not working days
        ],
    )
    def test_counted_from_receipt(self, received: date, extra: int, deadline: date) -> None:
        """An extension gives one period of two or three months from receipt, shifted to a working day."""
        assert extended_deadline(received, extra) == deadline

    @pytest.mark.parametrize("extra", [0, 3, -1])
    def test_only_one_or_two_months(self, extra: int) -> None:
        """Art. 12(3) allows two further months at most; zero or three is refused."""
        with pytest.raises(InvalidPeriodError, match="1 or 2"):
            extended_deadline(date(2026, 1, 1), extra)

    @given(received=RECEIVED)
    def test_longer_is_never_earlier(self, received: date) -> None:
        """Extended by two months >= by one month >= not extended, all working days."""
        plain, one, two = response_deadline(received), extended_deadline(received, 1), extended_deadline(received, 2)
        assert plain <= one <= two
        assert plain < one < two
        assert is_working_day(one)
        assert is_working_day(two)


class TestCanExtend:
    def test_within_the_first_month_only(self) -> None:
        """The extension may be notified through the first deadline, and not the day after."""
        received = date(2026, 1, 31)  # first deadline Monday 2 March 2026
        assert can_extend(received, date(2026, 2, 1))
        assert can_extend(received, date(2026, 3, 2))
        assert not can_extend(received, date(2026, 3, 3))

    def test_on_the_day_of_receipt(self) -> None:
        """A request can be extended on the day it arrives."""
        assert can_extend(date(2026, 5, 4), date(2026, 5, 4))


class TestOverdue:
    def test_overdue_from_the_day_after(self) -> None:
        """The deadline day itself is in time; the next day is overdue."""
        deadline = date(2026, 2, 16)
        assert not overdue(deadline, date(2026, 2, 15))
        assert not overdue(deadline, deadline)
        assert overdue(deadline, date(2026, 2, 17))


class TestDueSoon:
    @pytest.mark.parametrize(
        ("today", "expected"),
        [
            (date(2026, 2, 8), False),  # eight days ahead
            (date(2026, 2, 9), True),  # seven days ahead
            (date(2026, 2, 16), True),  # the deadline day
            (date(2026, 2, 17), False),  # overdue, not "due soon"
        ],
    )
    def test_seven_day_window(self, today: date, expected: bool) -> None:
        """Due soon means the deadline is today or within the next seven days."""
        assert due_soon(date(2026, 2, 16), today) is expected

    def test_other_window(self) -> None:
        """The window can be set; zero days means only the deadline day; negative is refused."""
        assert due_soon(date(2026, 2, 16), date(2026, 2, 14), days=2)
        assert not due_soon(date(2026, 2, 16), date(2026, 2, 15), days=0)
        assert due_soon(date(2026, 2, 16), date(2026, 2, 16), days=0)
        with pytest.raises(InvalidPeriodError):
            due_soon(date(2026, 2, 16), date(2026, 2, 16), days=-1)


class TestBreachNotificationDue:
    def test_seventy_two_hours(self) -> None:
        """The breach clock is 72 hours, weekends and holidays included."""
        aware = datetime(2026, 12, 24, 9, 30, tzinfo=UTC)  # a holiday, a Thursday
        assert breach_notification_due(aware) == datetime(2026, 12, 27, 9, 30, tzinfo=UTC)

    def test_elapsed_hours_across_daylight_saving(self) -> None:
        """Across the spring change of clocks, 72 elapsed hours show 73 on the local clock."""
        aware = datetime(2026, 3, 27, 12, 0, tzinfo=WARSAW)  # CET; clocks go forward on 29 March
        due = breach_notification_due(aware)
        assert due == datetime(2026, 3, 30, 13, 0, tzinfo=WARSAW)
        assert due.astimezone(UTC) - aware.astimezone(UTC) == timedelta(hours=72)
        assert due.astimezone(UTC) == datetime(2026, 3, 30, 11, 0, tzinfo=UTC)
        assert due.tzinfo is WARSAW

    def test_fixed_offset(self) -> None:
        """A fixed-offset moment keeps its offset."""
        aware = datetime(2026, 6, 1, 23, 15, tzinfo=timezone(timedelta(hours=2)))
        assert breach_notification_due(aware).isoformat() == "2026-06-04T23:15:00+02:00"

    def test_naive_is_refused(self) -> None:
        """A naive datetime is refused with a ValueError (an InvalidPeriodError)."""
        with pytest.raises(ValueError, match="timezone-aware"):
            breach_notification_due(datetime(2026, 6, 1, 12, 0))  # noqa: DTZ001 - naive on purpose
