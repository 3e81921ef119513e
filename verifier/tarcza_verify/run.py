"""One verification as a command runs it: find what the path holds, choose the key, verify, pin, report.

Used by ``tarcza-verify``, ``tarcza audit verify`` and ``tarcza gdpr verify-export`` alike, so
the three say the same thing about the same export. A path is an audit export directory, an
audit export packed as ``.tar.gz`` (one folder, as the server sends it), or a subject
archive (``.zip``).

Exit status of the commands (:attr:`Outcome.exit_code`): 0 verified with a key the auditor
trusts (given with ``--key``, or pinned earlier); 3 verified, but only with the key the export
carries, now pinned (first use: nothing yet ties it to the firm, and a loud warning says so);
1 refused.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tarcza_verify.audit_export import AuditExportResult, export_origin, read_export_key, verify_audit_export
from tarcza_verify.cosignature import CosignerKey
from tarcza_verify.errors import ExportFormatError, VerifyError
from tarcza_verify.note import Verifier
from tarcza_verify.subject_archive import ArchiveVerification, archive_key, verify_subject_archive
from tarcza_verify.trust import KnownLogs, TrustDecision, decide
from tarcza_verify.unpack import DEFAULT_LIMITS, Limits, unpack_tar_gz

__all__ = ["Outcome", "export_directory", "verify_path"]

Kind = Literal["audit-export", "subject-archive"]
_SOURCES = {"given": "given with --key", "pinned": "pinned", "first-use": "NOT YET TRUSTED: first use"}
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Outcome:
    """A verified export, the key decision behind it, and how to report it."""

    kind: Kind
    result: AuditExportResult | ArchiveVerification
    origin: str
    trust: TrustDecision
    known_logs: Path

    @property
    def exit_code(self) -> int:
        """0 for a trusted key, 3 when the key was the export's own, trusted on first use."""
        return 3 if self.trust.flagged else 0

    def warning(self) -> list[str]:
        """The loud lines to print (to stderr) when the key was trusted on first use; else none."""
        if not self.trust.flagged:
            return []
        key = self.trust.key
        return [f"WARNING: first use of the log {self.origin}: its key {key.label} was taken from the export itself",
                f"WARNING: and is now pinned in {self.known_logs}. Nothing yet ties this key to the firm: an export",
                "WARNING: re-signed by anyone would look the same. Compare it with the key the firm publishes",
                "WARNING: (`tarcza audit verifier-key`, GET /v1/audit/verifier-key), or verify with --key FILE:",
                f"WARNING:   {key.to_string()}"]

    def summary(self, now: datetime) -> str:
        """The one ``OK:`` line."""
        key = f"key {self.trust.key.label} ({_SOURCES[self.trust.source]})"
        result = self.result
        if isinstance(result, AuditExportResult):
            trusted = (f"; consistent with trusted checkpoint of size {result.trusted_size}"
                       if result.trusted_size is not None else "")
            if result.cosigned_by:
                trusted += f"; cosigned by {len(result.cosigned_by)} witness(es): {', '.join(result.cosigned_by)}"
            return (f"OK: {result.entries} entries verify against the checkpoint of size {result.tree_size} "
                    f"(origin {result.origin}, root {result.root_hash}), {issued(result.checkpoint_time, now)}"
                    f"{trusted}; {key}")
        return (f"OK: subject {result.subject}, {result.files} files, {result.log_entries} log entries under "
                f"checkpoint {result.tree_size} ({result.origin}), {issued(result.checkpoint_time, now)}, "
                f"{result.contacts_backed} contacts backed by the log, manifest "
                f"{'signed' if result.signed else 'not signed'}; {key}")

    def to_json(self) -> dict[str, Any]:
        """The result with the kind and the key decision."""
        return {**self.result.to_json(), "kind": self.kind, "origin": self.origin, "key_source": self.trust.source,
                "known_logs": str(self.known_logs)}


