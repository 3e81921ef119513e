"""Verifying a GDPR subject export archive (``tarcza-subject-export/v1``, a ``.zip``) with a trusted key.

The format is specified in the README ("Subject archive format"). The archive Tarcza writes
holds ``data.json``, ``report.html``, ``log/`` (an audit-log export of the subject's entries),
``recordings/`` when asked for, ``manifest.json`` and ``manifest.sig``. An archive unpacked and
packed again (``zip -r``, from inside its folder or with the folder) verifies the same: order,
dates, modes, folder entries (``log/``, ``recordings/``) and one enclosing folder do not matter.

Invariants:

* no hash the archive states is trusted: every file is hashed again, and must have the size
  and SHA-256 ``manifest.json`` lists; a file not listed, or listed and absent, is refused;
* ``manifest.sig`` is the trusted key's signature over ``manifest.json``: without it the
  manifest would prove only that the files agree with one another;
* the ``log/`` part is verified as an audit export (:mod:`tarcza_verify.audit_export`) with
  the same key, events checked; every contact, recording and erasure that names a log
  index must be that entry of the log part;
* no more than ``limits`` is read: files, and bytes in all (a member may not outgrow the size
  the manifest states);
* errors name the file that disagrees (:class:`~tarcza_verify.errors.ArchiveError`), never
  a value from it (the archive holds personal data).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from tarcza_verify.archive_log import ENTRY_NAME, LogPart, read_log_part, unbacked
from tarcza_verify.audit_export import verify_audit_export
from tarcza_verify.cosignature import CosignerKey
from tarcza_verify.errors import ArchiveError, CheckpointError, VerifyError
from tarcza_verify.note import Verifier, open_note, signers_of
from tarcza_verify.unpack import DEFAULT_LIMITS, Limits

__all__ = [
    "SUBJECT_EXPORT_FORMAT",
    "ArchiveVerification",
    "FileDigest",
    "LogPart",
    "archive_key",
    "manifest_statement",
    "read_log_part",
    "unbacked",
    "verify_subject_archive",
]

SUBJECT_EXPORT_FORMAT: Final = "tarcza-subject-export/v1"
_FOLDERS: Final = frozenset({"", "log/", "recordings/"})
_UNSIGNED_FILES: Final = frozenset({"manifest.json", "manifest.sig"})
_REQUIRED_FILES: Final = ("data.json", "report.html")
_MAX_JSON: Final = 64 << 20  # data.json and manifest.json are read whole; anything larger is refused
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_CHUNK: Final = 1 << 20


def manifest_statement(sha256_hex: str) -> str:
    """What the log key signs for an archive's manifest (never a valid checkpoint body)."""
    return f"{SUBJECT_EXPORT_FORMAT}\nmanifest sha256 {sha256_hex}\n"


@dataclass(frozen=True)
class FileDigest:
    """A file's SHA-256 (hex) and size, as ``manifest.json`` lists them."""

    sha256: str
    size: int


@dataclass(frozen=True)
class ArchiveVerification:
    """What a verified archive holds."""

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
    key: str | None = None
    checkpoint_time: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as JSON, ``ok`` first."""
        return {"ok": True, **asdict(self)}


# -- reading the zip --------------------------------------------------------------------------


def _fail(file: str, detail: str) -> ArchiveError:
    return ArchiveError(detail, file=file)


def _members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The archive's files by their name in the format, folder entries and one enclosing folder set aside."""
    infos = zf.infolist()
    files = [info.filename for info in infos if not info.is_dir()]
    prefix = ""
    tops = {name.split("/", 1)[0] for name in files}
    if len(tops) == 1 and all("/" in name for name in files):
        top = tops.pop()
        if top not in ("log", "recordings") and f"{top}/manifest.json" in files:
            prefix = f"{top}/"
    out: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if not info.filename.startswith(prefix):
            raise _fail(info.filename, f"{info.filename!r}: outside the archive's one folder")
        name = info.filename[len(prefix):]
        if info.is_dir():
            if name in _FOLDERS and info.file_size == 0:
                continue  # zip -r writes an entry for each folder
            raise _fail(name, f"{name!r}: not a folder this format holds")
        if name in out:
            raise _fail(name, f"{name}: appears twice in the archive")
        if not ENTRY_NAME.fullmatch(name):
            raise _fail(name, f"{name!r}: not a file name this format holds")
        out[name] = info
    return out


