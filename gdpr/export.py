"""The subject export archive (GDPR Art. 15 access, Art. 20 portability): its format and its verifier.

The parts that build an archive live beside it: :mod:`gdpr.export_data` (what goes in and
``data.json``), :mod:`gdpr.legal_texts` (legal bases), :mod:`gdpr.redaction` (other people's
data in notes), :mod:`gdpr.report` (``report.html``) and :mod:`gdpr.archive` (the builder).

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
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from audit.checkpoint import Verifier, open_note
from audit.errors import CheckpointError, VerificationError
from audit.export import EXPORT_FORMAT as LOG_EXPORT_FORMAT
from audit.verify import verify_export

__all__ = [
    "SUBJECT_EXPORT_FORMAT",
    "ArchiveVerification",
    "ArchiveVerificationError",
    "FileDigest",
    "manifest_statement",
    "verify_archive",
]

SUBJECT_EXPORT_FORMAT: Final = "tarcza-subject-export/v1"

_CHUNK: Final = 1 << 20
_MAX_JSON: Final = 64 << 20  # data.json and manifest.json are read whole; anything larger is refused
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
# Every name the format may hold: flat names at the top, in log/ and in recordings/.
_ENTRY_NAME: Final = re.compile(r"(?:log/|recordings/)?[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")
_UNSIGNED_FILES: Final = frozenset({"manifest.json", "manifest.sig"})
_REQUIRED_FILES: Final = ("data.json", "report.html")


# -- errors --------------------------------------------------------------------------------------


class ArchiveVerificationError(VerificationError):
    """A subject export archive does not verify; ``file`` names the file that disagrees."""

    code = "subject-export-verification"
    title = "Subject export verification failed"

    def __init__(self, detail: str, *, file: str) -> None:
        self.file = file
        super().__init__(detail, file=file)


# -- what comes out ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size: int


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


# -- the signed statement -------------------------------------------------------------------------


def manifest_statement(sha256_hex: str) -> str:
    """What the log key signs for an archive's manifest (never a valid checkpoint body)."""
    return f"{SUBJECT_EXPORT_FORMAT}\nmanifest sha256 {sha256_hex}\n"


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
