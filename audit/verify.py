"""Verification of audit exports inside Tarcza: the standalone verifier's, with the server's own trust.

The checks themselves are :mod:`tarcza_verify`'s (the package auditors install), so the server
and auditors run one copy of them (ADR 0019). This module adds what only the server has:

- :func:`verify_upload`: an uploaded ``.tar.gz`` is unpacked within limits (files, bytes, and a
  ratio to the upload's size, so a decompression bomb is refused before it is written), then
  verified with *this server's* log key, never the key inside the upload, and its checkpoint
  must be this log's tree at that size, consistent with the server's newest checkpoint;
- :func:`verify_export`: verification of an export directory for tests and benchmarks, with a
  key given, or the export's own (which proves only that the export is consistent in itself).

Both take witness keys (ADR 0021): the checkpoint must then carry valid C2SP cosignatures by
enough of them; cosignatures by other keys do not count.

Every verifier error becomes the :mod:`audit.errors` error that says the same.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from audit import merkle
from audit.errors import LogForkError, VerificationError, from_verifier
from audit.service import AuditLog
from tarcza_verify import errors as verify_errors
from tarcza_verify.audit_export import AuditExportResult, read_export_key, verify_audit_export
from tarcza_verify.cosignature import CosignerKey
from tarcza_verify.note import Verifier, b64encode
from tarcza_verify.run import export_directory
from tarcza_verify.unpack import Limits, unpack_tar_gz

__all__ = ["UploadLimits", "verify_export", "verify_upload"]

Progress = Callable[[int, int], None]


@contextmanager
def _as_audit_errors() -> Iterator[None]:
    try:
        yield
    except verify_errors.VerifyError as exc:
        raise from_verifier(exc) from None


def verify_export(directory: Path, *, trusted_key: str | Verifier | None = None,
                  trusted_checkpoint: str | None = None, check_events: bool = False,
                  progress: Progress | None = None, witnesses: Sequence[CosignerKey] = (),
                  min_witnesses: int | None = None) -> AuditExportResult:
    """Verify an export directory with ``trusted_key`` (a key string or verifier), or with the key it carries.

    Without a key this proves only that the export is consistent in itself; the commands never
    verify so (they pin keys: :mod:`tarcza_verify.trust`), and the server uses its own key.
    """
    with _as_audit_errors():
        if isinstance(trusted_key, str):
            key: Verifier | None = Verifier.from_string(trusted_key.strip())
        else:
            key = trusted_key if trusted_key is not None else read_export_key(directory)
        if key is None:
            raise verify_errors.ExportFormatError("verifier.key: missing or not a verifier key", file="verifier.key")
        return verify_audit_export(directory, key, trusted_checkpoint=trusted_checkpoint, check_events=check_events,
                                   progress=progress, witnesses=witnesses, min_witnesses=min_witnesses)


@dataclass(frozen=True)
class UploadLimits:
    """How much an uploaded export may unpack to.

    ``max_ratio`` bounds the unpacked bytes by the upload's size (``max_ratio`` times it, but
    never less than ``floor_bytes``): exports compress about tenfold, a decompression bomb a
    thousandfold.
    """

    max_files: int = 32
    max_bytes: int = 1 << 30
    max_ratio: int = 100
    floor_bytes: int = 8 << 20

    def for_upload(self, compressed: int) -> Limits:
        """The limits for an upload of ``compressed`` bytes."""
        return Limits(self.max_files, min(self.max_bytes, max(self.floor_bytes, self.max_ratio * compressed)))


def _upload_size(upload: BinaryIO) -> int:
    position = upload.tell()
    upload.seek(0, 2)
    size = upload.tell()
    upload.seek(position)
    return size


def verify_upload(log: AuditLog, upload: BinaryIO, *, limits: UploadLimits, trusted_checkpoint: str | None = None,
                  witnesses: Sequence[CosignerKey] = (), min_witnesses: int | None = None) -> dict[str, Any]:
    """Verify an uploaded ``.tar.gz`` export against this log: its key, and its tree.

    The answer is the verification summary with ``key: "server"`` and ``matches_this_log``.
    """
    with tempfile.TemporaryDirectory(prefix="tarcza-verify-upload-") as tmp, _as_audit_errors():
        unpack_tar_gz(upload, Path(tmp), limits.for_upload(_upload_size(upload)))
        directory = export_directory(Path(tmp))
        key = log.verifier()
        carried = read_export_key(directory)
        if carried is not None and carried != key:
            raise verify_errors.KeyTrustError(
                f"this export is signed by another key ({carried.label}) than this server's log key ({key.label}): "
                "it was not made by this log, or it was re-signed", carried=carried.label, trusted=key.label)
        result = verify_audit_export(directory, key, trusted_checkpoint=trusted_checkpoint, check_events=True,
                                     witnesses=witnesses, min_witnesses=min_witnesses)
    checked_against = _check_against_this_log(log, result)
    return {**result.to_json(), "key": "server", "matches_this_log": True,
            "consistent_with_server_checkpoint": checked_against}


def _check_against_this_log(log: AuditLog, result: AuditExportResult) -> int | None:
    """Refuse an export whose checkpoint is not this log's tree at its size; the checkpoint size it was tied to."""
    size, root = result.tree_size, result.root_hash
    current = log.size()
    theirs = f"this export's checkpoint (size {size}, root {root})"
    if size > current:
        raise VerificationError(f"{theirs} is of a larger tree than this log holds ({current} entries): it is not "
                                "this log's history")
    latest = log.latest_checkpoint()
    if latest is not None and 0 < size <= latest.tree_size:
        proof = log.consistency_proof(size, latest.tree_size)
        ours = b64encode(proof.root1)
        try:
            merkle.verify_consistency(size, latest.tree_size, base64.b64decode(root), latest.root_hash,
                                      proof.proof)
        except VerificationError:
            raise LogForkError(f"{theirs} is not consistent with this server's checkpoint of size "
                               f"{latest.tree_size} (this log's root at size {size} is {ours}): the log was forked "
                               "or rewritten", size1=size, size2=latest.tree_size) from None
        return latest.tree_size
    ours = b64encode(log.consistency_proof(size, size).root1)
    if ours != root:
        raise LogForkError(f"{theirs} is not this log's tree at that size (root {ours}): the log was forked or "
                           "rewritten", size1=size, size2=current)
    return None
