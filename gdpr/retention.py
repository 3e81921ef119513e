"""Retention: how long a subject's data is kept, what keeps it longer, and which actions are due.

Pure: no database, no clock; facts and "today" are passed in. Three parts:

1. The rules that keep data whatever a schedule says (:func:`erasure_assessment`), each a
   :class:`Reason` naming the debt or hold it comes from and its last day:

   - ``legal_claim`` (GDPR Art. 17(3)(e), Art. 6(1)(f)): an open debt's claim can still be
     pursued until the last day of its limitation period (:func:`contacts.limitation.
     limitation_end`, art. 117-125 k.c.); the data is needed through that day.
   - ``accounting_retention`` (GDPR Art. 17(3)(b), Art. 6(1)(c)): accounting evidence
     concerning loans, commercial agreements and claims pursued in civil proceedings is kept
     "for five years from the beginning of the year following the financial year in which
     the operations, transactions and proceedings were finally completed, repaid, settled or
     time-barred" (ustawa o rachunkowości, art. 74 ust. 2 pkt 4). A debt closed on
     10 June 2019 is kept from 1 January 2020 through 31 December 2024
     (:func:`accounting_retention_ends_on`) and may be erased from 1 January 2025
     (:func:`accounting_erasable_from`).
   - ``legal_hold``: a hold placed by the firm (a dispute, a complaint, an authority's
     request) keeps everything of the subject until its last day, or indefinitely.

2. The retention schedules, one per data category, in ``policies/retention.yaml``
   (:func:`load_retention`), validated like the contact rules: every category present and
   nothing else, ``extra="forbid"`` at every level, duplicate keys refused, every error a
   :class:`RetentionPolicyError` naming the source and the key path, the SHA-256 of the
   exact text carried with the policy.

3. :func:`due_actions`: for one subject's facts, the actions due today and why.

Invariants:

- :func:`erasure_possible_from` of a debt is always a 1 January, after its limitation
  period if it is open; a debt's reasons never reach past it.
- ``erasure_assessment(...).allowed`` exactly when no reason is left; then ``possible_from``
  is ``today``. Otherwise it is the day after the last reason's ``until``, or None when a
  hold has no end: never earlier than tomorrow, never earlier than any debt's
  :func:`erasure_possible_from`. Adding a debt or a hold never makes it earlier.
- A schedule's period counts from its event without counting the event's day (as art. 3(1)
  of Regulation 1182/71 counts): the data is kept through the day falling on the same date
  ``period`` later (:meth:`Period.last_day`), and the action is due from the day after.
- ``shred_subject`` destroys the subject's key, so every category at once: it is due only
  when every schedule with that action is due and :func:`erasure_assessment` allows it.
  Nothing at all is due while a legal hold binds.
- Details and messages are English and carry ids, kinds and dates, never personal data.

Assumptions (the texts leave room; each chosen on the side of keeping data longer):

- The financial year is the calendar year (art. 3 ust. 1 pkt 9 of the Act, by default).
- An open debt counts as "finally ... time-barred" for art. 74 ust. 2 pkt 4 in the year of
  the first day on which it is time-barred (:func:`contacts.limitation.time_barred_on`).
  With the art. 118 year-end rule that day is a 1 January, so: due 30 June 2025, general
  (six years), claim needed through 31 December 2031, time-barred from 1 January 2032,
  accounting retention from 1 January 2033 through 31 December 2037, erasable from
  1 January 2038. (Reading the period's last day, 31 December 2031, as the year would
  give one year less.)
- The firm pursues no time-barred claim, against consumers (art. 117 § 2¹ k.c.) or
  anyone else, and does not rely on art. 117¹ k.c.; so an open debt's claim horizon ends
  with its limitation period. Suspension and interruption are not modelled (pass the day
  the period restarted as the due or judgment date).
- A settled or written-off debt closes on its ``settled_on`` date, even when that is after
  it became time-barred (a voluntary payment is then the final settlement). It keeps no
  claim horizon of its own: defending against the debtor's claims (e.g. the return of an
  undue payment, art. 410 k.c.) is left to a legal hold. Tax-law retention (Ordynacja
  podatkowa art. 86) is not modelled separately.
- A legal hold binds from the moment it is recorded through ``ends_on``; a recorded hold
  whose ``starts_on`` is still in the future binds already (erasing first would defeat it).
- A recording is not accounting evidence. One marked ``evidence`` is kept while the claim
  of its debt (or, with no known debt, any claim of the subject) can be pursued.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from contacts.limitation import ClaimKind, limitation_end, time_barred_on
from core.errors import InvalidInputError
from gdpr.deadlines import add_months
from policies.yamlfile import read_policy_text, validated_document

__all__ = [
    "ACCOUNTING_RETENTION_YEARS",
    "DATA_CATEGORIES",
    "DEBT_STATUSES",
    "DEFAULT_RETENTION_PATH",
    "DebtFacts",
    "DueAction",
    "DueActionKind",
    "ErasureAssessment",
    "Event",
    "HoldFacts",
    "Period",
    "Reason",
    "RecordingFacts",
    "RetentionDocument",
    "RetentionPolicy",
    "RetentionPolicyError",
    "RetentionRule",
    "Schedule",
    "ScheduleAction",
    "Schedules",
    "SubjectFacts",
    "accounting_erasable_from",
    "accounting_retention_ends_on",
    "accounting_retention_starts_on",
    "closing_date",
    "due_actions",
    "erasure_assessment",
    "erasure_possible_from",
    "event_date",
    "legal_claim_until",
    "load_retention",
    "retention_from_yaml",
]

# Found by path beside this package, as contacts/rules.py finds policies/contact_rules.yaml.
DEFAULT_RETENTION_PATH: Final = Path(__file__).resolve().parents[1] / "policies" / "retention.yaml"

#: Art. 74 ust. 2 pkt 4 of the accounting act: five years.
ACCOUNTING_RETENTION_YEARS: Final = 5
#: The statuses of a debt (as ``contacts.models.DEBT_STATUSES``).
DEBT_STATUSES: Final = ("open", "settled", "written_off")

RetentionRule = Literal["legal_claim", "accounting_retention", "legal_hold"]
Event = Literal[
    "case_closed", "debt_settled", "limitation_end", "last_contact", "request_completed", "contact_recorded"
]
ScheduleAction = Literal["shred_subject", "delete_recordings", "none"]
DueActionKind = Literal["shred_subject", "delete_recordings"]

_ONE_DAY: Final = timedelta(days=1)
_MONTHS_PER_YEAR: Final = 12
_RECORDINGS: Final = "recordings"


class RetentionPolicyError(InvalidInputError):
    """The retention policy file cannot be used: not YAML, a duplicate key, or invalid content."""

    code = "invalid-retention-policy"
    title = "Invalid retention policy"


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
    """What retention needs to know of a debt (no personal data: an id, a kind, dates).

    ``status`` is one of :data:`DEBT_STATUSES`; ``settled_on`` is the day a settled or
    written-off debt was closed, and must be None for an open one. ``judgment_date`` (the
    day the judgment became final) is required for the judgment kinds and refused for the
    others, as :func:`contacts.limitation.limitation_end` requires.
    """

    id: str
    kind: ClaimKind
    consumer: bool
    due_date: date
    judgment_date: date | None = None
    status: str = "open"
    settled_on: date | None = None

    def __post_init__(self) -> None:
        if self.status not in DEBT_STATUSES:
            raise InvalidInputError(f"debt {self.id}: status must be one of {', '.join(DEBT_STATUSES)}")
        if self.status == "open" and self.settled_on is not None:
            raise InvalidInputError(f"debt {self.id}: an open debt has no settled_on date")
        if self.status != "open" and self.settled_on is None:
            raise InvalidInputError(f"debt {self.id}: a {self.status} debt needs its settled_on date")
        time_barred_on(self.kind, self.due_date, self.judgment_date)  # refuses a bad kind/judgment pair now

    @property
    def is_open(self) -> bool:
        """Whether the debt is still being collected (neither settled nor written off)."""
        return self.status == "open"


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


@dataclass(frozen=True)
class RecordingFacts:
    """A recording of a contact: when it was made, which debt it concerns, whether it is evidence."""

    id: str
    recorded_on: date
    debt_id: str | None = None
    evidence: bool = False


@dataclass(frozen=True)
class SubjectFacts:
    """One subject's facts, for :func:`due_actions`.

    ``case_closed_on`` is the day the subject's last case was closed, None while any is
    open; ``last_contact_on`` the day of the latest contact; ``request_completed_on`` the
    day the latest data subject request was completed.
    """

    debts: tuple[DebtFacts, ...] = ()
    holds: tuple[HoldFacts, ...] = ()
    recordings: tuple[RecordingFacts, ...] = ()
    case_closed_on: date | None = None
    last_contact_on: date | None = None
    request_completed_on: date | None = None


# -- what keeps the data ---------------------------------------------------------------------


def closing_date(debt: DebtFacts) -> date:
    """The day the debt is finally closed for art. 74: ``settled_on``, or for an open debt the day it is time-barred."""
    if debt.settled_on is not None:
        return debt.settled_on
    return time_barred_on(debt.kind, debt.due_date, debt.judgment_date)


def legal_claim_until(debt: DebtFacts) -> date | None:
    """The last day the claim can be pursued (the data is needed for it), or None for a closed debt.

    For an open debt, the last day of its limitation period, whatever today is (compare it
    with today to know whether it still applies).
    """
    if not debt.is_open:
        return None
    return limitation_end(debt.kind, debt.due_date, debt.judgment_date)


def erasure_possible_from(debt: DebtFacts) -> date:
    """The first day on which neither the claim nor the accounting duty of ``debt`` keeps the data.

    Open, due 2025-06-30, general: 2038-01-01. Settled on 2019-06-10: 2025-01-01.
    """
    possible = accounting_erasable_from(closing_date(debt))
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
class ErasureAssessment:
    """Whether a subject's data may be erased today, and if not, from when and why.

    ``possible_from`` is ``today`` when allowed, the first day no reason is left when one
    is, and None when a hold has no end.
    """

    allowed: bool
    possible_from: date | None
    reasons: tuple[Reason, ...]


def _debtor(debt: DebtFacts) -> str:
    return "a consumer" if debt.consumer else "a non-consumer"


def _closing_words(debt: DebtFacts, closed: date, today: date) -> str:
    if debt.status == "settled":
        return f"was settled on {closed}"
    if debt.status == "written_off":
        return f"was written off on {closed}"
    return f"{'is' if closed <= today else 'will be'} time-barred from {closed}"


def _debt_reasons(debt: DebtFacts, today: date) -> list[Reason]:
    reasons: list[Reason] = []
    claim = legal_claim_until(debt)
    if claim is not None and today <= claim:
        detail = (f"the {debt.kind.value} claim against {_debtor(debt)} can be pursued through {claim} "
                  f"and is time-barred from {claim + _ONE_DAY} (GDPR Art. 17(3)(e))")
        reasons.append(Reason("legal_claim", debt.id, claim, detail))
    closed = closing_date(debt)
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


def erasure_assessment(debts: Iterable[DebtFacts], holds: Iterable[HoldFacts], today: date) -> ErasureAssessment:
    """Whether a subject's data may be erased on ``today``, given their debts and legal holds.

    The reasons come in order: per debt (in the order given) its claim, then its
    accounting duty; then the binding holds. Open, not time-barred: refused until its
    :func:`erasure_possible_from`; settled long ago: allowed; a hold with no end: refused
    with no date; several debts: the latest date wins.
    """
    reasons = [reason for debt in debts for reason in _debt_reasons(debt, today)]
    reasons += [_hold_reason(hold) for hold in holds if hold.binds_on(today)]
    if not reasons:
        return ErasureAssessment(allowed=True, possible_from=today, reasons=())
    ends = [reason.until for reason in reasons]
    possible = None if None in ends else max(end for end in ends if end is not None) + _ONE_DAY
    return ErasureAssessment(allowed=False, possible_from=possible, reasons=tuple(reasons))


# -- the schedules (policies/retention.yaml) -------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Period(_Model):
    """A length of time in years, months and days; at least one of them is named (``days: 0`` for none)."""

    years: Annotated[StrictInt, Field(ge=0, le=100)] = 0
    months: Annotated[StrictInt, Field(ge=0, le=1200)] = 0
    days: Annotated[StrictInt, Field(ge=0, le=36600)] = 0

    @model_validator(mode="after")
    def _named(self) -> Period:
        if not self.model_fields_set:
            raise ValueError("a period names years, months or days (days: 0 for none)")
        return self

    def last_day(self, start: date) -> date:
        """The last day of the period from ``start`` (not counted): the same date later, then the days."""
        end = add_months(start, self.years * _MONTHS_PER_YEAR + self.months)
        try:
            return end + timedelta(days=self.days)
        except OverflowError:
            raise InvalidInputError(f"the period ends after the year {date.max.year}") from None

    def due_from(self, start: date) -> date:
        """The first day after the period from ``start``."""
        return self.last_day(start) + _ONE_DAY

    def describe(self) -> str:
        """The period in words, e.g. ``2 years`` or ``1 year 6 months`` (``0 days`` for none)."""
        parts = [f"{count} {unit}{'' if count == 1 else 's'}"
                 for count, unit in ((self.years, "year"), (self.months, "month"), (self.days, "day")) if count]
        return " ".join(parts) or "0 days"


class Schedule(_Model):
    """How long one data category is kept, from which event, what happens then, and on what basis."""

    period: Period
    starts_from: Event
    action: ScheduleAction
    basis: Annotated[StrictStr, Field(min_length=1)]

    @property
    def rule(self) -> str:
        """The schedule in words, e.g. ``2 years after contact_recorded``."""
        return f"{self.period.describe()} after {self.starts_from}"


class Schedules(_Model):
    """One schedule per data category: the vault's (``policies/fields.yaml``), recordings, contact events."""

    identification: Schedule
    contact: Schedule
    financial: Schedule
    notes: Schedule
    location: Schedule
    recordings: Schedule
    contact_events: Schedule

    @field_validator("identification", "contact", "financial", "notes", "location", "contact_events")
    @classmethod
    def _subject_level(cls, value: Schedule) -> Schedule:
        if value.action == "delete_recordings":
            raise ValueError("delete_recordings applies to the recordings schedule only")
        if value.starts_from == "contact_recorded":
            raise ValueError("contact_recorded (each recording's own date) applies to the recordings schedule only")
        return value

    @field_validator("recordings")
    @classmethod
    def _recordings(cls, value: Schedule) -> Schedule:
        if value.action == "shred_subject":
            raise ValueError("recordings are deleted (delete_recordings) or left to the subject (none)")
        return value


