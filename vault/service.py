"""The vault service: create subjects, update, view masked, reveal, search, recordings, shred, rotate.

Callers see tokens and plaintext; the database sees only envelopes, blind indexes and
wrapped keys (:mod:`vault.sealing`, :mod:`vault.datakeys`). Every method takes the
authenticated :class:`~identity.principal.Principal`, asks the :class:`Authorizer`, and
leaves an audit entry.

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

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from audit.events import (
    Actor,
    AuditEvent,
    RecordingAccessPayload,
    RecordingPayload,
    VaultAccessPayload,
    VaultSearchPayload,
    VaultSubjectPayload,
    build_event,
    build_events,
    sealed_b64,
)
from audit.service import AuditLog
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection, write_connection
from core.errors import ConflictError, InvalidInputError, PermissionDeniedError, TarczaError
from core.logging import get_logger
from identity.principal import Principal
from policies.authorizer import Authorizer, Decision, Resource, decide_each
from vault import repository
from vault.blind_index import BlindIndexer
from vault.blobs import (
    WAV_MEDIA_TYPES,
    BlobNotFoundError,
    BlobStore,
    StreamMeter,
    decrypt_stream,
    encrypt_stream,
    wav_duration_ms,
)
from vault.datakeys import DEFAULT_CACHE_SIZE, DEFAULT_CACHE_TTL, DataKeyCache, DataKeys, NewDataKey
from vault.envelope import envelope_key_version, open_field, seal_field
from vault.errors import KeyProviderError, SubjectNotFoundError, VaultDecryptError
from vault.fields import FieldCatalogue
from vault.keys import KeyProvider
from vault.masking import mask_for
from vault.models import ACTIVE, SUBJECT_KINDS
from vault.rotation import KeyRotation, KeyStatus, RotationProgress, RotationReport, key_status
from vault.sealing import FieldSealer, FieldValues
from vault.tokens import RECORDING_PREFIX, SUBJECT_PREFIX, is_token, new_token

__all__ = [
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

log = get_logger(__name__)

SEARCH_LIMIT: Final = 100
MAX_JUSTIFICATION: Final = 2000
MAX_BULK_REVEAL: Final = 1000
ERASURE_PURPOSE: Final = "erasure"
_PURPOSE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
_MEDIA_TYPE = re.compile(r"[a-z]+/[a-z0-9][a-z0-9.+-]{0,80}")
_JUSTIFICATION_FIELD: Final = "~justification"  # envelope label; never a catalogue field name
_EVENT_FIELD_PREFIX: Final = "~event:"  # envelope labels of values sealed for audit events


class Action:
    """The action names the vault asks the authorizer about (the Cedar policies must know them)."""

    CREATE: Final = "create_subject"
    UPDATE: Final = "update_field"
    READ_MASKED: Final = "read_masked"
    REVEAL: Final = "reveal"
    SEARCH: Final = "search"
    STORE_RECORDING: Final = "store_recording"
    PLAY_RECORDING: Final = "play_recording"
    SHRED: Final = "shred"


class SubjectShreddedError(SubjectNotFoundError):
    """The subject was crypto-shredded: its data can never be read again."""

    status = 410
    code = "subject-shredded"
    title = "Subject shredded"


@dataclass(frozen=True)
class NewSubject:
    """One subject to create: its kind and field values, and the caller's idempotency key."""

    kind: str
    fields: FieldValues
    idempotency_key: str | None = None


@dataclass(frozen=True)
class RevealResult:
    """One subject's answer in a bulk reveal: its values, or the error that stands in their place."""

    subject: str
    fields: dict[str, list[str]] | None = None
    error: TarczaError | None = None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"subject": self.subject, "error": self.error.problem()}
        return {"subject": self.subject, "fields": self.fields}


@dataclass(frozen=True)
class RecordingInfo:
    recording_id: str
    subject: str
    sha256: str
    size: int
    media_type: str
    duration_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"recording_id": self.recording_id, "subject": self.subject, "sha256": self.sha256,
                "size": self.size, "media_type": self.media_type, "duration_ms": self.duration_ms}


@dataclass(frozen=True)
class ShredReport:
    subject: str
    fields: list[str] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    already_shredded: bool = False


