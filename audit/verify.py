"""Offline verification of an audit export: no database, no secret, only the files.

Checks, in order, and raises at the first failure (naming the file or entry index and
what disagreed):

1. the verifier key (the auditor's own copy if given, which must match the export's);
2. the manifest's signature by the log key, its format, and the SHA-256 of every file;
3. the checkpoint's signature and origin;
4. every entry: its leaf input is canonical JSON, its leaf hash recomputes, and its
   inclusion proof leads to the checkpoint's root;
5. with a trusted earlier checkpoint: its signature, and the consistency proof from it to
   the exported checkpoint (or equality, if the sizes match).

Invariant: the verifier never trusts a hash the export states; it recomputes each one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit import merkle
from audit.checkpoint import Checkpoint, Verifier, open_checkpoint, open_note
from audit.errors import CheckpointError, ConsistencyProofError, InclusionProofError, VerificationError
from audit.events import parse_leaf_input

EXPORT_FORMAT = "tarcza-audit-export/v1"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportVerification:
    entries: int
    tree_size: int
    root_hash: str
    origin: str
    trusted_size: int | None

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "entries": self.entries, "tree_size": self.tree_size, "root_hash": self.root_hash,
                "origin": self.origin, "consistent_with_trusted_size": self.trusted_size}


def _b64d(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
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


def _read_json(path: Path) -> Any:
    return _parse_json(_read_bytes(path), path.name)


def verify_export(directory: Path, *, trusted_key: str | None = None, trusted_checkpoint: str | None = None,
                  progress: Progress | None = None) -> ExportVerification:
    """Verify an export directory; return a summary or raise :class:`VerificationError`."""
    export_key = _read_text(directory / "verifier.key").strip()
    if trusted_key is not None and trusted_key.strip() != export_key:
        raise CheckpointError("the export's verifier key is not the trusted key")
    try:
        verifier = Verifier.from_string(trusted_key.strip() if trusted_key else export_key)
    except CheckpointError as exc:
        raise CheckpointError(f"verifier.key: {exc.detail}") from None
    manifest_bytes = _read_bytes(directory / "manifest.json")
    expected_statement = f"{EXPORT_FORMAT}\nmanifest sha256 {hashlib.sha256(manifest_bytes).hexdigest()}\n"
    try:
        signed = open_note(_read_text(directory / "manifest.sig"), verifier)
    except CheckpointError as exc:
        raise CheckpointError(f"manifest.sig: {exc.detail}") from None
    if signed != expected_statement:
        raise VerificationError("manifest.json: does not match the signed manifest digest in manifest.sig")
    manifest = _parse_json(manifest_bytes, "manifest.json")  # the bytes whose digest was signed
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise VerificationError(f"manifest.json: unknown format {found!r}")
    if manifest.get("hash_alg") != "sha256":
        raise VerificationError(f"manifest.json: unsupported hash_alg {manifest.get('hash_alg')!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != {"entries.jsonl", "proofs.jsonl", "checkpoint.txt",
                                                      "consistency.json", "verifier.key"}:
        raise VerificationError("manifest.json: the list of files is not the expected one")
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise VerificationError(f"{name}: missing")
        got = hashlib.sha256(_read_bytes(path)).hexdigest()
        if got != expected:
            raise VerificationError(f"{name}: SHA-256 {got} differs from the manifest's {expected}", file=name)

    checkpoint = open_checkpoint(_read_text(directory / "checkpoint.txt"), verifier)
    if manifest.get("tree_size") != checkpoint.size or manifest.get("origin") != checkpoint.origin:
        raise VerificationError(
            f"manifest.json: tree size {manifest.get('tree_size')} / origin {manifest.get('origin')!r} differ from "
            f"the signed checkpoint's {checkpoint.size} / {checkpoint.origin!r}")

    count = _verify_entries(directory, checkpoint, manifest, progress)
    trusted_size = None
    if trusted_checkpoint is not None:
        trusted_size = _verify_trusted(directory, checkpoint, trusted_checkpoint, verifier)
    return ExportVerification(count, checkpoint.size, base64.b64encode(checkpoint.root_hash).decode(),
                              checkpoint.origin, trusted_size)


def _verify_entries(directory: Path, checkpoint: Checkpoint, manifest: dict[str, Any],
                    progress: Progress | None) -> int:
    total = int(manifest.get("entries", 0))
    count = 0
    last_index = -1
    with open(directory / "entries.jsonl", encoding="utf-8") as entries, \
            open(directory / "proofs.jsonl", encoding="utf-8") as proofs:
        for line_no, (entry_line, proof_line) in enumerate(zip(entries, proofs, strict=False), start=1):
            try:
                entry, proof = json.loads(entry_line), json.loads(proof_line)
                index = int(entry["index"])
                leaf_input = str(entry["leaf_input"]).encode("utf-8")
            except (ValueError, KeyError, TypeError):
                raise VerificationError(f"entries.jsonl line {line_no}: malformed") from None
            if index <= last_index:
                raise VerificationError(f"entry {index}: out of order (after {last_index})", index=index)
            last_index = index
            if int(proof.get("index", -1)) != index or int(proof.get("tree_size", -1)) != checkpoint.size:
                raise VerificationError(f"entry {index}: proofs.jsonl line {line_no} is for another entry or size",
                                        index=index)
            try:
                parse_leaf_input(leaf_input)
            except ValueError as exc:
                raise VerificationError(f"entry {index}: {exc}", index=index) from None
            computed = merkle.leaf_hash(leaf_input)
            if computed != _b64d(str(entry.get("leaf_hash", "")), f"entry {index} leaf_hash"):
                raise VerificationError(f"entry {index}: leaf hash does not match the leaf input "
                                        f"(computed {computed.hex()})", index=index)
            path = [_b64d(p, f"entry {index} proof") for p in proof.get("proof", [])]
            try:
                merkle.verify_inclusion(computed, index, checkpoint.size, path, checkpoint.root_hash)
            except InclusionProofError as exc:
                raise InclusionProofError(f"entry {index}: {exc.detail}", index=index, size=checkpoint.size,
                                          expected=exc.expected, got=exc.got) from None
            count += 1
            if progress and count % 1000 == 0:
                progress(count, total)
        if entries.readline() or proofs.readline():
            raise VerificationError("entries.jsonl and proofs.jsonl have different numbers of lines")
    if count != total:
        raise VerificationError(f"manifest.json lists {total} entries, the files hold {count}")
    if progress:
        progress(count, total)
    return count


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
    data = _read_json(directory / "consistency.json")
    proof_b64 = data.get("proofs", {}).get(str(trusted.size)) if isinstance(data, dict) else None
    if proof_b64 is None:
        raise ConsistencyProofError(f"consistency.json has no proof from size {trusted.size}",
                                    size1=trusted.size, size2=checkpoint.size)
    proof = [_b64d(p, "consistency proof") for p in proof_b64]
    merkle.verify_consistency(trusted.size, checkpoint.size, trusted.root_hash, checkpoint.root_hash, proof)
    return trusted.size