#: Every data category with a schedule, in the file's order.
DATA_CATEGORIES: Final = tuple(Schedules.model_fields)


class RetentionDocument(_Model):
    """The YAML document: a format version and the schedules."""

    version: Literal[1]
    schedules: Schedules


@dataclass(frozen=True)
class RetentionPolicy:
    """A validated retention policy, with the fingerprint of the text it came from."""

    document: RetentionDocument
    sha256: str
    source: str

    @property
    def version(self) -> int:
        """The format version of the file."""
        return self.document.version

    @property
    def schedules(self) -> Mapping[str, Schedule]:
        """The schedules by data category, in :data:`DATA_CATEGORIES` order."""
        return MappingProxyType({name: getattr(self.document.schedules, name) for name in DATA_CATEGORIES})

    def __repr__(self) -> str:
        return f"RetentionPolicy(version={self.version}, sha256={self.sha256[:12]}..., source={self.source!r})"


def retention_from_yaml(text: str, source: str = "<string>") -> RetentionPolicy:
    """Parse and validate a retention policy; ``RetentionPolicyError`` naming ``source`` and the key path."""
    validated = validated_document(text, source, RetentionDocument, RetentionPolicyError, "retention policy", "is")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return RetentionPolicy(document=validated, sha256=digest, source=source)


