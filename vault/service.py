"""The vault service: create subjects, update, view masked, reveal, search, recordings, shred, rotate.

Callers see tokens and plaintext; the database sees only envelopes, blind indexes and
wrapped keys (:mod:`vault.sealing`, :mod:`vault.datakeys`). :class:`VaultService` is the
facade over the parts, one responsibility each:

- :mod:`vault.access`, **the gate**: the only code that opens sealed data for a principal
  (masked view, reveals, notes and positions, recordings, the note scrubber's look-up), and
  the one place that decides vault actions and writes ``vault.access`` entries;
- :mod:`vault.writing`: create, update, search, seal values for audit events;
- :mod:`vault.recordings`: store recordings (encrypted as they stream in) and list them;
- :mod:`vault.shredding`: crypto-shredding, only with the erasure decision's clearance;
- :mod:`vault.rotation`: KEK rotation.

Ordering with the audit log. ``AuditLog.record`` commits on its own (an entry is durable
when it returns), so a vault write and its entry can never share one transaction. The
rule is: **the entry first, then the effect**. The log may over-report (an entry for an
update whose write then failed), never under-report:

- reveal, masked view, search, playback: the access entry is appended before anything is
  decrypted or returned; if the append raises, nothing is revealed;
- create, update, shred, store a recording: everything is prepared (validated, sealed,
  encrypted into a blob no row points to yet), the entry appended, then the rows written;
- a refused decision is logged (``decision: deny``) and raised as PermissionDeniedError.

Transactions. Each operation runs its own short transactions (``write_connection`` for
writes) instead of joining a caller's: the audit sequencer takes the database write lock
from its own connection, so on SQLite a caller holding a write transaction across an
append would wait on itself until the busy timeout. A write never spans an append.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

from sqlalchemy import Connection, Engine

from audit.events import Actor
from audit.service import AuditLog
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection
from identity.principal import Principal
from policies.authorizer import Authorizer, Resource
from vault import repository
from vault.access import Gate, Playback
from vault.blind_index import BlindIndexer
from vault.blobs import BlobStore
from vault.datakeys import DEFAULT_CACHE_SIZE, DEFAULT_CACHE_TTL, DataKeyCache, DataKeys
from vault.fields import FieldCatalogue
from vault.keys import KeyProvider
from vault.recordings import RecordingWriter
from vault.records import (
    ERASURE_PURPOSE,
    MAX_BULK_REVEAL,
    MAX_JUSTIFICATION,
    SEARCH_LIMIT,
    Action,
    NewSubject,
    RecordingInfo,
    RevealResult,
    ShredReport,
    SubjectShreddedError,
    event_field_label,
)
from vault.rotation import KeyRotation, KeyStatus, RotationProgress, RotationReport, key_status
from vault.sealing import FieldSealer, FieldValues
from vault.shredding import ErasureClearance, Shredder
from vault.store import VaultStore
from vault.tokens import SUBJECT_PREFIX, is_token
from vault.writing import EventSealer, SubjectWriter

__all__ = [
    "ERASURE_PURPOSE",
    "MAX_BULK_REVEAL",
    "MAX_JUSTIFICATION",
    "SEARCH_LIMIT",
    "Action",
    "EventSealer",
    "NewSubject",
    "RecordingInfo",
    "RevealResult",
    "ShredReport",
    "SubjectShreddedError",
    "VaultService",
    "event_field_label",
]


class VaultService:
    """Sealed personal data of subjects, behind authorisation and the audit log."""

    def __init__(
        self, engine: Engine, key_provider: KeyProvider, audit: AuditLog, authorizer: Authorizer,
        catalogue: FieldCatalogue, clock: Clock = SYSTEM_CLOCK, blob_store: BlobStore | None = None, *,
        cache_ttl: float = DEFAULT_CACHE_TTL, cache_size: int = DEFAULT_CACHE_SIZE,
        resources_for: Callable[[Sequence[str]], list[Resource]] | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.authorizer = authorizer
        self.catalogue = catalogue
        self.clock = clock
        self.blob_store = blob_store
        self.keys = DataKeys(key_provider, DataKeyCache(clock, ttl=cache_ttl, max_entries=cache_size))
        self.sealer = FieldSealer(catalogue, BlindIndexer(key_provider.index_key()))
        self.store = VaultStore(engine, self.keys, self.sealer, catalogue, audit, authorizer, clock, blob_store,
                                resources_for or (lambda tokens: [Resource("subject", t) for t in tokens]))
        self.gate = Gate(self.store)
        self._writer = SubjectWriter(self.store, self.gate)
        self._recordings = RecordingWriter(self.store, self.gate)
        self._shredder = Shredder(self.store, self.gate)

    # -- creating and changing -----------------------------------------------------------------

    def create_subject(self, principal: Principal, kind: str, fields: FieldValues,
                       idempotency_key: str | None = None) -> str:
        """Seal a new subject's fields; returns its token. A retry with the same key returns the same token."""
        return self.create_subjects(principal, [NewSubject(kind, fields, idempotency_key)])[0]

    def create_subjects(self, principal: Principal, subjects: Sequence[NewSubject]) -> list[str]:
        """Create many subjects with one decision, one batch of audit entries and one transaction."""
        return self._writer.create_subjects(principal, subjects)

    def update_field(self, principal: Principal, token: str, field: str, values: str | Sequence[str]) -> None:
        """Replace every value of ``field`` of a subject."""
        self._writer.update_field(principal, token, field, values)

    def search(self, principal: Principal, field: str, value: str, purpose: str) -> list[str]:
        """Tokens of active subjects holding exactly ``value`` in ``field`` (by blind index)."""
        return self._writer.search(principal, field, value, purpose)

    # -- opening: the gate -------------------------------------------------------------------------

    def masked_view(self, principal: Principal, token: str, fields: Sequence[str] | None = None, *,
                    purpose: str | None = None) -> dict[str, list[str]]:
        """The subject's values as the principal's role sees them without a reveal (no second factor)."""
        return self.gate.masked_view(principal, token, fields, purpose=purpose)

    def reveal(self, principal: Principal, token: str, fields: Sequence[str], purpose: str,
               justification: str | None = None, *, via: str | None = None) -> dict[str, list[str]]:
        """The plaintext values of ``fields``, after an allowed decision and its audit entry (in that order).

        :meth:`reveal_many` for one subject, raising its error (unknown, shredded, refused).
        """
        [result] = self.reveal_many(principal, [token], fields, purpose, justification, via=via)
        if result.error is not None:
            raise result.error
        assert result.fields is not None  # noqa: S101 - a result holds fields or an error
        return result.fields

    def reveal_many(self, principal: Principal, tokens: Sequence[str], fields: Sequence[str], purpose: str,
                    justification: str | None = None, *, via: str | None = None) -> list[RevealResult]:
        """See :meth:`vault.access.Gate.reveal_many`."""
        return self.gate.reveal_many(principal, tokens, fields, purpose, justification, via=via)

    def open_event_values(self, principal: Principal, token: str, values: Sequence[tuple[str, bytes]],
                          purpose: str | None, *, full: bool, justification: str | None = None,
                          via: str | None = None) -> list[str]:
        """See :meth:`vault.access.Gate.open_event_values`."""
        return self.gate.open_event_values(principal, token, values, purpose, full=full,
                                           justification=justification, via=via)

    def play(self, principal: Principal, token: str, recording_id: str, purpose: str, *,
             range_header: str | None = None, justification: str | None = None,
             via: str | None = None) -> Playback:
        """See :meth:`vault.access.Gate.play`."""
        return self.gate.play(principal, token, recording_id, purpose, range_header=range_header,
                              justification=justification, via=via)

    def read_recording(self, principal: Principal, token: str, recording_id: str, purpose: str,
                       start: int = 0, end: int | None = None, *, justification: str | None = None,
                       via: str | None = None) -> Iterator[bytes]:
        """The plaintext of bytes ``[start, end)`` of a recording, authenticated segment by segment."""
        return self.gate.play(principal, token, recording_id, purpose, span=(start, end),
                              justification=justification, via=via).chunks

    def recording_facts(self, principal: Principal, token: str, recording_id: str) -> RecordingInfo:
        """See :meth:`vault.access.Gate.recording_facts`."""
        return self.gate.recording_facts(principal, token, recording_id)

    # -- sealing for the audit log -------------------------------------------------------------

    def seal_for_event(self, token: str, field: str, value: str) -> bytes:
        """Seal one value of catalogue ``field`` under the subject's key, for an audit event's payload.

        Personal parts of an event (a contact's notes, a visit's GPS position) enter the log
        only sealed (``audit.events.Sealed``; encode the bytes with ``sealed_b64``). The value
        is validated and normalised as the field's stored values are, and sealed under the
        label :func:`event_field_label`, so an event's envelope never opens as a stored field
        of the subject, nor the other way round; shredding the subject makes it unreadable
        with the rest. Nothing is decrypted or shown, so no decision is asked and no entry is
        written here: the event that carries the bytes is the entry.
        """
        return self._writer.event_sealer(token).seal(field, value)

    def event_sealer(self, token: str) -> EventSealer:
        """An :class:`EventSealer` for one event about the subject: one subject read, one key fetch."""
        return self._writer.event_sealer(token)

    def event_sealers(self, tokens: Sequence[str], known_fields: Sequence[str] = (), *,
                      principal: Principal | None = None) -> dict[str, EventSealer]:
        """See :meth:`vault.writing.SubjectWriter.event_sealers` (known values come through the gate)."""
        return self._writer.event_sealers(tokens, known_fields, principal=principal)

    # -- recordings ----------------------------------------------------------------------------

    def store_recording(self, principal: Principal, token: str, stream: BinaryIO | Iterable[bytes],
                        media_type: str, *, max_bytes: int | None = None, duration_ms: int | None = None,
                        announced: bool | None = None, contact_event_id: str | None = None) -> RecordingInfo:
        """See :meth:`vault.recordings.RecordingWriter.store_recording`."""
        return self._recordings.store_recording(principal, token, stream, media_type, max_bytes=max_bytes,
                                                duration_ms=duration_ms, announced=announced,
                                                contact_event_id=contact_event_id)

    def recordings_of(self, first: str, last: str | None = None) -> dict[str, list[repository.RecordingRow]]:
        """The recordings not yet deleted of the subjects ``first``..``last`` (nothing decrypted), by token."""
        return self._recordings.recordings_of(first, last)

    # -- shredding (only with the erasure decision's clearance) ----------------------------------

    def shred(self, principal: Principal, token: str, clearance: ErasureClearance) -> ShredReport:
        """Crypto-shred a subject the erasure decision cleared: destroy its data keys, blind indexes and
        recordings. Idempotent."""
        return self._shredder.shred_many(principal, [token], clearance)[0]

    def shred_many(self, principal: Principal, tokens: Sequence[str], clearance: ErasureClearance) -> list[ShredReport]:
        """See :meth:`vault.shredding.Shredder.shred_many`."""
        return self._shredder.shred_many(principal, tokens, clearance)

    def delete_recording(self, principal: Principal, token: str, recording_id: str, purpose: str,
                         clearance: ErasureClearance) -> bool:
        """See :meth:`vault.shredding.Shredder.delete_recording`."""
        return self._shredder.delete_recording(principal, token, recording_id, purpose, clearance)

    # -- what jobs and other services look up (no personal data) --------------------------------

    def subject_status(self, token: str, conn: Connection | None = None) -> str:
        """``active`` or ``shredded``; SubjectNotFoundError for a token no subject has.

        With ``conn``, read on the caller's connection (a service gathering what it needs in one).
        """
        return self.store.subject(token, conn).status

    def subject_statuses(self, tokens: Sequence[str], conn: Connection | None = None) -> dict[str, str]:
        """``active`` or ``shredded`` for each of ``tokens`` that names a subject (the others are left out)."""
        valid = [t for t in tokens if is_token(t, SUBJECT_PREFIX)]
        if conn is None:
            with read_connection(self.engine) as own:
                found = repository.get_subjects(own, valid)
        else:
            found = repository.get_subjects(conn, valid)
        return {token: row.status for token, row in found.items()}

    def active_count(self) -> int:
        """How many subjects are active (not shredded)."""
        with read_connection(self.engine) as conn:
            return repository.count_active(conn)

    def active_subjects(self, after: str = "", limit: int = 500) -> list[str]:
        """A page of active subjects' tokens, in token order, after ``after`` (for jobs walking the vault)."""
        with read_connection(self.engine) as conn:
            return repository.active_tokens(conn, after, limit)

    # -- keys ----------------------------------------------------------------------------------

    def rotate_keys(self, progress: RotationProgress | None = None, *, batch_size: int = 200,
                    actor: Actor | None = None) -> RotationReport:
        """Rewrap every data key under a new KEK version, then retire unused old versions. Resumable.

        No decision is asked here: the caller (an HTTP route allowed ``keys.rotate``, or the local
        operator) has decided. ``actor`` is who the ``vault.key_rotated`` entry names (default: Tarcza).
        """
        return KeyRotation(self.engine, self.keys, self.audit, self.clock, actor).run(progress,
                                                                                      batch_size=batch_size)

    def key_status(self) -> KeyStatus:
        """The provider's KEK versions, those wrapped data keys use, and any rotation in progress."""
        return key_status(self.engine, self.keys.provider)
