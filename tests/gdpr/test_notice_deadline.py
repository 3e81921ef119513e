"""Tests of gdpr.deadlines.notice_deadline: the Art. 14(3) clock after data is obtained from someone else."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gdpr.deadlines import notice_deadline, response_deadline


class TestWorkedCases:
    def test_one_month_counted_as_a_request_month(self) -> None:
        """GDPR Art. 14(3)(a) with Reg. 1182/71 art. 3(4): obtained Friday 15 May 2026, due Monday 15 June 2026;
        obtained 15 January 2026, the month ends on Sunday 15 February, so Monday 16 February."""
        assert notice_deadline(date(2026, 5, 15)) == date(2026, 6, 15)
        assert notice_deadline(date(2026, 1, 15)) == date(2026, 2, 16)

    def test_first_contact_brings_it_forward(self) -> None:
        """Art. 14(3)(b): the first communication with the subject, if earlier, is the last day (the information
        may go with it); a contact before the data was obtained does not count."""
        assert notice_deadline(date(2026, 5, 15), first_contact_on=date(2026, 5, 20)) == date(2026, 5, 20)
        assert notice_deadline(date(2026, 5, 15), first_contact_on=date(2026, 5, 10)) == date(2026, 6, 15)
        assert notice_deadline(date(2026, 5, 15), first_contact_on=date(2026, 7, 1)) == date(2026, 6, 15)

    def test_first_disclosure_brings_it_forward(self) -> None:
        """Art. 14(3)(c): a disclosure to another recipient, if earlier, is the last day."""
        assert notice_deadline(date(2026, 5, 15), first_disclosure_on=date(2026, 5, 25)) == date(2026, 5, 25)


DAYS = st.dates(min_value=date(2018, 5, 25), max_value=date(2090, 12, 31))


class TestProperties:
    @given(obtained=DAYS, contact=st.integers(-40, 80), disclosure=st.integers(-40, 80))
    def test_never_later_than_the_month_never_before_obtaining(self, obtained: date, contact: int,
                                                                disclosure: int) -> None:
        """(b) and (c) only bring the month forward (WP260 rev.01), and never before the data was obtained."""
        due = notice_deadline(obtained, obtained + timedelta(days=contact), obtained + timedelta(days=disclosure))
        assert obtained <= due <= response_deadline(obtained)
