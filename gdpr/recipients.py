"""The Art. 19 recipient register: to whom a subject's data was disclosed, and who was told of a change.

GDPR Art. 19: "The controller shall communicate any rectification or erasure of personal
data or restriction of processing carried out in accordance with Article 16, Article 17(1)
and Article 18 to each recipient to whom the personal data have been disclosed, unless
this proves impossible or involves disproportionate effort. The controller shall inform the
data subject about those recipients if the data subject requests it."

* :class:`RecipientRegister` records the recipients of a subject's data: the creditor, an
  assignee the claim was sold on to (recorded by itself when an assignment event names it),
  debt registers (BIG), bailiffs, courts, lawyers; each with the day of the first disclosure.
* :func:`notify_recipients` is what the GDPR service calls after it rectified, erased or
  restricted a subject's data: one ``pending`` notification per recipient the data had been
  disclosed to by then, each a ``gdpr.recipient_notification`` entry of the log. Tarcza does
  not send them (a letter, a register's API): the firm does, and records each as
  ``notified`` (day, method), or ``impossible`` / ``disproportionate`` with the reason.
* :func:`for_export` is what the subject's export carries (their right to learn the
  recipients, the last sentence of Art. 19, and Art. 15(1)(c)).

No personal data: recipients are organisations, subjects are tokens. The rows outlive a
crypto-shredding (they hold no sealed data), so an erased subject's notifications stand.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Engine

from audit.events import RecipientPayload
from audit.service import AuditLog
from contacts.common import check_id, check_plain, iso_date
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection, write_connection
from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.logging import clear_of_pii_patterns
from gdpr import register_repository as repo
from gdpr.register_models import NOTIFIED_ACTIONS, RECIPIENT_KINDS
from identity.principal import Principal

__all__ = ["METHODS", "OUTCOMES", "RecipientRegister", "for_export", "notify_recipients"]

#: How a recipient was told.
METHODS: Final = ("letter", "email", "api", "portal", "epuap")
#: What became of a notification (Art. 19: unless impossible or a disproportionate effort).
OUTCOMES: Final = ("notified", "impossible", "disproportionate")
ARTICLES: Final = {"rectification": "16", "erasure": "17(1)", "restriction": "18"}


class RecipientNotFoundError(NotFoundError):
    code = "recipient-not-found"
    title = "Recipient or notification not found"


def _new_id(prefix: str) -> str:
    return clear_of_pii_patterns(lambda: prefix + secrets.token_urlsafe(12))


def notify_recipients(engine: Engine, audit: AuditLog, principal: Principal, subject: str, action: str,
                      request_id: str, now: datetime) -> list[dict[str, Any]]:
    """After ``action`` (rectification, erasure, restriction) on the subject's data: a pending notification
    to each recipient the data was disclosed to by ``now``, each logged first. Returns them."""
    if action not in NOTIFIED_ACTIONS:
        raise InvalidInputError(f"action must be one of {', '.join(NOTIFIED_ACTIONS)}")
    with read_connection(engine) as conn:
        recipients = [r for r in repo.recipients_of(conn, subject) if r["disclosed_on"] <= now.date()]
    rows = []
    for recipient in recipients:
        notification_id = _new_id("rnt_")
        audit.record("gdpr.recipient_notification", actor=principal.actor, subject=subject, payload=RecipientPayload(
            recipient_id=recipient["id"], kind=recipient["kind"], name=recipient["name"],
            debt_id=recipient["debt_id"], notification_id=notification_id, action=action,
            request_id=request_id, status="pending"))
        rows.append({"id": notification_id, "recipient_id": recipient["id"], "subject_token": subject,
                     "action": action, "request_id": request_id, "status": "pending", "notified_on": None,
                     "method": None, "reason": None, "created_at": now, "updated_at": now})
    with write_connection(engine) as conn:
        repo.insert_notifications(conn, rows)
    by_id = {r["id"]: r for r in recipients}
    return [_notification_json(row, by_id[row["recipient_id"]]) for row in rows]


def for_export(engine: Engine, subject: str) -> list[dict[str, Any]]:
    """The subject's recipients, each with the notifications of changes sent or due to it (for the export)."""
    with read_connection(engine) as conn:
        recipients = repo.recipients_of(conn, subject)
        notifications = repo.notifications_of(conn, subject)
    return [{**_recipient_json(r), "notifications": [
        _notification_json(n, r) for n in notifications if n["recipient_id"] == r["id"]]} for r in recipients]


