"""Verifying an audit-log export (``tarcza-audit-export/v1``, a directory) with a key the caller trusts.

The format is specified in the README ("Export format"). Checks, in order, each raising at
the first failure with what disagreed in the auditor's terms (the entry's index or the file):

1. the export's ``verifier.key`` is the trusted key (else: signed by another key);
2. ``manifest.sig`` is the trusted key's signature over ``manifest.json``'s SHA-256;
3. the manifest has exactly the fields of the format, and the directory holds exactly the
   files the manifest lists with ``manifest.json`` and ``manifest.sig`` (an unlisted file,
   a folder or a link is refused);
4. ``checkpoint.txt`` is the trusted key's checkpoint, of the manifest's origin, size and root;
5. every entry: its leaf hash is recomputed from its line; in the ``range`` layout the
   hashes must equal ``leaf_hashes.bin`` (naming a changed entry) and, with the boundary
   nodes of ``range.json``, rebuild the signed root; in the ``proofs`` layout each entry's
   inclusion proof must lead to the signed root;
6. with ``check_events``, every entry is canonical JSON of an event, within the filters;
7. the SHA-256 of every other file against the signed manifest (``entries.jsonl`` and
   ``leaf_hashes.bin`` are pinned byte for byte by step 5);
8. with a checkpoint the auditor saved earlier: it is the trusted key's, of the same log,
   and the export's tree extends it (else: the log was forked or rewritten);
9. with witness keys: ``checkpoint.txt`` carries valid C2SP cosignatures by at least the
   required number of them (:mod:`tarcza_verify.cosignature`); others' lines do not count.

Invariant: no hash the export states is trusted; each is recomputed, or checked against the
signed checkpoint and manifest. Nothing here chooses the key: see :mod:`tarcza_verify.trust`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from tarcza_verify import merkle
from tarcza_verify.cosignature import CosignerKey, require_cosignatures
from tarcza_verify.errors import (
    CheckpointError,
    ExportFormatError,
    InclusionProofError,
    KeyTrustError,
    VerificationError,
)
from tarcza_verify.events import EventFormatError, event_time, parse_event
from tarcza_verify.note import Checkpoint, Verifier, b64encode, open_checkpoint, open_note, signers_of
from tarcza_verify.saved_checkpoint import check_saved_checkpoint

__all__ = ["EXPORT_FORMAT", "AuditExportResult", "export_origin", "manifest_statement", "read_export_key",
           "verify_audit_export"]

EXPORT_FORMAT: Final = "tarcza-audit-export/v1"
LAYOUT_FILES: Final = {
    "range": frozenset({"entries.jsonl", "leaf_hashes.bin", "range.json", "checkpoint.txt", "consistency.json",
                        "verifier.key"}),
    "proofs": frozenset({"entries.jsonl", "proofs.jsonl", "checkpoint.txt", "consistency.json", "verifier.key"}),
}
SIGNATURE_FILES: Final = frozenset({"manifest.json", "manifest.sig"})
_MANIFEST_FIELDS: Final = frozenset({"format", "hash_alg", "hash_encoding", "origin", "created_at", "tree_size",
                                     "root_hash", "entries", "layout", "filters", "files"})
_RANGE_FIELDS: Final = frozenset({"start", "end"})
_FILTER_FIELDS: Final = frozenset({"subject", "event_type", "actor", "since", "until", "start", "end"})
_CONTENT_VERIFIED: Final = frozenset({"entries.jsonl", "leaf_hashes.bin"})
Progress = Callable[[int, int], None]


def manifest_statement(sha256_hex: str) -> str:
    """The text the log key signs for an export's manifest (never a valid checkpoint body)."""
    return f"{EXPORT_FORMAT}\nmanifest sha256 {sha256_hex}\n"


