"""What keeps a subject's data whatever a schedule says: live claims, the accounting duty, legal holds.

Pure: no database, no clock; facts and "today" are passed in (:mod:`gdpr.retention` re-exports
everything here, and adds the schedules). The rules, each a :class:`Reason` naming the debt or
hold it comes from and its last day:

- ``legal_claim`` (GDPR Art. 17(3)(e), Art. 6(1)(f)): an open debt's claim against the
  subject can still be pursued until the last day of its limitation period, read from the
  debt's legal history (:func:`contacts.limitation.read_limitation`, art. 117-125 k.c.), and
  indefinitely while proceedings that interrupted it are pending (art. 124 § 2) or it is
  suspended (art. 121). For a guarantor or co-debtor it is *their* period: an interruption
  against one of them does not reach the others (art. 372, 881 k.c.), so a guarantor's claim
  can be live while the debtor's is time-barred.
- ``accounting_retention`` (GDPR Art. 17(3)(b), Art. 6(1)(c)): accounting evidence
  concerning loans, commercial agreements and claims pursued in civil proceedings is kept
  "for five years from the beginning of the year following the financial year in which
  the operations, transactions and proceedings were finally completed, repaid, settled or
  time-barred" (ustawa o rachunkowości, art. 74 ust. 2 pkt 4). A debt closed on
  10 June 2019 is kept from 1 January 2020 through 31 December 2024
  (:func:`accounting_retention_ends_on`) and may be erased from 1 January 2025.
- ``legal_hold``: a hold placed by the firm keeps everything of the subject until its last
  day, or indefinitely.

Per data category (:data:`CATEGORY_RULES`, the reading in docs/legal/accounting-retention.md):
the accounting duty covers accounting evidence, i.e. who owed what and what was paid:
``identification`` and ``financial``; a live claim needs everything used to pursue it
(``contact``, ``notes``, ``location`` too); a hold keeps everything. So once the claim has
ended, contact data, notes and GPS positions are no longer needed while the identification
and payment data stay until art. 74 allows. :attr:`ErasureAssessment.categories` says, per
category, whether it is kept, until when and why: data for shredding per category.

Invariants:

- :func:`erasure_possible_from` of a debt is a 1 January after its limitation period if it
  is open, and None while the period does not run; a debt's reasons never reach past it.
- ``erasure_assessment(...).allowed`` exactly when no reason is left; then ``possible_from``
  is ``today``. Otherwise it is the day after the last reason's ``until``, or None when a
  reason has no end (a hold without an end, a claim in pending proceedings): never earlier
  than tomorrow, never earlier than any debt's :func:`erasure_possible_from`. Adding a debt
  or a hold never makes it earlier.
- a category is kept exactly when a reason whose rule covers it is left; the whole subject
  is kept exactly when some category is; no category is kept longer than the subject.
- Details and messages are English and carry ids, kinds and dates, never personal data.

Assumptions (the texts leave room; each chosen on the side of keeping data longer):

- The financial year is the calendar year (art. 3 ust. 1 pkt 9 of the Act, by default).
- An open debt counts as "finally ... time-barred" for art. 74 ust. 2 pkt 4 in the year of
  the first day on which it is time-barred. With the art. 118 year-end rule that day is a
  1 January, so: due 30 June 2025, general (six years), claim needed through 31 December
  2031, time-barred from 1 January 2032, accounting retention from 1 January 2033 through
  31 December 2037, erasable from 1 January 2038.
- The firm pursues no time-barred claim and does not rely on art. 117¹ k.c.; so an open
  debt's claim horizon ends with its limitation period.
- A settled or written-off debt closes on its ``settled_on`` date, even when that is after
  it became time-barred. It keeps no claim horizon of its own: defending against the
  debtor's claims (e.g. the return of an undue payment, art. 410 k.c.) is left to a legal
  hold. Tax-law retention (Ordynacja podatkowa art. 86) is not modelled separately.
- A legal hold binds from the moment it is recorded through ``ends_on``; a recorded hold
  whose ``starts_on`` is still in the future binds already.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from contacts.legal_events import LegalEvent
from contacts.limitation import ClaimKind, LimitationReading, legacy_history, read_limitation
from core.errors import InvalidInputError

if TYPE_CHECKING:
    from contacts.debt_info import DebtInfo

__all__ = [
    "ACCOUNTING_RETENTION_YEARS",
    "CATEGORY_RULES",
    "DEBT_STATUSES",
    "CategoryRetention",
    "DebtFacts",
    "ErasureAssessment",
    "HoldFacts",
    "Reason",
    "RetentionRule",
    "accounting_erasable_from",
    "accounting_retention_ends_on",
    "accounting_retention_starts_on",
    "closing_date",
    "erasure_assessment",
    "erasure_possible_from",
    "facts_of",
    "legal_claim_until",
]

#: Art. 74 ust. 2 pkt 4 of the accounting act: five years.
ACCOUNTING_RETENTION_YEARS: Final = 5
#: The statuses of a debt (as ``contacts.models.DEBT_STATUSES``).
DEBT_STATUSES: Final = ("open", "settled", "written_off")
#: The roles a subject can have on a debt (``contacts.models.PARTY_ROLES`` and the debtor).
ROLES: Final = ("debtor", "guarantor", "co_debtor")

RetentionRule = Literal["legal_claim", "accounting_retention", "legal_hold"]

#: Data category -> the rules that keep it, and why (docs/legal/accounting-retention.md).
CATEGORY_RULES: Final[Mapping[str, tuple[tuple[RetentionRule, ...], str]]] = {
    "identification": (("legal_claim", "accounting_retention", "legal_hold"),
                       ("names and identifiers are on the accounting evidence of the claim (assignment deed, payment "
                       "records): ustawa o rachunkowości art. 74 ust. 2 pkt 4, GDPR Art. 17(3)(b); and needed to "
                       "pursue the claim, Art. 17(3)(e)")),
    "financial": (("legal_claim", "accounting_retention", "legal_hold"),
                  ("bank accounts of payments are on the payment records (art. 74 ust. 2 pkt 4; Art. 17(3)(b)); "
                  "needed to pursue the claim, Art. 17(3)(e)")),
    "contact": (("legal_claim", "legal_hold"),
                ("addresses, phone numbers and e-mail addresses serve to pursue the claim (Art. 17(3)(e)); they are "
                "not accounting evidence, so they go when no claim against the subject is live")),
    "notes": (("legal_claim", "legal_hold"),
              "collectors' notes document the pursuit of the claim (Art. 17(3)(e)); not accounting evidence"),
    "location": (("legal_claim", "legal_hold"),
                 ("GPS positions of field visits document the pursuit of the claim (Art. 17(3)(e)); not accounting "
                 "evidence")),
}

_ONE_DAY: Final = timedelta(days=1)


# -- the accounting duty ---------------------------------------------------------------------


def _year_start(year: int) -> date:
    if year > date.max.year:
        raise InvalidInputError(f"the retention period ends after the year {date.max.year}")
    return date(year, 1, 1)


def accounting_retention_starts_on(closed_on: date) -> date:
    """The first day of the accounting retention: 1 January of the year after ``closed_on``'s."""
    return _year_start(closed_on.year + 1)


