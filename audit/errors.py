"""Errors of the audit log. Verifiers raise these; they never return a bool to ignore.

Messages carry the numbers that disagree (index, sizes, expected and computed hashes).
The standalone verifier (:mod:`tarcza_verify`) has errors of its own, with no HTTP in
them; :func:`from_verifier` turns one into the error of this package that says the same,
so that the server answers it as a problem and the CLI as one ``error:`` line.
"""

from __future__ import annotations

from typing import Any

from core.errors import InvalidInputError, PermissionDeniedError, TarczaError
from tarcza_verify import errors as verify_errors


class AuditError(TarczaError):
    """Root of the audit log's errors."""

    code = "audit-error"
    title = "Audit log error"


class VerificationError(AuditError):
    """Something the log committed to does not check out."""

    status = 422
    code = "audit-verification"
    title = "Audit verification failed"


class InclusionProofError(VerificationError):
    """An inclusion proof does not lead from the leaf to the root."""

    code = "inclusion-proof"
    title = "Inclusion proof does not verify"

    def __init__(self, detail: str, *, index: int | None = None, size: int | None = None,
                 expected: str | None = None, got: str | None = None) -> None:
        extra: dict[str, Any] = {k: v for k, v in
                                 {"index": index, "size": size, "expected": expected, "got": got}.items()
                                 if v is not None}
        self.index, self.size, self.expected, self.got = index, size, expected, got
        super().__init__(detail, **extra)


class ConsistencyProofError(VerificationError):
    """A consistency proof does not show that the older tree is a prefix of the newer."""

    code = "consistency-proof"
    title = "Consistency proof does not verify"

    def __init__(self, detail: str, *, size1: int | None = None, size2: int | None = None,
                 expected: str | None = None, got: str | None = None) -> None:
        extra: dict[str, Any] = {k: v for k, v in
                                 {"size1": size1, "size2": size2, "expected": expected, "got": got}.items()
                                 if v is not None}
        self.size1, self.size2, self.expected, self.got = size1, size2, expected, got
        super().__init__(detail, **extra)


class CheckpointError(VerificationError):
    """A checkpoint or signed note is malformed or its signature does not verify."""

    code = "checkpoint"
    title = "Checkpoint does not verify"


class ProofRangeError(AuditError):
    """A proof was asked for an index or size the log does not have."""

    status = 422
    code = "proof-range"
    title = "No such index or tree size"


class TamperedLogError(VerificationError):
    """The stored log does not match what it committed to; names the first place that disagrees."""

    code = "audit-tampered"
    title = "Audit log tampering detected"

    def __init__(self, detail: str, *, index: int | None = None, what: str) -> None:
        self.index, self.what = index, what
        extra: dict[str, Any] = {"what": what}
        if index is not None:
            extra["index"] = index
        super().__init__(detail, **extra)


class SystemEventTypeError(PermissionDeniedError):
    """An outside principal tried to append an event type that only Tarcza itself writes (ADR 0017)."""

    code = "event-type-not-appendable"
    title = "Event type written only by Tarcza"


class LogForkError(ConsistencyProofError):
    """A checkpoint trusted earlier and the checkpoint checked cannot both be this log's history."""

    code = "log-fork"
    title = "The log was forked or rewritten"


class UntrustedKeyError(VerificationError):
    """An export is signed by another key than the one trusted for its log."""

    code = "verifier-key"
    title = "Signed by another key"


class CosignatureError(VerificationError):
    """A checkpoint lacks the cosignatures asked for, or a trusted witness's cosignature is bad."""

    code = "cosignature"
    title = "Checkpoint cosignatures do not verify"


class ExportTooLargeError(AuditError):
    """An uploaded export would unpack to more files or bytes than allowed."""

    status = 413
    code = "export-too-large"
    title = "Export too large"


def from_verifier(exc: verify_errors.VerifyError) -> TarczaError:
    """The error of this package (or an invalid input) that says what ``exc`` says."""
    detail = exc.detail
    if isinstance(exc, verify_errors.ForkError):
        return LogForkError(detail, size1=exc.size1, size2=exc.size2, expected=exc.expected, got=exc.got)
    if isinstance(exc, verify_errors.ConsistencyProofError):
        return ConsistencyProofError(detail, size1=exc.size1, size2=exc.size2, expected=exc.expected, got=exc.got)
    if isinstance(exc, verify_errors.InclusionProofError):
        return InclusionProofError(detail, index=exc.index, size=exc.size, expected=exc.expected, got=exc.got)
    if isinstance(exc, verify_errors.VerificationError) and exc.code == "cosignature":
        return CosignatureError(detail, **exc.extra)
    if isinstance(exc, verify_errors.CheckpointError):
        return CheckpointError(detail, **exc.extra)
    if isinstance(exc, verify_errors.KeyTrustError):
        return UntrustedKeyError(detail, **exc.extra)
    if isinstance(exc, verify_errors.TooLargeError):
        return ExportTooLargeError(detail, **exc.extra)
    if isinstance(exc, verify_errors.UnpackError):
        return InvalidInputError(detail, **exc.extra)
    return VerificationError(detail, **exc.extra)
