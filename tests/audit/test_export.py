"""Export and offline verification: an export made now verifies; any changed byte fails it."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from audit.errors import ConsistencyProofError, InclusionProofError, VerificationError
from audit.export import export_log
from audit.repository import EntryFilter
from audit.service import AuditLog
from audit.verify import verify_export

from .conftest import SUBJECT, contact

FILES = ["entries.jsonl", "leaf_hashes.bin", "range.json", "checkpoint.txt", "consistency.json", "verifier.key",
         "manifest.json", "manifest.sig"]


@pytest.fixture
def exported(audit_log: AuditLog, tmp_path: Path) -> tuple[AuditLog, Path, str]:
    """A log of 40 entries (two subjects), checkpoints at 10 and 25, exported whole."""
    for i in range(40):
        contact(audit_log, subject=SUBJECT if i % 3 == 0 else "sub_OTHERSUBJECT01")
        if i + 1 == 10:
            first = audit_log.issue_checkpoint().note
        if i + 1 == 25:
            audit_log.issue_checkpoint()
    out = tmp_path / "export"
    summary = export_log(audit_log, out, EntryFilter())
    assert summary.entries == 40
    return audit_log, out, first


class TestExport:
    def test_export_made_now_verifies(self, exported: tuple[AuditLog, Path, str]) -> None:
        """A fresh export verifies offline, with and without a trusted earlier checkpoint."""
        log, out, first = exported
        result = verify_export(out, trusted_key=log.verifier().to_string(), trusted_checkpoint=first)
        assert (result.entries, result.tree_size, result.trusted_size) == (40, 40, 10)
        assert sorted(p.name for p in out.iterdir()) == sorted(FILES)

    def test_subject_export_holds_only_that_subject(self, audit_log: AuditLog, tmp_path: Path) -> None:
        """A subject filter exports that subject's entries, each with its own proof."""
        for i in range(12):
            contact(audit_log, subject=SUBJECT if i % 4 == 0 else "sub_OTHERSUBJECT01")
        export_log(audit_log, tmp_path / "s", EntryFilter(subject=SUBJECT))
        lines = (tmp_path / "s" / "proofs.jsonl").read_text().splitlines()
        assert [json.loads(line)["index"] for line in lines] == [0, 4, 8]
        result = verify_export(tmp_path / "s", check_events=True)
        assert (result.entries, result.layout) == (3, "proofs")
        for line in (tmp_path / "s" / "entries.jsonl").read_text().splitlines():
            assert json.loads(line)["subject"] == SUBJECT

    def test_any_changed_byte_fails_verification(self, exported: tuple[AuditLog, Path, str], tmp_path: Path) -> None:
        """Changing any byte of any file of the export makes verification fail."""
        log, out, _ = exported
        rng = random.Random(6962)
        for name in FILES:
            size = (out / name).stat().st_size
            for position in rng.sample(range(size), min(size, 12)):
                copy = tmp_path / f"copy-{name}-{position}"
                shutil.copytree(out, copy)
                data = bytearray((copy / name).read_bytes())
                data[position] ^= 0x04
                (copy / name).write_bytes(bytes(data))
                with pytest.raises(VerificationError):
                    verify_export(copy, trusted_key=log.verifier().to_string())
                shutil.rmtree(copy)

    def test_changed_entry_is_named(self, exported: tuple[AuditLog, Path, str]) -> None:
        """A changed entry is reported by its index, before any file-level check."""
        _, out, _ = exported
        lines = (out / "entries.jsonl").read_bytes().split(b"\n")
        lines[17] = lines[17].replace(b'"sms"', b'"tel"')
        (out / "entries.jsonl").write_bytes(b"\n".join(lines))
        with pytest.raises(VerificationError, match="entry 17") as info:
            verify_export(out)
        assert info.value.extra["index"] == 17

    def test_entry_and_stated_hash_changed_together_is_caught(self, exported: tuple[AuditLog, Path, str]) -> None:
        """Rewriting an entry together with its stated leaf hash still fails on the signed root."""
        from audit import merkle

        _, out, _ = exported
        lines = (out / "entries.jsonl").read_bytes().split(b"\n")
        lines[17] = lines[17].replace(b'"sms"', b'"tel"')
        (out / "entries.jsonl").write_bytes(b"\n".join(lines))
        stated = bytearray((out / "leaf_hashes.bin").read_bytes())
        stated[17 * 32:18 * 32] = merkle.leaf_hash(lines[17])
        (out / "leaf_hashes.bin").write_bytes(bytes(stated))
        with pytest.raises(VerificationError, match="root"):
            verify_export(out)

    def test_sparse_export_names_the_entry(self, audit_log: AuditLog, tmp_path: Path) -> None:
        """In a per-subject export, a changed entry fails its own inclusion proof, named by index."""
        for i in range(12):
            contact(audit_log, subject=SUBJECT if i % 4 == 0 else "sub_OTHERSUBJECT01")
        out = tmp_path / "s"
        export_log(audit_log, out, EntryFilter(subject=SUBJECT))
        lines = (out / "entries.jsonl").read_bytes().split(b"\n")
        lines[1] = lines[1].replace(b'"sms"', b'"tel"')
        (out / "entries.jsonl").write_bytes(b"\n".join(lines))
        with pytest.raises(InclusionProofError, match="entry 4"):
            verify_export(out)

    def test_foreign_key_is_refused(self, exported: tuple[AuditLog, Path, str]) -> None:
        """An export re-signed with another key fails against the auditor's own copy of the key."""
        from audit.checkpoint import Signer

        _, out, _ = exported
        with pytest.raises(VerificationError, match="another key"):
            verify_export(out, trusted_key=Signer.generate("tarcza/test-log").verifier().to_string())

    def test_trusted_checkpoint_from_a_fork_is_refused(self, exported: tuple[AuditLog, Path, str]) -> None:
        """A trusted checkpoint whose tree is not a prefix of the export's fails the consistency check."""
        from audit import merkle
        from audit.checkpoint import Checkpoint

        log, out, _ = exported
        forged = log.signer.sign_checkpoint(Checkpoint(log.origin, 10, merkle.leaf_hash(b"another history")))
        with pytest.raises(ConsistencyProofError):
            verify_export(out, trusted_checkpoint=forged)

    def test_refuses_non_empty_directory(self, audit_log: AuditLog, tmp_path: Path) -> None:
        """Exporting into a directory that already holds files is refused."""
        from core.errors import InvalidInputError

        (tmp_path / "x").mkdir()
        (tmp_path / "x" / "keep.txt").write_text("mine")
        with pytest.raises(InvalidInputError, match="not empty"):
            export_log(audit_log, tmp_path / "x", EntryFilter())
        assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