def accounting_retention_ends_on(closed_on: date) -> date:
    """The last day the accounting evidence of a debt closed on ``closed_on`` must be kept.

    Closed on 10 June 2019: kept from 1 January 2020 for five years, through 31 December 2024.
    """
    return accounting_erasable_from(closed_on) - _ONE_DAY


def accounting_erasable_from(closed_on: date) -> date:
    """The first day on which the accounting duty no longer keeps the evidence (closed 2019: 2025-01-01)."""
    return _year_start(closed_on.year + 1 + ACCOUNTING_RETENTION_YEARS)


# -- the facts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DebtFacts:
    """What retention needs to know of a debt (no personal data: an id, a kind, dates, events).

    ``status`` is one of :data:`DEBT_STATUSES`; ``settled_on`` is the day a settled or
    written-off debt was closed, and must be None for an open one. ``judgment_date`` (the
    day a judgment became final) is required for the old judgment kinds and, for any other
    kind, is read as a judgment event (art. 125 applies to every claim). ``events`` is the
    debt's legal history; ``role`` and ``party`` say whose claim this is: the debtor's, or a
    guarantor's or co-debtor's (``party``, a subject token), read with only the events that
    concern them.
    """

    id: str
    kind: ClaimKind
    consumer: bool
    due_date: date
    judgment_date: date | None = None
    status: str = "open"
    settled_on: date | None = None
    events: tuple[LegalEvent, ...] = ()
    role: str = "debtor"
    party: str | None = None
    reading: LimitationReading = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.status not in DEBT_STATUSES:
            raise InvalidInputError(f"debt {self.id}: status must be one of {', '.join(DEBT_STATUSES)}")
        if self.status == "open" and self.settled_on is not None:
            raise InvalidInputError(f"debt {self.id}: an open debt has no settled_on date")
        if self.status != "open" and self.settled_on is None:
            raise InvalidInputError(f"debt {self.id}: a {self.status} debt needs its settled_on date")
        if self.role not in ROLES:
            raise InvalidInputError(f"debt {self.id}: role must be one of {', '.join(ROLES)}")
        base, judgment = legacy_history(self.kind, self.judgment_date)  # refuses a judgment kind without its date
        reading = read_limitation(base, self.due_date, (*judgment, *self.events), party=self.party)
        object.__setattr__(self, "reading", reading)

    @property
    def is_open(self) -> bool:
        """Whether the debt is still being collected (neither settled nor written off)."""
        return self.status == "open"


