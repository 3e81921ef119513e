"""Identity events wait in a queue until the edge has committed, then go to the audit log.

The audit log commits on its own connection and, on SQLite, needs the write lock; a
request that still holds its own write transaction would wait for itself. So services
queue their :class:`PendingEvent` s, and the edge (:func:`identity.service.transaction`)
commits its transaction and then appends them, before the response (a token, a secret)
leaves the server. See docs/adr/0005-authorisation.md for what this order guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audit.events import Actor, ActorKind, IdentityPayload
from audit.service import AuditLog

SYSTEM_ACTOR = Actor(id="tarcza", kind=ActorKind.SYSTEM)


@dataclass(frozen=True)
class PendingEvent:
    event_type: str
    actor: Actor
    payload: IdentityPayload


@dataclass
class EventQueue:
    items: list[PendingEvent] = field(default_factory=list)

    def add(self, event_type: str, actor: Actor, *, user_id: str | None = None, client_id: str | None = None,
            reason: str | None = None, source_ip: str | None = None) -> None:
        payload = IdentityPayload(user_id=user_id, client_id=client_id, reason=reason, source_ip=source_ip)
        self.items.append(PendingEvent(event_type, actor, payload))

    def flush(self, audit: AuditLog) -> None:
        """Append every queued event (durable when this returns) and empty the queue."""
        while self.items:
            event = self.items[0]
            audit.record(event.event_type, actor=event.actor, payload=event.payload)
            self.items.pop(0)

    def types(self) -> list[str]:
        return [e.event_type for e in self.items]
