"""A checkpoint the auditor saved earlier, against the checkpoint of an export: the same log, extended.

The saved checkpoint must verify with the trusted key and be of the same origin; the export's
tree must extend it: equal roots at equal sizes, or an RFC 9162 consistency proof from the
export's ``consistency.json`` (or, for a range export from index 0, the old root recomputed
from the entries). Otherwise the auditor is told, in these words, that the log was forked or
rewritten (:class:`~tarcza_verify.errors.ForkError`), or that the export is older than what
they have seen.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tarcza_verify import merkle
from tarcza_verify.errors import CheckpointError, ConsistencyProofError, ExportFormatError, ForkError
from tarcza_verify.note import Checkpoint, Verifier, b64encode, open_checkpoint

__all__ = ["check_saved_checkpoint"]


def _hash(text: object) -> bytes:
    try:
        raw = base64.b64decode(text if isinstance(text, str) else "", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != merkle.HASH_SIZE:
        raise ExportFormatError("consistency.json: a proof element is not a base64 SHA-256 hash",
                                file="consistency.json")
    return raw


def check_saved_checkpoint(saved_note: str, checkpoint: Checkpoint, key: Verifier, consistency: Any,
                           leaf_hashes: list[bytes] | None = None) -> Checkpoint:
    """Check that the export's verified ``checkpoint`` extends the checkpoint the auditor saved; that one.

    ``consistency`` is the export's parsed ``consistency.json``; ``leaf_hashes`` are the leaf hashes
    of a range export that starts at index 0 (the old root is then recomputed from them).
    """
    try:
        trusted = open_checkpoint(saved_note, key)
    except CheckpointError as exc:
        raise CheckpointError(f"your saved checkpoint does not verify with the key you trust ({key.label}): "
                              f"{exc.detail}") from None
    saved = f"your saved checkpoint (size {trusted.size}, root {b64encode(trusted.root_hash)})"
    if trusted.origin != checkpoint.origin:
        raise CheckpointError(f"{saved} is of the log {trusted.origin!r}, this export of {checkpoint.origin!r}")
    if trusted.size > checkpoint.size:
        raise ConsistencyProofError(
            f"{saved} is newer than this export's checkpoint (size {checkpoint.size}): the export does not show the "
            "log as far as you have already seen it (a rollback, or an old export); ask for a newer export",
            size1=trusted.size, size2=checkpoint.size)
    fork = (f"{saved} is not consistent with this export (checkpoint size {checkpoint.size}, root "
            f"{b64encode(checkpoint.root_hash)}): the log was forked or rewritten")
    if trusted.size == checkpoint.size:
        if trusted.root_hash != checkpoint.root_hash:
            raise ForkError(fork, size1=trusted.size, size2=checkpoint.size, expected=trusted.root_hash.hex(),
                            got=checkpoint.root_hash.hex())
        return trusted
    if trusted.size == 0:
        return trusted  # the empty tree is a prefix of every tree
    if leaf_hashes is not None and trusted.size <= len(leaf_hashes):
        root = merkle.root_from_tiles(trusted.size, merkle.range_nodes(0, leaf_hashes[:trusted.size]))
        if root != trusted.root_hash:
            raise ForkError(fork, size1=trusted.size, size2=checkpoint.size, expected=trusted.root_hash.hex(),
                            got=root.hex())
        return trusted
    proofs = consistency.get("proofs") if isinstance(consistency, dict) else None
    if not isinstance(proofs, dict) or set(consistency) != {"tree_size", "proofs"} \
            or consistency["tree_size"] != checkpoint.size:
        raise ExportFormatError("consistency.json: not {\"tree_size\", \"proofs\"} of this export's checkpoint",
                                file="consistency.json")
    proof_b64 = proofs.get(str(trusted.size))
    if not isinstance(proof_b64, list):
        have = sorted(int(k) for k in proofs if k.isdigit())
        raise ConsistencyProofError(
            f"this export carries no consistency proof from your saved checkpoint's size {trusted.size} (it has "
            f"proofs from sizes {have}): ask for an export made after your checkpoint was issued",
            size1=trusted.size, size2=checkpoint.size)
    proof = [_hash(p) for p in proof_b64]
    try:
        merkle.verify_consistency(trusted.size, checkpoint.size, trusted.root_hash, checkpoint.root_hash, proof)
    except ConsistencyProofError as exc:
        raise ForkError(f"{fork} ({exc.detail})", size1=trusted.size, size2=checkpoint.size, expected=exc.expected,
                        got=exc.got) from None
    return trusted
