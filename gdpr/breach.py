"""Who was exposed when a principal was compromised (GDPR Art. 33 and 34), read from the audit log.

Given a compromised principal (a user id or an API client id: the ``actor.id`` of its
events) and a time window, :func:`breach_impact` walks the principal's entries of the log,
page by page, and tells per subject token what the principal obtained:

* fields read through ``vault.access`` entries whose decision is ``allow``: ``view``
  ``full`` is plaintext, ``masked`` masked values; per field and view, how many entries
  and the first and last time. A denied access exposed nothing and is only counted;
* bulk reveals: reveals that came in a batch (see below);
* searches (``vault.search``) whose answer named the subject (payload ``subjects``);
* recordings played (``recording.played``), exports created (``gdpr.export_created``) and
  contact notes opened (allowed ``vault.access`` naming the field ``note``).

with the totals, the window, and the Art. 33(1) clock: ``notify_by`` is
:func:`gdpr.deadlines.breach_notification_due` of the moment of awareness (72 hours), with
the hours left at ``now`` and whether it is overdue. The subjects likely to be at high
risk (Art. 34) are those whose identifiers (:data:`HIGH_RISK_FIELDS`) were revealed in
full, who were exported (an export holds every field in clear), or whose name and address
were both obtained (in any view: a role's mask may show them in clear) while the log shows
them as a party of a debt (``debt.recorded``, ``debt.party_linked``): a person named,
found at home and known to owe money to a collection firm is exposed to fraud, pressure and
stigma (:data:`HIGH_RISK_COMBINATIONS`; the reading: docs/legal/breach-register.md).

A bulk reveal is what one :meth:`vault.service.VaultService.reveal_many` call writes: one
``vault.access`` entry per subject, appended as one group, which the sequencer never
splits. The log does not mark such a group, so it is recognised as a run of two or more
reveal entries of the principal at consecutive log indexes, with the same purpose, fields
and view, each within :data:`BULK_GAP` of the one before. A client revealing one subject
at a time in a tight loop looks the same and is reported as a bulk reveal too.

Invariants:

* no personal data in the report: subject tokens, field names, recording ids, counts
  and times only (the log holds nothing else in clear);
* bounded reading: entries are fetched :data:`PAGE_SIZE` at a time and folded into
  per-subject counters; memory grows with the subjects exposed, not with the entries;
* the window is ``since <= time < until`` (as :class:`audit.repository.EntryFilter`);
* the time is passed in (``aware_at``, ``now``): the same log gives the same report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from audit.events import format_time
from audit.repository import EntryFilter
from audit.service import AuditLog, StoredEntry
from core.errors import InvalidInputError
from gdpr.deadlines import breach_notification_due

__all__ = [
    "BREACH_REPORT_FORMAT",
    "BULK_GAP",
    "HIGH_RISK_COMBINATIONS",
    "HIGH_RISK_FIELDS",
    "PAGE_SIZE",
    "BreachReport",
    "BreachTotals",
    "FieldExposure",
    "SubjectExposure",
    "breach_impact",
]

BREACH_REPORT_FORMAT: Final = "tarcza-breach-report/v1"
#: Identifiers whose disclosure in clear makes identity theft and fraud likely (Art. 34 high risk).
HIGH_RISK_FIELDS: Final = frozenset({"pesel", "id_card", "passport", "iban"})
#: Combinations of what was obtained that make the risk high together (the fact of a debt is read from the log).
HIGH_RISK_COMBINATIONS: Final = {"combination:name+address+debt": (frozenset({"first_name", "last_name"}),
                                                                   frozenset({"address"}))}
DEBT_EVENTS: Final = ("debt.recorded", "debt.party_linked")
#: Entries read from the log per query.
PAGE_SIZE: Final = 1000
#: The longest pause between two entries of one bulk reveal.
BULK_GAP: Final = timedelta(seconds=1)

View = Literal["full", "masked"]
_NOTE_FIELD: Final = "note"
_REVEAL_ACTION: Final = "reveal"
_EXPORT_REASON: Final = "export"


# -- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldExposure:
    """One field of a subject as the principal obtained it: in one view, how often, first and last."""

    field: str
    view: View
    count: int
    first_at: datetime
    last_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "view": self.view, "count": self.count,
                "first_at": format_time(self.first_at), "last_at": format_time(self.last_at)}


@dataclass(frozen=True)
class SubjectExposure:
    """Everything the principal obtained about one subject in the window.

    ``accesses`` counts the allowed ``vault.access`` entries, ``bulk_reveals`` those of them
    that were part of a bulk reveal; ``high_risk_reasons`` are ``full:<field>`` for an
    identifier revealed in full, and ``export`` for an export.
    """

    subject: str
    first_at: datetime
    last_at: datetime
    fields: tuple[FieldExposure, ...] = ()
    accesses: int = 0
    bulk_reveals: int = 0
    searches: int = 0
    searched_fields: tuple[str, ...] = ()
    recordings_played: tuple[str, ...] = ()
    recording_plays: int = 0
    exports: int = 0
    notes_opened: int = 0
    high_risk_reasons: tuple[str, ...] = ()

    @property
    def high_risk(self) -> bool:
        """Whether the subject is likely at high risk (Art. 34): an identifier in full, or an export."""
        return bool(self.high_risk_reasons)

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject, "first_at": format_time(self.first_at), "last_at": format_time(self.last_at),
            "high_risk": self.high_risk, "high_risk_reasons": list(self.high_risk_reasons),
            "fields": [f.to_json() for f in self.fields], "accesses": self.accesses,
            "bulk_reveals": self.bulk_reveals, "searches": self.searches,
            "searched_fields": list(self.searched_fields), "recordings_played": list(self.recordings_played),
            "recording_plays": self.recording_plays, "exports": self.exports, "notes_opened": self.notes_opened,
        }


@dataclass(frozen=True)
class BreachTotals:
    """Counts over the whole window; ``denied`` accesses exposed nothing and are not in the others."""

    entries_scanned: int = 0
    subjects: int = 0
    high_risk_subjects: int = 0
    accesses_full: int = 0
    accesses_masked: int = 0
    bulk_reveals: int = 0
    bulk_revealed_entries: int = 0
    searches: int = 0
    recording_plays: int = 0
    exports: int = 0
    notes_opened: int = 0
    denied: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "entries_scanned": self.entries_scanned, "subjects": self.subjects,
            "high_risk_subjects": self.high_risk_subjects, "accesses_full": self.accesses_full,
            "accesses_masked": self.accesses_masked, "bulk_reveals": self.bulk_reveals,
            "bulk_revealed_entries": self.bulk_revealed_entries, "searches": self.searches,
            "recording_plays": self.recording_plays, "exports": self.exports, "notes_opened": self.notes_opened,
            "denied": self.denied,
        }


@dataclass(frozen=True)
class BreachReport:
    """Who was exposed through ``actor_id`` between ``since`` and ``until``, and the Art. 33 clock.

    ``hours_left`` is negative once ``notify_by`` has passed (then ``overdue``). ``subjects``
    are in token order; ``actor_kinds`` are the kinds (user, client, system) of the entries
    found under the id.
    """

    actor_id: str
    actor_kinds: tuple[str, ...]
    since: datetime
    until: datetime
    aware_at: datetime
    notify_by: datetime
    now: datetime
    hours_left: float
    overdue: bool
    subjects: tuple[SubjectExposure, ...]
    totals: BreachTotals

    @property
    def high_risk_subjects(self) -> tuple[str, ...]:
        """The tokens of the subjects likely at high risk (Art. 34), in token order."""
        return tuple(s.subject for s in self.subjects if s.high_risk)

    def subject(self, token: str) -> SubjectExposure:
        """The exposure of one subject; KeyError if the principal obtained nothing about it."""
        for exposure in self.subjects:
            if exposure.subject == token:
                return exposure
        raise KeyError(token)

    def to_json(self) -> dict[str, Any]:
        """The ``tarcza-breach-report/v1`` document: times RFC 3339 UTC, subjects in token order."""
        return {
            "format": BREACH_REPORT_FORMAT,
            "actor": {"id": self.actor_id, "kinds": list(self.actor_kinds)},
            "window": {"since": format_time(self.since), "until": format_time(self.until)},
            "notification": {"aware_at": format_time(self.aware_at), "notify_by": format_time(self.notify_by),
                             "now": format_time(self.now), "hours_left": round(self.hours_left, 2),
                             "overdue": self.overdue},
            "totals": self.totals.to_json(),
            "high_risk_subjects": list(self.high_risk_subjects),
            "subjects": [s.to_json() for s in self.subjects],
        }


# -- folding the entries -------------------------------------------------------------------------


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(slots=True)
class _Seen:
    """Running counters of one subject; times are canonical log strings (they order as the times do)."""

    first: str
    last: str
    fields: dict[tuple[str, View], list[Any]] = field(default_factory=dict)  # (field, view) -> [count, first, last]
    accesses: int = 0
    bulk: int = 0
    searches: int = 0
    searched: set[str] = field(default_factory=set)
    recordings: set[str] = field(default_factory=set)
    plays: int = 0
    exports: int = 0
    notes: int = 0

    def touch(self, when: str) -> None:
        self.first = min(self.first, when)
        self.last = max(self.last, when)

    def exposure(self, token: str) -> SubjectExposure:
        fields = tuple(FieldExposure(name, view, count, _time(first), _time(last))
                       for (name, view), (count, first, last) in sorted(self.fields.items()))
        reasons = [f"full:{f.field}" for f in fields if f.view == "full" and f.field in HIGH_RISK_FIELDS]
        if self.exports:
            reasons.append(_EXPORT_REASON)
        return SubjectExposure(
            subject=token, first_at=_time(self.first), last_at=_time(self.last), fields=fields,
            accesses=self.accesses, bulk_reveals=self.bulk, searches=self.searches,
            searched_fields=tuple(sorted(self.searched)), recordings_played=tuple(sorted(self.recordings)),
            recording_plays=self.plays, exports=self.exports, notes_opened=self.notes,
            high_risk_reasons=tuple(reasons))


@dataclass(slots=True)
class _Run:
    """The reveal entries seen at consecutive indexes, as long as they may be one bulk reveal."""

    key: tuple[Any, ...]
    last_index: int
    last_time: datetime
    entries: int = 1
    allowed: list[str] = field(default_factory=list)


class _Folder:
    """Folds the principal's entries, in log order, into per-subject counters and totals."""

    def __init__(self) -> None:
        self.subjects: dict[str, _Seen] = {}
        self.kinds: set[str] = set()
        self.counts: dict[str, int] = dict.fromkeys(BreachTotals().to_json(), 0)
        self.run: _Run | None = None

    def seen(self, token: str, when: str) -> _Seen:
        found = self.subjects.get(token)
        if found is None:
            found = self.subjects[token] = _Seen(when, when)
        else:
            found.touch(when)
        return found

    def add(self, entry: StoredEntry) -> None:
        event = entry.event
        self.counts["entries_scanned"] += 1
        self.kinds.add(str(event["actor"]["kind"]))
        kind, when, payload = event["type"], event["time"], event["payload"]
        subject = event.get("subject")
        if kind == "vault.access":
            self._access(entry.index, when, subject, payload)
        elif kind == "vault.search":
            self.counts["searches"] += 1
            for token in dict.fromkeys(payload.get("subjects", ())):
                seen = self.seen(token, when)
                seen.searches += 1
                seen.searched.add(str(payload["field"]))
        elif kind == "recording.played" and subject:
            self.counts["recording_plays"] += 1
            seen = self.seen(subject, when)
            seen.plays += 1
            seen.recordings.add(str(payload["recording_id"]))
        elif kind == "gdpr.export_created" and subject:
            self.counts["exports"] += 1
            self.seen(subject, when).exports += 1

    def _access(self, index: int, when: str, subject: str | None, payload: Mapping[str, Any]) -> None:
        allowed = payload.get("decision") == "allow" and bool(subject)
        view: View = "masked" if payload.get("view") == "masked" else "full"
        if payload.get("action") == _REVEAL_ACTION:
            self._extend_run(index, when, (payload.get("purpose"), tuple(payload.get("fields", ())), view),
                             subject if allowed else None)
        if not allowed or subject is None:
            self.counts["denied"] += 1
            return
        self.counts["accesses_full" if view == "full" else "accesses_masked"] += 1
        seen = self.seen(subject, when)
        seen.accesses += 1
        names = list(dict.fromkeys(str(name) for name in payload.get("fields", ())))
        if _NOTE_FIELD in names:
            seen.notes += 1
            self.counts["notes_opened"] += 1
        for name in names:
            slot = seen.fields.get((name, view))
            if slot is None:
                seen.fields[(name, view)] = [1, when, when]
            else:
                slot[0] += 1
                slot[1] = min(slot[1], when)
                slot[2] = max(slot[2], when)

    def _extend_run(self, index: int, when: str, key: tuple[Any, ...], allowed_subject: str | None) -> None:
        at = _time(when)
        run = self.run
        if run is not None and run.key == key and index == run.last_index + 1 and at - run.last_time <= BULK_GAP:
            run.entries += 1
            run.last_index, run.last_time = index, at
        else:
            self.close_run()
            run = self.run = _Run(key, index, at)
        if allowed_subject is not None:
            run.allowed.append(allowed_subject)

    def close_run(self) -> None:
        run, self.run = self.run, None
        if run is None or run.entries < 2:
            return
        self.counts["bulk_reveals"] += 1
        self.counts["bulk_revealed_entries"] += len(run.allowed)
        for token in run.allowed:
            self.subjects[token].bulk += 1

    def exposures(self) -> tuple[SubjectExposure, ...]:
        self.close_run()
        return tuple(self.subjects[token].exposure(token) for token in sorted(self.subjects))


