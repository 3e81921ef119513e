"""Appending an event from outside Tarcza: ``POST /v1/audit/events`` and ``tarcza audit append``.

Invariants (ADR 0017):

* only the catalogue's :class:`~audit.events.External` types are accepted; any other type is
  refused with :class:`~audit.errors.SystemEventTypeError` naming it and its owner, before
  anything is read or written;
* free text is never taken as sealed bytes from the caller: the fields the type lists in
  ``sealed_from_plaintext`` arrive in plain text and are sealed here, under the subject's key,
  through the vault (:class:`SubjectValues`). Such text needs a subject; bytes that will not open
  can therefore never enter the log from outside;
* every other string is checked twice: by the payload model (patterns, after normalisation) and,
  when the event names a subject, against that subject's own values (:func:`core.pii.mentions_any`);
  a refusal names the field, never the value.

``audit`` never imports the vault: the edge hands in an object that seals and knows values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from audit.events import Actor, build_event, external_event_type, sealed_b64
from audit.sequencer import Receipt
from audit.service import AuditLog
from core.errors import InvalidInputError
from core.pii import mentions_any


class SubjectValues(Protocol):
    """What the external append needs from the vault about one subject."""

    def seal(self, subject: str, text: str) -> bytes:
        """``text`` sealed under the subject's key, for an event's payload."""
        ...

    def known_values(self, subject: str) -> Sequence[str]:
        """The subject's own values (names, numbers, addresses), for the PII check only."""
        ...


def append_external(log: AuditLog, event_type: str, *, actor: Actor, payload: Mapping[str, Any],
                    subject: str | None, values: SubjectValues, idempotency_key: str | None = None,
                    event_id: str | None = None) -> Receipt:
    """Append an event an outside principal may author; durable when this returns (see the module's invariants)."""
    authors = external_event_type(event_type)
    fields = dict(payload)
    sealed = [name for name in authors.sealed_from_plaintext if fields.get(name) is not None]
    if sealed and subject is None:
        raise InvalidInputError(f"payload.{sealed[0]} is sealed under the subject's key: name the subject "
                                "it is about (or leave it out)", event_type=event_type)
    for name in sealed:
        if not isinstance(fields[name], str) or not fields[name].strip():
            raise InvalidInputError(f"payload.{name} must be text (sent in clear, sealed by Tarcza)",
                                    event_type=event_type)
    # The model's own checks first: nothing is read from the vault for a payload that is refused anyway.
    probe = {k: (sealed_b64(bytes(16)) if k in sealed else v) for k, v in fields.items()}
    build_event(event_type, actor=actor, time=log.clock.now(), payload=probe, subject=subject, event_id=event_id)
    if subject is not None:
        known = values.known_values(subject)
        for path, text in _plain_strings(probe, skip=frozenset(sealed)):
            if mentions_any(text, known):
                raise InvalidInputError(f"event {event_type!r} refused: payload.{path}: looks like personal data "
                                        "of the subject; put it in a sealed field", event_type=event_type)
        for name in sealed:
            fields[name] = sealed_b64(values.seal(subject, fields[name]))
    event = build_event(event_type, actor=actor, time=log.clock.now(), payload=fields, subject=subject,
                        event_id=event_id)
    return log.append(event, idempotency_key=idempotency_key)


def _plain_strings(value: Any, path: str = "", *, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in skip:
                yield from _plain_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _plain_strings(item, f"{path}.{i}")
