"""GDPR time limits: answering a request (Art. 12(3)), informing of data obtained elsewhere (Art. 14(3)), a breach.

Pure date arithmetic: no database, no clock; the day a request was received and "today"
are passed in. Periods are counted as Regulation (EEC, Euratom) No 1182/71 counts them
(it applies to time limits set by acts of the Union unless they provide otherwise):

- art. 3(1), second subparagraph: in a period in days, weeks, months or years, the day
  during which the event (here: receipt of the request) occurs is not counted;
- art. 3(2)(c): a period in months ends with the expiry of the day in the last month that
  falls on the same date as the day from which the period runs (the date of receipt), or,
  if that month has no such date, with the expiry of its last day;
- art. 3(3): the period includes public holidays, Saturdays and Sundays;
- art. 3(4): a period (other than one in hours) whose last day is a public holiday, a
  Saturday or a Sunday ends with the expiry of the following working day. The public
  holidays are those of Poland, where the controller is (:mod:`contacts.calendar`,
  24 December included from 2025).

Art. 12(3) GDPR: the controller answers "without undue delay and in any event within one
month of receipt of the request", extendable "by two further months where necessary", the
data subject being informed of the extension and its reasons within the first month.

Invariants (property-tested in ``tests/gdpr/test_deadlines.py``):

- a deadline is always a working day, and always after the day of receipt;
- it is the unshifted end (:func:`add_months`) or a later day, at most
  :data:`MAX_SHIFT_DAYS` later: the longest run of Polish non-working days is five
  (Saturday to Wednesday when 24 December is a Monday, as in 2029: an unshifted end on
  Saturday 22 December 2029 moves to Thursday 27 December);
- a later receipt never gives an earlier deadline; a longer period never gives an earlier
  deadline (extended by two months >= by one month >= not extended);
- a deadline is the last day on which the answer is in time: overdue means ``today >
  deadline``.

Choices, stated because the texts leave room:

- An extended period is counted as one period of one plus the extra months from the
  receipt, not as further months added to the (possibly shifted) end of the first month.
  Received 31 January 2026: one month ends on Monday 2 March (28 February is a Saturday);
  extended by two months it ends on Thursday 30 April 2026, not on Monday 4 May.
- The Art. 14 clock (:func:`notice_deadline`): the information is due "within a reasonable
  period after obtaining the personal data, but at the latest within one month"
  (Art. 14(3)(a)), counted like a request's month (Reg. 1182/71, the working-day shift
  included), and earlier "at the latest at the time of the first communication" with the
  subject (14(3)(b)) or "when the personal data are first disclosed" to another recipient
  (14(3)(c)). As the Article 29 Working Party's transparency guidelines (WP260 rev.01,
  endorsed by the EDPB) read it, (b) and (c) can only bring the one month forward, never
  extend it: the deadline is the earliest of the three. A first contact or disclosure is a
  day: the information given that day, with it, is in time.
- The breach clock (Art. 33(1): "not later than 72 hours after having become aware of
  it") is 72 elapsed hours from the moment of awareness, computed in UTC, so a change of
  daylight-saving time neither adds nor removes an hour. Art. 3(1) and 3(2)(a) of the
  Regulation would start a period in hours at the beginning of the next full hour, which
  gives up to one hour more; this module uses the earlier, stricter moment. No working-day
  shift applies to periods in hours (art. 3(4) excludes them).
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from typing import Final

from contacts.calendar import working_day_on_or_after
from core.errors import InvalidInputError

__all__ = [
    "BREACH_NOTIFICATION_HOURS",
    "DUE_SOON_DAYS",
    "EXTENSION_MONTHS",
    "MAX_SHIFT_DAYS",
    "NOTICE_MONTHS",
    "RESPONSE_MONTHS",
    "InvalidPeriodError",
    "add_months",
    "breach_notification_due",
    "can_extend",
    "due_soon",
    "extended_deadline",
    "notice_deadline",
    "overdue",
    "response_deadline",
]

#: Art. 12(3): the period to answer a request, in months from its receipt.
RESPONSE_MONTHS: Final = 1
#: Art. 12(3): an extension is by one or by two further months.
EXTENSION_MONTHS: Final = (1, 2)
#: Art. 14(3)(a): the information is given at the latest within one month of obtaining the data.
NOTICE_MONTHS: Final = 1
#: Art. 33(1): hours from awareness to the notification of the supervisory authority.
BREACH_NOTIFICATION_HOURS: Final = 72
#: The most days the art. 3(4) shift can add to an unshifted end (see the invariants above).
MAX_SHIFT_DAYS: Final = 5
#: How many days ahead :func:`due_soon` looks by default.
DUE_SOON_DAYS: Final = 7
_MONTHS_PER_YEAR: Final = 12


class InvalidPeriodError(InvalidInputError, ValueError):
    """A period or a moment cannot be counted: a non-positive length, a naive datetime, past the calendar."""

    code = "invalid-period"
    title = "Invalid period"


def add_months(start: date, months: int) -> date:
    """The day ``months`` later that falls on the same date as ``start``, else that month's last day.

    The unshifted end of a period in months running from ``start`` (art. 3(2)(c) of
    Regulation 1182/71): 15 January + 1 = 15 February; 31 January + 1 = 28 February
    (29 in a leap year); 28 February + 1 = 28 March (not 31 March).
    """
    if months < 0:
        raise InvalidPeriodError(f"a period cannot be negative; got {months} months")
    index = start.month - 1 + months
    year, month = start.year + index // _MONTHS_PER_YEAR, index % _MONTHS_PER_YEAR + 1
    if year > date.max.year:
        raise InvalidPeriodError(f"the period ends after the year {date.max.year}")
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def response_deadline(received: date, months: int = RESPONSE_MONTHS) -> date:
    """The last day to answer a request received on ``received``, within ``months`` (Art. 12(3)).

    The unshifted end (:func:`add_months`), moved to the next working day if it is a
    Saturday, a Sunday or a Polish public holiday (art. 3(4) of Regulation 1182/71).
    Received 15 January 2026: Sunday 15 February moves to Monday 16 February.
    """
    if months < 1:
        raise InvalidPeriodError(f"a period to answer is at least one month; got {months}")
    return working_day_on_or_after(add_months(received, months))


def extended_deadline(received: date, extra_months: int) -> date:
    """The last day to answer a request extended by ``extra_months`` (1 or 2) further months.

    Counted from the receipt as one period of ``1 + extra_months`` months, then shifted to
    a working day (see the module docstring for why not from the first deadline).
    """
    if extra_months not in EXTENSION_MONTHS:
        raise InvalidPeriodError(f"a request may be extended by 1 or 2 further months; got {extra_months}")
    return response_deadline(received, RESPONSE_MONTHS + extra_months)


def notice_deadline(obtained_on: date, first_contact_on: date | None = None,
                    first_disclosure_on: date | None = None) -> date:
    """The last day to give the Art. 14 information about data obtained on ``obtained_on``.

    One month (Art. 14(3)(a), as :func:`response_deadline` counts it), or the day of the
    first communication with the subject (14(3)(b)) or of the first disclosure to another
    recipient (14(3)(c)) on or after ``obtained_on`` if earlier. Obtained Friday 15 May
    2026: Monday 15 June 2026; first called on 20 May: 20 May.
    """
    due = response_deadline(obtained_on, NOTICE_MONTHS)
    for day in (first_contact_on, first_disclosure_on):
        if day is not None and obtained_on <= day < due:
            due = day
    return due


def can_extend(received: date, today: date) -> bool:
    """Whether the extension may still be notified: within the first month, its last day included."""
    return today <= response_deadline(received)


def overdue(deadline: date, today: date) -> bool:
    """Whether the deadline has passed: it is the last day in time, so overdue from the day after."""
    return today > deadline


def due_soon(deadline: date, today: date, days: int = DUE_SOON_DAYS) -> bool:
    """Whether the deadline is today or within the next ``days`` days (and not yet passed)."""
    if days < 0:
        raise InvalidPeriodError(f"days ahead cannot be negative; got {days}")
    return today <= deadline <= today + timedelta(days=days)


def breach_notification_due(aware_at: datetime) -> datetime:
    """The moment by which a breach must be notified: 72 elapsed hours after ``aware_at`` (Art. 33(1)).

    ``aware_at`` must be timezone-aware (a naive datetime is refused with
    :class:`InvalidPeriodError`, a ``ValueError``). The result is in the same time zone;
    the hours are counted in UTC, so across a change of daylight-saving time the local
    clock shows 71 or 73 hours later.
    """
    if aware_at.tzinfo is None or aware_at.utcoffset() is None:
        raise InvalidPeriodError("the moment of awareness must be timezone-aware (a naive datetime is ambiguous)")
    due = aware_at.astimezone(UTC) + timedelta(hours=BREACH_NOTIFICATION_HOURS)
    return due.astimezone(aware_at.tzinfo)