@dataclass(frozen=True)
class AuditExportResult:
    """What a verified export holds, and what it was checked against."""

    entries: int
    tree_size: int
    root_hash: str
    origin: str
    layout: str
    key: str
    checkpoint_time: int | None
    first_index: int | None
    last_index: int | None
    filters: dict[str, Any] = field(default_factory=dict)
    trusted_size: int | None = None
    trusted_time: int | None = None
    cosigned_by: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The result as JSON (``ok`` first), times as POSIX seconds."""
        return {"ok": True, "entries": self.entries, "tree_size": self.tree_size, "root_hash": self.root_hash,
                "origin": self.origin, "layout": self.layout, "key": self.key,
                "checkpoint_time": self.checkpoint_time, "first_index": self.first_index,
                "last_index": self.last_index, "filters": self.filters,
                "consistent_with_trusted_size": self.trusted_size, "trusted_checkpoint_time": self.trusted_time,
                "cosigned_by": list(self.cosigned_by)}


# --- reading files ----------------------------------------------------------------------------


def _read_bytes(directory: Path, name: str) -> bytes:
    try:
        return (directory / name).read_bytes()
    except OSError:
        raise ExportFormatError(f"{name}: missing or unreadable", file=name) from None


def _read_text(directory: Path, name: str) -> str:
    try:
        return _read_bytes(directory, name).decode("utf-8")
    except UnicodeDecodeError:
        raise ExportFormatError(f"{name}: not UTF-8 text", file=name) from None


def _parse_json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise ExportFormatError(f"{name}: cannot be read as JSON ({type(exc).__name__})", file=name) from None


def _b64d(text: object, where: str) -> bytes:
    try:
        raw = base64.b64decode(text if isinstance(text, str) else "", validate=True)
    except (binascii.Error, ValueError):
        raise ExportFormatError(f"{where}: not base64") from None
    if len(raw) != merkle.HASH_SIZE or not isinstance(text, str):
        raise ExportFormatError(f"{where}: not a base64 SHA-256 hash")
    return raw


def _listing(directory: Path) -> dict[str, os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return {entry.name: entry for entry in it}
    except OSError:
        raise ExportFormatError(f"{directory.name}: not a readable export directory") from None


def read_export_key(directory: Path) -> Verifier | None:
    """The key the export carries in ``verifier.key`` (not trusted: for pinning on first use), or None."""
    try:
        text = (directory / "verifier.key").read_text(encoding="ascii").strip()
        return Verifier.from_string(text)
    except (OSError, UnicodeDecodeError, CheckpointError):
        return None


def export_origin(directory: Path) -> str | None:
    """The origin the export's manifest states (not yet verified), or None if it cannot be read."""
    try:
        manifest = json.loads((directory / "manifest.json").read_bytes())
    except (OSError, ValueError):
        return None
    origin = manifest.get("origin") if isinstance(manifest, dict) else None
    return origin if isinstance(origin, str) else None


# --- the signed manifest ---------------------------------------------------------------------


def _check_key(directory: Path, key: Verifier) -> None:
    carried = read_export_key(directory)
    if carried is not None and carried != key:
        raise KeyTrustError(
            f"this export is signed by another key ({carried.label}) than the one you trust for its log "
            f"({key.label}): it was re-signed by another installation, or the log's key changed",
            carried=carried.label, trusted=key.label)
    if carried is None:
        raise ExportFormatError("verifier.key: missing or not a verifier key (name+keyid+base64)",
                                file="verifier.key")


