"""What can fail when an export is verified, from the auditor's side.

Every error is a :class:`VerifyError` with a ``detail`` written for the person verifying
(what disagreed, in their terms, with the numbers that disagree) and ``extra`` facts (an
entry's index, the file, both sizes). Verifiers raise; they never return a bool to ignore.

Inside Tarcza, ``audit.errors.from_verifier`` turns these into the server's own errors
(RFC 9457 problems); this package knows nothing of HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ArchiveError",
    "CheckpointError",
    "ConsistencyProofError",
    "ExportFormatError",
    "ForkError",
    "InclusionProofError",
    "KeyTrustError",
    "TooLargeError",
    "UnpackError",
    "VerificationError",
    "VerifyError",
]


class VerifyError(Exception):
    """Root of everything this package raises on purpose."""

    code: ClassVar[str] = "verification-failed"

    def __init__(self, detail: str, **extra: Any) -> None:
        self.detail = detail
        self.extra = {k: v for k, v in extra.items() if v is not None}
        super().__init__(detail)


class VerificationError(VerifyError):
    """Something the log committed to does not check out."""

    code = "audit-verification"


class ExportFormatError(VerificationError):
    """A file is missing, unlisted, unreadable or not in the format the specification states."""

    code = "audit-verification"


class InclusionProofError(VerificationError):
    """An entry (or a range of entries) does not lead to the signed root."""

    code = "inclusion-proof"

    def __init__(self, detail: str, *, index: int | None = None, size: int | None = None,
                 expected: str | None = None, got: str | None = None) -> None:
        self.index, self.size, self.expected, self.got = index, size, expected, got
        super().__init__(detail, index=index, size=size, expected=expected, got=got)


class ConsistencyProofError(VerificationError):
    """A consistency proof does not show that the older tree is a prefix of the newer."""

    code = "consistency-proof"

    def __init__(self, detail: str, *, size1: int | None = None, size2: int | None = None,
                 expected: str | None = None, got: str | None = None) -> None:
        self.size1, self.size2, self.expected, self.got = size1, size2, expected, got
        super().__init__(detail, size1=size1, size2=size2, expected=expected, got=got)


class ForkError(ConsistencyProofError):
    """A checkpoint the auditor trusts and the export's checkpoint cannot both be one log's history."""

    code = "log-fork"


class CheckpointError(VerificationError):
    """A checkpoint, signed note or key is malformed, or a signature does not verify."""

    code = "checkpoint"


class KeyTrustError(VerificationError):
    """The export is signed by another key than the one trusted (given, or pinned) for its log."""

    code = "verifier-key"


class ArchiveError(VerificationError):
    """A subject export archive does not verify; ``file`` names the file (in the archive) that disagrees."""

    code = "subject-export-verification"

    def __init__(self, detail: str, *, file: str) -> None:
        self.file = file
        super().__init__(detail, file=file)


class UnpackError(VerifyError):
    """An archive (``.tar.gz``, ``.zip``) cannot be unpacked safely: a link, a path outside, not an archive."""

    code = "export-unpack"


class TooLargeError(UnpackError):
    """An archive would unpack to more files or bytes than the limits allow (a decompression bomb)."""

    code = "export-too-large"
