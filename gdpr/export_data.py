"""What a subject export holds (format ``tarcza-subject-export/v1``, see :mod:`gdpr.export`) and its ``data.json``.

The GDPR service gathers an :class:`ExportContents` (through the vault's gate: the officer's
reveal); :func:`subject_data` turns it into the ``data.json`` value that :mod:`gdpr.archive`
writes and :mod:`gdpr.export` verifies. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal

from audit.events import SUBJECT_TOKEN_PATTERN, format_time
from core.errors import InvalidInputError
from gdpr.export import SUBJECT_EXPORT_FORMAT

__all__ = [
    "ErasureInfo",
    "ExportContact",
    "ExportContents",
    "ExportDebt",
    "ExportPurpose",
    "ExportRecording",
    "ExportRetention",
    "check_contents",
    "recording_name",
    "subject_data",
]

SubjectKind = Literal["debtor", "third_party"]
SubjectStatus = Literal["active", "shredded"]

_SUBJECT_TOKEN: Final = re.compile(SUBJECT_TOKEN_PATTERN)
_RECORDING_ID: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_EXTENSIONS: Final[Mapping[str, str]] = {
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav",
    "audio/ogg": "ogg", "audio/opus": "opus", "audio/flac": "flac", "audio/mp4": "m4a", "audio/aac": "aac",
    "audio/webm": "webm", "video/mp4": "mp4", "video/webm": "webm", "application/pdf": "pdf",
}


# -- what goes in --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ExportContact:
    """One contact with the subject (or a contact the firewall refused), as the log records it.

    ``note`` is already free of other people's data (see :func:`redact_third_parties`);
    ``decision`` is the firewall's (``allowed``, or ``blocked: <rule>``), ``flags`` the
    policy flags the contact carried.
    """

    log_index: int | None
    event_id: str
    event_type: str
    time: datetime
    channel: str
    direction: str | None = None
    outcome: str | None = None
    agent_id: str | None = None
    debt_id: str | None = None
    case_id: str | None = None
    note: str | None = None
    gps: str | None = None
    decision: str | None = None
    flags: tuple[str, ...] = ()
    recording_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExportRecording:
    """A recording of the subject: ``sha256`` and ``size`` are of the plaintext, as logged.

    ``open`` streams the plaintext (it is called once, only when recordings are included);
    ``log_index`` is its ``recording.stored`` entry, checked by the verifier when given.
    """

    recording_id: str
    sha256: str
    size: int
    created_at: datetime
    media_type: str | None = None
    duration_ms: int | None = None
    log_index: int | None = None
    open: Callable[[], Iterable[bytes]] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, kw_only=True)
class ExportDebt:
    """A debt of the subject; ``creditor`` is where the data came from (assignment of the receivable)."""

    id: str
    creditor: str
    assigned_on: date | None
    kind: str
    consumer: bool
    amount_minor: int
    currency: str
    due_date: date
    status: str
    time_barred_on: date | None
    judgment_date: date | None = None
    settled_on: date | None = None


@dataclass(frozen=True, kw_only=True)
class ExportPurpose:
    """A purpose of processing with its legal basis; the ``*_pl`` texts for the Polish report."""

    purpose: str
    legal_basis: str
    description: str
    legal_basis_pl: str | None = None
    description_pl: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExportRetention:
    """How long one data category is kept, and why."""

    data_category: str
    period: str
    basis: str


@dataclass(frozen=True, kw_only=True)
class ErasureInfo:
    """When the subject was erased (crypto-shredded) and the log entry that says so."""

    erased_at: datetime
    tombstone_log_index: int | None


@dataclass(frozen=True, kw_only=True)
class ExportContents:
    """Everything an export holds about one subject, gathered by the GDPR service."""

    subject: str
    subject_kind: SubjectKind
    status: SubjectStatus
    generated_at: datetime
    shredded_at: datetime | None = None
    request_id: str | None = None
    fields: Mapping[str, Sequence[str]] = field(default_factory=dict)
    contacts: Sequence[ExportContact] = ()
    recordings: Sequence[ExportRecording] = ()
    debts: Sequence[ExportDebt] = ()
    purposes: Sequence[ExportPurpose] = ()
    recipients: Sequence[str] = ()
    retention: Sequence[ExportRetention] = ()
    erasure: ErasureInfo | None = None
    recipient_register: Sequence[Mapping[str, Any]] = ()  # gdpr.recipients.for_export (Art. 19)


# -- data.json -------------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def recording_name(recording: ExportRecording) -> str:
    ext = _EXTENSIONS.get((recording.media_type or "").split(";")[0].strip().lower(), "bin")
    return f"recordings/{recording.recording_id}.{ext}"


def _included(recording: ExportRecording, include_recordings: bool) -> bool:
    return include_recordings and recording.open is not None


def subject_data(contents: ExportContents, *, log: Mapping[str, Any] | None = None,
                 include_recordings: bool = False) -> dict[str, Any]:
    """The ``data.json`` value of ``contents``; ``log`` is the manifest's ``log`` part, if any."""
    creditors: dict[str, list[str]] = {}
    for debt in contents.debts:
        creditors.setdefault(debt.creditor, []).append(debt.id)
    return {
        "format": SUBJECT_EXPORT_FORMAT,
        "generated_at": format_time(contents.generated_at),
        "request_id": contents.request_id,
        "subject": {"token": contents.subject, "kind": contents.subject_kind, "status": contents.status,
                    "shredded_at": _time(contents.shredded_at)},
        "fields": {name: list(contents.fields[name]) for name in sorted(contents.fields)},
        "sources": [{"creditor": creditor, "how": "assignment of a receivable", "debt_ids": ids}
                    for creditor, ids in creditors.items()],
        "debts": [{
            "id": d.id, "creditor": d.creditor, "assigned_on": _day(d.assigned_on), "kind": d.kind,
            "consumer": d.consumer, "amount_minor": d.amount_minor, "currency": d.currency,
            "due_date": _day(d.due_date), "judgment_date": _day(d.judgment_date), "status": d.status,
            "settled_on": _day(d.settled_on), "time_barred_on": _day(d.time_barred_on),
        } for d in contents.debts],
        "contacts": [{
            "log_index": c.log_index, "event_id": c.event_id, "event_type": c.event_type, "time": _time(c.time),
            "channel": c.channel, "direction": c.direction, "outcome": c.outcome, "agent_id": c.agent_id,
            "debt_id": c.debt_id, "case_id": c.case_id, "note": c.note, "gps": c.gps, "decision": c.decision,
            "flags": list(c.flags), "recording_id": c.recording_id,
        } for c in contents.contacts],
        "recordings": [{
            "recording_id": r.recording_id, "sha256": r.sha256, "size": r.size, "media_type": r.media_type,
            "duration_ms": r.duration_ms, "created_at": _time(r.created_at), "log_index": r.log_index,
            "file": recording_name(r) if _included(r, include_recordings) else None,
        } for r in contents.recordings],
        "purposes": [{"purpose": p.purpose, "legal_basis": p.legal_basis, "description": p.description,
                      "legal_basis_pl": p.legal_basis_pl, "description_pl": p.description_pl}
                     for p in contents.purposes],
        "recipients": list(contents.recipients),
        "retention": [{"data_category": r.data_category, "period": r.period, "basis": r.basis}
                      for r in contents.retention],
        "erasure": None if contents.erasure is None else {
            "erased_at": format_time(contents.erasure.erased_at),
            "tombstone_log_index": contents.erasure.tombstone_log_index},
        "log": None if log is None else {k: log[k] for k in ("origin", "tree_size", "root_hash")}
        | {"entries": len(log["entries"])},
        **recipient_register_data(contents),
    }


