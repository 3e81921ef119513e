"""Building a subject export archive (format ``tarcza-subject-export/v1``, see :mod:`gdpr.export`).

The builder writes a temporary file next to the destination and renames it into place: a
reader never sees half an archive; the archive is created 0600. What it writes must verify
with :func:`gdpr.export.verify_archive`: every log index ``data.json`` names is checked
against the log part before anything is written (:class:`ExportBuildError` otherwise).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from audit.checkpoint import Signer
from core.errors import InvalidInputError, TarczaError
from core.files import fsync_directory
from gdpr.export_data import ExportContents, check_contents, recording_name, subject_data
from gdpr.report import render_report
from tarcza_verify.archive_log import read_log_part, unbacked
from tarcza_verify.subject_archive import SUBJECT_EXPORT_FORMAT, FileDigest, manifest_statement

__all__ = ["ArchiveSummary", "ExportBuildError", "build_archive"]

_CHUNK: Final = 1 << 20
_ZIP_MODE: Final = (stat.S_IFREG | 0o600) << 16
_UNIX: Final = 3
_ZIP64_ABOVE: Final = 1 << 31


class ExportBuildError(TarczaError):
    """The archive cannot be built as asked: what it would hold would not verify."""

    status = 500
    code = "subject-export-build"
    title = "Subject export cannot be built"


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
    check_contents(contents)
    log = read_log_part(log_dir, _build_fail) if log_dir is not None else None
    data = subject_data(contents, log=log.manifest_json() if log is not None else None,
                        include_recordings=include_recordings)
    problem = unbacked(data, log)
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
                    got = writer.add(recording_name(recording), _stream(opener), compress=zipfile.ZIP_STORED,
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
