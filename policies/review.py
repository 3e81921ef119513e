"""Review of break-glass reveals: the ``vault.access`` entries of the audit log flagged ``break_glass``.

The vault records every reveal in the log before any plaintext leaves it, with
``break_glass: true`` when the decision came from a break-glass policy (and the sealed
justification). This module only reads the log; it never sees the justification in clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.repository import EntryFilter
from audit.service import AuditLog

PAGE = 500


@dataclass(frozen=True)
class BreakGlassAccess:
    index: int
    time: str
    actor_id: str
    actor_kind: str
    subject: str | None
    purpose: str | None
    fields: list[str]
    decision: str | None
    has_justification: bool

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "time": self.time, "actor": {"id": self.actor_id, "kind": self.actor_kind},
                "subject": self.subject, "purpose": self.purpose, "fields": self.fields, "decision": self.decision,
                "has_justification": self.has_justification}


def list_break_glass(audit: AuditLog, *, since: datetime | None = None, until: datetime | None = None,
                     start: int | None = None, limit: int = 1000) -> list[BreakGlassAccess]:
    """Break-glass accesses in log order (oldest first), from log index ``start``, at most ``limit``."""
    out: list[BreakGlassAccess] = []
    cursor: str | None = None
    flt = EntryFilter(event_type="vault.access", since=since, until=until, start=start)
    while len(out) < limit:
        page = audit.query(flt, cursor=cursor, limit=PAGE)
        for entry in page.items:
            payload = entry.event.get("payload", {})
            if payload.get("break_glass") is True:
                actor = entry.event.get("actor", {})
                out.append(BreakGlassAccess(
                    entry.index, str(entry.event.get("time")), str(actor.get("id")), str(actor.get("kind")),
                    entry.event.get("subject"), payload.get("purpose"), list(payload.get("fields", [])),
                    payload.get("decision"), bool(payload.get("justification"))))
                if len(out) >= limit:
                    break
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return out