def recipient_register_data(contents: ExportContents) -> dict[str, Any]:
    """``recipient_register`` of ``data.json``: to whom the data was disclosed and which of them were told of
    a rectification, erasure or restriction (GDPR Art. 19, last sentence; Art. 15(1)(c)). Kept apart from
    :func:`subject_data`'s other parts: it comes from :func:`gdpr.recipients.for_export` as plain values."""
    return {"recipient_register": [dict(recipient) for recipient in contents.recipient_register]}


def check_contents(contents: ExportContents) -> None:
    def aware(value: datetime | None, what: str) -> None:
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise InvalidInputError(f"{what} must be a timezone-aware datetime")

    if not isinstance(contents.subject, str) or not _SUBJECT_TOKEN.fullmatch(contents.subject):
        raise InvalidInputError("subject is not a subject token")
    if contents.subject_kind not in ("debtor", "third_party") or contents.status not in ("active", "shredded"):
        raise InvalidInputError("subject_kind must be debtor or third_party, status active or shredded")
    if contents.status == "shredded" and any(contents.fields.values()):
        raise InvalidInputError("a shredded subject has no field values to export")
    aware(contents.generated_at, "generated_at")
    aware(contents.shredded_at, "shredded_at")
    for position, contact in enumerate(contents.contacts):
        aware(contact.time, f"contacts[{position}].time")
        if contact.log_index is not None and contact.log_index < 0:
            raise InvalidInputError(f"contacts[{position}].log_index is negative")
    seen: set[str] = set()
    for position, recording in enumerate(contents.recordings):
        aware(recording.created_at, f"recordings[{position}].created_at")
        if not _RECORDING_ID.fullmatch(recording.recording_id) or recording.recording_id in seen:
            raise InvalidInputError(f"recordings[{position}].recording_id is not a unique file-safe id")
        seen.add(recording.recording_id)
        if not _SHA256_HEX.fullmatch(recording.sha256) or recording.size < 0:
            raise InvalidInputError(f"recordings[{position}]: sha256 must be lower-case hex, size >= 0")
    if contents.erasure is not None:
        aware(contents.erasure.erased_at, "erasure.erased_at")
