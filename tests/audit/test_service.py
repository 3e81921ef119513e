"""The audit log service on SQLite and PostgreSQL: append, idempotency, order, checkpoints, proofs, queries."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from audit import merkle
from audit.checkpoint import open_checkpoint
from audit.errors import ProofRangeError
from audit.repository import EntryFilter
from audit.service import AuditLog
from core.clock import FixedClock
from core.errors import ConflictError, InvalidInputError

from .conftest import AGENT, SUBJECT, contact


class TestAppend:
    def test_indexes_are_consecutive_from_zero(self, audit_log: AuditLog) -> None:
        """Appends get 0, 1, 2, ... and the tree size follows."""
        receipts = [contact(audit_log) for _ in range(5)]
        assert [r.index for r in receipts] == [0, 1, 2, 3, 4]
        assert audit_log.size() == 5
        assert receipts[0].leaf_hash == merkle.leaf_hash(_leaf(audit_log, 0))

    def test_idempotent_retry_is_logged_once(self, audit_log: AuditLog) -> None:
        """A retried append with the same key returns the first receipt and adds nothing."""
        first = contact(audit_log, key="retry-1")
        again = contact(audit_log, key="retry-1")
        assert (again.index, again.event_id, again.duplicate) == (first.index, first.event_id, True)
        assert audit_log.size() == 1

    def test_reused_key_for_another_event_is_a_conflict(self, audit_log: AuditLog) -> None:
        """The same idempotency key with a different event is refused, not silently merged."""
        contact(audit_log, key="k")
        with pytest.raises(ConflictError):
            contact(audit_log, channel="phone", key="k")

    def test_concurrent_appenders_get_a_total_order_without_gaps(self, audit_log: AuditLog) -> None:
        """Eight threads appending at once get distinct indexes 0..n-1 and the log verifies."""
        got: list[int] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(40):
                index = contact(audit_log).index
                with lock:
                    got.append(index)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == list(range(320))
        assert audit_log.verify_database().entries == 320

    def test_batch_append_shares_a_commit(self, audit_log: AuditLog) -> None:
        """append_many returns receipts in order, in the same batch (same tree size)."""
        from audit.events import build_event

        events = [(build_event("operator.note", actor=AGENT, time=datetime.now(UTC), payload={"code": f"c{i}"}),
                   f"b{i}") for i in range(50)]
        receipts = audit_log.append_many(events)
        assert [r.index for r in receipts] == list(range(50))
        assert {r.tree_size for r in receipts} == {50}


def _leaf(log: AuditLog, index: int) -> bytes:
    from audit import repository

    with log.engine.connect() as conn:
        row = repository.get_entry(conn, index)
    assert row is not None
    return bytes(row.leaf_input)


class TestCheckpoints:
    def test_checkpoint_signs_the_current_root(self, audit_log: AuditLog) -> None:
        """A checkpoint is a signed note of the tree size and root; reissuing at the same size returns it."""
        for _ in range(7):
            contact(audit_log)
        info = audit_log.issue_checkpoint()
        cp = open_checkpoint(info.note, audit_log.verifier(), origin=audit_log.origin)
        assert (cp.size, cp.root_hash) == (7, info.root_hash)
        leaves = [merkle.leaf_hash(_leaf(audit_log, i)) for i in range(7)]
        assert cp.root_hash == merkle.root_from_leaf_hashes(leaves)
        assert audit_log.issue_checkpoint().note == info.note

    def test_checkpoint_every_n_entries(self, engine: Engine, signer) -> None:  # type: ignore[no-untyped-def]
        """With N=5, a checkpoint is issued once 5 new entries have been committed."""
        log = AuditLog(engine, signer, checkpoint_every_entries=5)
        try:
            for _ in range(4):
                contact(log)
            assert log.latest_checkpoint() is None
            contact(log)
            latest = log.latest_checkpoint()
            assert latest is not None
            assert latest.tree_size == 5
        finally:
            log.close()

    def test_timer_checkpoint_only_when_grown(self, audit_log: AuditLog) -> None:
        """The periodic check issues a checkpoint only if the log grew since the last one."""
        contact(audit_log)
        assert audit_log.maybe_checkpoint(timer=True) is not None
        assert audit_log.maybe_checkpoint(timer=True) is None


class TestProofs:
    def test_inclusion_and_consistency_proofs_verify(self, audit_log: AuditLog) -> None:
        """Every entry's proof verifies against the checkpoint, and old sizes are consistent with new ones."""
        for _ in range(13):
            contact(audit_log)
        audit_log.issue_checkpoint()
        for index in range(13):
            p = audit_log.inclusion_proof(index)
            assert p.tree_size == 13
            assert p.checkpoint is not None
            merkle.verify_inclusion(p.leaf_hash, index, 13, p.proof, p.root_hash)
        for size1 in range(1, 14):
            c = audit_log.consistency_proof(size1)
            merkle.verify_consistency(c.size1, c.size2, c.root1, c.root2, c.proof)

    def test_out_of_range_is_refused(self, audit_log: AuditLog) -> None:
        """An index or size the log does not have is a ProofRangeError naming the numbers."""
        contact(audit_log)
        with pytest.raises(ProofRangeError, match="no entry 5"):
            audit_log.inclusion_proof(5)
        with pytest.raises(ProofRangeError):
            audit_log.consistency_proof(2, 9)


class TestQueries:
    def test_filters_and_cursor_pagination(self, engine: Engine, signer) -> None:  # type: ignore[no-untyped-def]
        """Entries are found by subject, type, actor and time, a page at a time, without overlap."""
        clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
        log = AuditLog(engine, signer, clock=clock)
        try:
            for i in range(25):
                contact(log, subject=SUBJECT if i % 2 == 0 else "sub_OTHERSUBJECT01")
                clock.advance(timedelta(hours=1))
            log.record("operator.note", actor=AGENT, payload={"code": "x"})
            seen: list[int] = []
            cursor = None
            while True:
                page = log.query(EntryFilter(subject=SUBJECT), cursor=cursor, limit=4)
                seen += [e.index for e in page.items]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert seen == list(range(0, 25, 2))
            assert len(log.query(EntryFilter(event_type="operator.note")).items) == 1
            assert len(log.query(EntryFilter(event_type="contact.*")).items) == 25
            assert len(log.query(EntryFilter(actor="agent-7")).items) == 26
            window = log.query(EntryFilter(since=datetime(2026, 11, 1, 3, tzinfo=UTC),
                                           until=datetime(2026, 11, 1, 6, tzinfo=UTC))).items
            assert [e.index for e in window] == [3, 4, 5]
        finally:
            log.close()

    def test_bad_cursor_is_invalid_input(self, audit_log: AuditLog) -> None:
        """A cursor this server did not issue is refused with a clear error."""
        with pytest.raises(InvalidInputError, match="cursor"):
            audit_log.query(EntryFilter(), cursor="garbage!")