def facts_of(debt: DebtInfo) -> DebtFacts:
    """The facts of a debt as the contacts ledger reads it for a subject (the debtor or one of its parties)."""
    return DebtFacts(id=debt.id, kind=ClaimKind(debt.kind), consumer=debt.consumer, due_date=debt.due_date,
                     status=debt.status, settled_on=debt.settled_on, events=debt.events, role=debt.role,
                     party=debt.viewer or debt.subject)


@dataclass(frozen=True)
class HoldFacts:
    """A legal hold on a subject: ``ends_on`` is its last day, None for no end.

    ``reason`` is the firm's reason code; it is never copied into a :class:`Reason`'s detail.
    """

    id: str
    reason: str
    starts_on: date
    ends_on: date | None = None

    def __post_init__(self) -> None:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise InvalidInputError(f"hold {self.id}: ends_on {self.ends_on} is before starts_on {self.starts_on}")

    def binds_on(self, day: date) -> bool:
        """Whether the hold keeps the data on ``day``: it has not ended (a future start binds already)."""
        return self.ends_on is None or day <= self.ends_on


# -- what keeps the data ---------------------------------------------------------------------


def closing_date(debt: DebtFacts) -> date | None:
    """The day the debt is finally closed for art. 74: ``settled_on``, or for an open debt the day it is
    time-barred; None while its period does not run (it is not closed)."""
    if debt.settled_on is not None:
        return debt.settled_on
    return debt.reading.time_barred_on


def legal_claim_until(debt: DebtFacts) -> date | None:
    """The last day the claim can be pursued, or None for a closed debt (and, for an open one, while
    its period does not run: see :func:`claim_pending`).

    For an open debt, the last day of its limitation period, whatever today is (compare it
    with today to know whether it still applies).
    """
    if not debt.is_open:
        return None
    return debt.reading.end


def claim_pending(debt: DebtFacts) -> bool:
    """Whether the open debt's period does not run (proceedings pending, a suspension): no end yet."""
    return debt.is_open and debt.reading.end is None


def erasure_possible_from(debt: DebtFacts) -> date | None:
    """The first day on which neither the claim nor the accounting duty of ``debt`` keeps the data;
    None while its period does not run.

    Open, due 2025-06-30, general: 2038-01-01. Settled on 2019-06-10: 2025-01-01.
    """
    closed = closing_date(debt)
    if closed is None:
        return None
    possible = accounting_erasable_from(closed)
    claim = legal_claim_until(debt)
    return possible if claim is None else max(possible, claim + _ONE_DAY)


@dataclass(frozen=True)
class Reason:
    """One rule that keeps a subject's data: from which debt or hold (``ref``), through which day.

    ``until`` is the last day the rule keeps the data, None for no end.
    """

    rule: RetentionRule
    ref: str
    until: date | None
    detail: str


@dataclass(frozen=True)
class CategoryRetention:
    """Whether one data category is kept today, through which day (None: no end yet), by which reasons, why."""

    category: str
    kept: bool
    until: date | None
    rules: tuple[RetentionRule, ...]
    refs: tuple[str, ...]
    basis: str

    def to_json(self, today: date) -> dict[str, Any]:
        erasable = today if not self.kept else (None if self.until is None else self.until + _ONE_DAY)
        return {"category": self.category, "kept": self.kept,
                "until": None if self.until is None else self.until.isoformat(),
                "erasable_from": None if erasable is None else erasable.isoformat(),
                "rules": list(self.rules), "refs": list(self.refs), "basis": self.basis}


