"""The one gate to plaintext: whatever opens sealed data for a principal decides, records, then opens, here.

Every path that turns the vault's ciphertext into plaintext for someone runs through a
method of :class:`Gate`: the masked view, a reveal (one subject or many), a note's or a
visit's sealed values (full or masked), a recording's facts and its bytes (``Range`` and
size included), the GDPR export (the officer's reveal, the exporter acting for them), the
console (the same calls), and the note scrubber's look-up of the subject's own values.

Order inside each, without exception:

1. **decide** with the policies (:mod:`policies.engine`): role or scope, the purposes of the
   principal's roles, case assignment, second-factor freshness, GDPR restriction,
   break-glass and reviewed purposes (``legal_claim``);
2. **record** the decision as a ``vault.access`` entry, allowed or refused, naming the real
   principal and the component acting for it (``via``), the purpose, the fields, the
   sealed justification and whether the access waits for review; the entry is durable
   (committed) when the append returns;
3. **open**, only for an allowed decision, only after that append; if the append fails,
   nothing is opened.

Invariants (tested in ``tests/security/``):

- this is the only module that imports the opening primitives
  (:func:`vault.envelope.open_field`, :func:`vault.envelope.open_fields`,
  :func:`vault.blobs.decrypt_stream`); an import scan over the packages enforces it;
- a refused principal learns what any refused principal learns: the kind of rule, never a
  value, a count or a size (a ``Range`` is weighed against the size only after an allow);
- the one exception to step 2 is the note scrubber's look-up (:meth:`Gate.known_values`):
  it is decided here as the recording of the contact it serves, and the contact's own entry
  is its record, because the values go to the detector and never to a caller (ADR 0014).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from audit.events import AuditEvent, RecordingAccessPayload, VaultAccessPayload, build_event, sealed_b64
from core.db import read_connection
from core.errors import InvalidInputError, PermissionDeniedError, TarczaError
from core.logging import get_logger
from identity.principal import Principal
from policies.authorizer import Decision, Resource, decide_each
from vault import repository
from vault.blobs import decrypt_stream
from vault.envelope import envelope_key_version, open_field, open_fields, seal_field
from vault.errors import SubjectNotFoundError, VaultDecryptError
from vault.masking import mask_for
from vault.ranges import RangeNotSatisfiableError, byte_range
from vault.records import (
    JUSTIFICATION_FIELD,
    MAX_BULK_REVEAL,
    Action,
    RecordingInfo,
    RevealResult,
    SubjectShreddedError,
    check_justification,
    check_purpose,
    check_via,
    event_field_label,
)
from vault.store import VaultStore
from vault.tokens import RECORDING_PREFIX, SUBJECT_PREFIX, is_token

__all__ = ["SCRUBBER", "Gate", "Playback", "open_rows"]

log = get_logger(__name__)

SCRUBBER: Final = "note-scrubber"
"""The component that opens a subject's own values to find them in a note (acting for the contact's recorder)."""
_PROBE_CASE: Final = "~route-gate"  # a case id no real case has (case ids come from collection systems)


@dataclass(frozen=True)
class Playback:
    """An allowed playback: the recording's facts, the byte range sent and its plaintext, segment by segment."""

    info: RecordingInfo
    start: int
    end: int | None  # exclusive; None: to the end
    partial: bool  # a Range header was honoured (206)
    chunks: Iterator[bytes]


def open_rows(subject: str, data_key: bytes, rows: Sequence[repository.FieldRow]) -> dict[str, list[str]]:
    """The plaintext values of field ``rows`` of one subject, by field; VaultDecryptError if any does not open.

    Module-private in spirit: only :class:`Gate` calls it, after its decision and entry.
    """
    out: dict[str, list[str]] = {}
    plain = open_fields(data_key, [(row.field, row.envelope) for row in rows], subject=subject)
    for row, value in zip(rows, plain, strict=True):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise VaultDecryptError() from None
        out.setdefault(row.field, []).append(text)
    return out


