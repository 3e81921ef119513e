"""What the vault's services take and give back: action names, requests, results, and the checks they share.

No I/O here. The services (:mod:`vault.writing`, :mod:`vault.access`, :mod:`vault.recordings`,
:mod:`vault.shredding`) and their facade :class:`vault.service.VaultService` use these; callers
import them from :mod:`vault.service`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from core.errors import InvalidInputError, TarczaError
from vault.errors import SubjectNotFoundError
from vault.sealing import FieldValues

__all__ = [
    "ERASURE_PURPOSE",
    "MAX_BULK_REVEAL",
    "MAX_JUSTIFICATION",
    "SEARCH_LIMIT",
    "Action",
    "NewSubject",
    "RecordingInfo",
    "RevealResult",
    "ShredReport",
    "SubjectShreddedError",
    "check_justification",
    "check_purpose",
    "event_field_label",
]

SEARCH_LIMIT: Final = 100
MAX_JUSTIFICATION: Final = 2000
MAX_BULK_REVEAL: Final = 1000
ERASURE_PURPOSE: Final = "erasure"
JUSTIFICATION_FIELD: Final = "~justification"  # envelope label; never a catalogue field name
_EVENT_FIELD_PREFIX: Final = "~event:"  # envelope labels of values sealed for audit events
_PURPOSE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
_VIA = re.compile(r"[a-z][a-z0-9-]{0,63}")


class Action:
    """The action names the vault asks the authorizer about (the Cedar policies must know them)."""

    CREATE: Final = "create_subject"
    UPDATE: Final = "update_field"
    READ_MASKED: Final = "read_masked"
    REVEAL: Final = "reveal"
    SEARCH: Final = "search"
    STORE_RECORDING: Final = "store_recording"
    PLAY_RECORDING: Final = "play_recording"
    SHRED: Final = "shred"
    DETECT: Final = "contact.record"  # the note scrubber opens known values for whoever records the contact


class SubjectShreddedError(SubjectNotFoundError):
    """The subject was crypto-shredded: its data can never be read again."""

    status = 410
    code = "subject-shredded"
    title = "Subject shredded"


@dataclass(frozen=True)
class NewSubject:
    """One subject to create: its kind and field values, and the caller's idempotency key."""

    kind: str
    fields: FieldValues
    idempotency_key: str | None = None


@dataclass(frozen=True)
class RevealResult:
    """One subject's answer in a bulk reveal: its values, or the error that stands in their place."""

    subject: str
    fields: dict[str, list[str]] | None = None
    error: TarczaError | None = None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"subject": self.subject, "error": self.error.problem()}
        return {"subject": self.subject, "fields": self.fields}


@dataclass(frozen=True)
class RecordingInfo:
    recording_id: str
    subject: str
    sha256: str
    size: int
    media_type: str
    duration_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"recording_id": self.recording_id, "subject": self.subject, "sha256": self.sha256,
                "size": self.size, "media_type": self.media_type, "duration_ms": self.duration_ms}


@dataclass(frozen=True)
class ShredReport:
    subject: str
    fields: list[str] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    already_shredded: bool = False


def event_field_label(field: str) -> str:
    """The envelope label of a value of ``field`` sealed for an audit event (not a catalogue name)."""
    return f"{_EVENT_FIELD_PREFIX}{field}"


def check_purpose(purpose: str) -> None:
    if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
        raise InvalidInputError("purpose must be a policy identifier (lower-case letters, digits, _ . : -)")


def check_justification(justification: str | None) -> None:
    if justification is not None and not 0 < len(justification) <= MAX_JUSTIFICATION:
        raise InvalidInputError(f"a justification has 1 to {MAX_JUSTIFICATION} characters")


def check_via(via: str | None) -> None:
    """A component acting for a principal is named by a short identifier (``gdpr-exporter``)."""
    if via is not None and not _VIA.fullmatch(via):
        raise InvalidInputError("a component is named by lower-case letters, digits and -")