def _read_json(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> tuple[Any, bytes]:
    if info.file_size > _MAX_JSON:
        raise _fail(name, f"{name}: larger than {_MAX_JSON} bytes")
    try:
        with zf.open(info) as fh:
            data = fh.read(_MAX_JSON + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _fail(name, f"{name}: cannot be read from the archive ({type(exc).__name__})") from None
    if len(data) > _MAX_JSON:
        raise _fail(name, f"{name}: larger than {_MAX_JSON} bytes")
    try:
        return json.loads(data.decode("utf-8")), data
    except ValueError as exc:
        raise _fail(name, f"{name}: cannot be read as JSON ({type(exc).__name__})") from None


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
                or not _SHA256_HEX.fullmatch(entry["sha256"]) or not isinstance(entry.get("size"), int) \
                or isinstance(entry.get("size"), bool) or entry["size"] < 0:
            raise _fail("manifest.json", f"manifest.json: the entry of {name!r} is malformed")
        out[str(name)] = FileDigest(entry["sha256"], entry["size"])
    return out


def _hash_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, expected: FileDigest,
                copy_to: Path | None) -> None:
    digest, size = hashlib.sha256(), 0
    try:
        with ExitStack() as stack:
            fh = stack.enter_context(zf.open(info))
            sink = stack.enter_context(open(copy_to, "xb")) if copy_to is not None else None
            for block in iter(lambda: fh.read(_CHUNK), b""):
                size += len(block)
                if size > expected.size:
                    raise _fail(name, f"{name}: longer than the {expected.size} bytes manifest.json states")
                digest.update(block)
                if sink is not None:
                    sink.write(block)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _fail(name, f"{name}: cannot be read from the archive ({type(exc).__name__})") from None
    got = FileDigest(digest.hexdigest(), size)
    if got != expected:
        raise _fail(name, f"{name}: changed after the archive was made: SHA-256 {got.sha256} ({got.size} bytes) "
                          f"differs from manifest.json's {expected.sha256} ({expected.size} bytes)")


def _check_signature(signature: str, manifest_bytes: bytes, key: Verifier) -> None:
    try:
        signed = open_note(signature, key)
    except CheckpointError as exc:
        try:
            by = ", ".join(signers_of(signature))
        except CheckpointError:
            by = "nobody (malformed)"
        raise _fail("manifest.sig", f"manifest.sig: not signed by the key you trust ({key.label}; signed by "
                                    f"{by}): {exc.detail}") from None
    if signed != manifest_statement(hashlib.sha256(manifest_bytes).hexdigest()):
        raise _fail("manifest.sig", "manifest.sig: does not sign this manifest.json (it was changed after signing)")


def _log_error_file(exc: VerifyError) -> str:
    named = exc.extra.get("file")
    if isinstance(named, str):
        return f"log/{named}"
    if "index" in exc.extra:
        return "log/entries.jsonl"
    head = exc.detail.split(":", 1)[0]
    return f"log/{head}" if ENTRY_NAME.fullmatch(head) else "log/"


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


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile):
        raise _fail(path.name, f"{path.name}: not a readable zip archive") from None


def archive_key(path: Path) -> tuple[str | None, Verifier | None]:
    """The origin and the key an archive's log part carries (not trusted: for pinning), each None if absent."""
    try:
        with _open_zip(path) as zf:
            members = _members(zf)
            key_info, manifest_info = members.get("log/verifier.key"), members.get("manifest.json")
            key = None
            if key_info is not None and key_info.file_size < 4096:
                key = Verifier.from_string(zf.read(key_info).decode("ascii").strip())
            origin = None
            if manifest_info is not None:
                manifest, _ = _read_json(zf, manifest_info, "manifest.json")
                log = manifest.get("log") if isinstance(manifest, dict) else None
                origin = log.get("origin") if isinstance(log, dict) else None
            return (origin if isinstance(origin, str) else key.name if key else None), key
    except (VerifyError, UnicodeDecodeError, zipfile.BadZipFile, OSError, KeyError):
        return None, None


# -- the whole check --------------------------------------------------------------------------