class RecipientRegister:
    """Recipients of subjects' data and the Art. 19 notifications to them."""

    def __init__(self, engine: Engine, audit: AuditLog, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.audit = audit
        self.clock = clock

    def add(self, principal: Principal, subject: str, *, kind: str, name: str, disclosed_on: date,
            debt_id: str | None = None) -> dict[str, Any]:
        """Record that the subject's data was disclosed to ``name`` (an organisation); the same again is a no-op."""
        if kind not in RECIPIENT_KINDS:
            raise InvalidInputError(f"kind must be one of {', '.join(RECIPIENT_KINDS)}")
        check_plain("name", name, 200)
        if debt_id is not None:
            check_id(debt_id, "debt_id")
        if disclosed_on > self.clock.now().date():
            raise InvalidInputError("disclosed_on is in the future")
        with read_connection(self.engine) as conn:
            existing = repo.recipient_like(conn, subject, kind, name, debt_id)
        if existing is not None:
            return _recipient_json(existing)
        recipient_id = _new_id("rcp_")
        self.audit.record("gdpr.recipient_recorded", actor=principal.actor, subject=subject, payload=RecipientPayload(
            recipient_id=recipient_id, kind=kind, name=name, debt_id=debt_id, status="recorded"))
        row = {"id": recipient_id, "subject_token": subject, "kind": kind, "name": name, "debt_id": debt_id,
               "disclosed_on": disclosed_on, "recorded_by": principal.actor.id, "recorded_at": self.clock.now()}
        with write_connection(self.engine) as conn:
            repo.insert_recipient(conn, row)
        return _recipient_json(row)

    def of_subject(self, subject: str) -> list[dict[str, Any]]:
        return for_export(self.engine, subject)

    def pending(self, limit: int = 500) -> list[dict[str, Any]]:
        """Notifications still to send (the console's dashboard, ``tarcza gdpr recipients pending``)."""
        with read_connection(self.engine) as conn:
            rows = repo.notifications_by_status(conn, ("pending",), limit=limit)
            recipients = {r["id"]: repo.get_recipient(conn, r["id"]) for r in
                          ({"id": n["recipient_id"]} for n in rows)}
        return [_notification_json(n, recipients[n["recipient_id"]] or {}) for n in rows]

    def record_outcome(self, principal: Principal, notification_id: str, outcome: str, *,
                       notified_on: date | None = None, method: str | None = None,
                       reason: str | None = None) -> dict[str, Any]:
        """Record that a recipient was told (day, method), or why it could not be (Art. 19)."""
        if outcome not in OUTCOMES:
            raise InvalidInputError(f"outcome must be one of {', '.join(OUTCOMES)}")
        if outcome == "notified" and (notified_on is None or method not in METHODS):
            raise InvalidInputError(f"a notified recipient needs notified_on and a method ({', '.join(METHODS)})")
        if outcome != "notified" and not reason:
            raise InvalidInputError("say why the recipient cannot be told (reason)")
        if reason is not None:
            check_plain("reason", reason, 200)
        if notified_on is not None and notified_on > self.clock.now().date():
            raise InvalidInputError("notified_on is in the future")
        with read_connection(self.engine) as conn:
            row = repo.get_notification(conn, notification_id) if len(notification_id) <= 40 else None
            recipient = repo.get_recipient(conn, row["recipient_id"]) if row is not None else None
        if row is None or recipient is None:
            raise RecipientNotFoundError("no notification has this id")
        if row["status"] != "pending":
            raise ConflictError(f"the notification is already {row['status']}")
        self.audit.record("gdpr.recipient_notification", actor=principal.actor, subject=row["subject_token"],
                          payload=RecipientPayload(recipient_id=recipient["id"], kind=recipient["kind"],
                                                   notification_id=notification_id, action=row["action"],
                                                   request_id=row["request_id"], status=outcome, method=method))
        with write_connection(self.engine) as conn:
            if not repo.update_notification(conn, notification_id, {
                    "status": outcome, "notified_on": notified_on, "method": method, "reason": reason,
                    "updated_at": self.clock.now()}):
                raise ConflictError("the notification changed meanwhile; read it again")
            updated = repo.get_notification(conn, notification_id)
        assert updated is not None  # noqa: S101 - read above, never deleted
        return _notification_json(updated, recipient)

    def summary(self) -> dict[str, Any]:
        """The register for the Art. 30 record: recipients by kind and name, notifications by status."""
        with read_connection(self.engine) as conn:
            kinds = repo.recipient_kinds(conn)
            counts = repo.notification_counts(conn)
        return {"recipients": [{"kind": k, "name": n, "subjects": c} for k, n, c in kinds],
                "notifications": {status: counts.get(status, 0) for status in ("pending", *OUTCOMES)}}


def _recipient_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "subject": row["subject_token"], "kind": row["kind"], "name": row["name"],
            "debt_id": row["debt_id"], "disclosed_on": row["disclosed_on"].isoformat()}


def _notification_json(row: dict[str, Any], recipient: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "recipient_id": row["recipient_id"], "recipient": recipient.get("name"),
            "recipient_kind": recipient.get("kind"), "subject": row["subject_token"], "action": row["action"],
            "article": ARTICLES[row["action"]], "request_id": row["request_id"], "status": row["status"],
            "notified_on": iso_date(row["notified_on"]), "method": row["method"], "reason": row["reason"]}
