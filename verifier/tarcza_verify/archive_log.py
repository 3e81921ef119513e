"""The ``log/`` part of a subject archive: an audit export of the subject's entries, read for what it backs.

Shared by the verifier (:mod:`tarcza_verify.subject_archive`) and Tarcza's archive builder, which
refuses to write an archive these very checks would refuse. Reading only: the part's proofs and
signatures are :func:`tarcza_verify.audit_export.verify_audit_export`'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tarcza_verify.audit_export import EXPORT_FORMAT as LOG_EXPORT_FORMAT

__all__ = ["ENTRY_NAME", "Fail", "LogPart", "read_log_part", "unbacked"]

ENTRY_NAME: Final = re.compile(r"(?:log/|recordings/)?[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")
"""Every file name the archive format may hold: flat names at the top, in ``log/`` and in ``recordings/``."""
Fail = Callable[[str, str], Exception]  # (file, detail) -> the error to raise


@dataclass(frozen=True)
class LogPart:
    """What the archive's ``log/`` export holds (its files, checkpoint and entries by index)."""

    names: tuple[str, ...]
    origin: str
    tree_size: int
    root_hash: str
    checkpoint: str
    indexes: tuple[int, ...]
    entries: Mapping[int, Mapping[str, Any]]

    def manifest_json(self) -> dict[str, Any]:
        """The ``log`` object of the archive's manifest."""
        return {"origin": self.origin, "tree_size": self.tree_size, "root_hash": self.root_hash,
                "checkpoint": self.checkpoint, "entries": list(self.indexes)}


def read_log_part(directory: Path, fail: Fail) -> LogPart:
    """Read an audit-log export directory (its format and files; not its proofs: see verify_audit_export)."""
    try:
        manifest = json.loads((directory / "manifest.json").read_bytes())
        if not isinstance(manifest, dict) or manifest.get("format") != LOG_EXPORT_FORMAT:
            raise fail("log/manifest.json", f"log/manifest.json: not a {LOG_EXPORT_FORMAT} manifest")
        expected = {*manifest["files"], "manifest.json", "manifest.sig"}
        present = {p.name for p in directory.iterdir()}
        for path in sorted(directory.iterdir()):
            if not path.is_file() or path.is_symlink() or not ENTRY_NAME.fullmatch(path.name):
                raise fail(f"log/{path.name}", f"log/{path.name}: not a plain file of an audit export")
        if present != expected:
            odd = sorted(present ^ expected)
            raise fail(f"log/{odd[0]}", f"log/: files {odd} missing or unexpected in the audit export")
        lines = (directory / "entries.jsonl").read_bytes().split(b"\n")[:-1]
        if manifest["layout"] == "range":
            indexes = tuple(range(int(manifest["start"]), int(manifest["end"])))
        else:
            indexes = tuple(int(json.loads(line)["index"])
                            for line in (directory / "proofs.jsonl").read_bytes().split(b"\n")[:-1])
        if len(indexes) != len(lines):
            raise fail("log/entries.jsonl", "log/entries.jsonl: entry and index counts differ")
        entries = {index: json.loads(line) for index, line in zip(indexes, lines, strict=True)}
        return LogPart(tuple(sorted(present)), str(manifest["origin"]), int(manifest["tree_size"]),
                       str(manifest["root_hash"]), (directory / "checkpoint.txt").read_text(encoding="utf-8"),
                       indexes, entries)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise fail("log/", f"log/: not a readable audit export ({type(exc).__name__})") from None


def unbacked(data: Mapping[str, Any], log: LogPart | None) -> str | None:
    """The first claim of ``data`` that names a log entry the log part does not back, or None."""
    entries = log.entries if log is not None else {}
    for position, contact in enumerate(data.get("contacts") or []):
        index = contact.get("log_index")
        if index is None:
            continue
        entry = entries.get(index)
        if entry is None:
            return f"contacts[{position}]: log entry {index} is not in the log export"
        if (entry.get("id"), entry.get("type")) != (contact.get("event_id"), contact.get("event_type")):
            return f"contacts[{position}]: log entry {index} is another event than the contact states"
    for position, recording in enumerate(data.get("recordings") or []):
        index = recording.get("log_index")
        if index is None:
            continue
        entry = entries.get(index)
        payload = entry.get("payload") if entry is not None else None
        if entry is None or not isinstance(payload, dict):
            return f"recordings[{position}]: log entry {index} is not in the log export"
        if (entry.get("type"), payload.get("recording_id"), payload.get("sha256"), payload.get("size")) != (
                "recording.stored", recording.get("recording_id"), recording.get("sha256"), recording.get("size")):
            return f"recordings[{position}]: log entry {index} does not record this recording"
    erasure = data.get("erasure")
    index = erasure.get("tombstone_log_index") if isinstance(erasure, dict) else None
    if index is not None and index not in entries:
        return f"erasure: log entry {index} is not in the log export"
    return None