def _entries(log: AuditLog, flt: EntryFilter, page_size: int) -> Iterable[StoredEntry]:
    cursor: str | None = None
    while True:
        page = log.query(flt, cursor=cursor, limit=page_size)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _has_debt(log: AuditLog, subject: str) -> bool:
    """Whether the log shows the subject as a debtor, guarantor or co-debtor of a debt."""
    return any(log.query(EntryFilter(subject=subject, event_type=event_type), limit=1).items
               for event_type in DEBT_EVENTS)


def _with_combinations(log: AuditLog, exposure: SubjectExposure) -> SubjectExposure:
    """The exposure with the high-risk combinations it completes (each needing the fact of a debt)."""
    obtained = {f.field for f in exposure.fields}
    found = [reason for reason, groups in HIGH_RISK_COMBINATIONS.items() if all(obtained & group for group in groups)]
    if not found or not _has_debt(log, exposure.subject):
        return exposure
    return replace(exposure, high_risk_reasons=(*exposure.high_risk_reasons, *found))


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{what} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def breach_impact(log: AuditLog, actor_id: str, since: datetime, until: datetime, *, aware_at: datetime,
                  now: datetime, page_size: int = PAGE_SIZE) -> BreachReport:
    """What ``actor_id`` obtained between ``since`` (included) and ``until`` (excluded), per subject.

    Reads the principal's entries of the window ``page_size`` at a time. ``aware_at`` is
    when the controller became aware of the breach (Art. 33(1)), ``now`` the time the
    report is for. ``InvalidInputError`` for naive times, an empty window or actor id.
    """
    since, until = _aware(since, "since"), _aware(until, "until")
    aware_at, now = _aware(aware_at, "aware_at"), _aware(now, "now")
    if not isinstance(actor_id, str) or not actor_id:
        raise InvalidInputError("name the compromised principal (its actor id)")
    if since >= until:
        raise InvalidInputError(f"the window is empty: since {format_time(since)} is not before until "
                                f"{format_time(until)}")
    if page_size < 1:
        raise InvalidInputError(f"page_size must be positive; got {page_size}")
    folder = _Folder()
    for entry in _entries(log, EntryFilter(actor=actor_id, since=since, until=until), page_size):
        folder.add(entry)
    subjects = tuple(_with_combinations(log, exposure) for exposure in folder.exposures())
    counts = folder.counts
    counts["subjects"] = len(subjects)
    counts["high_risk_subjects"] = sum(1 for s in subjects if s.high_risk)
    notify_by = breach_notification_due(aware_at).astimezone(UTC)
    return BreachReport(
        actor_id=actor_id, actor_kinds=tuple(sorted(folder.kinds)), since=since, until=until, aware_at=aware_at,
        notify_by=notify_by, now=now, hours_left=(notify_by - now).total_seconds() / 3600, overdue=now > notify_by,
        subjects=subjects, totals=BreachTotals(**counts))