@functools.lru_cache(maxsize=8)
def load_retention(path: Path | None = None) -> RetentionPolicy:
    """The policy at ``path`` (default: the packaged ``policies/retention.yaml``), cached."""
    source = path if path is not None else DEFAULT_RETENTION_PATH
    text = read_policy_text(source, RetentionPolicyError, "retention policy", "is")
    return retention_from_yaml(text, source=str(source))


# -- what is due -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DueAction:
    """An action due on a subject today: which schedule makes it due, by which rule, since when.

    ``since`` is the first day from which it has been due without interruption (the latest
    of the schedule's end, the end of every retention rule, and the end of every hold).
    ``recording_id`` names the recording for ``delete_recordings``; it is None for
    ``shred_subject``, which is one action for the whole subject however many schedules
    list it.
    """

    action: DueActionKind
    schedule: str
    rule: str
    basis: str
    since: date
    recording_id: str | None = None


def event_date(event: Event, subject: SubjectFacts) -> date | None:
    """The day ``event`` happened for the subject, or None if it has not (yet).

    ``debt_settled``: the latest ``settled_on`` once every debt is settled or written off;
    ``limitation_end``: the latest last day of limitation over all the subject's debts;
    ``contact_recorded`` is per recording, so None here.
    """
    if event == "case_closed":
        return subject.case_closed_on
    if event == "last_contact":
        return subject.last_contact_on
    if event == "request_completed":
        return subject.request_completed_on
    if event == "debt_settled":
        settled = [debt.settled_on for debt in subject.debts]
        return max(d for d in settled if d is not None) if settled and None not in settled else None
    if event == "limitation_end":
        ends = [limitation_end(debt.kind, debt.due_date, debt.judgment_date) for debt in subject.debts]
        return max(ends) if ends else None
    return None


