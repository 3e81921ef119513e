"""The subject export archive (GDPR Art. 15 access, Art. 20 portability): its format, and the entry to its verifier.

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

* verification is the standalone verifier's (:mod:`tarcza_verify.subject_archive`, which
  auditors install): :func:`verify_archive` only calls it;
* the builder writes a temporary file next to the destination and renames it into place:
  a reader never sees half an archive; the archive is created 0600;
* no error message holds personal data: files are named, values are not.
"""

from __future__ import annotations

from pathlib import Path

from audit.errors import VerificationError
from tarcza_verify import errors as verify_errors
from tarcza_verify.note import Verifier
from tarcza_verify.subject_archive import (
    SUBJECT_EXPORT_FORMAT,
    ArchiveVerification,
    FileDigest,
    manifest_statement,
    verify_subject_archive,
)

__all__ = [
    "SUBJECT_EXPORT_FORMAT",
    "ArchiveVerification",
    "ArchiveVerificationError",
    "FileDigest",
    "manifest_statement",
    "verify_archive",
]


class ArchiveVerificationError(VerificationError):
    """A subject export archive does not verify; ``file`` names the file that disagrees."""

    code = "subject-export-verification"
    title = "Subject export verification failed"

    def __init__(self, detail: str, *, file: str) -> None:
        self.file = file
        super().__init__(detail, file=file)


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