def issued(seconds: int | None, now: datetime) -> str:
    """When a checkpoint was issued, and how long ago, for a person judging freshness."""
    if seconds is None:
        return "issue time not recorded (a checkpoint from before time lines)"
    when = datetime.fromtimestamp(seconds, UTC)
    age = (now - when).total_seconds()
    if age < -300:
        ago = "in the future: check this computer's clock and the log's"
    elif age < 3600:
        ago = f"{max(int(age // 60), 0)} minutes ago"
    elif age < 3 * 86400:
        ago = f"{int(age // 3600)} hours ago"
    else:
        ago = f"{int(age // 86400)} days ago"
    return f"checkpoint issued {when.strftime('%Y-%m-%dT%H:%M:%SZ')} ({ago})"


def export_directory(root: Path) -> Path:
    """The folder of an unpacked ``.tar.gz`` that holds the export: the one with ``manifest.json``.

    Every file of the archive must be in that folder (a file elsewhere is not part of the export).
    """
    files = [p for p in root.rglob("*") if not p.is_dir()]
    manifests = [p for p in files if p.name == "manifest.json"]
    if len(manifests) != 1:
        raise ExportFormatError(f"the archive holds {len(manifests)} manifest.json files; an export holds one")
    folder = manifests[0].parent
    for path in files:
        if path.parent != folder:
            name = path.relative_to(root).as_posix()
            raise ExportFormatError(f"{name}: not part of the export (outside its folder); refusing the archive",
                                    file=name)
    return folder


@dataclass(frozen=True)
class _Options:
    trusted_checkpoint: str | None
    check_events: bool
    progress: Progress | None
    witnesses: Sequence[CosignerKey]
    min_witnesses: int | None


def _verify_directory(directory: Path, key: Verifier | None, known: KnownLogs, options: _Options) -> Outcome:
    carried = read_export_key(directory)
    origin = export_origin(directory) or (carried.name if carried else None)
    if origin is None:
        raise ExportFormatError(f"{directory}: not an audit export (no readable manifest.json or verifier.key)")
    decision = decide(origin, carried, known, key)
    result = verify_audit_export(directory, decision.key, trusted_checkpoint=options.trusted_checkpoint,
                                 check_events=options.check_events, progress=options.progress,
                                 witnesses=options.witnesses, min_witnesses=options.min_witnesses)
    return Outcome("audit-export", result, origin, decision, known.path)


def verify_path(path: Path, *, key: Verifier | None = None, known_logs: Path,
                trusted_checkpoint: str | None = None, check_events: bool = False,
                limits: Limits = DEFAULT_LIMITS, progress: Progress | None = None,
                witnesses: Sequence[CosignerKey] = (), min_witnesses: int | None = None) -> Outcome:
    """Verify what ``path`` holds with the key :func:`tarcza_verify.trust.decide` chooses; pin it if new.

    With ``witnesses``, the (log part's) checkpoint must carry valid cosignatures by at least
    ``min_witnesses`` (default: all) of them.
    """
    known = KnownLogs.load(known_logs)
    options = _Options(trusted_checkpoint, check_events, progress, witnesses, min_witnesses)
    if path.is_dir():
        outcome = _verify_directory(path, key, known, options)
    elif zipfile.is_zipfile(path):
        if trusted_checkpoint is not None:
            raise VerifyError("--trusted-checkpoint applies to audit exports; a subject archive's log part is "
                              "checked against the checkpoint it carries")
        origin, carried = archive_key(path)
        if origin is None:
            raise ExportFormatError(f"{path.name}: not a subject archive (no readable manifest.json)")
        decision = decide(origin, carried, known, key)
        result = verify_subject_archive(path, decision.key, limits=limits, witnesses=witnesses,
                                        min_witnesses=min_witnesses)
        outcome = Outcome("subject-archive", result, origin, decision, known.path)
    elif path.is_file():
        with tempfile.TemporaryDirectory(prefix="tarcza-verify-") as tmp:
            unpack_tar_gz(path, Path(tmp), limits)
            outcome = _verify_directory(export_directory(Path(tmp)), key, known, options)
    else:
        raise VerifyError(f"{path}: no such file or directory")
    if outcome.trust.pin:
        known.pin(outcome.origin, outcome.trust.key)
    return outcome


def outcome_json(outcome: Outcome) -> str:
    """The outcome as indented JSON (``--json``)."""
    return json.dumps(outcome.to_json(), indent=2, sort_keys=True)
