"""Writing subjects: create, change a field, search by blind index, and seal values for audit events.

Nothing here opens sealed data: writing needs the data key to seal, never to decrypt. Each
operation asks the gate's decision (:meth:`vault.access.Gate.require`, which records a
refusal), prepares everything (validated, sealed), appends its entry, then writes the rows:
the entry first, then the effect (see :mod:`vault.service`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from audit.events import AuditEvent, VaultSearchPayload, VaultSubjectPayload, build_events
from core.db import read_connection, write_connection
from core.errors import ConflictError, InvalidInputError
from identity.principal import Principal
from vault import repository
from vault.access import Gate
from vault.datakeys import NewDataKey
from vault.envelope import seal_field
from vault.errors import KeyProviderError, VaultDecryptError
from vault.models import ACTIVE, SUBJECT_KINDS
from vault.records import SEARCH_LIMIT, Action, NewSubject, check_purpose, event_field_label
from vault.sealing import FieldSealer
from vault.store import VaultStore
from vault.tokens import SUBJECT_PREFIX, is_token, new_token

__all__ = ["EventSealer", "SubjectWriter"]


@dataclass(frozen=True)
class EventSealer:
    """Seals values for the events of one subject with the subject's data key (see :meth:`SubjectWriter.event_sealers`).

    Holds an unwrapped data key: keep it for the one event being built, never longer.
    ``known_values`` are the subject's own values the gate opened for the note scrubber (if asked).
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


