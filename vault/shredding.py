"""Crypto-shredding, the mechanism of erasure: destroy a subject's data keys, blind indexes and recordings.

Whether a subject may be erased is not decided here. The one erasure decision
(:mod:`gdpr.erasure`: legal holds, open claims, the accounting duty, and the DPO's reviewed
override) hands the vault an :class:`ErasureClearance` naming the subjects (or recordings) it
cleared; shredding without one, or of anything it does not name, is refused. An import scan
(``tests/security/test_gate_imports.py``) keeps the construction of clearances and the
calls to shredding inside :mod:`gdpr.erasure`. The vault still asks the policies
(``gdpr.erase`` for the principal) and logs each step before its effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from audit.events import AuditEvent, Payload, RecordingAccessPayload, VaultSubjectPayload, build_event
from core.db import read_connection, write_connection
from core.logging import get_logger
from identity.principal import Principal
from policies.authorizer import decide_each
from vault import repository
from vault.access import Gate
from vault.blobs import BlobNotFoundError
from vault.errors import SubjectNotFoundError
from vault.records import ERASURE_PURPOSE, Action, ShredReport, check_purpose
from vault.store import VaultStore
from vault.tokens import RECORDING_PREFIX, SUBJECT_PREFIX, is_token

__all__ = ["ErasureClearance", "NotClearedError", "Shredder"]

log = get_logger(__name__)


class NotClearedError(PermissionError):
    """Shredding was asked for something the erasure decision did not clear (a programming error)."""


@dataclass(frozen=True)
class ErasureClearance:
    """What the erasure decision cleared: subjects to shred, or recordings (of those subjects) to delete.

    Built only by :mod:`gdpr.erasure`, after its assessment (or the DPO's override) allowed it.
    """

    subjects: frozenset[str]
    recordings: frozenset[tuple[str, str]] = frozenset()  # (subject, recording id)
    override: bool = False

    def check(self, tokens: Sequence[str]) -> None:
        """NotClearedError unless every one of ``tokens`` was cleared for shredding."""
        if set(tokens) - self.subjects:
            raise NotClearedError("the erasure decision did not clear this erasure")

    def check_recording(self, token: str, recording_id: str) -> None:
        """NotClearedError unless the subject's recording was cleared for deletion."""
        if (token, recording_id) not in self.recordings:
            raise NotClearedError("the erasure decision did not clear the deletion of this recording")


class Shredder:
    """Shreds subjects and deletes recordings the erasure decision cleared."""

    def __init__(self, store: VaultStore, gate: Gate) -> None:
        self.store = store
        self.gate = gate

    def shred_many(self, principal: Principal, tokens: Sequence[str], clearance: ErasureClearance) -> list[ShredReport]:
        """Crypto-shred many subjects: one decision each, the entries of all of them appended together, then
        one transaction destroying their keys. Idempotent per subject.

        Every subject must exist (SubjectNotFoundError otherwise, before anything happens) and be
        named by ``clearance`` (NotClearedError); one refused decision refuses the call.
        """
        store = self.store
        wanted = list(dict.fromkeys(tokens))
        clearance.check(wanted)
        with read_connection(store.engine) as conn:
            found = repository.get_subjects(conn, [t for t in wanted if is_token(t, SUBJECT_PREFIX)])
            if len(found) < len(wanted):
                raise SubjectNotFoundError("no subject has this token")
            names = repository.field_names_of(conn, wanted)
            recordings = repository.recording_ids_of(conn, wanted)
        rows = [found[token] for token in wanted]
        decisions = decide_each(store.authorizer, principal, Action.SHRED, store.resources_for(wanted),
                                purpose=ERASURE_PURPOSE, now=store.clock.now())
        for token, decision in zip(wanted, decisions, strict=True):
            if not decision.allowed:
                self.gate.refuse(principal, Action.SHRED, token, decision, fields=[], purpose=ERASURE_PURPOSE)
        fresh = [row for row in rows if not row.shredded]
        if fresh:
            events: list[tuple[AuditEvent, str | None]] = []
            for row in fresh:
                events.append((self._event("vault.subject_shredded", principal, row.token, VaultSubjectPayload(
                    fields=names[row.token], subject_kind=row.kind)), None))
                events += [(self._event("recording.shredded", principal, row.token, RecordingAccessPayload(
                    recording_id=rec, purpose=ERASURE_PURPOSE)), None) for rec in recordings[row.token]]
            store.audit.append_many(events)
            with write_connection(store.engine) as conn:
                repository.shred_subjects(conn, [row.token for row in fresh], store.clock.now())
        for token in wanted:
            store.keys.forget(token)
            if store.blob_store is None:
                continue
            for rec in recordings[token]:
                self._delete_blob(token, rec)
        return [ShredReport(row.token, names[row.token], recordings[row.token], already_shredded=row.shredded)
                for row in rows]

    def delete_recording(self, principal: Principal, token: str, recording_id: str, purpose: str,
                         clearance: ErasureClearance) -> bool:
        """Delete one recording (retention): its entry first, then the row marked and the blob removed.

        Idempotent: False if the recording was already deleted or shredded.
        """
        store = self.store
        check_purpose(purpose)
        clearance.check_recording(token, recording_id)
        recording = None
        if is_token(recording_id, RECORDING_PREFIX):
            with read_connection(store.engine) as conn:
                recording = repository.get_recording(conn, recording_id)
        if recording is None or recording.subject_token != token:
            raise BlobNotFoundError("this subject has no such recording")
        if recording.shredded:
            return False
        self.gate.require(principal, Action.SHRED, token, purpose=ERASURE_PURPOSE, fields=[])
        store.audit.record("recording.shredded", actor=principal.actor, subject=token,
                           payload=RecordingAccessPayload(recording_id=recording_id, purpose=purpose))
        with write_connection(store.engine) as conn:
            changed = repository.mark_recording_shredded(conn, recording_id, store.clock.now())
        if changed:
            self._delete_blob(token, recording_id)
        return changed

    def _delete_blob(self, token: str, recording_id: str) -> None:
        if self.store.blob_store is None:
            return
        try:
            self.store.blob_store.delete(recording_id)
        except (OSError, BlobNotFoundError) as exc:  # the key is gone: the blob is unreadable anyway
            log.error("vault_blob_delete_failed", subject=token, recording=recording_id, error=type(exc).__name__)

    def _event(self, event_type: str, principal: Principal, token: str, payload: Payload) -> AuditEvent:
        return build_event(event_type, actor=principal.actor, time=self.store.clock.now(), payload=payload,
                           subject=token)
