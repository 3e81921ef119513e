"""Review of accesses that lift a rule: break-glass reveals, reviewed purposes, erasure overrides.

The vault's gate records every reveal in the log before any plaintext leaves it, with
``break_glass: true`` when the decision came from a break-glass policy and ``review: true``
when it waits for review for another reason (a reviewed purpose such as ``legal_claim``), with
the sealed justification. The DPO's erasure against the erasure decision is a
``gdpr.erasure_overridden`` entry (:mod:`gdpr.erasure`). The DPO or an auditor reviews each
one, never its own author: the verdict is itself an entry of the log
(``policy.break_glass_reviewed``, naming the reviewed entry's index), so the review is as
tamper-evident as the access, and an access without such an entry is awaiting review. This
module never sees a justification in clear.

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


OVERRIDE_TYPE = "gdpr.erasure_overridden"
REVIEWED_TYPES = ("vault.access", OVERRIDE_TYPE)


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
    kind: str = "break_glass"  # break_glass, reviewed_purpose or erasure_override
    via: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "time": self.time, "actor": {"id": self.actor_id, "kind": self.actor_kind},
                "subject": self.subject, "purpose": self.purpose, "fields": self.fields, "decision": self.decision,
                "has_justification": self.has_justification, "kind": self.kind, "via": self.via,
                "review": None if self.review is None else self.review.to_json()}


class OwnReviewError(ConflictError):
    code = "break-glass-own-review"


def flagged_kind(event: dict[str, Any]) -> str | None:
    """Why an entry waits for review (``break_glass``, ``reviewed_purpose``, ``erasure_override``), or None."""
    payload = event.get("payload", {})
    if event.get("type") == OVERRIDE_TYPE:
        return "erasure_override"
    if event.get("type") != "vault.access":
        return None
    if payload.get("break_glass") is True:
        return "break_glass"
    return "reviewed_purpose" if payload.get("review") is True else None


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
    if entry is None or flagged_kind(entry.event) is None:
        raise BreakGlassNotFoundError("no break-glass reveal is at this log index")
    if entry.event.get("actor", {}).get("id") == actor.id:
        raise OwnReviewError("an access is reviewed by someone else than its author", index=index)
    if _review_of(reviews(audit), index, entry.leaf_hash) is not None:
        raise AlreadyReviewedError("this break-glass reveal was reviewed already", index=index)
    return audit.record("policy.break_glass_reviewed", actor=actor, subject=entry.event.get("subject"),
                        payload={"entry_index": index, "entry_leaf_hash": entry.leaf_hash.hex(), "verdict": verdict})


def list_break_glass(audit: AuditLog, *, since: datetime | None = None, until: datetime | None = None,
                     start: int | None = None, limit: int = 1000,
                     awaiting_only: bool = False) -> list[BreakGlassAccess]:
    """Accesses waiting for review or reviewed (break-glass, reviewed purposes, erasure overrides) in log order
    (oldest first), from log index ``start``, at most ``limit``, each with its review if it has one
    (``awaiting_only``: only those without)."""
    done = reviews(audit)
    out: list[BreakGlassAccess] = []
    for event_type in REVIEWED_TYPES:
        out += _flagged(audit, EntryFilter(event_type=event_type, since=since, until=until, start=start), done,
                        limit, awaiting_only)
    return sorted(out, key=lambda item: item.index)[:limit]


def _flagged(audit: AuditLog, flt: EntryFilter, done: dict[int, Review], limit: int,
             awaiting_only: bool) -> list[BreakGlassAccess]:
    out: list[BreakGlassAccess] = []
    cursor: str | None = None
    while len(out) < limit:
        page = audit.query(flt, cursor=cursor, limit=PAGE)
        for entry in page.items:
            kind = flagged_kind(entry.event)
            review = _review_of(done, entry.index, entry.leaf_hash)
            if kind is not None and not (awaiting_only and review is not None):
                payload = entry.event.get("payload", {})
                actor = entry.event.get("actor", {})
                override = kind == "erasure_override"
                out.append(BreakGlassAccess(
                    entry.index, str(entry.event.get("time")), str(actor.get("id")), str(actor.get("kind")),
                    entry.event.get("subject"), "erasure" if override else payload.get("purpose"),
                    list(payload.get("overridden" if override else "fields", [])),
                    "override" if override else payload.get("decision"), bool(payload.get("justification")),
                    review, kind, payload.get("via")))
                if len(out) >= limit:
                    break
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return out
