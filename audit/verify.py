"""Offline verification of an audit export: no database, no secret, only the files.

Checks, in order, and raises at the first failure, naming the entry index (or the file)
and what disagreed:

1. the verifier key (the auditor's own copy if given, which must then match the export's),
   and the manifest's signature by that key;
2. the checkpoint's signature and origin, against the manifest;
3. every entry: its leaf hash is recomputed from its bytes; in the ``range`` layout the
   recomputed hashes must equal ``leaf_hashes.bin`` (which names a changed entry) and,
   with the boundary nodes of ``range.json``, rebuild the checkpoint's root; in the
   ``proofs`` layout each entry's inclusion proof must lead to that root;
4. with ``check_events``, every entry parses as canonical JSON (RFC 8785) of an event;
5. the SHA-256 of every other file against the signed manifest (``entries.jsonl`` and
   ``leaf_hashes.bin`` are already pinned byte for byte by step 3: every line's leaf hash
   leads to the signed root, lines are exactly "\\n"-terminated, their count is signed);
6. with a trusted earlier checkpoint: its signature, and the consistency proof from it to
   the exported checkpoint (or equal roots at equal sizes).

With witness keys (ADR 0021), step 2 also requires valid C2SP tlog-cosignatures of the checkpoint
by enough of those witnesses (``audit.cosignature``); cosignatures by other keys do not count.

Invariant: no hash the export states is trusted; each is recomputed or checked against the
signed checkpoint and manifest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit import merkle
from audit.checkpoint import Checkpoint, Verifier, open_checkpoint, open_note
from audit.cosignature import CosignerKey, require_cosignatures
from audit.errors import CheckpointError, ConsistencyProofError, InclusionProofError, VerificationError
from audit.events import parse_leaf_input

EXPORT_FORMAT = "tarcza-audit-export/v1"
LAYOUT_FILES = {
    "range": {"entries.jsonl", "leaf_hashes.bin", "range.json", "checkpoint.txt", "consistency.json", "verifier.key"},
    "proofs": {"entries.jsonl", "proofs.jsonl", "checkpoint.txt", "consistency.json", "verifier.key"},
}
CONTENT_VERIFIED = frozenset({"entries.jsonl", "leaf_hashes.bin"})
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportVerification:
    entries: int
    tree_size: int
    root_hash: str
    origin: str
    layout: str
    trusted_size: int | None
    cosigned_by: tuple[str, ...] = ()  # witnesses (name+keyid) whose valid cosignatures were required (ADR 0021)

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "entries": self.entries, "tree_size": self.tree_size, "root_hash": self.root_hash,
                "origin": self.origin, "layout": self.layout, "consistent_with_trusted_size": self.trusted_size,
                "cosigned_by": list(self.cosigned_by)}


def _b64d(text: object, where: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{where}: not base64") from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        raise VerificationError(f"{path.name}: missing or unreadable") from None


def _read_text(path: Path) -> str:
    try:
        return _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise VerificationError(f"{path.name}: not UTF-8 text") from None


def _parse_json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise VerificationError(f"{name}: cannot be read as JSON ({type(exc).__name__})") from None


def verify_export(directory: Path, *, trusted_key: str | None = None, trusted_checkpoint: str | None = None,
                  check_events: bool = False, progress: Progress | None = None,
                  witnesses: Sequence[CosignerKey] = (), min_witnesses: int | None = None) -> ExportVerification:
    """Verify an export directory; return a summary or raise :class:`VerificationError`.

    With ``witnesses`` (or ``min_witnesses``), the checkpoint must also carry valid cosignatures by at
    least ``min_witnesses`` (default: all) of those witness keys; others' cosignatures do not count.
    """
    verifier, manifest = _open_manifest(directory, trusted_key)
    checkpoint = open_checkpoint(_read_text(directory / "checkpoint.txt"), verifier)
    cosigned = _require_witnesses(directory, witnesses, min_witnesses)
    if manifest.get("tree_size") != checkpoint.size or manifest.get("origin") != checkpoint.origin:
        raise VerificationError(
            f"manifest.json: tree size {manifest.get('tree_size')} / origin {manifest.get('origin')!r} differ from "
            f"the signed checkpoint's {checkpoint.size} / {checkpoint.origin!r}")
    layout = manifest["layout"]
    lines = _entry_lines(directory, int(manifest.get("entries", -1)))
    if layout == "range":
        _verify_range(directory, manifest, checkpoint, lines)
    else:
        _verify_proofs(directory, checkpoint, lines, progress)
    if check_events:
        first = int(manifest.get("start", 0))
        for position, line in enumerate(lines):
            try:
                parse_leaf_input(line)
            except (ValueError, UnicodeDecodeError) as exc:
                raise VerificationError(f"entry {first + position}: {exc}", index=first + position) from None
    for name, expected in manifest["files"].items():
        if name in CONTENT_VERIFIED:
            continue
        got = hashlib.sha256(_read_bytes(directory / name)).hexdigest()
        if got != expected:
            raise VerificationError(f"{name}: SHA-256 {got} differs from the signed manifest's {expected}", file=name)
    if progress:
        progress(len(lines), len(lines))
    trusted_size = None
    if trusted_checkpoint is not None:
        trusted_size = _verify_trusted(directory, checkpoint, trusted_checkpoint, verifier)
    return ExportVerification(len(lines), checkpoint.size, base64.b64encode(checkpoint.root_hash).decode(),
                              checkpoint.origin, layout, trusted_size, cosigned)


def _require_witnesses(directory: Path, witnesses: Sequence[CosignerKey], minimum: int | None) -> tuple[str, ...]:
    """Witness cosignatures of checkpoint.txt (ADR 0021): at least ``minimum`` (default all) of ``witnesses``."""
    if not witnesses and not minimum:
        return ()
    note = _read_text(directory / "checkpoint.txt")
    found = require_cosignatures(note, witnesses, len(witnesses) if minimum is None else minimum)
    return tuple(c.key.label for c in found)


def _open_manifest(directory: Path, trusted_key: str | None) -> tuple[Verifier, dict[str, Any]]:
    export_key = _read_text(directory / "verifier.key").strip()
    if trusted_key is not None and trusted_key.strip() != export_key:
        raise CheckpointError("the export's verifier key is not the trusted key")
    try:
        verifier = Verifier.from_string(trusted_key.strip() if trusted_key else export_key)
    except CheckpointError as exc:
        raise CheckpointError(f"verifier.key: {exc.detail}") from None
    manifest_bytes = _read_bytes(directory / "manifest.json")
    try:
        signed = open_note(_read_text(directory / "manifest.sig"), verifier)
    except CheckpointError as exc:
        raise CheckpointError(f"manifest.sig: {exc.detail}") from None
    if signed != f"{EXPORT_FORMAT}\nmanifest sha256 {hashlib.sha256(manifest_bytes).hexdigest()}\n":
        raise VerificationError("manifest.json: does not match the digest signed in manifest.sig")
    manifest = _parse_json(manifest_bytes, "manifest.json")  # exactly the bytes whose digest was signed
    wanted = (EXPORT_FORMAT, "sha256")
    if not isinstance(manifest, dict) or (manifest.get("format"), manifest.get("hash_alg")) != wanted:
        raise VerificationError("manifest.json: not a tarcza-audit-export/v1 manifest with sha256")
    files = manifest.get("files")
    if manifest.get("layout") not in LAYOUT_FILES or not isinstance(files, dict) \
            or set(files) != LAYOUT_FILES[manifest["layout"]]:
        raise VerificationError("manifest.json: unknown layout or unexpected list of files")
    return verifier, manifest


def _entry_lines(directory: Path, expected: int) -> list[bytes]:
    data = _read_bytes(directory / "entries.jsonl")
    if data and not data.endswith(b"\n"):
        raise VerificationError("entries.jsonl: the last line is not terminated (truncated file?)")
    lines = data.split(b"\n")[:-1] if data else []
    if len(lines) != expected:
        raise VerificationError(f"entries.jsonl holds {len(lines)} entries, the signed manifest {expected}")
    return lines


def _verify_range(directory: Path, manifest: dict[str, Any], checkpoint: Checkpoint, lines: list[bytes]) -> None:
    start, end = int(manifest["start"]), int(manifest["end"])
    if end - start != len(lines) or not 0 <= start < end <= checkpoint.size:
        raise VerificationError(f"manifest.json: range {start}..{end - 1} does not fit {len(lines)} entries "
                                f"in a tree of size {checkpoint.size}")
    leaf_hashes = merkle.leaf_hashes_of(lines)
    stated = _read_bytes(directory / "leaf_hashes.bin")
    if stated != b"".join(leaf_hashes):
        for position, computed in enumerate(leaf_hashes):
            if stated[32 * position:32 * position + 32] != computed:
                raise VerificationError(f"entry {start + position}: leaf hash {computed.hex()} recomputed from the "
                                        "entry differs from leaf_hashes.bin", index=start + position)
        raise VerificationError("leaf_hashes.bin: longer than the entries")
    boundary = _parse_json(_read_bytes(directory / "range.json"), "range.json")
    tiles = merkle.range_nodes(start, leaf_hashes)
    left_keys, right_keys = merkle.root_keys(start), merkle.range_keys(end, checkpoint.size)
    left, right = boundary.get("left", []), boundary.get("right", [])
    if (boundary.get("start"), boundary.get("end")) != (start, end) or len(left) != len(left_keys) \
            or len(right) != len(right_keys):
        raise VerificationError("range.json: boundary nodes do not fit the exported range")
    tiles.update({k: _b64d(v, "range.json") for k, v in zip(left_keys, left, strict=True)})
    tiles.update({k: _b64d(v, "range.json") for k, v in zip(right_keys, right, strict=True)})
    root = merkle.root_from_tiles(checkpoint.size, tiles)
    if root != checkpoint.root_hash:
        raise InclusionProofError(
            f"entries {start}..{end - 1} with the boundary nodes of range.json give root {root.hex()}, "
            f"the signed checkpoint says {checkpoint.root_hash.hex()}", index=start, size=checkpoint.size,
            expected=checkpoint.root_hash.hex(), got=root.hex())


def _verify_proofs(directory: Path, checkpoint: Checkpoint, lines: list[bytes], progress: Progress | None) -> None:
    proof_lines = _read_bytes(directory / "proofs.jsonl").split(b"\n")
    if len(proof_lines) != len(lines) + 1 or proof_lines[-1]:
        raise VerificationError("proofs.jsonl and entries.jsonl have different numbers of lines")
    last_index = -1
    for position, (line, proof_line) in enumerate(zip(lines, proof_lines, strict=False)):
        proof = _parse_json(proof_line, f"proofs.jsonl line {position + 1}")
        index = proof.get("index") if isinstance(proof, dict) else None
        if not isinstance(index, int) or index <= last_index:
            raise VerificationError(f"proofs.jsonl line {position + 1}: index missing or out of order")
        last_index = index
        computed = merkle.leaf_hash(line)
        path = [_b64d(p, f"entry {index} proof") for p in proof.get("proof", [])]
        try:
            merkle.verify_inclusion(computed, index, checkpoint.size, path, checkpoint.root_hash)
        except InclusionProofError as exc:
            raise InclusionProofError(f"entry {index}: {exc.detail}", index=index, size=checkpoint.size,
                                      expected=exc.expected, got=exc.got) from None
        if progress and position % 1000 == 0:
            progress(position, len(lines))


def _verify_trusted(directory: Path, checkpoint: Checkpoint, trusted_note: str, verifier: Verifier) -> int:
    trusted = open_checkpoint(trusted_note, verifier, origin=checkpoint.origin)
    if trusted.size > checkpoint.size:
        raise ConsistencyProofError(
            f"the trusted checkpoint (size {trusted.size}) is newer than the export's ({checkpoint.size}); "
            "export again to cover it", size1=trusted.size, size2=checkpoint.size)
    if trusted.size == checkpoint.size:
        if trusted.root_hash != checkpoint.root_hash:
            raise ConsistencyProofError("same size, different roots: the log forked", size1=trusted.size,
                                        size2=checkpoint.size, expected=trusted.root_hash.hex(),
                                        got=checkpoint.root_hash.hex())
        return trusted.size
    data = _parse_json(_read_bytes(directory / "consistency.json"), "consistency.json")
    proof_b64 = data.get("proofs", {}).get(str(trusted.size)) if isinstance(data, dict) else None
    if proof_b64 is None:
        raise ConsistencyProofError(f"consistency.json has no proof from size {trusted.size}",
                                    size1=trusted.size, size2=checkpoint.size)
    proof = [_b64d(p, "consistency proof") for p in proof_b64]
    merkle.verify_consistency(trusted.size, checkpoint.size, trusted.root_hash, checkpoint.root_hash, proof)
    return trusted.size
