"""The Art. 14 clock: informing a subject whose data the firm obtained from someone else (a debt it bought).

When the firm obtains a claim as controller (it bought the receivable: ``held_as`` is
``controller``), it obtained the debtor's data from the creditor, not from the debtor, so
GDPR Art. 14 requires it to give the debtor the information of Art. 14(1) and (2) (who it
is, the purposes and legal bases, the categories of data, the source, the recipients, the
retention, the rights): "within a reasonable period after obtaining the personal data, but
at the latest within one month" (Art. 14(3)(a)), or at the first communication with them if
that comes first (14(3)(b)). A notice is opened per acquired debt (and per guarantor or
co-debtor linked to it, whose data came with it) with the day the data was obtained (the
debt's ``assigned_on``, or the day it was recorded); its deadline is
:func:`gdpr.deadlines.notice_deadline` of that day and of the first contact with the
subject, read from the contacts index. A notice is closed as ``given`` (the day and the
channel) or ``exempt`` with the Art. 14(5) ground. Every step is a ``gdpr.notice_*``
entry of the audit log, appended before the row changes.

A debt collected for a creditor as its processor (``held_as: processor``) opens no notice:
the creditor, the controller, informs its own customers (the firm's part is in the Art.
30(2) record).
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from audit.events import NoticePayload
from audit.service import AuditLog
from contacts.common import aware, iso_date
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection, write_connection
from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.logging import clear_of_pii_patterns
from gdpr import register_repository as repo
from gdpr.deadlines import DUE_SOON_DAYS, notice_deadline, response_deadline
from identity.principal import Principal

__all__ = ["CHANNELS", "EXEMPTIONS", "NoticeBook", "NoticeNotFoundError"]

#: How the information was given.
CHANNELS: Final = ("letter", "email", "portal", "sms_link", "in_person")
#: Art. 14(5) grounds on which no information is due.
EXEMPTIONS: Final = {
    "already_informed": "Art. 14(5)(a): the subject already has the information (e.g. in the creditor's notice "
                        "of the assignment)",
    "disproportionate_effort": "Art. 14(5)(b): impossible or a disproportionate effort (documented, with the "
                               "information made public)",
    "required_by_law": "Art. 14(5)(c): obtaining or disclosure expressly laid down by law",
    "professional_secrecy": "Art. 14(5)(d): the data must remain confidential under professional secrecy",
}
VIEWS: Final = ("open", "overdue", "due_soon", "closed", "all")
LIST_LIMIT: Final = 500
_LEGAL_ZONE: Final = ZoneInfo("Europe/Warsaw")
_UNREAD: Final = object()  # the first contact has not been read yet


class NoticeNotFoundError(NotFoundError):
    code = "notice-not-found"
    title = "Notice not found"


class NoticeBook:
    """Art. 14 notices: opened when data is obtained, closed when given or exempt; listed by deadline."""

    def __init__(self, engine: Engine, audit: AuditLog, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.audit = audit
        self.clock = clock

    def open(self, principal: Principal, subject: str, *, debt_id: str | None, source: str,
             obtained_on: date) -> dict[str, Any]:
        """Open the notice of data about ``subject`` obtained on ``obtained_on`` from ``source`` (idempotent)."""
        with read_connection(self.engine) as conn:
            existing = repo.notice_for(conn, subject, debt_id)
        if existing is not None:
            return self._json(existing)
        now = self.clock.now()
        notice_id = clear_of_pii_patterns(lambda: "ntc_" + secrets.token_urlsafe(12))
        due = response_deadline(obtained_on)
        self.audit.record("gdpr.notice_opened", actor=principal.actor, subject=subject, payload=NoticePayload(
            notice_id=notice_id, status="open", debt_id=debt_id, obtained_on=obtained_on.isoformat(),
            due_on=due.isoformat()))
        row = {"id": notice_id, "subject_token": subject, "debt_id": debt_id, "source": source[:200],
               "obtained_on": obtained_on, "due_on": due, "status": "open", "given_on": None, "channel": None,
               "exemption": None, "created_at": now, "updated_at": now}
        with write_connection(self.engine) as conn:
            repo.insert_notice(conn, row)
        return self._json(row)

    def close(self, principal: Principal, notice_id: str, *, given_on: date | None = None,
              channel: str | None = None, exemption: str | None = None) -> dict[str, Any]:
        """Record the notice given (``given_on``, ``channel``) or not due (``exemption``, Art. 14(5))."""
        if (given_on is None) == (exemption is None):
            raise InvalidInputError("say either when and how the information was given, or the Art. 14(5) exemption")
        if given_on is not None and channel not in CHANNELS:
            raise InvalidInputError(f"channel must be one of {', '.join(CHANNELS)}")
        if exemption is not None and exemption not in EXEMPTIONS:
            raise InvalidInputError(f"exemption must be one of {', '.join(EXEMPTIONS)}")
        row = self._row(notice_id)
        if given_on is not None and (given_on > self.clock.now().date() or given_on < row["obtained_on"]):
            raise InvalidInputError("given_on must be between the day the data was obtained and today")
        if row["status"] != "open":
            raise ConflictError(f"the notice is already {row['status']}")
        status = "given" if given_on is not None else "exempt"
        self.audit.record("gdpr.notice_closed", actor=principal.actor, subject=row["subject_token"],
                          payload=NoticePayload(notice_id=notice_id, status=status, debt_id=row["debt_id"],
                                                given_on=iso_date(given_on), channel=channel, exemption=exemption))
        with write_connection(self.engine) as conn:
            if not repo.update_notice(conn, notice_id, "open", {
                    "status": status, "given_on": given_on, "channel": channel if given_on else None,
                    "exemption": exemption, "updated_at": self.clock.now()}):
                raise ConflictError("the notice changed meanwhile; read it again")
        return self._json(self._row(notice_id))

    def get(self, notice_id: str) -> dict[str, Any]:
        return self._json(self._row(notice_id))

    def of_subject(self, subject: str) -> list[dict[str, Any]]:
        with read_connection(self.engine) as conn:
            rows = repo.notices_of(conn, subject)
        return self._jsons(rows)

    def listing(self, view: str = "open", limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
        """Notices by deadline: ``open``, ``overdue``, ``due_soon`` (7 days), ``closed`` or ``all``."""
        if view not in VIEWS:
            raise InvalidInputError(f"view must be one of {', '.join(VIEWS)}")
        if not 0 < limit <= LIST_LIMIT:
            raise InvalidInputError(f"limit must be 1 to {LIST_LIMIT}")
        statuses = {"closed": ("given", "exempt"), "all": None}.get(view, ("open",))
        with read_connection(self.engine) as conn:
            rows = repo.notices_by_status(conn, statuses, limit=LIST_LIMIT)
        items = self._jsons(rows)
        if view == "overdue":
            items = [i for i in items if i["overdue"]]
        elif view == "due_soon":
            items = [i for i in items if not i["overdue"] and i["days_left"] is not None
                     and i["days_left"] <= DUE_SOON_DAYS]
        return sorted(items, key=lambda i: (i["due_on"], i["id"]))[:limit]

    def counts(self) -> dict[str, int]:
        """Open, overdue, given and exempt notices (the Art. 30 record and the dashboard)."""
        with read_connection(self.engine) as conn:
            counts = repo.notice_counts(conn)
        overdue = len(self.listing("overdue"))
        return {"open": counts.get("open", 0), "overdue": overdue, "given": counts.get("given", 0),
                "exempt": counts.get("exempt", 0)}

    # -- helpers ---------------------------------------------------------------------------------

    def _row(self, notice_id: str) -> dict[str, Any]:
        with read_connection(self.engine) as conn:
            row = repo.get_notice(conn, notice_id) if isinstance(notice_id, str) and len(notice_id) <= 40 else None
        if row is None:
            raise NoticeNotFoundError("no notice has this id")
        return row

    def _jsons(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with read_connection(self.engine) as conn:
            firsts = repo.first_contacts(conn, [r["id"] for r in rows])
        return [self._json(r, firsts.get(r["id"])) for r in rows]

    def _json(self, row: dict[str, Any], first_contact: datetime | object | None = _UNREAD) -> dict[str, Any]:
        if first_contact is _UNREAD:
            with read_connection(self.engine) as conn:
                first_contact = repo.first_contacts(conn, [row["id"]]).get(row["id"])
        assert first_contact is None or isinstance(first_contact, datetime)  # noqa: S101 - read above
        today = self.clock.now().date()
        first = aware(first_contact).astimezone(_LEGAL_ZONE).date() if first_contact is not None else None
        due = notice_deadline(row["obtained_on"], first)
        is_open = row["status"] == "open"
        given = row["given_on"]
        return {
            "id": row["id"], "subject": row["subject_token"], "debt_id": row["debt_id"], "source": row["source"],
            "article": "14", "obtained_on": row["obtained_on"].isoformat(), "month_ends_on": row["due_on"].isoformat(),
            "first_contact_on": iso_date(first), "due_on": due.isoformat(),
            "due_by": "first_contact" if due != row["due_on"] else "one_month",
            "status": row["status"], "given_on": iso_date(given), "channel": row["channel"],
            "exemption": row["exemption"], "exemption_basis": EXEMPTIONS.get(row["exemption"] or ""),
            "overdue": is_open and today > due, "days_left": (due - today).days if is_open else None,
            "in_time": None if given is None else given <= due,
        }
