"""What the contacts services share: the authorisation guard, errors, identifiers and small helpers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Final

from sqlalchemy import Engine

from audit.events import Channel
from audit.service import AuditLog
from contacts import repository
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection
from core.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from core.logging import get_logger, mask_text
from identity.principal import Principal
from policies.authorizer import Authorizer, Resource
from vault.service import SubjectShreddedError, VaultService

log = get_logger("contacts")

RECORD_ACTION: Final = "contact.record"
READ_ACTION: Final = "read_masked"
GDPR_ACTION: Final = "gdpr.manage"
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}")
PURPOSE_PATTERN: Final = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
CURRENCY_PATTERN: Final = re.compile(r"[A-Z]{3}")


class ContactNotFoundError(NotFoundError):
    code = "contact-not-found"
    title = "Contact not found"


class DebtNotFoundError(NotFoundError):
    code = "debt-not-found"
    title = "Debt not found"


class CaseNotFoundError(NotFoundError):
    code = "case-not-found"
    title = "Case not found"


class Guard:
    """The engine, vault, log and authorizer a contacts service works with, and its authorisation checks."""

    def __init__(self, engine: Engine, vault: VaultService, audit: AuditLog, authorizer: Authorizer,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.vault = vault
        self.audit = audit
        self.authorizer = authorizer
        self.clock = clock

    def resource_for(self, token: str) -> Resource:
        """The subject as the authorisation policies see it: its cases and whether it is restricted."""
        return subject_resources(self.engine, [token])[0]

    def subject_known(self, token: str) -> None:
        """SubjectNotFoundError unless a subject has this token (shredded or not)."""
        self.vault.subject_status(token)

    def subject_active(self, token: str) -> None:
        """SubjectNotFoundError or SubjectShreddedError unless the subject exists and is not shredded."""
        if self.vault.subject_status(token) != "active":
            raise SubjectShreddedError("the subject was shredded; its data can no longer be read")

    def require(self, principal: Principal, action: str, subject: str) -> None:
        """PermissionDeniedError (naming the kind of rule) unless the policies allow ``action`` on the subject."""
        self.require_on(principal, action, self.resource_for(subject))

    def require_on(self, principal: Principal, action: str, resource: Resource) -> None:
        """:meth:`require` on a subject already described (its cases and restriction read by the caller)."""
        subject = resource.id
        decision = self.authorizer.decide(principal, action, resource, purpose=None, now=self.clock.now())
        if not decision.allowed:
            log.info("contacts_denied", action=action, subject=subject, rule=decision.rule)
            raise PermissionDeniedError(f"{action} refused by a {decision.rule} rule", rule=decision.rule)


def subject_resources(engine: Engine, tokens: Sequence[str]) -> list[Resource]:
    """Subjects as the authorisation policies see them: the ids of their cases and whether they are restricted."""
    with read_connection(engine) as conn:
        case_ids = repository.case_ids_of(conn, list(dict.fromkeys(tokens)))
        restricted = repository.restricted_subjects(conn, list(dict.fromkeys(tokens)))
    return [Resource("subject", t, case_ids=case_ids[t], restricted=t in restricted) for t in tokens]


def iso_date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def aware(value: datetime) -> datetime:
    """A time read back from the database, with its zone (SQLite returns stored UTC times naive)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def check_id(value: str, name: str) -> None:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value) or mask_text(value) != value:
        raise InvalidInputError(f"{name} must be 1 to 64 letters, digits or . _ : / - and hold no personal data")


def check_plain(name: str, value: str, limit: int) -> None:
    if not isinstance(value, str) or not 0 < len(value.strip()) <= limit:
        raise InvalidInputError(f"{name} must be 1 to {limit} characters")
    if mask_text(value) != value:
        raise InvalidInputError(f"{name} looks like personal data; it must be an id or a name of an organisation")


def channel_name(value: str | None) -> str:
    try:
        return Channel(value or "").value
    except ValueError:
        raise InvalidInputError(f"channel must be one of {', '.join(c.value for c in Channel)}") from None