def verify_subject_archive(path: Path, key: Verifier | None, *, allow_unsigned: bool = False,
                           limits: Limits = DEFAULT_LIMITS, witnesses: Sequence[CosignerKey] = (),
                           min_witnesses: int | None = None) -> ArchiveVerification:
    """Verify a subject archive with ``key``; a summary, or :class:`~tarcza_verify.errors.ArchiveError`.

    ``key`` None verifies with the key the archive's log part carries, which proves only that
    the archive is consistent in itself: callers decide trust (:mod:`tarcza_verify.trust`).
    ``allow_unsigned`` accepts an archive without ``manifest.sig`` (Tarcza always signs).
    ``witnesses`` must have cosigned the log part's checkpoint (``min_witnesses`` of them; default all).
    """
    with _open_zip(path) as zf, tempfile.TemporaryDirectory(prefix="tarcza-verify-archive-") as tmp:
        members = _members(zf)
        if len(members) > limits.max_files:
            raise _fail(path.name, f"{path.name}: holds more than {limits.max_files} files")
        if "manifest.json" not in members:
            raise _fail("manifest.json", "manifest.json: missing from the archive")
        manifest, manifest_bytes = _read_json(zf, members["manifest.json"], "manifest.json")
        files = _check_manifest(manifest)
        present = [n for n in members if n not in _UNSIGNED_FILES]
        for name in sorted(set(files) - set(present)) + [n for n in _REQUIRED_FILES if n not in files]:
            raise _fail(name, f"{name}: listed in manifest.json (or required) but missing from the archive")
        for name in present:
            if name not in files:
                raise _fail(name, f"{name}: in the archive but not listed in manifest.json")
        if sum(d.size for d in files.values()) > limits.max_bytes:
            raise _fail("manifest.json", f"manifest.json: lists more than {limits.max_bytes} bytes of files")
        log_dir = Path(tmp) / "log"
        log_dir.mkdir(mode=0o700)
        log_json = manifest.get("log")
        for name in sorted(present):
            in_log = name.startswith("log/")
            if in_log and log_json is None:
                raise _fail(name, f"{name}: the manifest names no log export")
            _hash_entry(zf, members[name], name, files[name], log_dir / name[4:] if in_log else None)
        if key is None and (log_dir / "verifier.key").is_file():
            try:
                key = Verifier.from_string((log_dir / "verifier.key").read_text(encoding="ascii").strip())
            except (CheckpointError, UnicodeDecodeError):
                raise _fail("log/verifier.key", "log/verifier.key: not a verifier key") from None
        signed = "manifest.sig" in members
        if signed:
            if key is None:
                raise _fail("manifest.sig", "manifest.sig: no key to check it with (none given, no log/verifier.key)")
            try:
                signature = zf.read(members["manifest.sig"]).decode("utf-8")
            except (UnicodeDecodeError, zipfile.BadZipFile, OSError, ValueError):
                raise _fail("manifest.sig", "manifest.sig: not a UTF-8 signed note") from None
            _check_signature(signature, manifest_bytes, key)
        elif not allow_unsigned:
            raise _fail("manifest.sig", "manifest.sig: missing; an archive Tarcza makes is signed by its log key, "
                                        "and without the signature anyone could rewrite it")
        data, _ = _read_json(zf, members["data.json"], "data.json")
        if not isinstance(data, dict) or data.get("format") != SUBJECT_EXPORT_FORMAT:
            raise _fail("data.json", f"data.json: not {SUBJECT_EXPORT_FORMAT} data")
        subject = data.get("subject")
        if not isinstance(subject, dict) or subject.get("token") != manifest.get("subject") \
                or data.get("generated_at") != manifest.get("generated_at"):
            raise _fail("data.json", "data.json: subject or generated_at differ from manifest.json's")
        log = None
        checkpoint_time = None
        if log_json is not None:
            log, checkpoint_time = _verify_log_part(log_dir, log_json, key, witnesses, min_witnesses)
        try:
            problem = unbacked(data, log)
            recordings = _check_recordings(data, files)
            contacts_backed = sum(1 for c in data.get("contacts") or [] if c.get("log_index") is not None)
        except (AttributeError, TypeError, KeyError):
            raise _fail("data.json", "data.json: contacts, recordings or erasure are malformed") from None
        if problem is not None:
            raise _fail("data.json", f"data.json: {problem}")
    return ArchiveVerification(
        str(manifest.get("subject")), str(manifest.get("generated_at")), len(files), signed,
        len(log.indexes) if log else 0, log.tree_size if log else None, log.origin if log else None,
        log.root_hash if log else None, contacts_backed, recordings,
        key.to_string() if key is not None else None, checkpoint_time)


def _verify_log_part(log_dir: Path, log_json: Any, key: Verifier | None, witnesses: Sequence[CosignerKey],
                     min_witnesses: int | None) -> tuple[LogPart, int | None]:
    if key is None:
        raise _fail("log/verifier.key", "log/verifier.key: missing, and no key was given")
    try:
        result = verify_audit_export(log_dir, key, check_events=True, witnesses=witnesses,
                                     min_witnesses=min_witnesses)
    except VerifyError as exc:
        raise _fail(_log_error_file(exc), f"log/ (the audit-log export): {exc.detail}") from None
    log = read_log_part(log_dir, _fail)
    if log.manifest_json() != log_json:
        raise _fail("manifest.json", "manifest.json: its checkpoint or log indexes differ from the log export's")
    return log, result.checkpoint_time