@dataclass(frozen=True)
class ErasureAssessment:
    """Whether a subject's data may be erased today, and if not, from when and why, per data category.

    ``possible_from`` is ``today`` when allowed, the first day no reason is left when one
    is, and None when a reason has no end.
    """

    allowed: bool
    possible_from: date | None
    reasons: tuple[Reason, ...]
    categories: tuple[CategoryRetention, ...] = ()
    today: date | None = None

    def categories_json(self) -> dict[str, Any]:
        """``{"categories": [...]}``: per data category, kept or not, until when, by which rules, why."""
        today = self.today or date.min
        return {"categories": [c.to_json(today) for c in self.categories]}


def _debtor(debt: DebtFacts) -> str:
    who = "a consumer" if debt.consumer else "a non-consumer"
    return who if debt.role == "debtor" else f"the {debt.role.replace('_', '-')} of {who}"


def _closing_words(debt: DebtFacts, closed: date, today: date) -> str:
    if debt.status == "settled":
        return f"was settled on {closed}"
    if debt.status == "written_off":
        return f"was written off on {closed}"
    return f"{'is' if closed <= today else 'will be'} time-barred from {closed}"


def _debt_reasons(debt: DebtFacts, today: date) -> list[Reason]:
    if claim_pending(debt):
        detail = (f"the {debt.kind.value} claim against {_debtor(debt)} is in proceedings that interrupted its "
                  "limitation period, which does not run until they end (art. 124 § 2 k.c.) or while it is "
                  "suspended (art. 121 k.c.) (GDPR Art. 17(3)(e))")
        return [Reason("legal_claim", debt.id, None, detail)]
    reasons: list[Reason] = []
    claim = legal_claim_until(debt)
    if claim is not None and today <= claim:
        detail = (f"the {debt.kind.value} claim against {_debtor(debt)} can be pursued through {claim} "
                  f"and is time-barred from {claim + _ONE_DAY} (GDPR Art. 17(3)(e))")
        reasons.append(Reason("legal_claim", debt.id, claim, detail))
    closed = closing_date(debt)
    assert closed is not None  # noqa: S101 - a debt whose period runs, or a closed one, has a closing day
    kept_until = accounting_retention_ends_on(closed)
    if today <= kept_until:
        detail = (f"accounting evidence of the debt is kept for {ACCOUNTING_RETENTION_YEARS} years from "
                  f"{accounting_retention_starts_on(closed)}, as it {_closing_words(debt, closed, today)} "
                  "(ustawa o rachunkowości art. 74 ust. 2 pkt 4; GDPR Art. 17(3)(b))")
        reasons.append(Reason("accounting_retention", debt.id, kept_until, detail))
    return reasons


def _hold_reason(hold: HoldFacts) -> Reason:
    detail = "a legal hold keeps the data with no end date" if hold.ends_on is None else (
        f"a legal hold keeps the data through {hold.ends_on}")
    return Reason("legal_hold", hold.id, hold.ends_on, detail)


def _last_day(reasons: Iterable[Reason]) -> date | None:
    ends = [reason.until for reason in reasons]
    return None if None in ends else max(end for end in ends if end is not None)


def _categories(reasons: list[Reason]) -> tuple[CategoryRetention, ...]:
    out: list[CategoryRetention] = []
    for category, (rules, basis) in CATEGORY_RULES.items():
        keeping = [reason for reason in reasons if reason.rule in rules]
        out.append(CategoryRetention(
            category=category, kept=bool(keeping), until=_last_day(keeping) if keeping else None,
            rules=tuple(dict.fromkeys(r.rule for r in keeping)), refs=tuple(dict.fromkeys(r.ref for r in keeping)),
            basis=basis))
    return tuple(out)


def erasure_assessment(debts: Iterable[DebtFacts], holds: Iterable[HoldFacts], today: date) -> ErasureAssessment:
    """Whether a subject's data may be erased on ``today``, given their debts and legal holds.

    The reasons come in order: per debt (in the order given) its claim, then its
    accounting duty; then the binding holds. Open, not time-barred: refused until its
    :func:`erasure_possible_from`; settled long ago: allowed; a hold with no end: refused
    with no date; several debts: the latest date wins. ``categories`` says the same per
    data category (see :data:`CATEGORY_RULES`).
    """
    reasons = [reason for debt in debts for reason in _debt_reasons(debt, today)]
    reasons += [_hold_reason(hold) for hold in holds if hold.binds_on(today)]
    categories = _categories(reasons)
    if not reasons:
        return ErasureAssessment(allowed=True, possible_from=today, reasons=(), categories=categories, today=today)
    last = _last_day(reasons)
    return ErasureAssessment(allowed=False, possible_from=None if last is None else last + _ONE_DAY,
                             reasons=tuple(reasons), categories=categories, today=today)