class SubjectWriter:
    """Creates and changes subjects, searches them, and seals values for events."""

    def __init__(self, store: VaultStore, gate: Gate) -> None:
        self.store = store
        self.gate = gate

    # -- creating and changing ---------------------------------------------------------------------

    def create_subjects(self, principal: Principal, subjects: Sequence[NewSubject]) -> list[str]:
        """Create many subjects with one decision, one batch of audit entries and one transaction."""
        if not subjects:
            return []
        store = self.store
        prepared = [self._prepare(principal, item) for item in subjects]
        names = sorted({name for p in prepared for name in p.values})
        self.gate.require(principal, Action.CREATE, "", purpose=None, fields=names)
        self._resolve_retries(prepared)
        fresh: list[tuple[_Prepared, NewDataKey]] = []
        for p in prepared:
            if not p.token:
                p.token = new_token(SUBJECT_PREFIX)
                fresh.append((p, store.keys.new(p.token)))
        try:
            self._check_provider_fresh([key.kek_version for _, key in fresh])
            now = store.clock.now()
            field_rows = [row for p, key in fresh
                          for row in store.sealer.rows(p.token, key.key, key.dek_version, p.values, now=now)]
            store.audit.append_many([(event, None) for event in self._created_events(principal, [p for p, _ in fresh])])
            with write_connection(store.engine) as conn:
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
        now = self.store.clock.now()
        for (kind, names), positions in groups.items():
            events = build_events("vault.subject_created", actor=principal.actor, time=now,
                                  payload=VaultSubjectPayload(fields=list(names), subject_kind=kind),
                                  subjects=[created[i].token for i in positions])
            for position, event in zip(positions, events, strict=True):
                out[position] = event
        return [event for event in out if event is not None]

    def update_field(self, principal: Principal, token: str, field: str, values: str | Sequence[str]) -> None:
        """Replace every value of ``field`` of a subject."""
        store = self.store
        normalised = store.sealer.normalise({field: values})
        subject = store.active(token)
        self.gate.require(principal, Action.UPDATE, token, purpose=None, fields=[field])
        with read_connection(store.engine) as conn:
            data_key = store.keys.get(conn, token, subject.dek_version)
            created = repository.field_created_at(conn, token, field)
        now = store.clock.now()
        rows = store.sealer.rows(token, data_key, subject.dek_version, normalised, now=now,
                                 created_at={field: created} if created else None)
        store.audit.record("vault.field_updated", actor=principal.actor, subject=token,
                           payload=VaultSubjectPayload(fields=[field], subject_kind=subject.kind))
        with write_connection(store.engine) as conn:
            store.active(token, conn)
            repository.delete_field(conn, token, field)
            repository.insert_fields(conn, rows)
            repository.touch_subject(conn, token, now)

    def search(self, principal: Principal, field: str, value: str, purpose: str) -> list[str]:
        """Tokens of active subjects holding exactly ``value`` in ``field`` (by blind index; nothing is opened)."""
        store = self.store
        check_purpose(purpose)
        index = store.sealer.blind_index(field, value)
        self.gate.require(principal, Action.SEARCH, "", purpose=purpose, fields=[field])
        with read_connection(store.engine) as conn:
            tokens = repository.tokens_by_blind_index(conn, field, index, SEARCH_LIMIT)
        store.audit.record("vault.search", actor=principal.actor, payload=VaultSearchPayload(
            field=field, matches=len(tokens), purpose=purpose, subjects=tokens))
        return tokens

    # -- sealing for the audit log -----------------------------------------------------------------

    def event_sealers(self, tokens: Sequence[str], known_fields: Sequence[str] = (), *,
                      principal: Principal | None = None) -> dict[str, EventSealer]:
        """A sealer for each subject's events (subjects and keys read in one query each); subjects that are
        unknown, shredded or whose key does not open are left out.

        With ``known_fields`` (and the ``principal`` recording the events), each sealer also
        carries the subject's own values of those fields, opened by the gate for the note
        scrubber (:meth:`vault.access.Gate.known_values`).
        """
        store = self.store
        wanted = list(dict.fromkeys(t for t in tokens if is_token(t, SUBJECT_PREFIX)))
        known: dict[str, dict[str, list[str]]] = {}
        if known_fields:
            if principal is None:
                raise InvalidInputError("the subject's own values are opened only for a principal")
            known = self.gate.known_values(principal, wanted, known_fields)
        with read_connection(store.engine) as conn:
            active = [row for row in repository.get_subjects(conn, wanted).values() if not row.shredded]
            keys = store.keys.get_many(conn, [(row.token, row.dek_version) for row in active])
        out: dict[str, EventSealer] = {}
        for row in active:
            data_key = keys.get((row.token, row.dek_version))
            if data_key is not None:
                out[row.token] = EventSealer(row.token, data_key, row.dek_version, store.sealer,
                                             known.get(row.token, {}))
        return out

    def event_sealer(self, token: str) -> EventSealer:
        """:meth:`event_sealers` of one subject, raising its error (unknown, shredded, key unreadable)."""
        sealer = self.event_sealers([token]).get(token)
        if sealer is None:
            self.store.active(token)  # an unknown or shredded subject: its own error
            raise VaultDecryptError()  # the key is gone or does not unwrap (logged by the key store)
        return sealer

    # -- helpers -----------------------------------------------------------------------------------

    def _prepare(self, principal: Principal, item: NewSubject) -> _Prepared:
        if item.kind not in SUBJECT_KINDS:
            raise InvalidInputError(f"subject kind must be one of {', '.join(SUBJECT_KINDS)}")
        values = self.store.sealer.normalise(item.fields)
        if not values:
            raise InvalidInputError("a subject needs at least one field")
        if item.idempotency_key is None:
            return _Prepared(item.kind, values, None, None)
        if not 0 < len(item.idempotency_key) <= 200:
            raise InvalidInputError("an idempotency key has 1 to 200 characters")
        digest = hashlib.sha256(b"tarcza/vault/idempotency/v1\0" + principal.id.encode() + b"\0"
                                + item.idempotency_key.encode()).digest()
        return _Prepared(item.kind, values, digest, self.store.sealer.request_hash(item.kind, values))

    def _resolve_retries(self, prepared: Sequence[_Prepared]) -> None:
        """Give retried requests their earlier token; refuse a key reused for a different request."""
        keyed = [p for p in prepared if p.idempotency_hash is not None]
        if not keyed:
            return
        with read_connection(self.store.engine) as conn:
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
        with read_connection(self.store.engine) as conn:
            newest = repository.newest_rotation_target(conn)
        if newest is not None and any(v < newest for v in kek_versions):
            raise KeyProviderError("the key provider is older than the newest key rotation; reopen it (restart)")

    def _forget(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            self.store.keys.forget(token)