def _open_manifest(directory: Path, key: Verifier) -> tuple[dict[str, Any], bytes]:
    manifest_bytes = _read_bytes(directory, "manifest.json")
    signature = _read_text(directory, "manifest.sig")
    try:
        signed = open_note(signature, key)
    except CheckpointError as exc:
        try:
            by = ", ".join(signers_of(signature))
        except CheckpointError:
            by = "nobody (malformed)"
        raise CheckpointError(f"manifest.sig: not signed by the key you trust ({key.label}; signed by {by}): "
                              f"{exc.detail}", file="manifest.sig") from None
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    if signed != manifest_statement(digest):
        raise ExportFormatError(f"manifest.json: changed after it was signed (its SHA-256 is {digest}; "
                                "manifest.sig signs another)", file="manifest.json")
    manifest = _parse_json(manifest_bytes, "manifest.json")  # exactly the bytes whose digest was signed
    _check_manifest_fields(manifest)
    return manifest, manifest_bytes


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_manifest_fields(manifest: Any) -> None:
    def bad(detail: str) -> ExportFormatError:
        return ExportFormatError(f"manifest.json: {detail}", file="manifest.json")

    if not isinstance(manifest, dict) or (manifest.get("format"), manifest.get("hash_alg"),
                                          manifest.get("hash_encoding")) != (EXPORT_FORMAT, "sha256", "base64"):
        raise bad(f"not a {EXPORT_FORMAT} manifest (sha256, base64)")
    layout = manifest.get("layout")
    if layout not in LAYOUT_FILES:
        raise bad(f"unknown layout {layout!r}")
    expected = _MANIFEST_FIELDS | (_RANGE_FIELDS if layout == "range" else frozenset())
    if set(manifest) != expected:
        raise bad(f"fields {sorted(set(manifest) ^ expected)} missing or not part of the format")
    files = manifest["files"]
    if not isinstance(files, dict) or set(files) != LAYOUT_FILES[layout] or not all(
            isinstance(v, str) and len(v) == 64 for v in files.values()):
        raise bad(f"its list of files is not the {layout} layout's, each with a SHA-256 in hex")
    counts = ["tree_size", "entries", *(["start", "end"] if layout == "range" else [])]
    if not all(_is_count(manifest[name]) for name in counts) or not isinstance(manifest["origin"], str) \
            or not isinstance(manifest["created_at"], str) or not isinstance(manifest["root_hash"], str):
        raise bad("origin, created_at, root_hash, tree_size, entries (and start, end) are not of their types")
    filters = manifest["filters"]
    if not isinstance(filters, dict) or not set(filters) <= _FILTER_FIELDS:
        raise bad("filters holds names the format does not have")


def _check_listing(directory: Path, manifest: dict[str, Any]) -> None:
    expected = set(manifest["files"]) | SIGNATURE_FILES
    listing = _listing(directory)
    for name in sorted(set(listing) - expected):
        raise ExportFormatError(f"{name}: not listed in the signed manifest; an export holds only the files its "
                                "manifest lists, so it is refused", file=name)
    for name in sorted(expected - set(listing)):
        raise ExportFormatError(f"{name}: listed in the signed manifest but missing", file=name)
    for name, entry in sorted(listing.items()):
        if entry.is_symlink() or not entry.is_file():
            raise ExportFormatError(f"{name}: not a plain file (a link or a folder)", file=name)


# --- entries ---------------------------------------------------------------------------------


def _entry_lines(directory: Path, expected: int) -> list[bytes]:
    data = _read_bytes(directory, "entries.jsonl")
    if data and not data.endswith(b"\n"):
        raise ExportFormatError("entries.jsonl: the last line is not terminated (truncated file?)",
                                file="entries.jsonl")
    lines = data.split(b"\n")[:-1] if data else []
    if len(lines) != expected:
        raise ExportFormatError(f"entries.jsonl holds {len(lines)} entries, the signed manifest {expected}",
                                file="entries.jsonl")
    return lines


def _verify_range(directory: Path, manifest: dict[str, Any], checkpoint: Checkpoint,
                  lines: list[bytes]) -> list[bytes]:
    start, end = manifest["start"], manifest["end"]
    if end - start != len(lines) or not 0 <= start < end <= checkpoint.size:
        raise ExportFormatError(f"manifest.json: range {start}..{end - 1} does not fit {len(lines)} entries in a "
                                f"tree of size {checkpoint.size}", file="manifest.json")
    leaf_hashes = merkle.leaf_hashes_of(lines)
    stated = _read_bytes(directory, "leaf_hashes.bin")
    if stated != b"".join(leaf_hashes):
        for position, computed in enumerate(leaf_hashes):
            if stated[32 * position:32 * position + 32] != computed:
                raise InclusionProofError(
                    f"entry {start + position}: leaf hash {computed.hex()} recomputed from the entry differs from "
                    "leaf_hashes.bin: the entry was changed after it was logged", index=start + position)
        raise ExportFormatError("leaf_hashes.bin: longer than the entries", file="leaf_hashes.bin")
    boundary = _parse_json(_read_bytes(directory, "range.json"), "range.json")
    left_keys, right_keys = merkle.range_keys(0, start), merkle.range_keys(end, checkpoint.size)
    if not isinstance(boundary, dict) or set(boundary) != {"start", "end", "left", "right"} \
            or (boundary["start"], boundary["end"]) != (start, end) \
            or not isinstance(boundary["left"], list) or not isinstance(boundary["right"], list) \
            or len(boundary["left"]) != len(left_keys) or len(boundary["right"]) != len(right_keys):
        raise ExportFormatError(f"range.json: its boundary nodes do not fit entries {start}..{end - 1} of a tree of "
                                f"size {checkpoint.size}", file="range.json")
    tiles = merkle.range_nodes(start, leaf_hashes)
    tiles.update({k: _b64d(v, "range.json") for k, v in zip(left_keys, boundary["left"], strict=True)})
    tiles.update({k: _b64d(v, "range.json") for k, v in zip(right_keys, boundary["right"], strict=True)})
    root = merkle.root_from_tiles(checkpoint.size, tiles)
    if root != checkpoint.root_hash:
        raise InclusionProofError(
            f"entries {start}..{end - 1} with the boundary nodes of range.json give root {root.hex()}, the signed "
            f"checkpoint says {checkpoint.root_hash.hex()}: an entry or a boundary node was changed",
            index=start, size=checkpoint.size, expected=checkpoint.root_hash.hex(), got=root.hex())
    return leaf_hashes


