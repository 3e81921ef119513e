"""The only place that queries the DPO's registers (Art. 14 notices, Art. 19 recipients, Art. 33(5) breaches).

Every function takes a SQLAlchemy ``Connection`` whose transaction belongs to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, update

from contacts.repository import events
from gdpr.register_models import Breach, Notice, Recipient, RecipientNotification

notices = cast(Table, Notice.__table__)
recipients = cast(Table, Recipient.__table__)
notifications = cast(Table, RecipientNotification.__table__)
breaches = cast(Table, Breach.__table__)


def _one(conn: Connection, table: Table, key: str) -> dict[str, Any] | None:
    row = conn.execute(select(table).where(table.c.id == key)).mappings().first()
    return dict(row) if row is not None else None


# -- Art. 14 notices ---------------------------------------------------------------------------

def insert_notice(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(notices), [row])


def get_notice(conn: Connection, notice_id: str) -> dict[str, Any] | None:
    return _one(conn, notices, notice_id)


def notice_for(conn: Connection, subject: str, debt_id: str | None) -> dict[str, Any] | None:
    query = select(notices).where(notices.c.subject_token == subject)
    query = query.where(notices.c.debt_id.is_(None) if debt_id is None else notices.c.debt_id == debt_id)
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


def notices_of(conn: Connection, subject: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(notices).where(notices.c.subject_token == subject).order_by(notices.c.obtained_on))
    return [dict(r) for r in rows.mappings()]


def notices_by_status(conn: Connection, statuses: Sequence[str] | None, *, limit: int) -> list[dict[str, Any]]:
    query = select(notices)
    if statuses is not None:
        query = query.where(notices.c.status.in_(list(statuses)))
    rows = conn.execute(query.order_by(notices.c.due_on, notices.c.id).limit(limit))
    return [dict(r) for r in rows.mappings()]


def update_notice(conn: Connection, notice_id: str, expected: str, values: dict[str, Any]) -> int:
    return conn.execute(update(notices).where(notices.c.id == notice_id, notices.c.status == expected)
                        .values(**values)).rowcount


def notice_counts(conn: Connection) -> dict[str, int]:
    return {status: int(n) for status, n in conn.execute(
        select(notices.c.status, func.count()).group_by(notices.c.status))}


# -- Art. 19 recipients and notifications ------------------------------------------------------

def insert_recipient(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(recipients), [row])


def get_recipient(conn: Connection, recipient_id: str) -> dict[str, Any] | None:
    return _one(conn, recipients, recipient_id)


def recipient_like(conn: Connection, subject: str, kind: str, name: str, debt_id: str | None) -> dict[str, Any] | None:
    query = select(recipients).where(recipients.c.subject_token == subject, recipients.c.kind == kind,
                                     recipients.c.name == name)
    query = query.where(recipients.c.debt_id.is_(None) if debt_id is None else recipients.c.debt_id == debt_id)
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


def recipients_of(conn: Connection, subject: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(recipients).where(recipients.c.subject_token == subject)
                        .order_by(recipients.c.disclosed_on, recipients.c.id))
    return [dict(r) for r in rows.mappings()]


def recipient_kinds(conn: Connection) -> list[tuple[str, str, int]]:
    """(kind, name, subjects) over the whole register: the Art. 30 record's recipients."""
    subjects = func.count(func.distinct(recipients.c.subject_token))
    rows = conn.execute(select(recipients.c.kind, recipients.c.name, subjects)
                        .group_by(recipients.c.kind, recipients.c.name).order_by(recipients.c.kind, recipients.c.name))
    return [(str(kind), str(name), int(n)) for kind, name, n in rows]


def insert_notifications(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(notifications), list(rows))


def get_notification(conn: Connection, notification_id: str) -> dict[str, Any] | None:
    return _one(conn, notifications, notification_id)


def notifications_of(conn: Connection, subject: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(notifications).where(notifications.c.subject_token == subject)
                        .order_by(notifications.c.created_at, notifications.c.id))
    return [dict(r) for r in rows.mappings()]


def notifications_by_status(conn: Connection, statuses: Sequence[str], *, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(notifications).where(notifications.c.status.in_(list(statuses)))
                        .order_by(notifications.c.created_at, notifications.c.id).limit(limit))
    return [dict(r) for r in rows.mappings()]


def update_notification(conn: Connection, notification_id: str, values: dict[str, Any]) -> int:
    return conn.execute(update(notifications).where(notifications.c.id == notification_id,
                                                    notifications.c.status == "pending").values(**values)).rowcount


def notification_counts(conn: Connection) -> dict[str, int]:
    return {status: int(n) for status, n in conn.execute(
        select(notifications.c.status, func.count()).group_by(notifications.c.status))}


# -- Art. 33(5) breaches -----------------------------------------------------------------------

def insert_breach(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(breaches), [row])


def get_breach(conn: Connection, breach_id: str) -> dict[str, Any] | None:
    return _one(conn, breaches, breach_id)


def list_breaches(conn: Connection, *, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(breaches).order_by(breaches.c.aware_at.desc(), breaches.c.id).limit(limit))
    return [dict(r) for r in rows.mappings()]


def update_breach(conn: Connection, breach_id: str, values: dict[str, Any]) -> int:
    return conn.execute(update(breaches).where(breaches.c.id == breach_id).values(**values)).rowcount


def first_day(values: Sequence[date | None]) -> date | None:
    days = [d for d in values if d is not None]
    return min(days) if days else None


def first_contacts(conn: Connection, notice_ids: Sequence[str]) -> dict[str, Any]:
    """For each notice of ``notice_ids``: the time of the first recorded (not refused) contact with its
    subject on or after the day the data was obtained (absent: none yet)."""
    out: dict[str, Any] = {}
    ids = list(dict.fromkeys(notice_ids))
    for start in range(0, len(ids), 400):
        chunk = ids[start:start + 400]
        rows = conn.execute(
            select(notices.c.id, func.min(events.c.occurred_at))
            .join(events, (events.c.subject_token == notices.c.subject_token)
                  & (events.c.occurred_at >= notices.c.obtained_on) & (events.c.decision != "refuse"))
            .where(notices.c.id.in_(chunk)).group_by(notices.c.id))
        out.update({notice_id: at for notice_id, at in rows if at is not None})
    return out
