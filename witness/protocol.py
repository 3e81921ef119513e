"""The add-checkpoint request of C2SP tlog-witness, and the witness's pure consistency decision.

Request body (every line ends in a newline)::

    old <size>            ASCII decimal, no leading zeroes ("0" for zero)
    <hash>                zero to 63 consistency-proof lines, one base64 hash each
                          an empty line
    <signed checkpoint>   a C2SP checkpoint in a signed note

Decision, given the latest checkpoint the witness cosigned for the log (none: size 0), in
the order the specification lists its checks:

- old size greater than the checkpoint's size: 400;
- old size not the latest cosigned size: 409, answering that size;
- a checkpoint of size 0 whose root is not the empty tree's: 422;
- old size 0 with a non-empty proof: 422;
- old size equal to the checkpoint's size: the roots must be equal (and the proof empty): 422;
- otherwise the proof must be an RFC 6962 consistency proof from the cosigned root: 422.

Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final

from audit import merkle
from audit.checkpoint import Checkpoint
from audit.errors import ConsistencyProofError
from witness.errors import InconsistentCheckpointError, MalformedRequestError, SizeConflictError

MAX_PROOF_LINES: Final = 63
MAX_REQUEST_BYTES: Final = 128 * 1024
MAX_SIZE: Final = (1 << 63) - 1
"""Largest tree size the witness stores (SQLite integers are signed 64-bit)."""

SIZE_CONTENT_TYPE: Final = "text/x.tlog.size"
_OLD_LINE: Final = re.compile(r"old (0|[1-9][0-9]{0,19})")


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed add-checkpoint request: old size, consistency proof, and the signed checkpoint note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str


@dataclass(frozen=True)
class Cosigned:
    """What the witness last cosigned for a log: size and root hash."""

    size: int
    root_hash: bytes


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse a request body; :class:`MalformedRequestError` (400) if it is not one."""
    if len(body) > MAX_REQUEST_BYTES:
        raise MalformedRequestError(f"request body is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequestError("request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep or not note:
        raise MalformedRequestError("no empty line between the old size and proof lines and the checkpoint")
    lines = head.split("\n")
    match = _OLD_LINE.fullmatch(lines[0])
    if match is None:
        raise MalformedRequestError("the first line is not 'old <size>' (decimal, no leading zeroes)")
    old_size = int(match.group(1))
    if old_size > MAX_SIZE:
        raise MalformedRequestError(f"old size {old_size} is larger than {MAX_SIZE}")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise MalformedRequestError(f"{len(proof_lines)} consistency proof lines, at most {MAX_PROOF_LINES}")
    proof = tuple(_hash(line, number) for number, line in enumerate(proof_lines, start=1))
    return AddCheckpoint(old_size, proof, note)


def _hash(line: str, number: int) -> bytes:
    try:
        raw = base64.b64decode(line.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise MalformedRequestError(f"consistency proof line {number} is not base64") from None
    if len(raw) != merkle.HASH_SIZE:
        raise MalformedRequestError(f"consistency proof line {number} is {len(raw)} bytes, not {merkle.HASH_SIZE}")
    return raw


def check_consistency(request: AddCheckpoint, checkpoint: Checkpoint, latest: Cosigned | None) -> None:
    """Raise the refusal the protocol gives, or return if ``checkpoint`` may be cosigned over ``latest``."""
    if checkpoint.size > MAX_SIZE:
        raise MalformedRequestError(f"tree size {checkpoint.size} is larger than {MAX_SIZE}")
    if request.old_size > checkpoint.size:
        raise MalformedRequestError(f"old size {request.old_size} is greater than the checkpoint's size "
                                    f"{checkpoint.size}")
    latest_size = 0 if latest is None else latest.size
    if request.old_size != latest_size:
        raise SizeConflictError(latest_size)
    if checkpoint.size == 0 and checkpoint.root_hash != merkle.empty_root():
        raise InconsistentCheckpointError("a checkpoint of size 0 must have the empty tree's root hash")
    if request.old_size == 0:
        if request.proof:
            raise InconsistentCheckpointError("old size 0 needs an empty consistency proof")
        return
    assert latest is not None  # noqa: S101 - latest_size is old_size > 0
    if request.old_size == checkpoint.size and latest.root_hash != checkpoint.root_hash:
        raise InconsistentCheckpointError(
            f"same size {checkpoint.size}, different root hash than the checkpoint cosigned before: "
            "the log forked", size=checkpoint.size, cosigned=latest.root_hash.hex(),
            submitted=checkpoint.root_hash.hex())
    try:
        merkle.verify_consistency(latest.size, checkpoint.size, latest.root_hash, checkpoint.root_hash,
                                  list(request.proof))
    except ConsistencyProofError as exc:
        raise InconsistentCheckpointError(
            f"not consistent with the checkpoint of size {latest.size} cosigned before: {exc.detail}",
            old_size=latest.size, size=checkpoint.size) from None