def _verify_proofs(directory: Path, checkpoint: Checkpoint, lines: list[bytes],
                   progress: Progress | None) -> list[int]:
    proof_lines = _read_bytes(directory, "proofs.jsonl").split(b"\n")
    if len(proof_lines) != len(lines) + 1 or proof_lines[-1]:
        raise ExportFormatError("proofs.jsonl and entries.jsonl have different numbers of lines",
                                file="proofs.jsonl")
    indexes: list[int] = []
    last_index = -1
    for position, (line, proof_line) in enumerate(zip(lines, proof_lines, strict=False)):
        where = f"proofs.jsonl line {position + 1}"
        proof = _parse_json(proof_line, where)
        index = proof.get("index") if isinstance(proof, dict) else None
        if not isinstance(proof, dict) or set(proof) != {"index", "proof"} or not _is_count(index) \
                or not isinstance(proof["proof"], list):
            raise ExportFormatError(f"{where}: not {{\"index\", \"proof\"}}", file="proofs.jsonl")
        assert isinstance(index, int)  # noqa: S101 - narrowed by _is_count
        if index <= last_index:
            raise ExportFormatError(f"{where}: index {index} is not above the line before's {last_index}; lines "
                                    "pair with entries in increasing index order", file="proofs.jsonl")
        last_index = index
        path = [_b64d(p, f"entry {index} proof") for p in proof["proof"]]
        try:
            merkle.verify_inclusion(merkle.leaf_hash(line), index, checkpoint.size, path, checkpoint.root_hash)
        except InclusionProofError as exc:
            raise InclusionProofError(f"entry {index}: its inclusion proof does not lead to the signed root "
                                      f"(the entry or its proof was changed): {exc.detail}", index=index,
                                      size=checkpoint.size, expected=exc.expected, got=exc.got) from None
        indexes.append(index)
        if progress and position % 1000 == 0:
            progress(position, len(lines))
    return indexes


def _matches(event: dict[str, Any], filters: dict[str, Any]) -> str | None:
    """The first filter the event does not meet, or None."""
    wanted_type = filters.get("event_type")
    if wanted_type is not None and not (event["type"].startswith(wanted_type[:-1]) if wanted_type.endswith(".*")
                                        else event["type"] == wanted_type):
        return f"type {event['type']!r} is not {wanted_type!r}"
    if "subject" in filters and event.get("subject") != filters["subject"]:
        return f"subject {event.get('subject')!r} is not {filters['subject']!r}"
    if "actor" in filters and event["actor"]["id"] != filters["actor"]:
        return f"actor {event['actor']['id']!r} is not {filters['actor']!r}"
    for bound, before in (("since", False), ("until", True)):
        if bound in filters:
            try:
                limit = datetime.fromisoformat(str(filters[bound]))
            except ValueError:
                return f"filters.{bound} is not a time"
            when = event_time(event)
            if (when >= limit) if before else (when < limit):
                return f"time {event['time']} is outside filters.{bound} {filters[bound]}"
    return None