@dataclass(frozen=True)
class EventSealer:
    """Seals values for the events of one subject with the subject's data key (see :meth:`VaultService.event_sealer`).

    Holds an unwrapped data key: keep it for the one event being built, never longer.
    """

    token: str
    _data_key: bytes = field(repr=False)
    _key_version: int
    _sealer: FieldSealer = field(repr=False)
    known_values: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def seal(self, field_name: str, value: str) -> bytes:
        """``value`` validated and normalised as catalogue field ``field_name`` is, sealed under its event label."""
        if not isinstance(value, str):
            raise InvalidInputError("seal one value (text) at a time")
        normalised = self._sealer.normalise({field_name: value})[field_name][0]
        return seal_field(self._data_key, normalised.encode("utf-8"), subject=self.token,
                          field=event_field_label(field_name), key_version=self._key_version)


@dataclass
class _Prepared:
    kind: str
    values: dict[str, list[str]]
    idempotency_hash: bytes | None
    request_hash: bytes | None
    token: str = ""  # set for a retry (the earlier token) or once created


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
        self._resources_for = resources_for or (lambda tokens: [Resource("subject", t) for t in tokens])

    # -- creating and changing -----------------------------------------------------------------

    def create_subject(self, principal: Principal, kind: str, fields: FieldValues,
                       idempotency_key: str | None = None) -> str:
        """Seal a new subject's fields; returns its token. A retry with the same key returns the same token."""
        return self.create_subjects(principal, [NewSubject(kind, fields, idempotency_key)])[0]

    def create_subjects(self, principal: Principal, subjects: Sequence[NewSubject]) -> list[str]:
        """Create many subjects with one decision, one batch of audit entries and one transaction."""
        if not subjects:
            return []
        prepared = [self._prepare(principal, item) for item in subjects]
        names = sorted({name for p in prepared for name in p.values})
        self._require(principal, Action.CREATE, "", purpose=None, fields=names)
        self._resolve_retries(prepared)
        fresh: list[tuple[_Prepared, NewDataKey]] = []
        for p in prepared:
            if not p.token:
                p.token = new_token(SUBJECT_PREFIX)
                fresh.append((p, self.keys.new(p.token)))
        try:
            self._check_provider_fresh([key.kek_version for _, key in fresh])
            now = self.clock.now()
            field_rows = [row for p, key in fresh
                          for row in self.sealer.rows(p.token, key.key, key.dek_version, p.values, now=now)]
            self.audit.append_many([(event, None) for event in self._created_events(principal, [p for p, _ in fresh])])
            with write_connection(self.engine) as conn:
                repository.insert_subjects(conn, [{
                    "token": p.token, "kind": p.kind, "status": ACTIVE, "dek_version": key.dek_version,
                    "idempotency_hash": p.idempotency_hash, "request_hash": p.request_hash,
                    "created_at": now, "updated_at": now, "shredded_at": None} for p, key in fresh])
                repository.insert_data_keys(conn, [key.row(now) for _, key in fresh])
                repository.insert_fields(conn, field_rows)
        except IntegrityError:
            self._forget(p.token for p, _ in fresh)
            raise ConflictError("another request created a subject with the same idempotency key; retry") from None
        except BaseException:
            self._forget(p.token for p, _ in fresh)
            raise
        return [p.token for p in prepared]

    def _created_events(self, principal: Principal, created: Sequence[_Prepared]) -> list[AuditEvent]:
        """``vault.subject_created`` for each subject, in order, built once per kind and set of fields."""
        groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for position, p in enumerate(created):
            groups.setdefault((p.kind, tuple(sorted(p.values))), []).append(position)
        out: list[AuditEvent | None] = [None] * len(created)
        now = self.clock.now()
        for (kind, names), positions in groups.items():
            events = build_events("vault.subject_created", actor=principal.actor, time=now,
                                  payload=VaultSubjectPayload(fields=list(names), subject_kind=kind),
                                  subjects=[created[i].token for i in positions])
            for position, event in zip(positions, events, strict=True):
                out[position] = event
        return [event for event in out if event is not None]

    def update_field(self, principal: Principal, token: str, field: str, values: str | Sequence[str]) -> None:
        """Replace every value of ``field`` of a subject."""
        normalised = self.sealer.normalise({field: values})
        subject = self._active(token)
        self._require(principal, Action.UPDATE, token, purpose=None, fields=[field])
        with read_connection(self.engine) as conn:
            data_key = self.keys.get(conn, token, subject.dek_version)
            created = repository.field_created_at(conn, token, field)
        now = self.clock.now()
        rows = self.sealer.rows(token, data_key, subject.dek_version, normalised, now=now,
                                created_at={field: created} if created else None)
        self.audit.record("vault.field_updated", actor=principal.actor, subject=token,
                          payload=VaultSubjectPayload(fields=[field], subject_kind=subject.kind))
        with write_connection(self.engine) as conn:
            self._active(token, conn)
            repository.delete_field(conn, token, field)
            repository.insert_fields(conn, rows)
            repository.touch_subject(conn, token, now)

    # -- reading -------------------------------------------------------------------------------

    def masked_view(self, principal: Principal, token: str, fields: Sequence[str] | None = None, *,
                    purpose: str | None = None) -> dict[str, list[str]]:
        """The subject's values as the principal's role sees them without a reveal (no second factor)."""
        names = None if fields is None else self.sealer.check_names(fields)
        if purpose is not None:
            _check_purpose(purpose)
        subject = self._active(token)
        decision = self._decide(principal, Action.READ_MASKED, token, purpose=purpose)
        with read_connection(self.engine) as conn:
            rows = repository.select_fields(conn, token, names)
            data_key = self.keys.get(conn, token, subject.dek_version) if rows and decision.allowed else b""
        shown = names if names is not None else sorted({row.field for row in rows})
        if not decision.allowed:
            self._refuse(principal, Action.READ_MASKED, token, decision, fields=shown, purpose=purpose, view="masked")
        self._access(principal, Action.READ_MASKED, token, decision, fields=shown, purpose=purpose, view="masked")
        values = self.sealer.open(token, data_key, rows) if rows else {}  # no rows: no data key was read
        role = principal.primary_role
        return {name: [mask_for(name, role, v, self.catalogue) for v in values.get(name, [])] for name in shown}

    def reveal(self, principal: Principal, token: str, fields: Sequence[str], purpose: str,
               justification: str | None = None) -> dict[str, list[str]]:
        """The plaintext values of ``fields``, after an allowed decision and its audit entry (in that order).

        :meth:`reveal_many` for one subject, raising its error (unknown, shredded, refused).
        """
        [result] = self.reveal_many(principal, [token], fields, purpose, justification)
        if result.error is not None:
            raise result.error
        assert result.fields is not None  # noqa: S101 - a result holds fields or an error
        return result.fields

    def reveal_many(self, principal: Principal, tokens: Sequence[str], fields: Sequence[str], purpose: str,
                    justification: str | None = None) -> list[RevealResult]:
        """Reveal the same fields of many subjects for one purpose (a letters run, an export to a court).

        Each subject is decided on its own (case assignment, restriction), and gets its own
        ``vault.access`` entry, allowed or refused; all the entries are appended and committed
        together BEFORE anything is decrypted: if that append fails, nothing is revealed.
        Unknown, shredded and refused subjects come back as errors in their place; the
        others with their values. At most :data:`MAX_BULK_REVEAL` subjects per call.
        """
        names = self.sealer.check_names(fields)
        if not names:
            raise InvalidInputError("name at least one field to reveal")
        _check_purpose(purpose)
        if justification is not None and not 0 < len(justification) <= MAX_JUSTIFICATION:
            raise InvalidInputError(f"a justification has 1 to {MAX_JUSTIFICATION} characters")
        wanted = list(dict.fromkeys(tokens))
        if not 0 < len(wanted) <= MAX_BULK_REVEAL:
            raise InvalidInputError(f"name 1 to {MAX_BULK_REVEAL} subjects to reveal")
        valid = [t for t in wanted if is_token(t, SUBJECT_PREFIX)]
        with read_connection(self.engine) as conn:
            found = repository.get_subjects(conn, valid)
        errors: dict[str, TarczaError] = {}
        active: list[repository.SubjectRow] = []
        for token in wanted:
            row = found.get(token)
            if row is None:
                errors[token] = SubjectNotFoundError("no subject has this token")
            elif row.shredded:
                errors[token] = SubjectShreddedError("the subject was shredded; its data can no longer be read")
            else:
                active.append(row)
        decisions = decide_each(self.authorizer, principal, Action.REVEAL,
                                self._resources_for([row.token for row in active]), purpose=purpose,
                                now=self.clock.now(), justification=justification)
        with read_connection(self.engine) as conn:
            keys = self.keys.get_many(conn, [(row.token, row.dek_version) for row in active])
        events: list[tuple[AuditEvent, str | None]] = []
        allowed: list[tuple[repository.SubjectRow, bytes]] = []
        for row, decision in zip(active, decisions, strict=True):
            data_key = keys.get((row.token, row.dek_version))
            if data_key is None:  # shredded while we looked, or a key that does not unwrap (logged)
                errors[row.token] = VaultDecryptError()
                continue
            sealed = None if justification is None else sealed_b64(seal_field(
                data_key, justification.encode("utf-8"), subject=row.token, field=_JUSTIFICATION_FIELD,
                key_version=row.dek_version))
            events.append((self._event("vault.access", principal, row.token, self._access_payload(
                Action.REVEAL, decision, fields=names, purpose=purpose, justification=sealed)), None))
            if decision.allowed:
                allowed.append((row, data_key))
            else:
                errors[row.token] = PermissionDeniedError(f"{Action.REVEAL} refused by a {decision.rule} rule",
                                                          rule=decision.rule)
        if events:
            self.audit.append_many(events)  # durable before any plaintext exists
        with read_connection(self.engine) as conn:
            rows = repository.select_fields_of(conn, [row.token for row, _ in allowed], names)
        values = {row.token: self.sealer.open(row.token, data_key, rows[row.token]) for row, data_key in allowed}
        out: list[RevealResult] = []
        for token in wanted:
            if token in values:
                out.append(RevealResult(token, {name: values[token].get(name, []) for name in names}))
            else:
                out.append(RevealResult(token, error=errors[token]))
        refused = sum(1 for e in errors.values() if isinstance(e, PermissionDeniedError))
        if refused:
            log.info("vault_access_denied", action=Action.REVEAL, subjects=refused)
        return out

    def search(self, principal: Principal, field: str, value: str, purpose: str) -> list[str]:
        """Tokens of active subjects holding exactly ``value`` in ``field`` (by blind index)."""
        _check_purpose(purpose)
        index = self.sealer.blind_index(field, value)
        self._require(principal, Action.SEARCH, "", purpose=purpose, fields=[field])
        with read_connection(self.engine) as conn:
            tokens = repository.tokens_by_blind_index(conn, field, index, SEARCH_LIMIT)
        self.audit.record("vault.search", actor=principal.actor, payload=VaultSearchPayload(
            field=field, matches=len(tokens), purpose=purpose, subjects=tokens))
        return tokens

    # -- sealing for the audit log -----------------------------------------------------------------

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
        return self.event_sealer(token).seal(field, value)

    def event_sealer(self, token: str, known_fields: Sequence[str] = ()) -> EventSealer:
        """An :class:`EventSealer` for one event about the subject: one subject read, one key fetch.

        With ``known_fields``, the subject's own values of those fields are opened too
        (:attr:`EventSealer.known_values`), for PII detection inside Tarcza only: scrubbing a
        note about a subject looks for the subject's own name and address in it
        (:mod:`vault.detect`). They are handed to the detector, never to a caller, a response
        or a log, so no decision is asked and no access entry is written: the contact event
        that carries the scrubbed note is the record. Callers outside the contacts and GDPR
        services must use :meth:`reveal`.
        """
        sealer = self.event_sealers([token], known_fields).get(token)
        if sealer is None:
            self._active(token)  # an unknown or shredded subject: its own error
            raise VaultDecryptError()  # the key is gone or does not unwrap (logged by the key store)
        return sealer

    def event_sealers(self, tokens: Sequence[str], known_fields: Sequence[str] = ()) -> dict[str, EventSealer]:
        """:meth:`event_sealer` for many subjects at once (subjects, keys and known values each read in
        one query); subjects that are unknown, shredded or whose key does not open are left out."""
        names = self.sealer.check_names(known_fields)
        wanted = list(dict.fromkeys(t for t in tokens if is_token(t, SUBJECT_PREFIX)))
        with read_connection(self.engine) as conn:
            active = [row for row in repository.get_subjects(conn, wanted).values() if not row.shredded]
            keys = self.keys.get_many(conn, [(row.token, row.dek_version) for row in active])
            rows = repository.select_fields_of(conn, [row.token for row in active], names) if names else {}
        out: dict[str, EventSealer] = {}
        for row in active:
            data_key = keys.get((row.token, row.dek_version))
            if data_key is None:
                continue
            known = self.sealer.open(row.token, data_key, rows[row.token]) if rows.get(row.token) else {}
            out[row.token] = EventSealer(row.token, data_key, row.dek_version, self.sealer, known)
        return out

    def open_event_values(self, principal: Principal, token: str, values: Sequence[tuple[str, bytes]],
                          purpose: str | None, *, full: bool) -> list[str]:
        """Open values sealed for audit events (a contact's note, a visit's position) for the principal.

        Decided and logged like the subject's own fields: ``full`` is a reveal (purpose, fresh
        second factor), otherwise a masked read (the caller shows what its role may see, e.g.
        a scrubbed note without what its placeholders stand for). The ``vault.access`` entry
        is appended before anything is decrypted.
        """
        if purpose is not None or full:
            _check_purpose(purpose or "")
        names = sorted({name for name, _ in values})
        self.sealer.check_names(names)
        self._active(token)
        action = Action.REVEAL if full else Action.READ_MASKED
        view = "full" if full else "masked"
        decision = self._decide(principal, action, token, purpose=purpose)
        if not decision.allowed:
            self._refuse(principal, action, token, decision, fields=names, purpose=purpose, view=view)
        self._access(principal, action, token, decision, fields=names, purpose=purpose, view=view)
        out: list[str] = []
        with read_connection(self.engine) as conn:
            for name, sealed in values:
                data_key = self.keys.get(conn, token, envelope_key_version(sealed))
                plain = open_field(data_key, sealed, subject=token, field=event_field_label(name))
                try:
                    out.append(plain.decode("utf-8"))
                except UnicodeDecodeError:
                    raise VaultDecryptError() from None
        return out

    def subject_status(self, token: str, conn: Connection | None = None) -> str:
        """``active`` or ``shredded``; SubjectNotFoundError for a token no subject has.

        With ``conn``, read on the caller's connection (a service gathering what it needs in one).
        """
        return self._subject(token, conn).status

    def subject_statuses(self, tokens: Sequence[str], conn: Connection | None = None) -> dict[str, str]:
        """``active`` or ``shredded`` for each of ``tokens`` that names a subject (the others are left out)."""
        valid = [t for t in tokens if is_token(t, SUBJECT_PREFIX)]
        if conn is None:
            with read_connection(self.engine) as own:
                found = repository.get_subjects(own, valid)
        else:
            found = repository.get_subjects(conn, valid)
        return {token: row.status for token, row in found.items()}

    def values_for_detection(self, token: str, fields: Sequence[str]) -> dict[str, list[str]]:
        """The subject's own values of ``fields``, for PII detection inside Tarcza only (see :meth:`event_sealer`)."""
        return self.event_sealer(token, fields).known_values

    # -- recordings ----------------------------------------------------------------------------

    def store_recording(self, principal: Principal, token: str, stream: BinaryIO | Iterable[bytes],
                        media_type: str, *, max_bytes: int | None = None, duration_ms: int | None = None,
                        announced: bool | None = None, contact_event_id: str | None = None) -> RecordingInfo:
        """Encrypt a recording of the subject into the blob store, segment by segment.

        ``max_bytes`` bounds the plaintext (RecordingTooLargeError, and no blob is left);
        ``duration_ms`` is the caller's, or read from the header of a WAV recording;
        ``announced`` says the debtor was told the conversation is recorded. All of them,
        with the SHA-256 and size of the plaintext, go into the ``recording.stored`` entry.
        """
        store = self._blobs()
        if not _MEDIA_TYPE.fullmatch(media_type):
            raise InvalidInputError("media type must look like type/subtype, e.g. audio/ogg")
        subject = self._active(token)
        self._require(principal, Action.STORE_RECORDING, token, purpose=None, fields=[])
        with read_connection(self.engine) as conn:
            data_key = self.keys.get(conn, token, subject.dek_version)
        meter = StreamMeter(stream, max_bytes)
        info = encrypt_stream(data_key, meter, store, subject=token, blob_id=new_token(RECORDING_PREFIX),
                              key_version=subject.dek_version)
        if duration_ms is None and media_type in WAV_MEDIA_TYPES:
            duration_ms = wav_duration_ms(meter.head)
        try:
            self.audit.record("recording.stored", actor=principal.actor, subject=token, payload=RecordingPayload(
                recording_id=info.blob_id, sha256=info.sha256, size=info.size, media_type=media_type,
                duration_ms=duration_ms, announced=announced, contact_event_id=contact_event_id))
            with write_connection(self.engine) as conn:
                self._active(token, conn)
                repository.insert_recording(conn, {
                    "id": info.blob_id, "subject_token": token, "media_type": media_type, "size": info.size,
                    "sha256": info.sha256, "dek_version": subject.dek_version, "created_at": self.clock.now(),
                    "shredded_at": None})
        except BaseException:
            store.delete(info.blob_id)
            raise
        return RecordingInfo(info.blob_id, token, info.sha256, info.size, media_type, duration_ms)

    def read_recording(self, principal: Principal, token: str, recording_id: str, purpose: str,
                       start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The plaintext of bytes ``[start, end)`` of a recording, authenticated segment by segment."""
        store = self._blobs()
        _check_purpose(purpose)
        if start < 0 or (end is not None and end < start):
            raise InvalidInputError(f"invalid byte range [{start}, {end})")
        self._active(token)
        recording = self._recording(token, recording_id)
        decision = self._decide(principal, Action.PLAY_RECORDING, token, purpose=purpose)
        if not decision.allowed:
            self._refuse(principal, Action.PLAY_RECORDING, token, decision, fields=[], purpose=purpose,
                         recording_id=recording_id)
        with read_connection(self.engine) as conn:
            data_key = self.keys.get(conn, token, recording.dek_version)
        self.audit.record("recording.played", actor=principal.actor, subject=token, payload=RecordingAccessPayload(
            recording_id=recording_id, purpose=purpose, range_start=start, range_end=end))
        return decrypt_stream(data_key, store, subject=token, blob_id=recording_id, start=start, end=end)

    def recording_info(self, token: str, recording_id: str) -> RecordingInfo:
        """What is known of a recording without opening it: size, SHA-256 and media type.

        No decision and no audit entry: these are the facts already in the recording's
        ``recording.stored`` entry, and nothing is decrypted. The HTTP layer needs the size to
        answer a ``Range`` request before asking for the bytes with :meth:`read_recording`.
        """
        self._active(token)
        row = self._recording(token, recording_id)
        return RecordingInfo(row.id, token, row.sha256, row.size, row.media_type)

    # -- shredding and rotation ----------------------------------------------------------------

    def shred(self, principal: Principal, token: str) -> ShredReport:
        """Crypto-shred a subject: destroy its data keys, blind indexes and recordings. Idempotent."""
        return self.shred_many(principal, [token])[0]

    def shred_many(self, principal: Principal, tokens: Sequence[str]) -> list[ShredReport]:
        """Crypto-shred many subjects (a retention run): one decision each, the entries of all of them
        appended together, then one transaction destroying their keys. Idempotent per subject.

        Every subject must exist (SubjectNotFoundError otherwise, before anything happens);
        one refused decision refuses the call.
        """
        wanted = list(dict.fromkeys(tokens))
        with read_connection(self.engine) as conn:
            found = repository.get_subjects(conn, [t for t in wanted if is_token(t, SUBJECT_PREFIX)])
            if len(found) < len(wanted):
                raise SubjectNotFoundError("no subject has this token")
            names = repository.field_names_of(conn, wanted)
            recordings = repository.recording_ids_of(conn, wanted)
        rows = [found[token] for token in wanted]
        decisions = decide_each(self.authorizer, principal, Action.SHRED, self._resources_for(wanted),
                                purpose=ERASURE_PURPOSE, now=self.clock.now())
        for token, decision in zip(wanted, decisions, strict=True):
            if not decision.allowed:
                self._refuse(principal, Action.SHRED, token, decision, fields=[], purpose=ERASURE_PURPOSE)
        fresh = [row for row in rows if not row.shredded]
        if fresh:
            events: list[tuple[AuditEvent, str | None]] = []
            for row in fresh:
                events.append((self._event("vault.subject_shredded", principal, row.token, VaultSubjectPayload(
                    fields=names[row.token], subject_kind=row.kind)), None))
                events += [(self._event("recording.shredded", principal, row.token, RecordingAccessPayload(
                    recording_id=rec, purpose=ERASURE_PURPOSE)), None) for rec in recordings[row.token]]
            self.audit.append_many(events)
            with write_connection(self.engine) as conn:
                repository.shred_subjects(conn, [row.token for row in fresh], self.clock.now())
        for token in wanted:
            self.keys.forget(token)
            if self.blob_store is None:
                continue
            for rec in recordings[token]:
                try:
                    self.blob_store.delete(rec)
                except (OSError, BlobNotFoundError) as exc:  # the key is gone: the blob is unreadable anyway
                    log.error("vault_blob_delete_failed", subject=token, recording=rec, error=type(exc).__name__)
        return [ShredReport(row.token, names[row.token], recordings[row.token], already_shredded=row.shredded)
                for row in rows]

    def delete_recording(self, principal: Principal, token: str, recording_id: str, purpose: str) -> bool:
        """Delete one recording (retention): its entry first, then the row marked and the blob removed.

        Idempotent: False if the recording was already deleted or shredded.
        """
        _check_purpose(purpose)
        recording = None
        if is_token(recording_id, RECORDING_PREFIX):
            with read_connection(self.engine) as conn:
                recording = repository.get_recording(conn, recording_id)
        if recording is None or recording.subject_token != token:
            raise BlobNotFoundError("this subject has no such recording")
        if recording.shredded:
            return False
        self._require(principal, Action.SHRED, token, purpose=ERASURE_PURPOSE, fields=[])
        self.audit.record("recording.shredded", actor=principal.actor, subject=token,
                          payload=RecordingAccessPayload(recording_id=recording_id, purpose=purpose))
        with write_connection(self.engine) as conn:
            changed = repository.mark_recording_shredded(conn, recording_id, self.clock.now())
        if changed and self.blob_store is not None:
            try:
                self.blob_store.delete(recording_id)
            except (OSError, BlobNotFoundError) as exc:
                log.error("vault_blob_delete_failed", subject=token, recording=recording_id,
                          error=type(exc).__name__)
        return changed

    def recordings_of(self, first: str, last: str | None = None) -> dict[str, list[repository.RecordingRow]]:
        """The recordings not yet deleted of the subjects ``first``..``last`` in token order (ids, sizes,
        dates; nothing decrypted), by token; of ``first`` alone without ``last``."""
        with read_connection(self.engine) as conn:
            return repository.recordings_in_range(conn, first, last if last is not None else first)

    def active_count(self) -> int:
        """How many subjects are active (not shredded)."""
        with read_connection(self.engine) as conn:
            return repository.count_active(conn)

    def active_subjects(self, after: str = "", limit: int = 500) -> list[str]:
        """A page of active subjects' tokens, in token order, after ``after`` (for jobs walking the vault)."""
        with read_connection(self.engine) as conn:
            return repository.active_tokens(conn, after, limit)

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

    # -- helpers -------------------------------------------------------------------------------

    def _prepare(self, principal: Principal, item: NewSubject) -> _Prepared:
        if item.kind not in SUBJECT_KINDS:
            raise InvalidInputError(f"subject kind must be one of {', '.join(SUBJECT_KINDS)}")
        values = self.sealer.normalise(item.fields)
        if not values:
            raise InvalidInputError("a subject needs at least one field")
        if item.idempotency_key is None:
            return _Prepared(item.kind, values, None, None)
        if not 0 < len(item.idempotency_key) <= 200:
            raise InvalidInputError("an idempotency key has 1 to 200 characters")
        digest = hashlib.sha256(b"tarcza/vault/idempotency/v1\0" + principal.id.encode() + b"\0"
                                + item.idempotency_key.encode()).digest()
        return _Prepared(item.kind, values, digest, self.sealer.request_hash(item.kind, values))

    def _resolve_retries(self, prepared: Sequence[_Prepared]) -> None:
        """Give retried requests their earlier token; refuse a key reused for a different request."""
        keyed = [p for p in prepared if p.idempotency_hash is not None]
        if not keyed:
            return
        with read_connection(self.engine) as conn:
            found = repository.subjects_by_idempotency(conn, [p.idempotency_hash for p in keyed
                                                              if p.idempotency_hash])
        first: dict[bytes, _Prepared] = {}
        for p in keyed:
            assert p.idempotency_hash is not None  # noqa: S101 - filtered above
            earlier = found.get(p.idempotency_hash)
            twin = first.setdefault(p.idempotency_hash, p)
            expected = earlier.request_hash if earlier is not None else twin.request_hash
            if expected != p.request_hash:
                raise ConflictError("the idempotency key was already used for a different subject")
            if earlier is not None:
                p.token = earlier.token
            elif twin is not p:
                raise ConflictError("the same idempotency key appears twice in one request")

    def _check_provider_fresh(self, kek_versions: Sequence[int]) -> None:
        """Refuse keys wrapped under a KEK version older than the newest rotation (a stale keyfile)."""
        if not kek_versions:
            return
        with read_connection(self.engine) as conn:
            newest = repository.newest_rotation_target(conn)
        if newest is not None and any(v < newest for v in kek_versions):
            raise KeyProviderError("the key provider is older than the newest key rotation; reopen it (restart)")

    def _forget(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            self.keys.forget(token)

    def _subject(self, token: str, conn: Connection | None = None) -> repository.SubjectRow:
        if not is_token(token, SUBJECT_PREFIX):
            raise SubjectNotFoundError("no subject has this token")
        if conn is None:
            with read_connection(self.engine) as own:
                row = repository.get_subject(own, token)
        else:
            row = repository.get_subject(conn, token)
        if row is None:
            raise SubjectNotFoundError("no subject has this token")
        return row

    def _active(self, token: str, conn: Connection | None = None) -> repository.SubjectRow:
        row = self._subject(token, conn)
        if row.shredded:
            raise SubjectShreddedError("the subject was shredded; its data can no longer be read")
        return row

    def _recording(self, token: str, recording_id: str) -> repository.RecordingRow:
        recording = None
        if is_token(recording_id, RECORDING_PREFIX):
            with read_connection(self.engine) as conn:
                recording = repository.get_recording(conn, recording_id)
        if recording is None or recording.subject_token != token or recording.shredded:
            raise BlobNotFoundError("this subject has no such recording")
        return recording

    def _blobs(self) -> BlobStore:
        if self.blob_store is None:
            raise KeyProviderError("this vault has no blob store for recordings")
        return self.blob_store

    def _decide(self, principal: Principal, action: str, token: str, *, purpose: str | None,
                justification: str | None = None) -> Decision:
        resource = self._resources_for([token])[0] if token else Resource("subject")
        return self.authorizer.decide(principal, action, resource, purpose=purpose, now=self.clock.now(),
                                      justification=justification)

    def _require(self, principal: Principal, action: str, token: str, *, purpose: str | None,
                 fields: list[str]) -> Decision:
        decision = self._decide(principal, action, token, purpose=purpose)
        if not decision.allowed:
            self._refuse(principal, action, token, decision, fields=fields, purpose=purpose)
        return decision

    def _logged_purpose(self, purpose: str | None) -> str:
        """The purpose as the log records it: a purpose of the policies' catalogue as stated, anything else as
        ``unknown``. A caller may type anything there (a name fits the pattern), and the log keeps it forever."""
        if not purpose:
            return "unspecified"
        known: frozenset[str] | None = getattr(self.authorizer, "purposes", None)  # the Cedar engine's catalogue
        return purpose if known is None or purpose in known else "unknown"

    def _access_payload(self, action: str, decision: Decision, *, fields: list[str], purpose: str | None,
                        view: str = "full", justification: str | None = None,
                        recording_id: str | None = None) -> VaultAccessPayload:
        return VaultAccessPayload.model_validate({
            "fields": fields, "purpose": self._logged_purpose(purpose),
            "decision": "allow" if decision.allowed else "deny",
            "view": view, "break_glass": decision.break_glass, "justification": justification,
            "reason": None if decision.allowed else decision.rule, "action": action, "recording_id": recording_id})

    def _access(self, principal: Principal, action: str, token: str, decision: Decision, *, fields: list[str],
                purpose: str | None, view: str = "full", justification: str | None = None,
                recording_id: str | None = None) -> None:
        payload = self._access_payload(action, decision, fields=fields, purpose=purpose, view=view,
                                       justification=justification, recording_id=recording_id)
        self.audit.record("vault.access", actor=principal.actor, subject=token or None, payload=payload)

    def _refuse(self, principal: Principal, action: str, token: str, decision: Decision, *, fields: list[str],
                purpose: str | None, view: str = "full", justification: str | None = None,
                recording_id: str | None = None) -> None:
        self._access(principal, action, token, decision, fields=fields, purpose=purpose, view=view,
                     justification=justification, recording_id=recording_id)
        log.info("vault_access_denied", action=action, subject=token or None, rule=decision.rule)
        raise PermissionDeniedError(f"{action} refused by a {decision.rule} rule", rule=decision.rule)

    def _event(self, event_type: str, principal: Principal, token: str, payload: Any) -> AuditEvent:
        return build_event(event_type, actor=principal.actor, time=self.clock.now(), payload=payload, subject=token)


def event_field_label(field: str) -> str:
    """The envelope label of a value of ``field`` sealed for an audit event (not a catalogue name)."""
    return f"{_EVENT_FIELD_PREFIX}{field}"


def _check_purpose(purpose: str) -> None:
    if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
        raise InvalidInputError("purpose must be a policy identifier (lower-case letters, digits, _ . : -)")

