"""The one way events from outside Tarcza enter the log, for the HTTP append and ``tarcza audit append``.

It wires the vault into :func:`audit.external.append_external`: free text of a note is sealed
under the subject's key (catalogue field ``note``), and the subject's own values are opened for
the PII check only, never shown (see ADR 0017).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from api.runtime import Runtime
from audit.events import Actor
from audit.external import append_external
from audit.sequencer import Receipt
from identity.principal import SYSTEM

KNOWN_VALUE_FIELDS: Final = ("first_name", "last_name", "pesel", "nip", "regon", "id_card", "passport",
                             "date_of_birth", "phone", "email", "iban", "address")
"""The subject's fields whose values an outside note's plain strings must not spell."""
NOTE_FIELD: Final = "note"


class VaultSubjectValues:
    """:class:`audit.external.SubjectValues` over the vault of a runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def seal(self, subject: str, text: str) -> bytes:
        return self.runtime.vault.seal_for_event(subject, NOTE_FIELD, text)

    def known_values(self, subject: str) -> Sequence[str]:
        # Tarcza itself checks what enters its log: the values are opened through the gate for the
        # PII check only, never shown, logged or counted back to the caller (ADR 0014, 0017).
        sealer = self.runtime.vault.event_sealers([subject], KNOWN_VALUE_FIELDS, principal=SYSTEM).get(subject)
        found = sealer.known_values if sealer is not None else {}
        return [value for values in found.values() for value in values]


def append_from_outside(runtime: Runtime, event_type: str, *, actor: Actor, payload: Mapping[str, Any],
                        subject: str | None, idempotency_key: str | None = None,
                        event_id: str | None = None) -> Receipt:
    """Append an event an outside principal may author (refusing every other type); durable on return."""
    return append_external(runtime.audit, event_type, actor=actor, payload=payload, subject=subject,
                           values=VaultSubjectValues(runtime), idempotency_key=idempotency_key, event_id=event_id)
