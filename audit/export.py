"""Export part of the audit log as a directory an auditor can take away and verify offline.

Format ``tarcza-audit-export/v1`` (hashes base64 unless a name says ``sha256``, which is hex):

* ``entries.jsonl``: one line per entry, the leaf input itself (the event's RFC 8785
  canonical JSON, which never holds a raw newline), in index order;
* one of two proof layouts, named by ``layout`` in the manifest:
  ``range`` (the exported indexes are consecutive, ``start`` to ``end - 1``):
  ``leaf_hashes.bin`` (32 bytes per entry, to name the first entry that differs) and
  ``range.json`` ``{"start", "end", "left": [...], "right": [...]}``, the stored nodes that
  tile the tree left of ``start`` and right of ``end``; the verifier recomputes the tree
  over the entries and, with those nodes, the root;
  ``proofs`` (any other selection, e.g. one subject): ``proofs.jsonl``, one line per entry,
  ``{"index", "proof": [...]}``, its RFC 9162 inclusion proof;
* ``checkpoint.txt``: the C2SP signed note of the tree (size and root) the proofs lead to;
* ``consistency.json``: ``{"tree_size", "proofs": {"<earlier checkpoint size>": [...]}}``, so
  a checkpoint the auditor kept from before can be tied to this one;
* ``verifier.key``: the log's public key in signed-note verifier format;
* ``manifest.json``: format, layout, origin, filters, counts and the SHA-256 of each file;
* ``manifest.sig`` (written last): a signed note by the log key over
  ``tarcza-audit-export/v1\\nmanifest sha256 <hex>\\n``; no byte can change unnoticed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from audit import merkle, repository
from audit.repository import EntryFilter
from audit.service import AuditLog, CheckpointInfo, b64
from core.errors import InvalidInputError

EXPORT_FORMAT = "tarcza-audit-export/v1"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportSummary:
    directory: str
    entries: int
    tree_size: int
    root_hash: str
    origin: str
    layout: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def manifest_statement(sha256_hex: str) -> str:
    """The text the log key signs for an export's manifest (never a valid checkpoint body)."""
    return f"{EXPORT_FORMAT}\nmanifest sha256 {sha256_hex}\n"


def export_log(log: AuditLog, out_dir: Path, flt: EntryFilter, *, progress: Progress | None = None,
               chunk: int = 5000) -> ExportSummary:
    """Write the entries matching ``flt`` with what proves them against a signed checkpoint."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InvalidInputError(f"export directory {out_dir} exists and is not empty")
    checkpoint = _covering_checkpoint(log, flt)
    size = checkpoint.tree_size
    bounded = EntryFilter(flt.subject, flt.event_type, flt.actor, flt.since, flt.until, flt.start,
                          min(flt.end, size) if flt.end is not None else size)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with log.engine.connect() as conn:
        indexes = repository.query_indexes(conn, bounded)
        contiguous = bool(indexes) and indexes[-1] - indexes[0] + 1 == len(indexes)
        layout = "range" if contiguous else "proofs"
        with open(out_dir / "entries.jsonl", "wb") as entries_fh, \
                open(out_dir / ("leaf_hashes.bin" if contiguous else "proofs.jsonl"), "wb") as side_fh:
            done = 0
            for offset in range(0, len(indexes), chunk):
                part = indexes[offset:offset + chunk]
                rows = repository.query_entries(conn, EntryFilter(start=part[0], end=part[-1] + 1)) if contiguous \
                    else repository.query_entries(conn, bounded, after=part[0] - 1, limit=len(part))
                proofs = {} if contiguous else log.inclusion_proofs(conn, part, size)
                for row in rows:
                    entries_fh.write(bytes(row.leaf_input) + b"\n")
                    if contiguous:
                        side_fh.write(bytes(row.leaf_hash))
                    else:
                        index = int(row.idx)
                        side_fh.write(json.dumps({"index": index,
                                                  "proof": [b64(p) for p in proofs[index]]}).encode() + b"\n")
                done += len(rows)
                if progress:
                    progress(done, len(indexes))
        if contiguous:
            _write_range(conn, out_dir, indexes[0], indexes[-1] + 1, size)
        consistency = _consistency_from_earlier(conn, size)
    (out_dir / "checkpoint.txt").write_text(checkpoint.note, encoding="utf-8")
    (out_dir / "consistency.json").write_text(json.dumps({"tree_size": size, "proofs": consistency}, indent=1),
                                              encoding="utf-8")
    (out_dir / "verifier.key").write_text(log.verifier().to_string() + "\n", encoding="ascii")
    files = ["entries.jsonl", "checkpoint.txt", "consistency.json", "verifier.key",
             *(["leaf_hashes.bin", "range.json"] if contiguous else ["proofs.jsonl"])]
    manifest: dict[str, Any] = {
        "format": EXPORT_FORMAT, "hash_alg": "sha256", "hash_encoding": "base64", "origin": log.origin,
        "created_at": log.clock.now().isoformat(), "tree_size": size, "root_hash": b64(checkpoint.root_hash),
        "entries": len(indexes), "layout": layout, "filters": _filters_json(flt),
        "files": {name: _sha256_file(out_dir / name) for name in sorted(files)},
    }
    if contiguous:
        manifest.update(start=indexes[0], end=indexes[-1] + 1)
    manifest_text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    _write_durably(out_dir / "manifest.json", manifest_text)
    digest = hashlib.sha256(manifest_text.encode("utf-8")).hexdigest()
    _write_durably(out_dir / "manifest.sig", log.signer.sign_note(manifest_statement(digest)))
    return ExportSummary(str(out_dir), len(indexes), size, b64(checkpoint.root_hash), log.origin, layout)


def export_archive(log: AuditLog, flt: EntryFilter) -> tuple[io.BytesIO, str]:
    """:func:`export_log` packed in memory as a ``.tar.gz`` (one folder, ``audit-export``), for a
    download: the archive, rewound, and its file name (``audit-export-<tree size>.tar.gz``)."""
    with tempfile.TemporaryDirectory(prefix="tarcza-export-") as tmp:
        out = Path(tmp) / "audit-export"
        summary = export_log(log, out, flt)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(out, arcname="audit-export")
    buffer.seek(0)
    return buffer, f"audit-export-{summary.tree_size}.tar.gz"


def _write_range(conn: Connection, out_dir: Path, start: int, end: int, size: int) -> None:
    left_keys, right_keys = merkle.root_keys(start), merkle.range_keys(end, size)
    found = repository.get_nodes(conn, [*left_keys, *right_keys])
    data = {"start": start, "end": end, "left": [b64(found[k]) for k in left_keys],
            "right": [b64(found[k]) for k in right_keys]}
    (out_dir / "range.json").write_text(json.dumps(data, indent=1), encoding="utf-8")


def _consistency_from_earlier(conn: Connection, size: int) -> dict[str, list[str]]:
    earlier = [int(c.tree_size) for c in repository.list_checkpoints(conn, max_size=size) if 0 < c.tree_size < size]
    keys: set[merkle.NodeKey] = set()
    for s in earlier:
        keys |= merkle.consistency_proof_keys(s, size)
    found = repository.get_nodes(conn, keys)
    return {str(s): [b64(p) for p in merkle.consistency_proof(s, size, found)] for s in earlier}


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
