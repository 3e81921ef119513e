"""The witness: checks a submitted checkpoint against the log's key and what it cosigned before,
cosigns it, and stores it as the log's latest before answering (C2SP tlog-witness add-checkpoint).

Order of the checks (each refusal is a :class:`~witness.errors.WitnessError` with its status):
request syntax and note syntax (400), origin known (404), the log's signature (403), then
the consistency decision of :mod:`witness.protocol` (400, 409, 422). A checkpoint from a known
log, validly signed, that is refused as inconsistent is kept in the refusals table (evidence).
Only when the compare-and-swap of the stored latest succeeds is the cosignature returned; if
another submission moved it meanwhile, the answer is 409 with the new size.
"""

from __future__ import annotations

import hashlib

from audit.checkpoint import (
    SIGNATURE_PREFIX,
    Checkpoint,
    Verifier,
    _b64encode,
    open_note,
    parse_checkpoint_body,
    split_note,
)
from audit.cosignature import Cosigner, CosignerKey
from audit.errors import CheckpointError
from core.clock import SYSTEM_CLOCK, Clock
from core.errors import ConfigurationError
from core.logging import get_logger
from witness.errors import (
    InconsistentCheckpointError,
    MalformedRequestError,
    SizeConflictError,
    UnknownLogError,
    UntrustedCheckpointError,
)
from witness.protocol import Cosigned, check_consistency, parse_add_checkpoint
from witness.storage import Latest, WitnessStore

log = get_logger(__name__)


def origin_hash(origin: str) -> str:
    """How the monitoring URL names a log: lowercase hex SHA-256 of its origin."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


class Witness:
    """One witness: its cosigning key, its storage and its clock."""

    def __init__(self, store: WitnessStore, cosigner: Cosigner, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.cosigner = cosigner
        self.clock = clock

    def verifier(self) -> CosignerKey:
        return self.cosigner.verifier()

    def add_checkpoint(self, body: bytes) -> str:
        """Handle one add-checkpoint request; the cosignature line(s), or raise the refusal."""
        request = parse_add_checkpoint(body)
        try:
            text, signatures = split_note(request.note)
            checkpoint = parse_checkpoint_body(text)
        except CheckpointError as exc:
            raise MalformedRequestError(f"not a signed checkpoint: {exc.detail}") from None
        verifier = self._log_verifier(checkpoint.origin)
        try:
            open_note(request.note, verifier)
        except CheckpointError as exc:
            raise UntrustedCheckpointError(f"checkpoint of {checkpoint.origin!r}: {exc.detail}") from None
        latest = self.store.latest(checkpoint.origin)
        try:
            check_consistency(request, checkpoint,
                              None if latest is None else Cosigned(latest.size, latest.root_hash))
        except InconsistentCheckpointError as exc:
            self._refused(checkpoint, request.old_size, exc.detail, request.note)
            raise
        timestamp = int(self.clock.now().timestamp())
        line = self.cosigner.cosign(text, timestamp)
        log_lines = "".join(f"{SIGNATURE_PREFIX}{s.name} {_b64encode(s.key_id + s.signature)}\n" for s in signatures
                            if (s.name, s.key_id) == (verifier.name, verifier.key_id))
        new = Latest(checkpoint.origin, checkpoint.size, checkpoint.root_hash, f"{text}\n{log_lines}{line}",
                     timestamp)
        if not self.store.compare_and_swap(latest, new):
            moved = self.store.latest(checkpoint.origin)
            raise SizeConflictError(0 if moved is None else moved.size)
        log.info("witness_cosigned", origin=checkpoint.origin, tree_size=checkpoint.size,
                 old_size=request.old_size)
        return line

    def latest_note(self, hashed_origin: str) -> str | None:
        """The latest cosigned checkpoint (log signature and cosignature) of the log with that origin hash."""
        for known in self.store.logs():
            if origin_hash(known.origin) == hashed_origin:
                latest = self.store.latest(known.origin)
                return None if latest is None else latest.note
        return None

    def _log_verifier(self, origin: str) -> Verifier:
        known = self.store.log(origin)
        if known is None:
            raise UnknownLogError(f"this witness does not witness the log {origin!r}")
        try:
            return Verifier.from_string(known.verifier_key)
        except CheckpointError as exc:  # stored by `tarcza witness add-log`, which parses it first
            raise ConfigurationError(f"stored key of log {origin!r} is unusable: {exc.detail}") from None

    def _refused(self, checkpoint: Checkpoint, old_size: int, reason: str, note: str) -> None:
        log.warning("witness_refused_inconsistent", origin=checkpoint.origin, tree_size=checkpoint.size,
                    old_size=old_size, reason=reason)
        self.store.record_refusal(checkpoint.origin, old_size=old_size, tree_size=checkpoint.size, reason=reason,
                                  note=note, now=self.clock.now())
