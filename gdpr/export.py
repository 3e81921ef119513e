"""The subject export archive (GDPR Art. 15 access, Art. 20 portability): format, builder, verifier.

Format ``tarcza-subject-export/v1``: one zip whose entries come in this order, each dated
``generated_at`` (UTC) with mode 0600, so that equal contents give equal bytes:

* ``data.json``: everything held about the subject, machine-readable (Art. 20): the vault
  fields in clear, where the data came from (the creditor, by assignment of the
  receivable), the debts, the contact history, the recordings, the purposes with their
  legal bases, the recipients, the retention periods, the erasure if any. Dates are
  ISO 8601 (``YYYY-MM-DD``), times RFC 3339 UTC with microseconds (as in the audit log);
* ``report.html``: the same for a person to read, in Polish and in English (one section
  each, marked with ``lang``), plain HTML with embedded CSS, no script, no external resource;
* ``log/``: an audit-log export (:mod:`audit.export`, ``tarcza-audit-export/v1``) of the
  subject's entries, with the proofs that lead to a signed checkpoint, so that the
  contact history and every access and GDPR action about the subject can be checked
  against the log;
* ``recordings/<recording_id>.<ext>``: the recordings in clear, when asked for;
* ``manifest.json``: the format, the subject token, ``generated_at``, the SHA-256 (hex) and
  size of every other file, and the covering checkpoint (its signed note, origin, tree
  size, root hash) with the log indexes the export holds;
* ``manifest.sig`` (when built with the log's signer): a signed note by the log key over
  ``tarcza-subject-export/v1\\nmanifest sha256 <hex>\\n``.

Invariants:

* the verifier trusts no hash the archive states: every file is hashed again; the log
  part is verified by :func:`audit.verify.verify_export`; every contact, recording and
  erasure tombstone that names a log index must be that entry of the exported log;
* without ``manifest.sig`` (or without a trusted key), the manifest only proves that the
  files agree with one another: anyone can rewrite ``data.json`` and the manifest together.
  The log part is signed whatever happens;
* the builder writes a temporary file next to the destination and renames it into place:
  a reader never sees half an archive; the archive is created 0600;
* no error message holds personal data: files are named, values are not.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import jinja2

from audit.checkpoint import Signer, Verifier, open_note
from audit.errors import CheckpointError, VerificationError
from audit.events import SUBJECT_TOKEN_PATTERN, format_time
from audit.export import EXPORT_FORMAT as LOG_EXPORT_FORMAT
from audit.verify import verify_export
from core.errors import InvalidInputError, TarczaError
from core.files import fsync_directory

if TYPE_CHECKING:
    from vault.detect import PiiDetector

__all__ = [
    "LEGAL_BASES",
    "SUBJECT_EXPORT_FORMAT",
    "ArchiveSummary",
    "ArchiveVerification",
    "ArchiveVerificationError",
    "ErasureInfo",
    "ExportBuildError",
    "ExportContact",
    "ExportContents",
    "ExportDebt",
    "ExportPurpose",
    "ExportRecording",
    "ExportRetention",
    "FileDigest",
    "LegalBasis",
    "build_archive",
    "manifest_statement",
    "purposes_from_policy",
    "recipient_register_data",
    "redact_third_parties",
    "render_report",
    "subject_data",
    "verify_archive",
]

SUBJECT_EXPORT_FORMAT: Final = "tarcza-subject-export/v1"
SubjectKind = Literal["debtor", "third_party"]
SubjectStatus = Literal["active", "shredded"]

_CHUNK: Final = 1 << 20
_MAX_JSON: Final = 64 << 20  # data.json and manifest.json are read whole; anything larger is refused
_SUBJECT_TOKEN: Final = re.compile(SUBJECT_TOKEN_PATTERN)
_RECORDING_ID: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
# Every name the format may hold: flat names at the top, in log/ and in recordings/.
_ENTRY_NAME: Final = re.compile(r"(?:log/|recordings/)?[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")
_UNSIGNED_FILES: Final = frozenset({"manifest.json", "manifest.sig"})
_REQUIRED_FILES: Final = ("data.json", "report.html")
_ZIP_MODE: Final = (stat.S_IFREG | 0o600) << 16
_UNIX: Final = 3
_ZIP64_ABOVE: Final = 1 << 31
_EXTENSIONS: Final[Mapping[str, str]] = {
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav",
    "audio/ogg": "ogg", "audio/opus": "opus", "audio/flac": "flac", "audio/mp4": "m4a", "audio/aac": "aac",
    "audio/webm": "webm", "video/mp4": "mp4", "video/webm": "webm", "application/pdf": "pdf",
}


# -- errors --------------------------------------------------------------------------------------


class ExportBuildError(TarczaError):
    """The archive cannot be built as asked: what it would hold would not verify."""

    status = 500
    code = "subject-export-build"
    title = "Subject export cannot be built"


class ArchiveVerificationError(VerificationError):
    """A subject export archive does not verify; ``file`` names the file that disagrees."""

    code = "subject-export-verification"
    title = "Subject export verification failed"

    def __init__(self, detail: str, *, file: str) -> None:
        self.file = file
        super().__init__(detail, file=file)


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


# -- what comes out ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size: int


@dataclass(frozen=True)
class ArchiveSummary:
    path: str
    sha256: str
    size: int
    files: Mapping[str, FileDigest]
    log_entries: tuple[int, ...]
    tree_size: int | None
    signed: bool

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size,
                "files": {name: asdict(d) for name, d in self.files.items()},
                "log_entries": list(self.log_entries), "tree_size": self.tree_size, "signed": self.signed}


@dataclass(frozen=True)
class ArchiveVerification:
    subject: str
    generated_at: str
    files: int
    signed: bool
    log_entries: int
    tree_size: int | None
    origin: str | None
    root_hash: str | None
    contacts_backed: int
    recordings: int

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, **asdict(self)}


# -- purposes and legal bases ----------------------------------------------------------------------


@dataclass(frozen=True)
class LegalBasis:
    """The legal basis of a purpose, cited in English and in Polish, and the purpose in Polish."""

    en: str
    pl: str
    purpose_pl: str


#: Purpose (policies/authorisation.yaml) -> legal basis. GDPR = RODO (Regulation (EU) 2016/679).
LEGAL_BASES: Final[Mapping[str, LegalBasis]] = {
    "debt_collection": LegalBasis(
        "GDPR Art. 6(1)(f): the legitimate interest of the creditor and of the assignee of the receivable in "
        "recovering it; Art. 6(1)(b) where we are a party to a contract with you; Art. 6(1)(c) where a law "
        "requires the processing",
        "art. 6 ust. 1 lit. f RODO: prawnie uzasadniony interes wierzyciela i nabywcy wierzytelności w jej "
        "dochodzeniu; art. 6 ust. 1 lit. b RODO, gdy jesteśmy stroną umowy z Panią/Panem; art. 6 ust. 1 lit. c "
        "RODO, gdy przetwarzanie nakazuje przepis prawa",
        "dochodzenie należności od Pani/Pana (rozmowy, listy, wiadomości)"),
    "field_visit": LegalBasis(
        "GDPR Art. 6(1)(f): the legitimate interest of the creditor and of the assignee in recovering the "
        "receivable, including by a visit",
        "art. 6 ust. 1 lit. f RODO: prawnie uzasadniony interes wierzyciela i nabywcy wierzytelności w jej "
        "dochodzeniu, także podczas wizyty",
        "wizyta terenowa u Pani/Pana"),
    "payment_processing": LegalBasis(
        "GDPR Art. 6(1)(b) and (f): settling the debt; Art. 6(1)(c): accounting and tax obligations "
        "(Accounting Act of 29 September 1994)",
        "art. 6 ust. 1 lit. b i f RODO: rozliczenie należności; art. 6 ust. 1 lit. c RODO: obowiązki "
        "rachunkowe i podatkowe (ustawa z dnia 29 września 1994 r. o rachunkowości)",
        "rozliczanie i księgowanie Pani/Pana wpłat"),
    "complaint_handling": LegalBasis(
        "GDPR Art. 6(1)(c): the duty to answer a complaint; Art. 6(1)(f): the legitimate interest in "
        "resolving it",
        "art. 6 ust. 1 lit. c RODO: obowiązek rozpatrzenia reklamacji; art. 6 ust. 1 lit. f RODO: prawnie "
        "uzasadniony interes w jej wyjaśnieniu",
        "rozpatrzenie Pani/Pana reklamacji"),
    "gdpr_request": LegalBasis(
        "GDPR Art. 6(1)(c) with Arts. 12 to 22: the controller's duty to answer data subject requests",
        "art. 6 ust. 1 lit. c RODO w związku z art. 12–22 RODO: obowiązek odpowiedzi na żądania osoby, "
        "której dane dotyczą",
        "odpowiedź na Pani/Pana żądanie dotyczące danych osobowych"),
    "erasure": LegalBasis(
        "GDPR Art. 6(1)(c) with Art. 17: the duty to erase data on request or when it is no longer needed",
        "art. 6 ust. 1 lit. c RODO w związku z art. 17 RODO: obowiązek usunięcia danych na żądanie lub gdy nie "
        "są już potrzebne",
        "usunięcie Pani/Pana danych (art. 17 RODO)"),
    "legal_claim": LegalBasis(
        "GDPR Art. 6(1)(f), and Art. 9(2)(f) for special categories of data: establishing, exercising or "
        "defending legal claims (see also Arts. 17(3)(e) and 18(2))",
        "art. 6 ust. 1 lit. f RODO oraz art. 9 ust. 2 lit. f RODO dla szczególnych kategorii danych: ustalenie, "
        "dochodzenie lub obrona roszczeń (zob. też art. 17 ust. 3 lit. e i art. 18 ust. 2 RODO)",
        "ustalenie, dochodzenie lub obrona roszczeń"),
    "audit": LegalBasis(
        "GDPR Art. 6(1)(c) with Arts. 5(2), 24 and 58: accountability, and inspections by the supervisory "
        "authority",
        "art. 6 ust. 1 lit. c RODO w związku z art. 5 ust. 2, art. 24 i art. 58 RODO: rozliczalność oraz "
        "kontrole organu nadzorczego",
        "audyt zgodności lub kontrola organu nadzorczego"),
}


def purposes_from_policy(descriptions: Mapping[str, str]) -> tuple[ExportPurpose, ...]:
    """The purposes of ``policies/authorisation.yaml`` (name -> description) with their legal bases.

    A purpose without an entry in :data:`LEGAL_BASES` is refused: an export must state a basis.
    """
    out: list[ExportPurpose] = []
    for purpose, description in descriptions.items():
        basis = LEGAL_BASES.get(purpose)
        if basis is None:
            raise InvalidInputError(f"no legal basis is defined for purpose {purpose!r}", purpose=purpose)
        out.append(ExportPurpose(purpose=purpose, legal_basis=basis.en, description=description,
                                 legal_basis_pl=basis.pl, description_pl=basis.purpose_pl))
    return tuple(out)


# -- notes: the subject's own data, not other people's -------------------------------------------

# Detector entity type -> validator kind (vault/validators.py) of the identifiers compared canonically.
_ENTITY_KINDS: Final[Mapping[str, str]] = {
    "PESEL": "pesel", "NIP": "nip", "REGON": "regon", "ID_CARD": "id_card", "PASSPORT": "passport",
    "IBAN": "iban", "PHONE": "phone", "EMAIL": "email",
}


def redact_third_parties(note: str, own_values: Mapping[str, Sequence[str]], detector: PiiDetector, *,
                         field_kinds: Mapping[str, str] | None = None) -> str:
    """``note`` with the personal data that is not the subject's own replaced by ``[redacted: <TYPE>]``.

    ``own_values`` are the subject's vault fields (name -> values). A finding of the
    known-value recognizer (a name, the street...) is the subject's own; an identifier
    (PESEL, phone, e-mail, IBAN...) is when its canonical form equals the canonical form of
    one of the subject's values of that kind. ``field_kinds`` maps a field to its validator
    kind where the two differ (by default a field's name is its kind: ``pesel``, ``phone``...).
    Names of third parties are not found (no NER): only identifiers and the subject's values are.
    """
    from vault.detect import FIELD_ENTITIES, IGNORED_FIELDS
    from vault.validators import canonical_or_none

    known = {name: list(values) for name, values in own_values.items()
             if name in FIELD_ENTITIES or name in IGNORED_FIELDS}
    kinds = field_kinds or {}
    own: dict[str, set[str]] = {}
    for name, values in own_values.items():
        kind = kinds.get(name, name)
        for entity, entity_kind in _ENTITY_KINDS.items():
            if entity_kind != kind:
                continue
            canon = {c for c in (canonical_or_none(kind, v) for v in values) if c is not None}
            own.setdefault(entity, set()).update(canon)
    parts: list[str] = []
    position = 0
    for finding in detector.detect(note, known):
        if finding.field is not None or finding.canonical in own.get(finding.entity_type, ()):
            continue
        parts += [note[position:finding.start], f"[redacted: {finding.entity_type}]"]
        position = finding.end
    parts.append(note[position:])
    return "".join(parts)


# -- data.json -------------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _recording_name(recording: ExportRecording) -> str:
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
            "file": _recording_name(r) if _included(r, include_recordings) else None,
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


def _check_contents(contents: ExportContents) -> None:
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


# -- the log part ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LogPart:
    names: tuple[str, ...]
    origin: str
    tree_size: int
    root_hash: str
    checkpoint: str
    indexes: tuple[int, ...]
    entries: Mapping[int, Mapping[str, Any]]

    def manifest_json(self) -> dict[str, Any]:
        return {"origin": self.origin, "tree_size": self.tree_size, "root_hash": self.root_hash,
                "checkpoint": self.checkpoint, "entries": list(self.indexes)}


Fail = Callable[[str, str], Exception]  # (file, detail) -> the error to raise


def _read_log_part(directory: Path, fail: Fail) -> _LogPart:
    """Read an audit-log export directory (its format and files; not its proofs: see verify_export)."""
    try:
        manifest = json.loads((directory / "manifest.json").read_bytes())
        if not isinstance(manifest, dict) or manifest.get("format") != LOG_EXPORT_FORMAT:
            raise fail("log/manifest.json", f"log/manifest.json: not a {LOG_EXPORT_FORMAT} manifest")
        expected = {*manifest["files"], "manifest.json", "manifest.sig"}
        present = {p.name for p in directory.iterdir()}
        for path in sorted(directory.iterdir()):
            if not path.is_file() or path.is_symlink() or not _ENTRY_NAME.fullmatch(path.name):
                raise fail(f"log/{path.name}", f"log/{path.name}: not a plain file of an audit export")
        if present != expected:
            odd = sorted(present ^ expected)
            raise fail(f"log/{odd[0]}", f"log/: files {odd} missing or unexpected in the audit export")
        lines = (directory / "entries.jsonl").read_bytes().split(b"\n")[:-1]
        if manifest["layout"] == "range":
            indexes = tuple(range(int(manifest["start"]), int(manifest["end"])))
        else:
            indexes = tuple(int(json.loads(line)["index"])
                            for line in (directory / "proofs.jsonl").read_bytes().split(b"\n")[:-1])
        if len(indexes) != len(lines):
            raise fail("log/entries.jsonl", "log/entries.jsonl: entry and index counts differ")
        entries = {index: json.loads(line) for index, line in zip(indexes, lines, strict=True)}
        return _LogPart(tuple(sorted(present)), str(manifest["origin"]), int(manifest["tree_size"]),
                        str(manifest["root_hash"]), (directory / "checkpoint.txt").read_text(encoding="utf-8"),
                        indexes, entries)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise fail("log/", f"log/: not a readable audit export ({type(exc).__name__})") from None


def _unbacked(data: Mapping[str, Any], log: _LogPart | None) -> str | None:
    """The first claim of ``data`` that names a log entry the log part does not back, or None."""
    entries = log.entries if log is not None else {}
    for position, contact in enumerate(data.get("contacts") or []):
        index = contact.get("log_index")
        if index is None:
            continue
        entry = entries.get(index)
        if entry is None:
            return f"contacts[{position}]: log entry {index} is not in the log export"
        if (entry.get("id"), entry.get("type")) != (contact.get("event_id"), contact.get("event_type")):
            return f"contacts[{position}]: log entry {index} is another event than the contact states"
    for position, recording in enumerate(data.get("recordings") or []):
        index = recording.get("log_index")
        if index is None:
            continue
        entry = entries.get(index)
        payload = entry.get("payload") if entry is not None else None
        if entry is None or not isinstance(payload, dict):
            return f"recordings[{position}]: log entry {index} is not in the log export"
        if (entry.get("type"), payload.get("recording_id"), payload.get("sha256"), payload.get("size")) != (
                "recording.stored", recording.get("recording_id"), recording.get("sha256"), recording.get("size")):
            return f"recordings[{position}]: log entry {index} does not record this recording"
    erasure = data.get("erasure")
    index = erasure.get("tombstone_log_index") if isinstance(erasure, dict) else None
    if index is not None and index not in entries:
        return f"erasure: log entry {index} is not in the log export"
    return None


# -- report.html ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _when(text: str | None) -> str:
    if text is None:
        return "—"
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _money(minor: int, currency: str, lang: str) -> str:
    major, cents = divmod(abs(minor), 100)
    sign = "-" if minor < 0 else ""
    if lang == "pl":
        grouped = f"{major:,}".replace(",", "\u00a0")
        return f"{sign}{grouped},{cents:02d} {currency}"
    return f"{sign}{major:,}.{cents:02d} {currency}"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    minutes, seconds = divmod(ms // 1000, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def render_report(data: Mapping[str, Any]) -> str:
    """``report.html`` for a ``data.json`` value: Polish and English, escaped, no script."""
    return _templates().get_template("report.html").render(
        data=data, languages=("pl", "en"), when=_when, money=_money, duration=_duration)


# -- building --------------------------------------------------------------------------------------


def manifest_statement(sha256_hex: str) -> str:
    """What the log key signs for an archive's manifest (never a valid checkpoint body)."""
    return f"{SUBJECT_EXPORT_FORMAT}\nmanifest sha256 {sha256_hex}\n"


class _ZipWriter:
    """Adds entries in order, each dated ``when`` and 0600, hashing what it writes."""

    def __init__(self, zf: zipfile.ZipFile, when: datetime) -> None:
        utc = when.astimezone(UTC)
        self._zf = zf
        self._date_time = max((utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second),
                              (1980, 1, 1, 0, 0, 0))
        self.files: dict[str, FileDigest] = {}

    def _info(self, name: str, compress: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._date_time)
        info.compress_type = compress
        info.create_system = _UNIX
        info.external_attr = _ZIP_MODE
        return info

    def add(self, name: str, chunks: Iterable[bytes], *, compress: int = zipfile.ZIP_DEFLATED,
            large: bool = False, listed: bool = True) -> FileDigest:
        digest, size = hashlib.sha256(), 0
        with self._zf.open(self._info(name, compress), "w", force_zip64=large) as fh:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                fh.write(chunk)
        result = FileDigest(digest.hexdigest(), size)
        if listed:
            self.files[name] = result
        return result


def _file_chunks(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as fh:
        yield from iter(lambda: fh.read(_CHUNK), b"")


def _stream(opener: Callable[[], Iterable[bytes]]) -> Iterable[bytes]:
    chunks = opener()
    try:
        yield from chunks
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()


def _build_fail(file: str, detail: str) -> Exception:
    return InvalidInputError(f"log_dir is not a usable audit export: {detail}", file=file)


def build_archive(contents: ExportContents, log_dir: Path | None, out: Path, *, include_recordings: bool = False,
                  signer: Signer | None = None) -> ArchiveSummary:
    """Write the subject export archive to ``out`` (0600, renamed into place) and summarise it.

    ``log_dir`` is an :func:`audit.export.export_log` directory of the subject's entries; it
    is required when a contact, recording or erasure names a log index, each of which must
    be in it. ``signer`` (the log's) signs the manifest. A recording is included when
    ``include_recordings`` and it has an ``open``; its bytes must match its logged SHA-256
    and size, or nothing is written (:class:`ExportBuildError`).
    """
    _check_contents(contents)
    log = _read_log_part(log_dir, _build_fail) if log_dir is not None else None
    data = subject_data(contents, log=log.manifest_json() if log is not None else None,
                        include_recordings=include_recordings)
    problem = _unbacked(data, log)
    if problem is not None:
        raise ExportBuildError(f"the archive would not verify: {problem}")
    data_bytes = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    report_bytes = render_report(data).encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as fh:
            os.fchmod(fh.fileno(), 0o600)
            with zipfile.ZipFile(fh, "w") as zf:
                writer = _ZipWriter(zf, contents.generated_at)
                writer.add("data.json", [data_bytes])
                writer.add("report.html", [report_bytes])
                if log is not None and log_dir is not None:
                    for name in log.names:
                        writer.add(f"log/{name}", _file_chunks(log_dir / name))
                for recording in contents.recordings:
                    opener = recording.open
                    if not include_recordings or opener is None:
                        continue
                    got = writer.add(_recording_name(recording), _stream(opener), compress=zipfile.ZIP_STORED,
                                     large=recording.size >= _ZIP64_ABOVE)
                    if got != FileDigest(recording.sha256, recording.size):
                        raise ExportBuildError(
                            f"recording {recording.recording_id}: streamed {got.size} bytes with SHA-256 "
                            f"{got.sha256}, the log says {recording.size} bytes, {recording.sha256}",
                            recording_id=recording.recording_id)
                manifest = {
                    "format": SUBJECT_EXPORT_FORMAT, "hash_alg": "sha256", "subject": contents.subject,
                    "generated_at": data["generated_at"], "request_id": contents.request_id,
                    "files": {name: asdict(d) for name, d in writer.files.items()},
                    "log": log.manifest_json() if log is not None else None,
                }
                manifest_bytes = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")
                files = dict(writer.files)
                writer.add("manifest.json", [manifest_bytes], listed=False)
                if signer is not None:
                    statement = manifest_statement(hashlib.sha256(manifest_bytes).hexdigest())
                    writer.add("manifest.sig", [signer.sign_note(statement).encode("utf-8")], listed=False)
            fh.flush()
            os.fsync(fh.fileno())
        digest, size = hashlib.sha256(), 0
        for chunk in _file_chunks(tmp):
            digest.update(chunk)
            size += len(chunk)
        tmp.replace(out)
        fsync_directory(out.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ArchiveSummary(str(out), digest.hexdigest(), size, files, log.indexes if log is not None else (),
                          log.tree_size if log is not None else None, signer is not None)


# -- verifying -------------------------------------------------------------------------------------


def _fail(file: str, detail: str) -> ArchiveVerificationError:
    return ArchiveVerificationError(detail, file=file)


def _read_json(zf: zipfile.ZipFile, name: str) -> Any:
    if zf.getinfo(name).file_size > _MAX_JSON:
        raise _fail(name, f"{name}: larger than {_MAX_JSON} bytes")
    try:
        return json.loads(zf.read(name).decode("utf-8"))
    except (ValueError, zipfile.BadZipFile) as exc:
        raise _fail(name, f"{name}: cannot be read as JSON ({type(exc).__name__})") from None


def _check_names(zf: zipfile.ZipFile) -> list[str]:
    names = [info.filename for info in zf.infolist()]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _fail(name, f"{name}: appears twice in the archive")
        seen.add(name)
        if not _ENTRY_NAME.fullmatch(name):
            raise _fail(name, f"{name!r}: not a file name this format holds")
    return names


def _check_manifest(manifest: Any) -> dict[str, FileDigest]:
    if not isinstance(manifest, dict) or (manifest.get("format"), manifest.get("hash_alg")) != (
            SUBJECT_EXPORT_FORMAT, "sha256"):
        raise _fail("manifest.json", f"manifest.json: not a {SUBJECT_EXPORT_FORMAT} manifest with sha256")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise _fail("manifest.json", "manifest.json: no list of files")
    out: dict[str, FileDigest] = {}
    for name, entry in files.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) \
                or not _SHA256_HEX.fullmatch(entry["sha256"]) or not isinstance(entry.get("size"), int):
            raise _fail("manifest.json", f"manifest.json: the entry of {name!r} is malformed")
        out[str(name)] = FileDigest(entry["sha256"], entry["size"])
    return out


def _hash_entry(zf: zipfile.ZipFile, name: str, expected: FileDigest, copy_to: Path | None) -> None:
    digest, size = hashlib.sha256(), 0
    try:
        with ExitStack() as stack:
            fh = stack.enter_context(zf.open(name))
            sink = stack.enter_context(open(copy_to, "xb")) if copy_to is not None else None
            for block in iter(lambda: fh.read(_CHUNK), b""):
                size += len(block)
                if size > expected.size:
                    raise _fail(name, f"{name}: longer than the {expected.size} bytes manifest.json states")
                digest.update(block)
                if sink is not None:
                    sink.write(block)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _fail(name, f"{name}: cannot be read from the archive ({type(exc).__name__})") from None
    got = FileDigest(digest.hexdigest(), size)
    if got != expected:
        raise _fail(name, f"{name}: SHA-256 {got.sha256} ({got.size} bytes) differs from manifest.json's "
                          f"{expected.sha256} ({expected.size} bytes)")


def _check_signature(zf: zipfile.ZipFile, manifest_bytes: bytes, log_dir: Path, trusted_key: str | None) -> None:
    key = trusted_key
    if key is None and (log_dir / "verifier.key").is_file():
        key = (log_dir / "verifier.key").read_text(encoding="ascii")
    if key is None:
        raise _fail("manifest.sig", "manifest.sig: no key to check it with (no trusted key, no log/verifier.key)")
    try:
        verifier = Verifier.from_string(key.strip())
        signed = open_note(zf.read("manifest.sig").decode("utf-8"), verifier)
    except (CheckpointError, UnicodeDecodeError) as exc:
        raise _fail("manifest.sig", f"manifest.sig: {getattr(exc, 'detail', 'not UTF-8')}") from None
    if signed != manifest_statement(hashlib.sha256(manifest_bytes).hexdigest()):
        raise _fail("manifest.sig", "manifest.sig: does not sign this manifest.json")


def _log_error_file(exc: VerificationError) -> str:
    named = exc.extra.get("file")
    if isinstance(named, str):
        return f"log/{named}"
    if "index" in exc.extra:
        return "log/entries.jsonl"
    head = exc.detail.split(":", 1)[0]
    return f"log/{head}" if _ENTRY_NAME.fullmatch(head) else "log/"


def verify_archive(path: Path, *, trusted_key: str | None = None,
                   require_signature: bool = False) -> ArchiveVerification:
    """Verify a subject export archive offline; return a summary or raise :class:`ArchiveVerificationError`.

    Checks every file against ``manifest.json`` (none missing, none extra, same SHA-256 and
    size), ``manifest.sig`` when present (or required), the ``log/`` part with
    :func:`audit.verify.verify_export` (against ``trusted_key`` when given) and against the
    manifest's checkpoint, and that every log index ``data.json`` names is that entry of the log.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile):
        raise _fail(path.name, f"{path.name}: not a readable zip archive") from None
    with zf, tempfile.TemporaryDirectory(prefix="tarcza-subject-export-") as tmp:
        names = _check_names(zf)
        if "manifest.json" not in names:
            raise _fail("manifest.json", "manifest.json: missing from the archive")
        manifest_bytes = zf.read("manifest.json")
        manifest = _read_json(zf, "manifest.json")
        files = _check_manifest(manifest)
        present = [n for n in names if n not in _UNSIGNED_FILES]
        for name in sorted(set(files) - set(present)) + [n for n in _REQUIRED_FILES if n not in files]:
            raise _fail(name, f"{name}: listed in manifest.json (or required) but missing from the archive")
        for name in present:
            if name not in files:
                raise _fail(name, f"{name}: in the archive but not listed in manifest.json")
        log_dir = Path(tmp) / "log"
        log_dir.mkdir(mode=0o700)
        log_json = manifest.get("log")
        for name in present:
            in_log = name.startswith("log/")
            if in_log and log_json is None:
                raise _fail(name, f"{name}: the manifest names no log export")
            _hash_entry(zf, name, files[name], log_dir / name[4:] if in_log else None)
        signed = "manifest.sig" in names
        if signed:
            _check_signature(zf, manifest_bytes, log_dir, trusted_key)
        elif require_signature:
            raise _fail("manifest.sig", "manifest.sig: missing, and a signed archive was required")
        data = _read_json(zf, "data.json")
        if not isinstance(data, dict) or data.get("format") != SUBJECT_EXPORT_FORMAT:
            raise _fail("data.json", f"data.json: not {SUBJECT_EXPORT_FORMAT} data")
        subject = data.get("subject")
        if not isinstance(subject, dict) or subject.get("token") != manifest.get("subject") \
                or data.get("generated_at") != manifest.get("generated_at"):
            raise _fail("data.json", "data.json: subject or generated_at differ from manifest.json's")
        log = _verify_log_part(log_dir, log_json, trusted_key) if log_json is not None else None
        try:
            problem = _unbacked(data, log)
            recordings = _check_recordings(data, files)
        except (AttributeError, TypeError, KeyError):
            raise _fail("data.json", "data.json: contacts, recordings or erasure are malformed") from None
        if problem is not None:
            raise _fail("data.json", f"data.json: {problem}")
    contacts_backed = sum(1 for c in data.get("contacts") or [] if c.get("log_index") is not None)
    return ArchiveVerification(
        str(manifest.get("subject")), str(manifest.get("generated_at")), len(files), signed,
        len(log.indexes) if log else 0, log.tree_size if log else None, log.origin if log else None,
        log.root_hash if log else None, contacts_backed, recordings)


def _verify_log_part(log_dir: Path, log_json: Any, trusted_key: str | None) -> _LogPart:
    try:
        verify_export(log_dir, trusted_key=trusted_key, check_events=True)
    except VerificationError as exc:
        raise _fail(_log_error_file(exc), f"log/ (the audit-log export): {exc.detail}") from None
    log = _read_log_part(log_dir, _fail)
    if log.manifest_json() != log_json:
        raise _fail("manifest.json", "manifest.json: its checkpoint or log indexes differ from the log export's")
    return log


def _check_recordings(data: Mapping[str, Any], files: Mapping[str, FileDigest]) -> int:
    named: set[str] = set()
    for position, recording in enumerate(data.get("recordings") or []):
        name = recording.get("file")
        if name is None:
            continue
        if name not in files or files[name] != FileDigest(recording.get("sha256"), recording.get("size")):
            raise _fail(str(name), f"{name}: not in the archive with the SHA-256 and size recordings[{position}] "
                                   "states")
        named.add(name)
    for name in files:
        if name.startswith("recordings/") and name not in named:
            raise _fail(name, f"{name}: in the archive but no recording of data.json names it")
    return len(named)
