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

* verification is the standalone verifier's (:mod:`tarcza_verify.subject_archive`, which
  auditors install): this module builds archives, and :func:`verify_archive` only calls it;
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
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import jinja2

from audit.checkpoint import Signer
from audit.errors import VerificationError
from audit.events import SUBJECT_TOKEN_PATTERN, format_time
from core.errors import InvalidInputError, TarczaError
from core.files import fsync_directory
from tarcza_verify import errors as verify_errors
from tarcza_verify.archive_log import read_log_part as _read_log_part
from tarcza_verify.archive_log import unbacked as _unbacked
from tarcza_verify.note import Verifier
from tarcza_verify.subject_archive import (
    SUBJECT_EXPORT_FORMAT,
    ArchiveVerification,
    FileDigest,
    manifest_statement,
    verify_subject_archive,
)

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
    "redact_third_parties",
    "render_report",
    "subject_data",
    "verify_archive",
]

SubjectKind = Literal["debtor", "third_party"]
SubjectStatus = Literal["active", "shredded"]

_CHUNK: Final = 1 << 20
_MAX_JSON: Final = 64 << 20  # data.json and manifest.json are read whole; anything larger is refused
_SUBJECT_TOKEN: Final = re.compile(SUBJECT_TOKEN_PATTERN)
_RECORDING_ID: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
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


# -- what comes out ------------------------------------------------------------------------------


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
    }


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
# _LogPart, _read_log_part and _unbacked are the verifier's (tarcza_verify.subject_archive): the builder
# refuses to write an archive that would not verify, with the very checks the verifier applies.


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


def verify_archive(path: Path, *, trusted_key: str | None = None,
                   require_signature: bool = False) -> ArchiveVerification:
    """Verify a subject archive offline with :func:`tarcza_verify.subject_archive.verify_subject_archive`.

    ``trusted_key`` (a verifier key string) is the key to trust; without it the archive's own
    ``log/verifier.key`` is used, which proves only that the archive is consistent in itself (the
    commands pin keys instead: ``tarcza gdpr verify-export``). An unsigned archive passes only when
    ``require_signature`` is false. Raises :class:`ArchiveVerificationError` naming the file.
    """
    try:
        key = Verifier.from_string(trusted_key.strip()) if trusted_key is not None else None
    except verify_errors.CheckpointError as exc:
        raise ArchiveVerificationError(f"the trusted key is not a verifier key: {exc.detail}", file="") from None
    try:
        return verify_subject_archive(path, key, allow_unsigned=not require_signature)
    except verify_errors.ArchiveError as exc:
        raise ArchiveVerificationError(exc.detail, file=exc.file) from None
    except verify_errors.VerifyError as exc:
        raise ArchiveVerificationError(exc.detail, file=str(exc.extra.get("file", path.name))) from None
