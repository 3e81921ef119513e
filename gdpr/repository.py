"""The only place that queries the GDPR tables. Rows in and out as plain values, never personal data."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, func, insert, or_, select, update

from gdpr.models import DataSubjectRequest, LegalHold

requests = cast(Table, DataSubjectRequest.__table__)
holds = cast(Table, LegalHold.__table__)
OPEN = ("received", "verified")


def insert_request(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(requests), [row])


def get_request(conn: Connection, request_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(requests).where(requests.c.id == request_id)).mappings().first()
    return dict(row) if row is not None else None


def update_request(conn: Connection, request_id: str, expected_status: tuple[str, ...], values: dict[str, Any]) -> bool:
    """Change a request if its status is one of ``expected_status``; False if another change came first."""
    changed = conn.execute(update(requests).where(requests.c.id == request_id,
                                                  requests.c.status.in_(expected_status)).values(**values))
    return changed.rowcount == 1


def list_requests(conn: Connection, *, statuses: tuple[str, ...] | None, due_by: date | None,
                  subject: str | None, after: tuple[date, str] | None, limit: int) -> list[dict[str, Any]]:
    """Requests by deadline then id (oldest deadline first), after the cursor ``(due_on, id)``."""
    query = select(requests)
    if statuses:
        query = query.where(requests.c.status.in_(statuses))
    if due_by is not None:
        query = query.where(requests.c.due_on <= due_by)
    if subject is not None:
        query = query.where(requests.c.subject_token == subject)
    if after is not None:
        due, request_id = after
        query = query.where(or_(requests.c.due_on > due, and_(requests.c.due_on == due, requests.c.id > request_id)))
    rows = conn.execute(query.order_by(requests.c.due_on, requests.c.id).limit(limit))
    return [dict(r) for r in rows.mappings()]


def insert_hold(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(holds), [row])


def get_hold(conn: Connection, hold_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(holds).where(holds.c.id == hold_id)).mappings().first()
    return dict(row) if row is not None else None


def holds_of(conn: Connection, subject: str, *, active_only: bool) -> list[dict[str, Any]]:
    query = select(holds).where(holds.c.subject_token == subject)
    if active_only:
        query = query.where(holds.c.released_at.is_(None))
    return [dict(r) for r in conn.execute(query.order_by(holds.c.created_at, holds.c.id)).mappings()]


def active_holds(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Holds not released, newest first, at most ``limit``."""
    query = (select(holds).where(holds.c.released_at.is_(None))
             .order_by(holds.c.created_at.desc(), holds.c.id.desc()).limit(limit))
    return [dict(r) for r in conn.execute(query).mappings()]


def release_hold(conn: Connection, hold_id: str, at: datetime) -> bool:
    changed = conn.execute(update(holds).where(holds.c.id == hold_id, holds.c.released_at.is_(None))
                           .values(released_at=at))
    return changed.rowcount == 1


def active_holds_in_range(conn: Connection, first: str, last: str) -> dict[str, list[dict[str, Any]]]:
    """Active holds of the subjects first..last (token order; one range scan)."""
    out: dict[str, list[dict[str, Any]]] = {}
    rows = conn.execute(select(holds).where(holds.c.subject_token >= first, holds.c.subject_token <= last,
                                            holds.c.released_at.is_(None)))
    for row in rows.mappings():
        out.setdefault(row["subject_token"], []).append(dict(row))
    return out


def last_completed_in_range(conn: Connection, first: str, last: str) -> dict[str, datetime]:
    """When each subject's latest completed request was closed; absent if none."""
    rows = conn.execute(select(requests.c.subject_token, func.max(requests.c.closed_at))
                        .where(requests.c.subject_token >= first, requests.c.subject_token <= last,
                               requests.c.status == "completed").group_by(requests.c.subject_token))
    return {token: at for token, at in rows if at is not None}
