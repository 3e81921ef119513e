"""The witness's decisions (C2SP tlog-witness add-checkpoint), on its real SQLite storage.

Each refusal is checked with the status the specification gives it; the witness is also
re-created from its file to show that what it refused stays refused.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit import merkle
from audit.checkpoint import Checkpoint, Signer
from audit.cosignature import Cosigner, verify_cosignatures
from audit.witness_client import format_add_checkpoint
from core.clock import FixedClock
from witness.errors import (
    InconsistentCheckpointError,
    MalformedRequestError,
    SizeConflictError,
    UnknownLogError,
    UntrustedCheckpointError,
)
from witness.service import Witness, origin_hash
from witness.storage import Latest, WitnessStore

from .conftest import TreeLog

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
ORIGIN = "tarcza.example/log-a"


@pytest.fixture
def store(tmp_path: Path) -> WitnessStore:
    return WitnessStore.create(tmp_path / "witness.db")


@pytest.fixture
def log() -> TreeLog:
    return TreeLog(ORIGIN).grow(5)


@pytest.fixture
def witness(store: WitnessStore, log: TreeLog) -> Witness:
    store.add_log(ORIGIN, log.signer.verifier().to_string(), now=NOW)
    return Witness(store, Cosigner.generate("witness.example/w1"), FixedClock(NOW))


def submit(witness: Witness, log: TreeLog, old: int, size: int | None = None, proof: list[bytes] | None = None,
           note: str | None = None) -> str:
    size = log.size if size is None else size
    body = format_add_checkpoint(old, log.proof(old, size) if proof is None else proof,
                                 log.note(size) if note is None else note)
    return witness.add_checkpoint(body)


class TestCosigning:
    def test_first_checkpoint_is_cosigned_with_a_timestamped_cosignature(self, witness: Witness,
                                                                         log: TreeLog) -> None:
        """Old size 0 and an empty proof: the answer is a cosignature line over the checkpoint at the clock's time."""
        lines = submit(witness, log, 0)
        [found] = verify_cosignatures(log.note() + lines, [witness.verifier()])
        assert found.timestamp == int(NOW.timestamp())
        latest = witness.store.latest(ORIGIN)
        assert latest is not None
        assert (latest.size, latest.root_hash) == (5, log.root())

    def test_consistent_growth_is_cosigned_and_recorded(self, witness: Witness, log: TreeLog) -> None:
        """A larger checkpoint with a valid consistency proof from the cosigned size is cosigned."""
        submit(witness, log, 0)
        log.grow(7)
        submit(witness, log, 5)
        latest = witness.store.latest(ORIGIN)
        assert latest is not None
        assert latest.size == 12

    def test_same_checkpoint_again_is_cosigned(self, witness: Witness, log: TreeLog) -> None:
        """The same size and root as cosigned before is cosigned again (not newer, but equal)."""
        submit(witness, log, 0)
        assert submit(witness, log, 5).startswith("\u2014 witness.example/w1 ")

    def test_monitoring_note_has_log_signature_and_cosignature(self, witness: Witness, log: TreeLog) -> None:
        """The stored latest checkpoint, served by origin hash, carries the log's signature and the cosignature."""
        lines = submit(witness, log, 0)
        note = witness.latest_note(origin_hash(ORIGIN))
        assert note == log.note() + lines
        assert witness.latest_note("0" * 64) is None


class TestRefusals:
    def test_unknown_origin_is_404(self, witness: Witness) -> None:
        """A checkpoint of a log the witness is not configured for is refused with 404."""
        with pytest.raises(UnknownLogError) as caught:
            submit(witness, TreeLog("tarcza.example/other").grow(2), 0)
        assert caught.value.status == 404

    def test_checkpoint_not_signed_by_the_log_key_is_403(self, witness: Witness, log: TreeLog) -> None:
        """Signed only by another key with the log's name: 403 (unknown keys are ignored, none is left)."""
        impostor = TreeLog(ORIGIN).grow(5)
        with pytest.raises(UntrustedCheckpointError) as caught:
            submit(witness, impostor, 0)
        assert caught.value.status == 403

    def test_bad_signature_by_the_log_key_is_403(self, witness: Witness, log: TreeLog) -> None:
        """A signature line of the log's key over other text: 403."""
        other = log.signer.sign_checkpoint(Checkpoint(ORIGIN, 5, bytes(32)))
        forged = log.note().split("\n\n")[0] + "\n\n" + other.split("\n\n")[1]
        with pytest.raises(UntrustedCheckpointError):
            submit(witness, log, 0, note=forged)

    @pytest.mark.parametrize("body", [
        b"", b"old 1\n", b"old 01\n\nx\n", b"old -1\n\nx\n", b"new 0\n\nx\n", b"old 0\nnot base64!\n\nx\n",
        b"old 0\n\nnot a note\n", b"\xff\xfe\n\n",
    ])
    def test_malformed_request_is_400(self, witness: Witness, body: bytes) -> None:
        """A body that is not 'old N', proof lines, a blank line and a signed checkpoint: 400."""
        with pytest.raises(MalformedRequestError) as caught:
            witness.add_checkpoint(body)
        assert caught.value.status == 400

    def test_more_than_63_proof_lines_is_400(self, witness: Witness, log: TreeLog) -> None:
        """A client must not send more than 63 consistency proof lines."""
        with pytest.raises(MalformedRequestError, match="at most 63"):
            submit(witness, log, 0, proof=[bytes(32)] * 64)

    def test_old_size_above_checkpoint_size_is_400(self, witness: Witness, log: TreeLog) -> None:
        """The old size may not exceed the checkpoint's size."""
        with pytest.raises(MalformedRequestError, match="greater than"):
            submit(witness, log, 6, proof=[])

    def test_wrong_old_size_is_409_with_the_cosigned_size(self, witness: Witness, log: TreeLog) -> None:
        """An old size other than the latest cosigned one: 409 naming that size (0 before any)."""
        with pytest.raises(SizeConflictError) as before:
            submit(witness, log, 3)
        assert before.value.latest_size == 0
        submit(witness, log, 0)
        log.grow(3)
        with pytest.raises(SizeConflictError) as after:
            submit(witness, log, 0)
        assert (after.value.status, after.value.latest_size) == (409, 5)

    def test_size_zero_with_a_root_other_than_empty_is_422(self, witness: Witness, log: TreeLog) -> None:
        """A checkpoint of size 0 must have the empty tree's root."""
        note = log.signer.sign_checkpoint(Checkpoint(ORIGIN, 0, bytes(32)))
        with pytest.raises(InconsistentCheckpointError) as caught:
            submit(witness, log, 0, proof=[], note=note)
        assert caught.value.status == 422
        empty = log.signer.sign_checkpoint(Checkpoint(ORIGIN, 0, merkle.empty_root()))
        submit(witness, log, 0, proof=[], note=empty)

    def test_proof_from_old_size_zero_is_422(self, witness: Witness, log: TreeLog) -> None:
        """From old size 0 the proof must be empty."""
        with pytest.raises(InconsistentCheckpointError, match="empty consistency proof"):
            submit(witness, log, 0, proof=[bytes(32)])


