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

A debt's legal history (:mod:`contacts.legal_events`: judgments and payment orders,
actions before a court or a bailiff, mediation, acknowledgements and part payments,
suspension for force majeure) is read by :func:`read_limitation`, a pure function of the
claim's kind, its due date and the events, which answers the last day of the period with
its reasoning: one :class:`Step` per event, each naming its article and the end it leaves.
Its invariants:

- with no events it agrees with :func:`limitation_end` (and a judgment event with the
  judgment kinds: :func:`legacy_history`);
- the end is None exactly while proceedings that interrupted the period are pending
  (art. 124 § 2) or a suspension lasts (art. 121): the period does not run, so the claim
  cannot become time-barred meanwhile;
- an interruption (art. 123) or a suspension only acts on a period still running: on a
  claim already time-barred it has no effect, and the step says so; a judgment or payment
  order confirms the claim whatever came before (art. 125 § 1);
- an event on or after the due date never makes the end earlier;
- after an interruption the period runs anew with the same length (six years once a
  judgment confirmed the claim, art. 125 § 1), from the day of the acknowledgement or
  payment (art. 124 § 1) or the day the proceedings ended (art. 124 § 2), and ends under
  the art. 118 year-end rule and the 2018 transition like any period;
- a suspension lengthens the running period by the days it lasted while the period ran
  (the unshifted end moves by that many days; the year-end rule then applies).

Not modelled: art. 122 (persons without full legal capacity), a waiver of the limitation
defence (art. 117 § 2), special periods other than through :func:`period_end`.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from contacts.legal_events import ENDS, STARTS, LegalEvent, LegalEventKind, applying_to, ordered, pair_proceedings
from core.errors import InvalidInputError

