"""tarcza_verify.audit_export: every rule of the export format, each refusing an export that breaks it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from audit.checkpoint import Signer
from audit.export import export_log
from audit.repository import EntryFilter
from audit.service import AuditLog
from core.db import make_engine
from tarcza_verify import merkle
from tarcza_verify.audit_export import manifest_statement, verify_audit_export
from tarcza_verify.errors import (
    CheckpointError,
    ConsistencyProofError,
    ExportFormatError,
    ForkError,
    InclusionProofError,
    KeyTrustError,
    VerificationError,
)
from tarcza_verify.note import Checkpoint, parse_checkpoint_body

from .conftest import ORIGIN, SUBJECT, Sample, build_sample


@pytest.fixture
def copy(sample: Sample, tmp_path: Path) -> Callable[[Path], Path]:
    """A private copy of one of the sample's exports."""

    def make(source: Path) -> Path:
        target = tmp_path / source.name
        shutil.copytree(source, target)
        return target

    return make


def resign(directory: Path, signer: Signer, change: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Re-hash every file into the manifest, apply ``change`` to it, and sign it again with ``signer``: what
    only the log key's holder can do, so that a rule other than the signature is what refuses."""
    manifest = json.loads((directory / "manifest.json").read_bytes())
    for name in manifest["files"]:
        manifest["files"][name] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    if change is not None:
        change(manifest)
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    (directory / "manifest.json").write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    (directory / "manifest.sig").write_text(signer.sign_note(manifest_statement(digest)))


class TestGenuineExports:
    def test_range_export_verifies_with_its_time(self, sample: Sample) -> None:
        """A whole-log export verifies in the range layout and reports its checkpoint's issue time."""
        result = verify_audit_export(sample.whole, sample.signer.verifier(), check_events=True)
        assert (result.entries, result.tree_size, result.layout, result.first_index, result.last_index) == (
            40, 40, "range", 0, 39)
        assert result.checkpoint_time is not None
        assert result.key == sample.signer.verifier().to_string()

    def test_subject_export_verifies_within_its_filter(self, sample: Sample) -> None:
        """A one-subject export verifies in the proofs layout, every entry within its subject filter."""
        result = verify_audit_export(sample.subject, sample.signer.verifier(), check_events=True)
        assert (result.entries, result.layout, result.filters) == (14, "proofs", {"subject": SUBJECT})


class TestFiles:
    def test_unlisted_file_is_refused(self, sample: Sample, copy: Callable[[Path], Path]) -> None:
        """A file the manifest does not list is refused, named, whatever it holds."""
        out = copy(sample.whole)
        (out / ".DS_Store").write_bytes(b"")
        with pytest.raises(ExportFormatError, match=r"\.DS_Store: not listed in the signed manifest") as caught:
            verify_audit_export(out, sample.signer.verifier())
        assert caught.value.extra["file"] == ".DS_Store"

    def test_folder_or_link_is_refused(self, sample: Sample, copy: Callable[[Path], Path]) -> None:
        """A folder, or a listed file that is a link, is refused."""
        out = copy(sample.whole)
        (out / "extra").mkdir()
        with pytest.raises(ExportFormatError, match="extra"):
            verify_audit_export(out, sample.signer.verifier())
        (out / "extra").rmdir()
        real = out.parent / "consistency.real"
        (out / "consistency.json").rename(real)
        os.symlink(real, out / "consistency.json")
        with pytest.raises(ExportFormatError, match="not a plain file"):
            verify_audit_export(out, sample.signer.verifier())

    def test_missing_file_is_refused(self, sample: Sample, copy: Callable[[Path], Path]) -> None:
        """A file the manifest lists but the export lacks is refused, named."""
        out = copy(sample.whole)
        (out / "range.json").unlink()
        with pytest.raises(ExportFormatError, match=r"range\.json: listed in the signed manifest but missing"):
            verify_audit_export(out, sample.signer.verifier())

    def test_changed_file_is_named(self, sample: Sample, copy: Callable[[Path], Path]) -> None:
        """A listed file whose SHA-256 differs from the signed manifest's is named."""
        out = copy(sample.whole)
        data = json.loads((out / "consistency.json").read_text())
        (out / "consistency.json").write_text(json.dumps(data))  # same content, other spacing
        with pytest.raises(ExportFormatError, match=r"consistency\.json: changed after the export was made"):
            verify_audit_export(out, sample.signer.verifier())


class TestManifest:
    def test_another_key_is_refused_first(self, sample: Sample) -> None:
        """An export whose verifier.key is not the trusted key is refused as signed by another key."""
        with pytest.raises(KeyTrustError, match="another key"):
            verify_audit_export(sample.whole, Signer.generate(ORIGIN).verifier())

    def test_manifest_changed_after_signing_is_refused(self, sample: Sample, copy: Callable[[Path], Path]) -> None:
        """One changed byte of manifest.json no longer matches the digest manifest.sig signs."""
        out = copy(sample.whole)
        (out / "manifest.json").write_bytes((out / "manifest.json").read_bytes().replace(b'"entries": 40',
                                                                                         b'"entries": 41'))
        with pytest.raises(ExportFormatError, match=r"manifest\.json: changed after it was signed"):
            verify_audit_export(out, sample.signer.verifier())

    @pytest.mark.parametrize(("change", "message"), [
        (lambda m: m.update(note="hello"), "not part of the format"),
        (lambda m: m.pop("created_at"), "missing or not part of the format"),
        (lambda m: m.update(hash_encoding="hex"), "sha256, base64"),
        (lambda m: m.update(layout="tiles"), "unknown layout"),
        (lambda m: m["files"].update({"notes.txt": "0" * 64}), "list of files"),
        (lambda m: m.update(entries=-1), "of their types"),
        (lambda m: m["filters"].update(colour="red"), "filters"),
        (lambda m: m.update(root_hash=base64.b64encode(bytes(32)).decode()), "differ from the signed checkpoint"),
        (lambda m: m.update(origin="elsewhere.example.pl"), "differ from the signed checkpoint"),
        (lambda m: m.update(entries=39), "entries.jsonl holds 40 entries"),
        (lambda m: m.update(start=1), "does not fit"),
    ], ids=["extra-field", "missing-field", "encoding", "layout", "files", "negative", "filter-name", "root",
            "origin", "count", "range"])
    def test_manifest_rules(self, sample: Sample, copy: Callable[[Path], Path],
                            change: Callable[[dict[str, Any]], None], message: str) -> None:
        """A manifest breaking one rule of the format is refused even when the log key signed it."""
        out = copy(sample.whole)
        resign(out, sample.signer, change)
        with pytest.raises(VerificationError, match=message):
            verify_audit_export(out, sample.signer.verifier())


class TestEntries:
    def test_unterminated_last_line_is_refused(self, sample: Sample, copy: Callable[[Path], Path]) -> None:
        """Every entry line ends with a newline; a truncated file is refused."""
        out = copy(sample.whole)
        (out / "entries.jsonl").write_bytes((out / "entries.jsonl").read_bytes()[:-1])
        resign(out, sample.signer)
        with pytest.raises(ExportFormatError, match="not terminated"):
            verify_audit_export(out, sample.signer.verifier())

    def test_leaf_input_is_the_line_without_its_newline(self, sample: Sample) -> None:
        """Line i of entries.jsonl, without its newline, hashes to the leaf hash leaf_hashes.bin holds at i."""
        lines = (sample.whole / "entries.jsonl").read_bytes().split(b"\n")[:-1]
        stated = (sample.whole / "leaf_hashes.bin").read_bytes()
        assert [stated[32 * i:32 * i + 32] for i in range(len(lines))] == [merkle.leaf_hash(x) for x in lines]

    def test_range_nodes_are_tiled_as_specified(self, sample: Sample) -> None:
        """range.json's left nodes tile [0, start) largest first and its right nodes tile [end, size) left to
        right; with the entries' own nodes they fold to the signed root."""
        boundary = json.loads((sample.whole / "range.json").read_text())
        assert (boundary["start"], boundary["end"], boundary["left"], boundary["right"]) == (0, 40, [], [])
        assert merkle.range_keys(0, 13) == [(3, 0), (2, 2), (0, 12)]
        assert merkle.range_keys(13, 40) == [(0, 13), (1, 7), (4, 1), (3, 4)]

    def test_swapped_boundary_nodes_fail_on_the_root(self, tmp_path: Path) -> None:
        """A middle range export whose boundary nodes are reordered does not lead to the signed root."""
        mid = build_sample(tmp_path)
        engine = make_engine(f"sqlite:///{tmp_path / 'sample.db'}")
        log = AuditLog(engine, mid.signer, checkpoint_every_entries=10_000)
        try:
            export_log(log, tmp_path / "mid", EntryFilter(start=13, end=29))
        finally:
            log.close()
            engine.dispose()
        out = tmp_path / "mid"
        assert verify_audit_export(out, mid.signer.verifier()).layout == "range"
        boundary = json.loads((out / "range.json").read_text())
        assert (len(boundary["left"]), len(boundary["right"])) == (3, 3)
        boundary["left"].reverse()
        (out / "range.json").write_text(json.dumps(boundary))
        resign(out, mid.signer)
        with pytest.raises(InclusionProofError, match=r"boundary nodes of range\.json give root"):
            verify_audit_export(out, mid.signer.verifier())

    def test_proof_lines_pair_with_entries_in_increasing_order(self, sample: Sample,
                                                               copy: Callable[[Path], Path]) -> None:
        """Line i of proofs.jsonl proves entry line i, and indexes increase: a proof line moved away from its
        entry fails that entry's proof; entries and proofs moved together break the order."""
        out = copy(sample.subject)
        proofs = (out / "proofs.jsonl").read_bytes().split(b"\n")
        entries = (out / "entries.jsonl").read_bytes().split(b"\n")
        proofs[0], proofs[1] = proofs[1], proofs[0]
        (out / "proofs.jsonl").write_bytes(b"\n".join(proofs))
        resign(out, sample.signer)
        with pytest.raises(InclusionProofError, match="entry 3: its inclusion proof does not lead"):
            verify_audit_export(out, sample.signer.verifier())
        entries[0], entries[1] = entries[1], entries[0]
        (out / "entries.jsonl").write_bytes(b"\n".join(entries))
        resign(out, sample.signer)
        with pytest.raises(ExportFormatError, match="increasing index order"):
            verify_audit_export(out, sample.signer.verifier())

    def test_entry_out_of_its_filter_is_refused(self, sample: Sample, copy: Callable[[Path], Path]) -> None:
        """With events checked, an entry that does not match the export's stated filters is refused."""
        out = copy(sample.whole)
        resign(out, sample.signer, lambda m: m["filters"].update(subject=SUBJECT))
        verify_audit_export(out, sample.signer.verifier())  # the proofs hold; only the claim is wrong
        with pytest.raises(VerificationError, match="entry 1: does not match the export's filters"):
            verify_audit_export(out, sample.signer.verifier(), check_events=True)


class TestCheckpoint:
    def test_checkpoint_without_a_time_line_is_accepted(self, sample: Sample, copy: Callable[[Path], Path]) -> None:
        """An older checkpoint, without the time line, verifies; its time is reported as unknown."""
        out = copy(sample.whole)
        old = parse_checkpoint_body((out / "checkpoint.txt").read_text().split("\n\n")[0] + "\n")
        assert old.time is not None
        (out / "checkpoint.txt").write_text(sample.signer.sign_checkpoint(Checkpoint(old.origin, old.size,
                                                                                     old.root_hash)))
        resign(out, sample.signer)
        assert verify_audit_export(out, sample.signer.verifier()).checkpoint_time is None

    def test_checkpoint_of_another_key_is_refused(self, sample: Sample, copy: Callable[[Path], Path]) -> None:
        """checkpoint.txt must be signed by the trusted key (a manifest re-signed around it does not help)."""
        out = copy(sample.whole)
        old = parse_checkpoint_body((out / "checkpoint.txt").read_text().split("\n\n")[0] + "\n")
        (out / "checkpoint.txt").write_text(Signer.generate(ORIGIN).sign_checkpoint(old))
        resign(out, sample.signer)
        with pytest.raises(CheckpointError, match=r"checkpoint\.txt: unknown key ID"):
            verify_audit_export(out, sample.signer.verifier())


class TestSavedCheckpoint:
    def test_consistent_saved_checkpoints_verify(self, sample: Sample) -> None:
        """A checkpoint saved earlier verifies: from the entries (range from 0) or consistency.json (proofs)."""
        key = sample.signer.verifier()
        assert verify_audit_export(sample.whole, key, trusted_checkpoint=sample.first_checkpoint).trusted_size == 10
        result = verify_audit_export(sample.subject, key, trusted_checkpoint=sample.first_checkpoint)
        assert (result.trusted_size, result.trusted_time is not None) == (10, True)

    def test_fork_at_an_earlier_size_is_named(self, sample: Sample) -> None:
        """A saved checkpoint of another history at size 10 is a fork, in both layouts."""
        forked = sample.signer.sign_checkpoint(Checkpoint(ORIGIN, 10, merkle.leaf_hash(b"another history")))
        for directory in (sample.whole, sample.subject):
            with pytest.raises(ForkError, match=r"your saved checkpoint \(size 10, root .*forked or rewritten"):
                verify_audit_export(directory, sample.signer.verifier(), trusted_checkpoint=forked)

    def test_fork_at_the_same_size_is_named(self, sample: Sample) -> None:
        """A saved checkpoint of the same size with another root is a fork."""
        forked = sample.signer.sign_checkpoint(Checkpoint(ORIGIN, 40, merkle.leaf_hash(b"x")))
        with pytest.raises(ForkError, match="forked or rewritten"):
            verify_audit_export(sample.whole, sample.signer.verifier(), trusted_checkpoint=forked)

    def test_newer_saved_checkpoint_is_a_rollback(self, sample: Sample) -> None:
        """A saved checkpoint larger than the export's means the export is older than what was seen."""
        newer = sample.signer.sign_checkpoint(Checkpoint(ORIGIN, 41, merkle.leaf_hash(b"x")))
        with pytest.raises(ConsistencyProofError, match="newer than this export's checkpoint"):
            verify_audit_export(sample.whole, sample.signer.verifier(), trusted_checkpoint=newer)

    def test_size_without_a_proof_is_named(self, sample: Sample) -> None:
        """A saved checkpoint at a size the export has no consistency proof from says so (proofs layout)."""
        odd = sample.signer.sign_checkpoint(Checkpoint(ORIGIN, 7, merkle.leaf_hash(b"x")))
        with pytest.raises(ConsistencyProofError, match=r"no consistency proof from your saved checkpoint's size 7"):
            verify_audit_export(sample.subject, sample.signer.verifier(), trusted_checkpoint=odd)

    def test_saved_checkpoint_of_another_log_is_refused(self, sample: Sample) -> None:
        """A saved checkpoint of another origin is refused as another log's."""
        signer = Signer.generate("other.example.pl/log")
        other = signer.sign_checkpoint(Checkpoint("other.example.pl/log", 3, merkle.leaf_hash(b"x")))
        with pytest.raises(CheckpointError, match="does not verify with the key you trust"):
            verify_audit_export(sample.whole, sample.signer.verifier(), trusted_checkpoint=other)


class TestWitnesses:
    def test_cosigned_checkpoint_verifies_with_the_witness_keys(self, sample: Sample,
                                                                copy: Callable[[Path], Path]) -> None:
        """A checkpoint cosigned by a witness verifies with that witness's key required; the export is then
        refused when a second, absent witness is required too; others' cosignatures do not count."""
        from audit.cosignature import Cosigner
        from tarcza_verify.cosignature import CosignatureError

        out = copy(sample.whole)
        note = (out / "checkpoint.txt").read_text()
        body = note.split("\n\n")[0] + "\n"
        w1, w2, stranger = (Cosigner.generate(f"witness.example/w{i}") for i in (1, 2, 3))
        (out / "checkpoint.txt").write_text(note + w1.cosign(body, 1_800_000_000) + stranger.cosign(body, 1))
        resign(out, sample.signer)
        key = sample.signer.verifier()
        result = verify_audit_export(out, key, witnesses=[w1.verifier()])
        assert result.cosigned_by == (w1.verifier().label,)
        with pytest.raises(CosignatureError, match=r"1 valid cosignature.*2 required; missing: witness\.example/w2"):
            verify_audit_export(out, key, witnesses=[w1.verifier(), w2.verifier()])
        assert verify_audit_export(out, key, witnesses=[w1.verifier(), w2.verifier()], min_witnesses=1).cosigned_by

    def test_command_takes_witness_keys_and_files(self, sample: Sample, copy: Callable[[Path], Path],
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """`tarcza-verify --witness` takes a key or a file holding one; without the cosignature it refuses."""
        from audit.cosignature import Cosigner
        from tarcza_verify.cli import main

        out = copy(sample.whole)
        witness = Cosigner.generate("witness.example/w1")
        key_file, witness_file = tmp_path / "log.pub", tmp_path / "w1.pub"
        key_file.write_text(sample.signer.verifier().to_string() + "\n")
        witness_file.write_text(witness.verifier().to_string() + "\n")
        known = ["--known-logs", str(tmp_path / "known_logs")]
        assert main([str(out), "--key", str(key_file), "--witness", str(witness_file), *known]) == 1
        assert "0 valid cosignature" in capsys.readouterr().err
        note = (out / "checkpoint.txt").read_text()
        (out / "checkpoint.txt").write_text(note + witness.cosign(note.split("\n\n")[0] + "\n", 1_800_000_000))
        resign(out, sample.signer)
        assert main([str(out), "--key", str(key_file), "--witness", witness.verifier().to_string(), *known]) == 0
        assert "cosigned by 1 witness(es): witness.example/w1+" in capsys.readouterr().out
