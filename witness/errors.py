"""The witness's refusals, each with the HTTP status the C2SP tlog-witness protocol gives it."""

from __future__ import annotations

from typing import Any

from core.errors import TarczaError


class WitnessError(TarczaError):
    """Root of the witness's refusals."""

    status = 400
    code = "witness"
    title = "Witness refused the request"


class MalformedRequestError(WitnessError):
    """The request body is not an add-checkpoint request (400)."""

    status = 400
    code = "witness-malformed"
    title = "Malformed add-checkpoint request"


class UnknownLogError(WitnessError):
    """The checkpoint's origin is not a log this witness is configured for (404)."""

    status = 404
    code = "witness-unknown-log"
    title = "Unknown log"


class UntrustedCheckpointError(WitnessError):
    """No valid signature by the log's key, or a bad one (403)."""

    status = 403
    code = "witness-untrusted-checkpoint"
    title = "Checkpoint not signed by the log"


class SizeConflictError(WitnessError):
    """The old size is not the size of the latest checkpoint the witness cosigned (409)."""

    status = 409
    code = "witness-size-conflict"
    title = "Old size does not match"

    def __init__(self, latest_size: int, **extra: Any) -> None:
        self.latest_size = latest_size
        super().__init__(f"the latest checkpoint cosigned for this log has size {latest_size}",
                         latest_size=latest_size, **extra)


class InconsistentCheckpointError(WitnessError):
    """The checkpoint is not consistent with what the witness cosigned before (422)."""

    status = 422
    code = "witness-inconsistent"
    title = "Checkpoint is not consistent"