def _hold_ends(holds: Sequence[HoldFacts]) -> list[date]:
    return [hold.ends_on + _ONE_DAY for hold in holds if hold.ends_on is not None]


def _shred_actions(policy: RetentionPolicy, subject: SubjectFacts, today: date) -> list[DueAction]:
    schedules = [(name, schedule) for name, schedule in policy.schedules.items() if schedule.action == "shred_subject"]
    if not schedules or not erasure_assessment(subject.debts, subject.holds, today).allowed:
        return []
    starts: list[date] = []
    for _, schedule in schedules:
        event = event_date(schedule.starts_from, subject)
        if event is None:
            return []
        starts.append(schedule.period.due_from(event))
    since = max([*starts, *(erasure_possible_from(debt) for debt in subject.debts), *_hold_ends(subject.holds)])
    if since > today:
        return []
    return [DueAction("shred_subject", name, schedule.rule, schedule.basis, since) for name, schedule in schedules]


def _claims_kept_by(recording: RecordingFacts, debts: Sequence[DebtFacts]) -> list[date]:
    """The last days of the open claims an evidence recording serves: its debt's, or any if unknown."""
    own = [debt for debt in debts if debt.id == recording.debt_id]
    claims = [legal_claim_until(debt) for debt in (own or debts)]
    return [claim + _ONE_DAY for claim in claims if claim is not None]


