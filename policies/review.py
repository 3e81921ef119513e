"""Review of break-glass reveals: the ``vault.access`` entries of the audit log flagged ``break_glass``.

The vault records every reveal in the log before any plaintext leaves it, with
``break_glass: true`` when the decision came from a break-glass policy (and the sealed
justification). The DPO or an auditor reviews each one: the verdict is itself an entry of
the log (``policy.break_glass_reviewed``, naming the reveal's index), so the review is as
tamper-evident as the reveal, and a reveal without such an entry is awaiting review. This
module never sees the justification in clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.events import Actor
from audit.repository import EntryFilter
from audit.sequencer import Receipt
from audit.service import AuditLog
from core.errors import ConflictError, NotFoundError

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
    review: Review | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "time": self.time, "actor": {"id": self.actor_id, "kind": self.actor_kind},
                "subject": self.subject, "purpose": self.purpose, "fields": self.fields, "decision": self.decision,
                "has_justification": self.has_justification,
                "review": None if self.review is None else self.review.to_json()}


@dataclass(frozen=True)
class Review:
    """A verdict on one break-glass reveal, from the log entry that records it."""

    index: int
    time: str
    reviewer: str
    verdict: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "time": self.time, "reviewer": self.reviewer, "verdict": self.verdict}


class BreakGlassNotFoundError(NotFoundError):
    code = "break-glass-not-found"


class AlreadyReviewedError(ConflictError):
    code = "break-glass-already-reviewed"


def reviews(audit: AuditLog) -> dict[int, Review]:
    """Every review in the log, by the index of the reveal it reviews (the first verdict counts)."""
    out: dict[int, Review] = {}
    cursor: str | None = None
    while True:
        page = audit.query(EntryFilter(event_type="policy.break_glass_reviewed"), cursor=cursor, limit=PAGE)
        for entry in page.items:
            target = int(entry.event.get("payload", {}).get("entry_index", -1))
            out.setdefault(target, Review(entry.index, str(entry.event.get("time")),
                                          str(entry.event.get("actor", {}).get("id")),
                                          str(entry.event.get("payload", {}).get("verdict"))))
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def review_break_glass(audit: AuditLog, actor: Actor, index: int, verdict: str) -> Receipt:
    """Record the verdict on the break-glass reveal at log ``index``; 404 if that entry is not one,
    409 if it was reviewed already."""
    try:
        entry = audit.get(index) if index >= 0 else None
    except NotFoundError:
        entry = None
    payload = entry.event.get("payload", {}) if entry is not None else {}
    if entry is None or entry.event.get("type") != "vault.access" or payload.get("break_glass") is not True:
        raise BreakGlassNotFoundError("no break-glass reveal is at this log index")
    if index in reviews(audit):
        raise AlreadyReviewedError("this break-glass reveal was reviewed already", index=index)
    return audit.record("policy.break_glass_reviewed", actor=actor, subject=entry.event.get("subject"),
                        payload={"entry_index": index, "verdict": verdict})


def list_break_glass(audit: AuditLog, *, since: datetime | None = None, until: datetime | None = None,
                     start: int | None = None, limit: int = 1000,
                     awaiting_only: bool = False) -> list[BreakGlassAccess]:
    """Break-glass accesses in log order (oldest first), from log index ``start``, at most ``limit``,
    each with its review if it has one (``awaiting_only``: only those without)."""
    done = reviews(audit)
    out: list[BreakGlassAccess] = []
    cursor: str | None = None
    flt = EntryFilter(event_type="vault.access", since=since, until=until, start=start)
    while len(out) < limit:
        page = audit.query(flt, cursor=cursor, limit=PAGE)
        for entry in page.items:
            payload = entry.event.get("payload", {})
            if payload.get("break_glass") is True and not (awaiting_only and entry.index in done):
                actor = entry.event.get("actor", {})
                out.append(BreakGlassAccess(
                    entry.index, str(entry.event.get("time")), str(actor.get("id")), str(actor.get("kind")),
                    entry.event.get("subject"), payload.get("purpose"), list(payload.get("fields", [])),
                    payload.get("decision"), bool(payload.get("justification")), done.get(entry.index)))
                if len(out) >= limit:
                    break
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return out
