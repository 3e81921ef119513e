"""AuditLog.known_idempotency_keys: which idempotency keys the log already holds, on SQLite and PostgreSQL."""

from __future__ import annotations

from audit.service import AuditLog

from .conftest import contact


class TestKnownIdempotencyKeys:
    def test_names_only_the_keys_earlier_appends_used(self, audit_log: AuditLog) -> None:
        """Keys of logged events are known; other keys, and events appended without a key, are not."""
        contact(audit_log, key="demo:0:1")
        contact(audit_log)
        contact(audit_log, key="demo:0:3")
        asked = ["demo:0:1", "demo:0:2", "demo:0:3"]
        assert audit_log.known_idempotency_keys(asked) == {"demo:0:1", "demo:0:3"}
        assert audit_log.known_idempotency_keys([]) == set()

    def test_many_keys_are_looked_up_in_chunks(self, audit_log: AuditLog) -> None:
        """More keys than one IN list holds are all answered."""
        for i in (0, 450, 999):
            contact(audit_log, key=f"k-{i}")
        assert audit_log.known_idempotency_keys([f"k-{i}" for i in range(1000)]) == {"k-0", "k-450", "k-999"}
