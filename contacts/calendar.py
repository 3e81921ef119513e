"""Polish public holidays and working days.

Pure date arithmetic over the statutory public holidays of Poland (ustawa o dniach wolnych
od pracy), taken from the ``holidays`` library (``holidays.Poland``, built through the typed
``country_holidays("PL")`` because the class's own constructor is untyped; it derives the
Easter-dependent days — Easter Sunday and Monday, Pentecost Sunday, Corpus Christi — and
has Christmas Eve, 24 December, as a holiday from 2025 on). Invariants:

- a working day is Monday to Friday and not a public holiday; Saturdays and Sundays are
  never working days, whether or not a holiday falls on them;
- the holidays of a year are computed once and cached (the table is immutable);
- holiday names are the library's English names (for messages and logs), never localised
  by the process environment.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, timedelta
from types import MappingProxyType
from typing import Final

from holidays import country_holidays

__all__ = [
    "holiday_name",
    "holidays_in_year",
    "is_public_holiday",
    "is_weekend",
    "is_working_day",
    "next_working_day",
    "working_day_on_or_after",
]

_SATURDAY: Final = 5
_LANGUAGE: Final = "en_US"


@functools.lru_cache(maxsize=256)
def holidays_in_year(year: int) -> Mapping[date, str]:
    """The public holidays of Poland in ``year``, as an immutable date -> name table."""
    table = country_holidays("PL", years=year, language=_LANGUAGE)
    return MappingProxyType({day: str(name) for day, name in table.items()})


def is_public_holiday(day: date) -> bool:
    """Whether ``day`` is a statutory public holiday in Poland."""
    return day in holidays_in_year(day.year)


def holiday_name(day: date) -> str | None:
    """The English name of the public holiday on ``day``, or None if it is not one."""
    return holidays_in_year(day.year).get(day)


def is_weekend(day: date) -> bool:
    """Whether ``day`` is a Saturday or a Sunday."""
    return day.weekday() >= _SATURDAY


def is_working_day(day: date) -> bool:
    """Whether ``day`` is Monday to Friday and not a public holiday."""
    return not is_weekend(day) and not is_public_holiday(day)


def next_working_day(day: date) -> date:
    """The first working day strictly after ``day``."""
    candidate = day + timedelta(days=1)
    while not is_working_day(candidate):
        candidate += timedelta(days=1)
    return candidate


def working_day_on_or_after(day: date) -> date:
    """``day`` itself if it is a working day, else the next one.

    This is the Regulation 1182/71 art. 3(4) shift: a period whose last day is a public
    holiday, a Saturday or a Sunday ends with the end of the following working day.
    """
    return day if is_working_day(day) else next_working_day(day)