def _check_events(lines: list[bytes], indexes: list[int], filters: dict[str, Any]) -> None:
    start, end = filters.get("start"), filters.get("end")
    for index, line in zip(indexes, lines, strict=True):
        try:
            event = parse_event(line)
        except EventFormatError as exc:
            raise VerificationError(f"entry {index}: {exc}", index=index) from None
        outside = None
        if (isinstance(start, int) and index < start) or (isinstance(end, int) and index >= end):
            outside = f"index {index} is outside filters.start/end [{start}, {end})"
        outside = outside or _matches(event, filters)
        if outside is not None:
            raise VerificationError(f"entry {index}: does not match the export's filters: {outside}", index=index)


# --- the whole check -------------------------------------------------------------------------


def verify_audit_export(directory: Path, key: Verifier, *, trusted_checkpoint: str | None = None,
                        check_events: bool = False, progress: Progress | None = None,
                        witnesses: Sequence[CosignerKey] = (), min_witnesses: int | None = None,
                        ) -> AuditExportResult:
    """Verify the export in ``directory`` with ``key``; a summary, or the first disagreement raised.

    With ``witnesses`` (or ``min_witnesses``), the checkpoint must also carry valid cosignatures by
    at least ``min_witnesses`` (default: all) of those witness keys.
    """
    _check_key(directory, key)
    manifest, _ = _open_manifest(directory, key)
    _check_listing(directory, manifest)
    checkpoint_note = _read_text(directory, "checkpoint.txt")
    try:
        checkpoint = open_checkpoint(checkpoint_note, key)
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint.txt: {exc.detail}", file="checkpoint.txt") from None
    cosigned: tuple[str, ...] = ()
    if witnesses or min_witnesses:
        minimum = len({w.label for w in witnesses}) if min_witnesses is None else min_witnesses
        cosigned = tuple(c.key.label for c in require_cosignatures(checkpoint_note, witnesses, minimum))
    if (manifest["tree_size"], manifest["origin"], manifest["root_hash"]) != (
            checkpoint.size, checkpoint.origin, b64encode(checkpoint.root_hash)):
        raise ExportFormatError(
            f"manifest.json: tree size {manifest['tree_size']}, origin {manifest['origin']!r} and root differ from "
            f"the signed checkpoint's {checkpoint.size}, {checkpoint.origin!r}", file="manifest.json")
    lines = _entry_lines(directory, manifest["entries"])
    leaf_hashes: list[bytes] | None = None
    if manifest["layout"] == "range":
        leaf_hashes = _verify_range(directory, manifest, checkpoint, lines)
        indexes = list(range(manifest["start"], manifest["end"]))
    else:
        indexes = _verify_proofs(directory, checkpoint, lines, progress)
    if check_events:
        _check_events(lines, indexes, manifest["filters"])
    for name, expected in sorted(manifest["files"].items()):
        if name in _CONTENT_VERIFIED:
            continue
        got = hashlib.sha256(_read_bytes(directory, name)).hexdigest()
        if got != expected:
            raise ExportFormatError(f"{name}: changed after the export was made (SHA-256 {got}, the signed manifest "
                                    f"says {expected})", file=name)
    if progress:
        progress(len(lines), len(lines))
    trusted = None
    if trusted_checkpoint is not None:
        consistency = _parse_json(_read_bytes(directory, "consistency.json"), "consistency.json")
        trusted = check_saved_checkpoint(trusted_checkpoint, checkpoint, key, consistency,
                                         leaf_hashes if manifest.get("start") == 0 else None)
    return AuditExportResult(
        entries=len(lines), tree_size=checkpoint.size, root_hash=b64encode(checkpoint.root_hash),
        origin=checkpoint.origin, layout=manifest["layout"], key=key.to_string(), checkpoint_time=checkpoint.time,
        first_index=indexes[0] if indexes else None, last_index=indexes[-1] if indexes else None,
        filters=dict(manifest["filters"]), trusted_size=None if trusted is None else trusted.size,
        trusted_time=None if trusted is None else trusted.time, cosigned_by=cosigned)