class TestForks:
    def test_same_size_different_tree_is_refused_and_kept_as_evidence(self, witness: Witness, log: TreeLog) -> None:
        """A second tree of the same size signed by the log's key: 422, and the refusal is recorded."""
        submit(witness, log, 0)
        fork = log.fork(3).grow(2)
        with pytest.raises(InconsistentCheckpointError, match="the log forked") as caught:
            submit(witness, fork, 5)
        assert caught.value.status == 422
        [refusal] = witness.store.refusals(ORIGIN)
        assert (refusal.old_size, refusal.tree_size) == (5, 5)

    def test_larger_fork_with_its_own_proof_is_refused(self, witness: Witness, log: TreeLog) -> None:
        """A forked tree grown larger, with a consistency proof of its own, fails against the cosigned root."""
        submit(witness, log, 0)
        fork = log.fork(4).grow(5)
        with pytest.raises(InconsistentCheckpointError, match="not consistent"):
            submit(witness, fork, 5)
        latest = witness.store.latest(ORIGIN)
        assert latest is not None
        assert latest.root_hash == log.root()

    def test_rewritten_old_entry_is_refused(self, witness: Witness, log: TreeLog) -> None:
        """The same log with entry 0 rewritten, then grown: its next checkpoint is refused."""
        submit(witness, log, 0)
        rewritten = log.fork(5)
        rewritten.leaves[0] = merkle.leaf_hash(b"a rewritten first entry")
        rewritten.grow(2)
        with pytest.raises(InconsistentCheckpointError):
            submit(witness, rewritten, 5)

    def test_witness_restarted_from_its_file_keeps_refusing(self, witness: Witness, log: TreeLog,
                                                            tmp_path: Path) -> None:
        """A new witness on the same file and key refuses the fork the first one refused, and accepts the log."""
        submit(witness, log, 0)
        fork = log.fork(2).grow(3)
        with pytest.raises(InconsistentCheckpointError):
            submit(witness, fork, 5)
        again = Witness(WitnessStore.open(tmp_path / "witness.db"), witness.cosigner, FixedClock(NOW))
        with pytest.raises(InconsistentCheckpointError):
            submit(again, fork, 5)
        log.grow(1)
        submit(again, log, 5)


class TestCompareAndSwap:
    def test_swap_succeeds_only_against_the_state_it_was_decided_on(self, store: WitnessStore) -> None:
        """Two updates made against the same stored latest: only the first lands."""
        store.add_log(ORIGIN, Signer.generate(ORIGIN).verifier().to_string(), now=NOW)
        first = Latest(ORIGIN, 5, b"\x01" * 32, "n5", 1)
        assert store.compare_and_swap(None, first)
        assert not store.compare_and_swap(None, Latest(ORIGIN, 3, b"\x02" * 32, "n3", 1))
        assert store.compare_and_swap(first, Latest(ORIGIN, 9, b"\x03" * 32, "n9", 2))
        assert not store.compare_and_swap(first, Latest(ORIGIN, 7, b"\x04" * 32, "n7", 2))
        latest = store.latest(ORIGIN)
        assert latest is not None
        assert latest.size == 9

    def test_concurrent_submissions_from_one_old_size_cosign_once(self, witness: Witness, log: TreeLog) -> None:
        """Eight threads submit eight different consistent checkpoints from one old size: exactly one is cosigned."""
        submit(witness, log, 0)
        log.grow(8)
        bodies = [format_add_checkpoint(5, log.proof(5, size), log.note(size)) for size in range(6, 14)]
        barrier = threading.Barrier(len(bodies))
        outcomes: list[str] = []

        def run(body: bytes) -> None:
            barrier.wait()
            try:
                witness.add_checkpoint(body)
                outcomes.append("cosigned")
            except SizeConflictError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=run, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict"] * 7 + ["cosigned"]