class Gate:
    """Decides, records and opens (see the module docstring); the vault's only way to plaintext."""

    def __init__(self, store: VaultStore) -> None:
        self.store = store

    # -- deciding and recording --------------------------------------------------------------------

    def decide(self, principal: Principal, action: str, token: str, *, purpose: str | None,
               justification: str | None = None) -> Decision:
        """The policies' decision on ``action`` for ``token`` (``""``: any subject), without recording it."""
        return self.store.authorizer.decide(principal, action, self.store.resource(token), purpose=purpose,
                                            now=self.store.clock.now(), justification=justification)

    def require(self, principal: Principal, action: str, token: str, *, purpose: str | None,
                fields: Sequence[str], view: str = "full", recording_id: str | None = None) -> Decision:
        """:meth:`decide`; a refusal is recorded and raised (PermissionDeniedError naming the kind of rule)."""
        decision = self.decide(principal, action, token, purpose=purpose)
        if not decision.allowed:
            self.refuse(principal, action, token, decision, fields=fields, purpose=purpose, view=view,
                        recording_id=recording_id)
        return decision

    def record(self, principal: Principal, action: str, token: str, decision: Decision, *, fields: Sequence[str],
               purpose: str | None, view: str = "full", justification: str | None = None,
               recording_id: str | None = None, via: str | None = None) -> None:
        """Append the ``vault.access`` entry of a decision (durable when this returns)."""
        self.store.audit.append_many([(self.entry(principal, action, token, decision, fields=fields, purpose=purpose,
                                                  view=view, justification=justification,
                                                  recording_id=recording_id, via=via), None)])

    def refuse(self, principal: Principal, action: str, token: str, decision: Decision, *, fields: Sequence[str],
               purpose: str | None, view: str = "full", recording_id: str | None = None,
               via: str | None = None) -> None:
        """Record a refusal and raise it."""
        self.record(principal, action, token, decision, fields=fields, purpose=purpose, view=view,
                    recording_id=recording_id, via=via)
        log.info("vault_access_denied", action=action, subject=token or None, rule=decision.rule)
        raise _denied(action, decision)

    def entry(self, principal: Principal, action: str, token: str, decision: Decision, *, fields: Sequence[str],
              purpose: str | None, view: str = "full", justification: str | None = None,
              recording_id: str | None = None, via: str | None = None) -> AuditEvent:
        """The ``vault.access`` event of a decision (``justification``: already sealed, base64url)."""
        payload = VaultAccessPayload.model_validate({
            "fields": list(fields), "purpose": self._logged_purpose(purpose),
            "decision": "allow" if decision.allowed else "deny", "view": view,
            "break_glass": decision.break_glass, "review": True if decision.allowed and decision.review else None,
            "justification": justification, "reason": None if decision.allowed else decision.rule,
            "action": action, "recording_id": recording_id, "via": via})
        return build_event("vault.access", actor=principal.actor, time=self.store.clock.now(), payload=payload,
                           subject=token or None)

    def could_allow(self, principal: Principal, action: str, *, purpose: bool = False,
                    justification: bool = False, after_step_up: bool = False) -> Decision:
        """Whether ``action`` could be allowed on *some* subject: role or scope, and the second factor.

        Asked on a stand-in subject the principal is (for this question) assigned to and that
        is not restricted; ``purpose`` adds a purpose the principal may state and
        ``justification`` a break-glass justification of the required length, for routes
        whose caller supplies them; ``after_step_up`` asks for a person whose second factor is
        verified but old as if they stepped up now (the console asks for a code inline). Not
        recorded (menus ask it); see :meth:`check_route`.
        """
        now = self.store.clock.now()
        stepped = after_step_up and principal.second_factor_at is not None
        probe = replace(principal, assigned_cases=principal.assigned_cases | {_PROBE_CASE},
                        second_factor_at=now if stepped else principal.second_factor_at)
        resource = Resource("subject", case_ids=frozenset({_PROBE_CASE}))
        stated = self._probe_purpose(principal) if purpose else None
        parameters = getattr(self.store.authorizer, "parameters", None)
        length = getattr(parameters, "break_glass_min_justification", 20)
        text = "x" * length if justification else None
        return self.store.authorizer.decide(probe, action, resource, purpose=stated, now=now, justification=text)

    def check_route(self, principal: Principal, action: str, *, purpose: bool = False, justification: bool = False,
                    token: str | None = None, recording_id: str | None = None,
                    after_step_up: bool = False) -> Decision:
        """A route's gate, asked before its body is read: :meth:`could_allow`, a refusal recorded (naming the
        subject and recording of the path when they are well-formed) and returned for the route to answer.
        The real decision, on the real subject, is the opening method's."""
        decision = self.could_allow(principal, action, purpose=purpose, justification=justification,
                                    after_step_up=after_step_up)
        if not decision.allowed:
            subject = token if is_token(token, SUBJECT_PREFIX) else ""
            self.record(principal, action, subject or "", decision, fields=[], purpose=None,
                        view="masked" if action == Action.READ_MASKED else "full",
                        recording_id=recording_id if is_token(recording_id, RECORDING_PREFIX) else None)
        return decision

    def _probe_purpose(self, principal: Principal) -> str:
        """A purpose the principal could state: the first of those its roles (or its client) may, not a reviewed one."""
        purposes_for = getattr(self.store.authorizer, "purposes_for", None)
        candidates: frozenset[str] = purposes_for(principal) if purposes_for is not None else frozenset()
        reviewed: frozenset[str] = getattr(self.store.authorizer, "reviewed_purposes", frozenset())
        plain = candidates - reviewed
        return min(plain) if plain else ""

    def _logged_purpose(self, purpose: str | None) -> str:
        """The purpose as the log records it: a purpose of the policies' catalogue as stated, anything else as
        ``unknown``. A caller may type anything there (a name fits the pattern), and the log keeps it forever."""
        if not purpose:
            return "unspecified"
        known: frozenset[str] | None = getattr(self.store.authorizer, "purposes", None)
        return purpose if known is None or purpose in known else "unknown"

    def _sealed_justification(self, token: str, data_key: bytes, version: int, justification: str | None) -> str | None:
        if justification is None:
            return None
        return sealed_b64(seal_field(data_key, justification.encode("utf-8"), subject=token, field=JUSTIFICATION_FIELD,
                                     key_version=version))

    # -- the subject's fields ----------------------------------------------------------------------

    def masked_view(self, principal: Principal, token: str, fields: Sequence[str] | None = None, *,
                    purpose: str | None = None) -> dict[str, list[str]]:
        """The subject's values as the principal's role sees them without a reveal (no fresh second factor)."""
        store = self.store
        names = None if fields is None else store.sealer.check_names(fields)
        if purpose is not None:
            check_purpose(purpose)
        subject = store.active(token)
        decision = self.decide(principal, Action.READ_MASKED, token, purpose=purpose)
        with read_connection(store.engine) as conn:
            rows = repository.select_fields(conn, token, names)
            data_key = store.keys.get(conn, token, subject.dek_version) if rows and decision.allowed else b""
        shown = names if names is not None else sorted({row.field for row in rows})
        if not decision.allowed:
            self.refuse(principal, Action.READ_MASKED, token, decision, fields=shown, purpose=purpose, view="masked")
        self.record(principal, Action.READ_MASKED, token, decision, fields=shown, purpose=purpose, view="masked")
        values = open_rows(token, data_key, rows) if rows else {}  # no rows: no data key was read
        role = principal.primary_role
        return {name: [mask_for(name, role, v, store.catalogue) for v in values.get(name, [])] for name in shown}

    def reveal_many(self, principal: Principal, tokens: Sequence[str], fields: Sequence[str], purpose: str,
                    justification: str | None = None, *, via: str | None = None) -> list[RevealResult]:
        """Reveal the same fields of many subjects for one purpose (a letters run, an export to a court).

        Each subject is decided on its own (case assignment, restriction), and gets its own
        ``vault.access`` entry, allowed or refused; all the entries are appended and committed
        together BEFORE anything is decrypted: if that append fails, nothing is revealed.
        Unknown, shredded and refused subjects come back as errors in their place; the
        others with their values. ``via`` names a component acting for the principal.
        """
        store = self.store
        names = store.sealer.check_names(fields)
        if not names:
            raise InvalidInputError("name at least one field to reveal")
        check_purpose(purpose)
        check_justification(justification)
        check_via(via)
        wanted = list(dict.fromkeys(tokens))
        if not 0 < len(wanted) <= MAX_BULK_REVEAL:
            raise InvalidInputError(f"name 1 to {MAX_BULK_REVEAL} subjects to reveal")
        with read_connection(store.engine) as conn:
            found = repository.get_subjects(conn, [t for t in wanted if is_token(t, SUBJECT_PREFIX)])
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
        decisions = decide_each(store.authorizer, principal, Action.REVEAL,
                                store.resources_for([row.token for row in active]), purpose=purpose,
                                now=store.clock.now(), justification=justification)
        with read_connection(store.engine) as conn:
            keys = store.keys.get_many(conn, [(row.token, row.dek_version) for row in active])
        events: list[tuple[AuditEvent, str | None]] = []
        allowed: list[tuple[repository.SubjectRow, bytes]] = []
        for row, decision in zip(active, decisions, strict=True):
            data_key = keys.get((row.token, row.dek_version))
            if data_key is None:  # shredded while we looked, or a key that does not unwrap (logged)
                errors[row.token] = VaultDecryptError()
                continue
            sealed = self._sealed_justification(row.token, data_key, row.dek_version, justification)
            events.append((self.entry(principal, Action.REVEAL, row.token, decision, fields=names, purpose=purpose,
                                      justification=sealed, via=via), None))
            if decision.allowed:
                allowed.append((row, data_key))
            else:
                errors[row.token] = _denied(Action.REVEAL, decision)
        if events:
            store.audit.append_many(events)  # durable before any plaintext exists
        with read_connection(store.engine) as conn:
            rows = repository.select_fields_of(conn, [row.token for row, _ in allowed], names)
        values = {row.token: open_rows(row.token, data_key, rows[row.token]) for row, data_key in allowed}
        refused = sum(1 for e in errors.values() if isinstance(e, PermissionDeniedError))
        if refused:
            log.info("vault_access_denied", action=Action.REVEAL, subjects=refused)
        return [RevealResult(token, {name: values[token].get(name, []) for name in names}) if token in values
                else RevealResult(token, error=errors[token]) for token in wanted]

    # -- values sealed for audit events: notes, positions -------------------------------------------

    def open_event_values(self, principal: Principal, token: str, values: Sequence[tuple[str, bytes]],
                          purpose: str | None, *, full: bool, justification: str | None = None,
                          via: str | None = None) -> list[str]:
        """Open values sealed for audit events (a contact's note, a visit's position) for the principal.

        Decided and recorded like the subject's own fields: ``full`` is a reveal (purpose, fresh
        second factor), otherwise a masked read (the caller shows what its role may see, e.g.
        a scrubbed note without what its placeholders stand for).
        """
        store = self.store
        if purpose is not None or full:
            check_purpose(purpose or "")
        check_justification(justification)
        check_via(via)
        names = sorted({name for name, _ in values})
        store.sealer.check_names(names)
        subject = store.active(token)
        action = Action.REVEAL if full else Action.READ_MASKED
        view = "full" if full else "masked"
        decision = self.decide(principal, action, token, purpose=purpose, justification=justification)
        if not decision.allowed:
            self.refuse(principal, action, token, decision, fields=names, purpose=purpose, view=view, via=via)
        sealed = None
        if justification is not None:
            with read_connection(store.engine) as conn:
                current = store.keys.get(conn, token, subject.dek_version)
            sealed = self._sealed_justification(token, current, subject.dek_version, justification)
        self.record(principal, action, token, decision, fields=names, purpose=purpose, view=view,
                    justification=sealed, via=via)
        out: list[str] = []
        with read_connection(store.engine) as conn:
            for name, envelope in values:
                data_key = store.keys.get(conn, token, envelope_key_version(envelope))
                plain = open_field(data_key, envelope, subject=token, field=event_field_label(name))
                try:
                    out.append(plain.decode("utf-8"))
                except UnicodeDecodeError:
                    raise VaultDecryptError() from None
        return out

    def known_values(self, principal: Principal, tokens: Sequence[str],
                     fields: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        """The subjects' own values of ``fields``, for the note scrubber only (:data:`SCRUBBER` acting for
        ``principal``, who records the contacts).

        Decided as ``contact.record`` on each subject (a subject refused gets nothing opened);
        not a ``vault.access`` entry of its own: the contact event carrying the scrubbed note
        is the record, and these values go to the detector, never to a caller, a response, a
        count the caller may not see, or a log (ADR 0014). Unknown, shredded or unreadable
        subjects are left out.
        """
        store = self.store
        names = store.sealer.check_names(fields)
        wanted = list(dict.fromkeys(t for t in tokens if is_token(t, SUBJECT_PREFIX)))
        if not names or not wanted:
            return {}
        with read_connection(store.engine) as conn:
            active = [row for row in repository.get_subjects(conn, wanted).values() if not row.shredded]
        decisions = decide_each(store.authorizer, principal, Action.DETECT, store.resources_for(
            [row.token for row in active]), purpose=None, now=store.clock.now())
        cleared = [row for row, decision in zip(active, decisions, strict=True) if decision.allowed]
        with read_connection(store.engine) as conn:
            keys = store.keys.get_many(conn, [(row.token, row.dek_version) for row in cleared])
            rows = repository.select_fields_of(conn, [row.token for row in cleared], names)
        out: dict[str, dict[str, list[str]]] = {}
        for row in cleared:
            data_key = keys.get((row.token, row.dek_version))
            if data_key is not None:
                out[row.token] = open_rows(row.token, data_key, rows[row.token]) if rows.get(row.token) else {}
        return out

    # -- recordings --------------------------------------------------------------------------------

    def recording_facts(self, principal: Principal, token: str, recording_id: str) -> RecordingInfo:
        """A recording's size, SHA-256 and media type, for a principal allowed to read the subject masked.

        Decided and recorded as a masked read naming the recording (nothing is decrypted).
        """
        self.store.active(token)
        decision = self.require(principal, Action.READ_MASKED, token, purpose=None, fields=[], view="masked",
                                recording_id=recording_id if is_token(recording_id, RECORDING_PREFIX) else None)
        row = self.store.recording(token, recording_id)
        self.record(principal, Action.READ_MASKED, token, decision, fields=[], purpose=None, view="masked",
                    recording_id=recording_id)
        return RecordingInfo(row.id, token, row.sha256, row.size, row.media_type)

    def play(self, principal: Principal, token: str, recording_id: str, purpose: str, *,
             range_header: str | None = None, span: tuple[int, int | None] | None = None,
             justification: str | None = None, via: str | None = None) -> Playback:
        """Play a recording (or one byte range of it) for a stated purpose.

        Decided on the subject first, a refusal recorded naming the recording; only an allowed
        principal learns whether the recording exists and how large it is. The byte range is
        ``range_header`` (HTTP ``Range``, see :func:`vault.ranges.byte_range`) or ``span``
        (``(start, end)``, end exclusive or None). An allowed request whose range starts past the
        end is recorded (``vault.access``, the size was told) and answered 416; a satisfiable one
        is a ``recording.played`` entry with the range, appended before the first segment is
        decrypted. A reviewed decision (break-glass) is also a ``vault.access`` entry with the
        sealed justification, so the review queue sees it.
        """
        store = self.store
        blobs = store.blobs()
        check_purpose(purpose)
        check_justification(justification)
        check_via(via)
        if span is not None and (span[0] < 0 or (span[1] is not None and span[1] < span[0])):
            raise InvalidInputError(f"invalid byte range [{span[0]}, {span[1]})")
        subject = store.active(token)
        named = recording_id if is_token(recording_id, RECORDING_PREFIX) else None
        decision = self.decide(principal, Action.PLAY_RECORDING, token, purpose=purpose, justification=justification)
        if not decision.allowed:
            self.refuse(principal, Action.PLAY_RECORDING, token, decision, fields=[], purpose=purpose,
                        recording_id=named, via=via)
        row = store.recording(token, recording_id)
        with read_connection(store.engine) as conn:
            data_key = store.keys.get(conn, token, row.dek_version)
            current = store.keys.get(conn, token, subject.dek_version) if justification is not None else b""
        sealed = self._sealed_justification(token, current, subject.dek_version, justification)
        chosen: tuple[int, int | None] | None = span
        if span is None:
            try:
                chosen = byte_range(range_header, row.size)
            except RangeNotSatisfiableError:
                self.record(principal, Action.PLAY_RECORDING, token, decision, fields=[], purpose=purpose,
                            recording_id=recording_id, justification=sealed, via=via)
                raise
        start, end = chosen or (0, row.size)
        events: list[tuple[AuditEvent, str | None]] = []
        if decision.review:
            events.append((self.entry(principal, Action.PLAY_RECORDING, token, decision, fields=[], purpose=purpose,
                                      recording_id=recording_id, justification=sealed, via=via), None))
        events.append((build_event("recording.played", actor=principal.actor, time=store.clock.now(), subject=token,
                                   payload=RecordingAccessPayload(recording_id=recording_id, purpose=purpose,
                                                                  range_start=start, range_end=end)), None))
        store.audit.append_many(events)  # durable before the first segment is decrypted
        info = RecordingInfo(row.id, token, row.sha256, row.size, row.media_type)
        chunks = decrypt_stream(data_key, blobs, subject=token, blob_id=recording_id, start=start, end=end)
        return Playback(info, start, end, partial=span is None and chosen is not None, chunks=chunks)


def _denied(action: str, decision: Decision) -> PermissionDeniedError:
    extra: dict[str, Any] = {"rule": decision.rule}
    return PermissionDeniedError(f"{action} refused by a {decision.rule} rule", **extra)