__all__ = [
    "BASE_KINDS",
    "NEW_RULES_FROM",
    "PERIOD_YEARS",
    "ClaimKind",
    "LimitationReading",
    "Step",
    "add_years",
    "due_date_after_deadline",
    "is_time_barred",
    "legacy_history",
    "limitation_end",
    "limitation_start",
    "period_end",
    "read_limitation",
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


def _shifted(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        raise InvalidInputError(f"the period ends after the year {_LATEST_YEAR}") from None


def _end_under_new_rules(start: date, years: int, extra_days: int = 0) -> date:
    """Art. 118: the unshifted end (later by ``extra_days`` suspended), moved to 31 December for
    periods of two years or more."""
    end = _shifted(add_years(start, years), extra_days)
    return date(end.year, 12, 31) if years >= YEAR_END_RULE_MIN_YEARS else end


def _end(start: date, years: int, old_years: int, extra_days: int = 0) -> date:
    """The last day of a period of ``years`` starting on ``start``, with the 2018 transition;
    ``extra_days`` is how long it was suspended while running (art. 121)."""
    return _end_and_rule(start, years, old_years, extra_days)[0]


def _end_and_rule(start: date, years: int, old_years: int, extra_days: int = 0) -> tuple[date, str]:
    """:func:`_end`, with the words that say which rule fixed it."""
    if start >= NEW_RULES_FROM:
        end = _end_under_new_rules(start, years, extra_days)
        return end, "the last day of the calendar year (art. 118 k.c.)"
    old_end = _shifted(add_years(start, old_years), extra_days)
    if old_end < NEW_RULES_FROM:  # time-barred before the reform: it keeps its old end
        return old_end, f"the old {old_years}-year period, ended before 9 July 2018 (art. 5 of the 2018 Act)"
    if years < old_years:
        # art. 5(2): the shorter new period runs from the reform, unless the old one ends first
        new_end = _end_under_new_rules(NEW_RULES_FROM, years, extra_days)
        if old_end <= new_end:
            return old_end, f"the old {old_years}-year period, which ends first (art. 5 ust. 2 of the 2018 Act)"
        return new_end, ("the new period counted from 9 July 2018, to the end of a calendar year "
                         "(art. 5 ust. 2 of the 2018 Act, art. 118 k.c.)")
    # art. 5(1): same length, new way of ending
    end = _end_under_new_rules(start, years, extra_days)
    return end, "the last day of the calendar year (art. 118 k.c., art. 5 ust. 1 of the 2018 Act)"


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


# -- the limitation period read from a debt's legal history ---------------------------------------

#: The kinds a claim has by its nature; a judgment is an event of its history, not a kind.
BASE_KINDS: Final = (ClaimKind.GENERAL, ClaimKind.PERIODIC, ClaimKind.BUSINESS)
_JUDGMENT_YEARS: Final = (PERIOD_YEARS[ClaimKind.JUDGMENT], _OLD_PERIOD_YEARS[ClaimKind.JUDGMENT])
_KIND_WORDS: Final = {
    ClaimKind.GENERAL: "six years, the general period (art. 118 k.c.)",
    ClaimKind.PERIODIC: "three years, a periodic performance (art. 118 k.c.)",
    ClaimKind.BUSINESS: "three years, a claim connected with running a business (art. 118 k.c.)",
}
_PROCEEDINGS: Final = {
    LegalEventKind.COURT_ACTION_STARTED: "an action before a court",
    LegalEventKind.ENFORCEMENT_STARTED: "enforcement by a bailiff (komornik)",
    LegalEventKind.MEDIATION_STARTED: "mediation",
}
_WITHDRAWN_ARTICLE: Final = "art. 203 § 2, 130 § 2 k.p.c."


@dataclass(frozen=True)
class Step:
    """One step of the reasoning: what happened on ``on``, under which article, and the last
    day of the period it leaves (None while the period does not run)."""

    on: date
    article: str
    text: str
    end: date | None

    def to_json(self) -> dict[str, Any]:
        return {"on": self.on.isoformat(), "article": self.article, "text": self.text,
                "limitation_end": None if self.end is None else self.end.isoformat()}


@dataclass(frozen=True)
class LimitationReading:
    """The limitation period of a claim read from its history: its last day, and why.

    ``end`` is the last day the claim can be pursued; None while the period does not run
    (proceedings pending, art. 124 § 2; a suspension, art. 121).
    """

    kind: ClaimKind
    due_date: date
    end: date | None
    steps: tuple[Step, ...]
    confirmed_on: date | None = None  # the day the latest judgment or payment order became final

    @property
    def time_barred_on(self) -> date | None:
        """The first day the claim is time-barred, or None while the period does not run."""
        return None if self.end is None else self.end + timedelta(days=1)

    def time_barred(self, on: date) -> bool:
        """Whether the claim is time-barred on the day ``on``."""
        return self.end is not None and on > self.end

    def to_json(self) -> dict[str, Any]:
        return {"limitation_end": None if self.end is None else self.end.isoformat(),
                "time_barred_on": None if self.time_barred_on is None else self.time_barred_on.isoformat(),
                "running": self.end is not None, "steps": [step.to_json() for step in self.steps]}


def legacy_history(kind: ClaimKind, judgment_date: date | None) -> tuple[ClaimKind, tuple[LegalEvent, ...]]:
    """A claim described the old way (a judgment kind and its date) as a base kind and its history.

    ``judgment`` becomes ``general`` and ``judgment_periodic`` becomes ``periodic``, each with a
    judgment event; any kind with a ``judgment_date`` gets that judgment event (art. 125
    applies to every kind of claim).
    """
    kind = ClaimKind(kind)
    base = {ClaimKind.JUDGMENT: ClaimKind.GENERAL, ClaimKind.JUDGMENT_PERIODIC: ClaimKind.PERIODIC}.get(kind, kind)
    if judgment_date is None:
        if base is not kind:
            raise InvalidInputError(f"a {kind.value} claim needs the date the judgment became final")
        return base, ()
    return base, (LegalEvent(kind=LegalEventKind.JUDGMENT, on=judgment_date, source="judgment_date"),)


@dataclass
class _Clock:
    """The period as it stands while the history is read."""

    kind: ClaimKind
    due_date: date
    start: date
    years: int
    old_years: int
    suspended_days: int = 0
    confirmed_on: date | None = None
    pending: dict[int, LegalEvent] = field(default_factory=dict)  # open proceedings by position
    suspension: LegalEvent | None = None
    ineffective: set[int] = field(default_factory=set)  # starts that came after the end
    steps: list[Step] = field(default_factory=list)

    def end(self) -> date | None:
        if self.pending or self.suspension is not None:
            return None
        return _end(self.start, self.years, self.old_years, self.suspended_days)

    def end_words(self) -> str:
        if self.pending:
            return "the period does not run while the proceedings are pending (art. 124 § 2 k.c.)"
        if self.suspension is not None:
            return "the period does not run while the suspension lasts (art. 121 k.c.)"
        end, rule = _end_and_rule(self.start, self.years, self.old_years, self.suspended_days)
        longer = f", {self.suspended_days} day(s) longer for the suspension" if self.suspended_days else ""
        return f"{self.years} years from {self.start}{longer}: it ends on {end}, {rule}"

    def step(self, on: date, article: str, text: str) -> None:
        self.steps.append(Step(on, article, text, self.end()))

    def restart(self, on: date) -> None:
        self.start, self.suspended_days = on, 0


def _source(event: LegalEvent) -> str:
    return f" ({event.source})" if event.source else ""


def _no_effect(clock: _Clock, event: LegalEvent, end: date) -> None:
    clock.step(event.on, event.article, f"{event.kind.value} on {event.on}{_source(event)}: no effect, the claim "
               f"was time-barred from {end + timedelta(days=1)} and art. 123 interrupts only a running period")


def _judgment(clock: _Clock, event: LegalEvent, barred: date | None) -> None:
    what = "the judgment" if event.kind is LegalEventKind.JUDGMENT else "the payment order"
    for position, pending in list(clock.pending.items()):
        if pending.kind is LegalEventKind.COURT_ACTION_STARTED:
            del clock.pending[position]  # the court proceedings ended with it
    clock.confirmed_on = event.on
    before = f"; the claim had been time-barred from {barred + timedelta(days=1)}, it is confirmed all the same" \
        if barred is not None else ""
    if clock.kind is ClaimKind.PERIODIC and clock.due_date > event.on:
        clock.step(event.on, "art. 125 § 1 zd. 2 k.c.", f"{what} became final on {event.on}{_source(event)}; "
                   f"this instalment falls due after it, so three years from its due date{before}: "
                   + clock.end_words())
        return
    clock.restart(event.on)
    clock.years, clock.old_years = _JUDGMENT_YEARS
    clock.step(event.on, "art. 125 § 1 k.c.", f"{what} became final on {event.on}{_source(event)}: a claim "
               f"confirmed by a court is time-barred after six years from that day{before} (with the year-end "
               "rule, as the Supreme Court's resolution of 23 October 2025 reads art. 125): " + clock.end_words())


def _interval_start(clock: _Clock, position: int, event: LegalEvent, barred: date | None) -> None:
    if barred is not None:
        clock.ineffective.add(position)
        _no_effect(clock, event, barred)
        return
    if event.kind is LegalEventKind.SUSPENSION_STARTED:
        clock.suspension = event
        clock.step(event.on, event.article, f"force majeure from {event.on}{_source(event)}: the period is "
                   "suspended and does not run while the obstacle lasts (art. 121 pkt 4 k.c.)")
        return
    clock.pending[position] = event
    clock.step(event.on, event.article, f"{_PROCEEDINGS[event.kind]} began on {event.on}{_source(event)}: the "
               "period is interrupted and does not run anew until the proceedings end (art. 123, 124 § 2 k.c.)")


def _interval_end(clock: _Clock, event: LegalEvent, start_position: int) -> None:
    if start_position in clock.ineffective:
        clock.step(event.on, event.article, f"{event.kind.value} on {event.on}: no effect, as its start had none")
        return
    if event.kind is LegalEventKind.SUSPENSION_ENDED:
        assert clock.suspension is not None  # noqa: S101 - paired by pair_proceedings
        days = max(0, (event.on - max(clock.suspension.on, clock.start)).days)
        clock.suspension = None
        clock.suspended_days += days
        clock.step(event.on, event.article, f"the force majeure ended on {event.on}{_source(event)}: the period "
                   f"goes on, {days} day(s) of suspension not counted: " + clock.end_words())
        return
    clock.pending.pop(start_position, None)
    if clock.pending or clock.suspension is not None:
        clock.step(event.on, event.article, f"{event.kind.value} on {event.on}: other proceedings are pending or "
                   "the period is suspended, so it does not run yet")
        return
    clock.restart(event.on)
    clock.step(event.on, event.article, f"the proceedings ended on {event.on}{_source(event)}: the period runs "
               "anew from that day (art. 124 § 2 k.c.): " + clock.end_words())


def _acknowledgement(clock: _Clock, event: LegalEvent, barred: date | None) -> None:
    what = "the debtor acknowledged the claim" if event.kind is LegalEventKind.ACKNOWLEDGEMENT else (
        f"a part payment of {event.amount_minor} (minor units), an acknowledgement by conduct,")
    if barred is not None:
        _no_effect(clock, event, barred)
        return
    if event.on < clock.start:
        clock.step(event.on, event.article, f"{what} on {event.on}, before the period started: nothing to interrupt")
        return
    if clock.pending:
        clock.step(event.on, event.article, f"{what} on {event.on}{_source(event)}: the period is already "
                   "interrupted by pending proceedings and runs anew only when they end (art. 124 § 2 k.c.)")
        return
    clock.restart(event.on)
    clock.step(event.on, event.article, f"{what} on {event.on}{_source(event)}: the period is interrupted "
               "(art. 123 § 1 pkt 2 k.c.) and runs anew from that day (art. 124 § 1 k.c.): " + clock.end_words())


def _apply(clock: _Clock, mine: list[LegalEvent], pairs: dict[int, int], withdrawn: set[int], position: int) -> None:
    """Read one event of the party's ordered history into the clock."""
    event = mine[position]
    end = clock.end()
    barred = end if end is not None and event.on > end else None
    if position in withdrawn:
        if event.kind in ENDS:
            clock.step(event.on, _WITHDRAWN_ARTICLE, f"the action begun on {mine[pairs[position]].on} was "
                       "withdrawn or returned: it had no effect on the period; " + clock.end_words())
    elif event.kind is LegalEventKind.ASSIGNMENT:
        clock.step(event.on, event.article, f"assigned to {event.assignee} on {event.on}{_source(event)}: the "
                   "assignee takes the claim as it is and the debtor keeps the defence of limitation; the period "
                   "goes on unchanged")
    elif event.kind in (LegalEventKind.JUDGMENT, LegalEventKind.PAYMENT_ORDER):
        _judgment(clock, event, barred)
    elif event.kind in STARTS:
        _interval_start(clock, position, event, barred)
    elif event.kind in ENDS:
        _interval_end(clock, event, pairs[position])
    else:
        _acknowledgement(clock, event, barred)


def read_limitation(kind: ClaimKind, due_date: date, events: Sequence[LegalEvent] = (), *,
                    party: str | None = None) -> LimitationReading:
    """The limitation period of a claim of ``kind`` due on ``due_date``, read from its ``events``.

    ``kind`` is one of :data:`BASE_KINDS` (a judgment is an event; see :func:`legacy_history`).
    ``party`` reads the period against one party of the claim: events naming another party
    have no effect on it (art. 372, 881 k.c.). ``InvalidInputError`` for an inconsistent
    history (an end with no start, a start repeated while open) or a period past the calendar.
    """
    kind = ClaimKind(kind)
    if kind not in BASE_KINDS:
        raise InvalidInputError(f"a {kind.value} claim is a claim of a base kind with a judgment event; "
                                f"kind must be one of {', '.join(k.value for k in BASE_KINDS)}")
    pair_proceedings(ordered(events))  # the whole history must be consistent, whoever it names
    history = ordered(events)
    mine = ordered(applying_to(history, party))
    pairs = pair_proceedings(mine)
    withdrawn = {p for end, start in pairs.items() if mine[end].withdrawn for p in (end, start)}
    clock = _Clock(kind=kind, due_date=due_date, start=limitation_start(due_date), years=PERIOD_YEARS[kind],
                   old_years=_OLD_PERIOD_YEARS[kind])
    clock.step(due_date, "art. 120 § 1, art. 118 k.c.", f"the claim became due on {due_date} and the period runs "
               f"from that day: {_KIND_WORDS[kind]}; " + clock.end_words())
    position = -1
    for event in history:
        if party is not None and event.party is not None and event.party != party:
            clock.step(event.on, "art. 372, 881 k.c.", f"{event.kind.value} on {event.on} concerns another party "
                       "of the claim: it has no effect on this one")
            continue
        position += 1
        _apply(clock, mine, pairs, withdrawn, position)
    return LimitationReading(kind=kind, due_date=due_date, end=clock.end(), steps=tuple(clock.steps),
                             confirmed_on=clock.confirmed_on)
