"""Retention: how long a subject's data is kept, what keeps it longer, and which actions are due.

Pure: no database, no clock; facts and "today" are passed in. Three parts:

1. The rules that keep data whatever a schedule says (live claims read from each debt's
   legal history, the accounting duty of art. 74 ust. 2 pkt 4 of the accounting act, legal
   holds), per subject and per data category: :mod:`gdpr.claims`, re-exported here
   (:func:`erasure_assessment`, :class:`DebtFacts`, :class:`HoldFacts`...).

2. The retention schedules, one per data category, in ``policies/retention.yaml``
   (:func:`load_retention`), validated like the contact rules: every category present and
   nothing else, ``extra="forbid"`` at every level, duplicate keys refused, every error a
   :class:`RetentionPolicyError` naming the source and the key path, the SHA-256 of the
   exact text carried with the policy.

3. :func:`due_actions`: for one subject's facts, the actions due today and why.

Invariants:

- A schedule's period counts from its event without counting the event's day (as art. 3(1)
  of Regulation 1182/71 counts): the data is kept through the day falling on the same date
  ``period`` later (:meth:`Period.last_day`), and the action is due from the day after.
- ``shred_subject`` destroys the subject's key, so every category at once: it is due only
  when every schedule with that action is due and :func:`erasure_assessment` allows it.
  Nothing at all is due while a legal hold binds.
- A recording is not accounting evidence. One marked ``evidence`` is kept while the claim
  of its debt (or, with no known debt, any claim of the subject) can be pursued, and
  indefinitely while that claim's period does not run.
- Details and messages are English and carry ids, kinds and dates, never personal data.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
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

from core.errors import InvalidInputError
from gdpr.claims import (
    ACCOUNTING_RETENTION_YEARS,
    CATEGORY_RULES,
    DEBT_STATUSES,
    CategoryRetention,
    DebtFacts,
    ErasureAssessment,
    HoldFacts,
    Reason,
    RetentionRule,
    accounting_erasable_from,
    accounting_retention_ends_on,
    accounting_retention_starts_on,
    claim_pending,
    closing_date,
    erasure_assessment,
    erasure_possible_from,
    facts_of,
    legal_claim_until,
)
from gdpr.deadlines import add_months
from policies.yamlfile import read_policy_text, validated_document

__all__ = [
    "ACCOUNTING_RETENTION_YEARS",
    "CATEGORY_RULES",
    "DATA_CATEGORIES",
    "DEBT_STATUSES",
    "DEFAULT_RETENTION_PATH",
    "CategoryRetention",
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
    "claim_pending",
    "closing_date",
    "due_actions",
    "erasure_assessment",
    "erasure_possible_from",
    "event_date",
    "facts_of",
    "legal_claim_until",
    "load_retention",
    "retention_from_yaml",
]

# Found by path beside this package, as contacts/rules.py finds policies/contact_rules.yaml.
DEFAULT_RETENTION_PATH: Final = Path(__file__).resolve().parents[1] / "policies" / "retention.yaml"

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


# -- the facts of a subject ---------------------------------------------------------------


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
        ends = [debt.reading.end for debt in subject.debts]
        return max(d for d in ends if d is not None) if ends and None not in ends else None
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
    possible = [erasure_possible_from(debt) for debt in subject.debts]
    if None in possible:  # a claim whose period does not run (the assessment refuses it already)
        return []
    since = max([*starts, *(d for d in possible if d is not None), *_hold_ends(subject.holds)])
    if since > today:
        return []
    return [DueAction("shred_subject", name, schedule.rule, schedule.basis, since) for name, schedule in schedules]


def _claims_kept_by(recording: RecordingFacts, debts: Sequence[DebtFacts]) -> list[date] | None:
    """The days after the open claims an evidence recording serves: its debt's, or any if unknown;
    None when one of them has no end yet (its period does not run)."""
    own = [debt for debt in debts if debt.id == recording.debt_id] or list(debts)
    if any(claim_pending(debt) for debt in own):
        return None
    claims = [legal_claim_until(debt) for debt in own]
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
            kept = _claims_kept_by(recording, subject.debts)
            if kept is None:
                continue
            dates += kept
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
