"""Export a range of the audit log as a directory an auditor can take away.

Layout (format ``tarcza-audit-export/v1``; every hash base64 unless named ``sha256``):

* ``entries.jsonl``: one line per entry, ``{"index", "leaf_input", "leaf_hash"}``, where
  ``leaf_input`` is the event's canonical JSON (RFC 8785) as text;
* ``proofs.jsonl``: one line per entry, ``{"index", "tree_size", "proof": [...]}``, the
  RFC 9162 inclusion proof of the entry in the exported checkpoint's tree;
* ``checkpoint.txt``: the C2SP signed note that covers every exported entry;
* ``consistency.json``: ``{"tree_size", "proofs": {"<earlier checkpoint size>": [...]}}``,
  consistency proofs from every earlier checkpoint, so an auditor's trusted checkpoint can
  be tied to this one;
* ``verifier.key``: the log's public key in signed-note verifier format;
* ``manifest.json``: format, hash algorithm, origin, filters, counts and the SHA-256 of
  every other file;
* ``manifest.sig`` (written last): a signed note by the log key over
  ``tarcza-audit-export/v1\nmanifest sha256 <hex>\n``, so that no byte of the export can
  change without the verification failing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from audit import merkle, repository
from audit.repository import EntryFilter
from audit.service import AuditLog, CheckpointInfo, b64
from core.errors import InvalidInputError

EXPORT_FORMAT = "tarcza-audit-export/v1"
FILES = ("entries.jsonl", "proofs.jsonl", "checkpoint.txt", "consistency.json", "verifier.key")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportSummary:
    directory: str
    entries: int
    tree_size: int
    root_hash: str
    origin: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def export_log(log: AuditLog, out_dir: Path, flt: EntryFilter, *, progress: Progress | None = None,
               chunk: int = 2000) -> ExportSummary:
    """Write the entries matching ``flt``, with proofs to a checkpoint that covers them."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InvalidInputError(f"export directory {out_dir} exists and is not empty")
    checkpoint = _covering_checkpoint(log, flt)
    size = checkpoint.tree_size
    bounded = EntryFilter(flt.subject, flt.event_type, flt.actor, flt.since, flt.until, flt.start,
                          min(flt.end, size) if flt.end is not None else size)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    count = 0
    with log.engine.connect() as conn, \
            open(out_dir / "entries.jsonl", "w", encoding="utf-8") as entries_fh, \
            open(out_dir / "proofs.jsonl", "w", encoding="utf-8") as proofs_fh:
        total = len(repository.query_entries(conn, bounded)) if progress else 0
        after: int | None = None
        while True:
            rows = repository.query_entries(conn, bounded, after=after, limit=chunk)
            if not rows:
                break
            proofs = log.inclusion_proofs(conn, [int(r.idx) for r in rows], size)
            for row in rows:
                index = int(row.idx)
                entries_fh.write(json.dumps({"index": index, "leaf_input": bytes(row.leaf_input).decode("utf-8"),
                                             "leaf_hash": b64(bytes(row.leaf_hash))}, ensure_ascii=False) + "\n")
                proofs_fh.write(json.dumps({"index": index, "tree_size": size,
                                            "proof": [b64(p) for p in proofs[index]]}) + "\n")
            count += len(rows)
            after = int(rows[-1].idx)
            if progress:
                progress(count, total)
        earlier = [int(c.tree_size) for c in repository.list_checkpoints(conn, max_size=size) if c.tree_size < size]
        keys: set[merkle.NodeKey] = set()
        for s in earlier:
            if s > 0:
                keys |= merkle.consistency_proof_keys(s, size)
        found = repository.get_nodes(conn, keys)
        consistency = {str(s): [b64(p) for p in merkle.consistency_proof(s, size, found)] for s in earlier if s > 0}
    (out_dir / "checkpoint.txt").write_text(checkpoint.note, encoding="utf-8")
    (out_dir / "consistency.json").write_text(json.dumps({"tree_size": size, "proofs": consistency}, indent=1),
                                              encoding="utf-8")
    (out_dir / "verifier.key").write_text(log.verifier().to_string() + "\n", encoding="ascii")
    manifest = {
        "format": EXPORT_FORMAT, "hash_alg": "sha256", "hash_encoding": "base64", "origin": log.origin,
        "created_at": log.clock.now().isoformat(), "tree_size": size, "root_hash": b64(checkpoint.root_hash),
        "entries": count, "filters": _filters_json(flt),
        "files": {name: _sha256_file(out_dir / name) for name in FILES},
    }
    manifest_text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    _write_durably(out_dir / "manifest.json", manifest_text)
    digest = hashlib.sha256(manifest_text.encode("utf-8")).hexdigest()
    _write_durably(out_dir / "manifest.sig", log.signer.sign_note(manifest_statement(digest)))
    return ExportSummary(str(out_dir), count, size, b64(checkpoint.root_hash), log.origin)


def manifest_statement(sha256_hex: str) -> str:
    """The text the log key signs for an export's manifest (never a valid checkpoint body)."""
    return f"{EXPORT_FORMAT}\nmanifest sha256 {sha256_hex}\n"


def _covering_checkpoint(log: AuditLog, flt: EntryFilter) -> CheckpointInfo:
    latest = log.latest_checkpoint()
    current = log.size()
    wanted_end = current if flt.end is None else min(flt.end, current)
    if latest is None or latest.tree_size < wanted_end:
        return log.issue_checkpoint()
    return latest


def _filters_json(flt: EntryFilter) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in asdict(flt).items():
        if value is not None:
            out[key] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_durably(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
