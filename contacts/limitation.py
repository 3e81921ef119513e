"""The limitation clock: when a claim becomes time-barred under the Kodeks cywilny.

Pure date arithmetic for the rules in force since 9 July 2018 (the Act of 13 April 2018
amending the Civil Code, Dz.U. 2018 poz. 1104), with that Act's transitional rule for
claims whose period started earlier. Statutory basis, as applied here:

- art. 118: unless a special provision says otherwise, the period is six years, and three
  years for periodic performances (świadczenia okresowe) and for claims connected with
  running a business; the end of the period falls on the last day of the calendar year,
  unless the period is shorter than two years.
- art. 120 § 1: the period starts running on the day the claim becomes due (wymagalne).
- art. 125 § 1: a claim confirmed by a final judgment of a court (or of another competent
  body, or an arbitral award), or by a settlement before a court, an arbitral court, or
  before a mediator and approved by a court, is time-barred after six years; periodic
  performances confirmed that way and falling due in the future, after three years.
  Art. 125 § 1 itself has no year-end clause. This module applies the art. 118 year-end
  rule to it as well, as the Supreme Court did in its resolution of 23 October 2025 (as
  reported by Rzeczpospolita on 24 October and 28 November 2025; the docket number was not
  verified here).
  Running starts on the day the judgment became final (uprawomocnienie); for
  ``JUDGMENT_PERIODIC`` an instalment falling due on or before that day is treated as
  confirmed by the judgment (six years from it), one falling due later as a periodic
  performance due in the future (three years from its own due date): this reading of
  "należne w przyszłości" is an assumption.
- art. 112: a period in years ends with the end of the day that corresponds by date to the
  first day of the period, or the last day of the month if that month has no such day
  (a period starting on 29 February ends on 28 February in a common year).
- Transitional (art. 5 of the 2018 Act): a claim not yet time-barred on 9 July 2018 is
  governed by the new rules from that day. If the new period is shorter than the old one
  (ten years, both for the general period and for judgments), it runs from 9 July 2018,
  but if the old period would end earlier, it ends then. A claim already time-barred on
  9 July 2018 keeps its old end.

How the days are counted (invariants):

- ``due_date`` is the first day on which the creditor could demand performance: for an
  invoice payable "by 10 June", the claim becomes due on 11 June
  (:func:`due_date_after_deadline`). The period counts from that day, so the unshifted
  end is ``due_date`` plus the years (art. 112), e.g. due 15 March 2019, six years: 15
  March 2025, and with the year-end rule 31 December 2025.
- :func:`limitation_end` is the last day of the period (the claim can still be pursued on
  it); :func:`time_barred_on` is the day after, the first day on which it is time-barred.
- For periods of two years or more that end under the new rules, the end is always a
  31 December; the end is never earlier than the start plus the period; a later start
  never gives an earlier end.

Not modelled: suspension (art. 121, 122) and interruption (art. 123; after an interruption
the period runs anew, art. 124 — pass the day it restarted as ``due_date`` or
``judgment_date``), and special periods other than through :func:`period_end`.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from core.errors import InvalidInputError

__all__ = [
    "NEW_RULES_FROM",
    "PERIOD_YEARS",
    "ClaimKind",
    "add_years",
    "due_date_after_deadline",
    "is_time_barred",
    "limitation_end",
    "limitation_start",
    "period_end",
    "time_barred_on",
]

#: The day the 2018 reform of limitation (art. 117-125 k.c.) came into force.
NEW_RULES_FROM: Final = date(2018, 7, 9)

#: Periods of two years or more end on the last day of a calendar year (art. 118 s. 2).
YEAR_END_RULE_MIN_YEARS: Final = 2
_LATEST_YEAR: Final = date.max.year - 1


class ClaimKind(StrEnum):
    """What kind of claim it is, which decides the period and from when it runs."""

    GENERAL = "general"  # art. 118: six years from the due date
    PERIODIC = "periodic"  # art. 118: three years, each instalment from its due date
    BUSINESS = "business"  # art. 118: three years, connected with running a business
    JUDGMENT = "judgment"  # art. 125 § 1 s. 1: six years from the judgment becoming final
    JUDGMENT_PERIODIC = "judgment_periodic"  # art. 125 § 1 s. 2: three years per later instalment


#: The period in years under the rules in force since 9 July 2018.
PERIOD_YEARS: Final[Mapping[ClaimKind, int]] = MappingProxyType(
    {
        ClaimKind.GENERAL: 6,
        ClaimKind.PERIODIC: 3,
        ClaimKind.BUSINESS: 3,
        ClaimKind.JUDGMENT: 6,
        ClaimKind.JUDGMENT_PERIODIC: 3,
    }
)

#: The period in years before 9 July 2018 (art. 118 and 125 § 1 in their earlier wording).
_OLD_PERIOD_YEARS: Final[Mapping[ClaimKind, int]] = MappingProxyType(
    {
        ClaimKind.GENERAL: 10,
        ClaimKind.PERIODIC: 3,
        ClaimKind.BUSINESS: 3,
        ClaimKind.JUDGMENT: 10,
        ClaimKind.JUDGMENT_PERIODIC: 3,
    }
)


def add_years(start: date, years: int) -> date:
    """The day that corresponds by date to ``start``, ``years`` later (art. 112 k.c.).

    If that month has no such day (29 February in a common year), the last day of the month.
    """
    if years < 0:
        raise InvalidInputError(f"a period cannot be negative; got {years} years")
    year = start.year + years
    if year > _LATEST_YEAR:
        raise InvalidInputError(f"the period ends after the year {_LATEST_YEAR}")
    day = min(start.day, calendar.monthrange(year, start.month)[1])
    return date(year, start.month, day)


def _end_under_new_rules(start: date, years: int) -> date:
    """Art. 118: the unshifted end, moved to 31 December for periods of two years or more."""
    end = add_years(start, years)
    return date(end.year, 12, 31) if years >= YEAR_END_RULE_MIN_YEARS else end


def _end(start: date, years: int, old_years: int) -> date:
    """The last day of a period of ``years`` starting on ``start``, with the 2018 transition."""
    if start >= NEW_RULES_FROM:
        return _end_under_new_rules(start, years)
    old_end = add_years(start, old_years)
    if old_end < NEW_RULES_FROM:
        return old_end  # time-barred before the reform: it keeps its old end
    if years < old_years:
        # art. 5(2): the shorter new period runs from the reform, unless the old one ends first
        return min(old_end, _end_under_new_rules(NEW_RULES_FROM, years))
    return _end_under_new_rules(start, years)  # art. 5(1): same length, new way of ending


def due_date_after_deadline(last_day_to_pay: date) -> date:
    """The due date of a claim payable "by" ``last_day_to_pay``: the day after it."""
    return last_day_to_pay + timedelta(days=1)


def limitation_start(due_date: date) -> date:
    """The day the period starts running: the day the claim became due (art. 120 § 1).

    It is the identity, kept as a function so that callers state what they count from.
    """
    return due_date


def _start_and_kind(kind: ClaimKind, due_date: date, judgment_date: date | None) -> tuple[date, ClaimKind]:
    if kind in (ClaimKind.JUDGMENT, ClaimKind.JUDGMENT_PERIODIC):
        if judgment_date is None:
            raise InvalidInputError(f"a {kind.value} claim needs the date the judgment became final")
        if kind is ClaimKind.JUDGMENT or due_date <= judgment_date:
            return judgment_date, ClaimKind.JUDGMENT
        return limitation_start(due_date), ClaimKind.JUDGMENT_PERIODIC
    if judgment_date is not None:
        raise InvalidInputError(f"a {kind.value} claim has no judgment; use a judgment kind")
    return limitation_start(due_date), kind


def limitation_end(kind: ClaimKind, due_date: date, judgment_date: date | None = None) -> date:
    """The last day of the limitation period (the claim is not yet time-barred on it).

    ``judgment_date`` (the day the judgment or court settlement became final) is required
    for the judgment kinds and refused for the others.
    """
    start, effective = _start_and_kind(kind, due_date, judgment_date)
    return _end(start, PERIOD_YEARS[effective], _OLD_PERIOD_YEARS[effective])


def time_barred_on(kind: ClaimKind, due_date: date, judgment_date: date | None = None) -> date:
    """The first day on which the claim is time-barred."""
    return limitation_end(kind, due_date, judgment_date) + timedelta(days=1)


def is_time_barred(kind: ClaimKind, due_date: date, on: date, judgment_date: date | None = None) -> bool:
    """Whether the claim is time-barred on the day ``on``."""
    return on >= time_barred_on(kind, due_date, judgment_date)


def period_end(start: date, years: int) -> date:
    """The last day of a special period of ``years`` (for example two years, art. 554 k.c.).

    The art. 118 year-end rule applies when ``years`` is two or more; the 2018 transition
    is applied as for a period whose length did not change.
    """
    if years < 1:
        raise InvalidInputError(f"a limitation period is at least one year; got {years}")
    return _end(start, years, years)
