"""Errors of the audit log. Verifiers raise these; they never return a bool to ignore.

Messages carry the numbers that disagree (index, sizes, expected and computed hashes).
"""

from __future__ import annotations

from typing import Any

from core.errors import PermissionDeniedError, TarczaError


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
