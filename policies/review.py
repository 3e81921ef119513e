"""Review of break-glass reveals: the ``vault.access`` entries of the audit log flagged ``break_glass``.

The vault records every reveal in the log before any plaintext leaves it, with
``break_glass: true`` when the decision came from a break-glass policy (and the sealed
justification). The DPO or an auditor reviews each one: the verdict is itself an entry of
the log (``policy.break_glass_reviewed``, naming the reveal's index and leaf hash), so the
review is as tamper-evident as the reveal, and a reveal without such an entry is awaiting
review. This module never sees the justification in clear.

Only this module writes verdicts (the catalogue's author of ``policy.break_glass_reviewed``),
and a verdict counts only if it is one it wrote (:func:`_written_here`, ADR 0017): it names
the reviewed entry's leaf hash, which the open append of old could not carry, and a person or
an API client gave it. Verdicts forged through that append are in the log for ever, and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.events import Actor, ActorKind
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
    target_leaf_hash: str = ""

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
            payload = entry.event.get("payload", {})
            if not _written_here(entry.event):
                continue
            out.setdefault(int(payload["entry_index"]), Review(
                entry.index, str(entry.event.get("time")), str(entry.event.get("actor", {}).get("id")),
                str(payload.get("verdict")), str(payload["entry_leaf_hash"])))
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def _written_here(event: dict[str, Any]) -> bool:
    """Whether a ``policy.break_glass_reviewed`` entry was written by :func:`review_break_glass` for a person or
    a client (not forged through the old open append, which refused the ``entry_leaf_hash`` field)."""
    payload = event.get("payload", {})
    return (isinstance(payload.get("entry_leaf_hash"), str) and isinstance(payload.get("entry_index"), int)
            and event.get("actor", {}).get("kind") in (ActorKind.USER.value, ActorKind.CLIENT.value))


def _review_of(done: dict[int, Review], index: int, leaf_hash: bytes) -> Review | None:
    review = done.get(index)
    return review if review is not None and review.target_leaf_hash == leaf_hash.hex() else None


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
    if _review_of(reviews(audit), index, entry.leaf_hash) is not None:
        raise AlreadyReviewedError("this break-glass reveal was reviewed already", index=index)
    return audit.record("policy.break_glass_reviewed", actor=actor, subject=entry.event.get("subject"),
                        payload={"entry_index": index, "entry_leaf_hash": entry.leaf_hash.hex(), "verdict": verdict})


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
            review = _review_of(done, entry.index, entry.leaf_hash)
            if payload.get("break_glass") is True and not (awaiting_only and review is not None):
                actor = entry.event.get("actor", {})
                out.append(BreakGlassAccess(
                    entry.index, str(entry.event.get("time")), str(actor.get("id")), str(actor.get("kind")),
                    entry.event.get("subject"), payload.get("purpose"), list(payload.get("fields", [])),
                    payload.get("decision"), bool(payload.get("justification")), review))
                if len(out) >= limit:
                    break
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return out