def _recording_actions(policy: RetentionPolicy, subject: SubjectFacts, today: date) -> list[DueAction]:
    schedule = policy.schedules[_RECORDINGS]
    if schedule.action != "delete_recordings":
        return []
    actions: list[DueAction] = []
    for recording in subject.recordings:
        start = recording.recorded_on if schedule.starts_from == "contact_recorded" else event_date(
            schedule.starts_from, subject)
        if start is None:
            continue
        dates = [schedule.period.due_from(start), *_hold_ends(subject.holds)]
        if recording.evidence:
            dates += _claims_kept_by(recording, subject.debts)
        since = max(dates)
        if since <= today:
            actions.append(DueAction("delete_recordings", _RECORDINGS, schedule.rule, schedule.basis, since,
                                     recording_id=recording.id))
    return actions


def due_actions(policy: RetentionPolicy, subject: SubjectFacts, today: date) -> list[DueAction]:
    """The actions due on ``today`` for one subject, and why; nothing while a legal hold binds.

    ``shred_subject`` first (one entry per schedule that lists it, all or none), then one
    ``delete_recordings`` per recording, in the order given. A recording is deleted when its
    schedule's period has run out and, if it is marked as evidence, its claim has ended;
    both may be due at once (shredding makes recordings unreadable, deleting frees them).
    """
    if any(hold.binds_on(today) for hold in subject.holds):
        return []
    return [*_shred_actions(policy, subject, today), *_recording_actions(policy, subject, today)]
