"""The breach register (GDPR Art. 33(5)): every personal data breach, notified or not, with its facts.

Art. 33(5): "The controller shall document any personal data breaches, comprising the facts
relating to the personal data breach, its effects and the remedial action taken. That
documentation shall enable the supervisory authority to verify compliance with this
Article." So the register holds every breach, also those not notified because they are
"unlikely to result in a risk" (Art. 33(1)), with the reason. An entry records:

* when the firm became aware (the 72-hour clock of Art. 33(1) runs from it:
  :func:`gdpr.deadlines.breach_notification_due`), and when the breach happened, if known;
* its nature (confidentiality, integrity, availability), the data categories, how many
  subjects, and the compromised principal if there is one (its impact report:
  ``POST /v1/gdpr/breach``, :mod:`gdpr.breach`);
* the facts, the effects and the remedial action (free text about the incident: refused
  if it looks like personal data, since the register is shown to the authority);
* the risk assessed (``unlikely``, ``risk``, ``high``: Art. 34 then needs the subjects told);
* the notification of the authority (UODO; when, its reference) or why none was made, and
  the communication to the subjects (Art. 34) when the risk is high.

Every entry and change is a ``gdpr.breach_*`` entry of the audit log carrying the SHA-256 of
the texts, so the register can be shown to be what it was when recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine

from audit.events import BreachPayload, format_time
from audit.service import AuditLog
from contacts.common import aware
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection, write_connection
from core.errors import InvalidInputError, NotFoundError
from core.logging import clear_of_pii_patterns, mask_text
from gdpr import register_repository as repo
from gdpr.deadlines import breach_notification_due
from gdpr.register_models import BREACH_RISKS
from identity.principal import Principal

__all__ = ["NATURES", "BreachNotFoundError", "BreachRegister", "NewBreach"]

NATURES: Final = ("confidentiality", "integrity", "availability")
DATA_CATEGORIES: Final = ("identification", "contact", "financial", "notes", "location", "recordings",
                          "contact_events")
MAX_TEXT: Final = 4000
LIST_LIMIT: Final = 500


class BreachNotFoundError(NotFoundError):
    code = "breach-not-found"
    title = "Breach not found"


@dataclass(frozen=True, kw_only=True)
class NewBreach:
    """A breach as the DPO records it (see the module docs for each part)."""

    aware_at: datetime
    nature: tuple[str, ...]
    data_categories: tuple[str, ...]
    facts: str
    effects: str
    remedial_action: str
    risk: str
    occurred_from: datetime | None = None
    occurred_until: datetime | None = None
    subjects_count: int | None = None
    actor_id: str | None = None
    not_notified_reason: str | None = None


def _text(name: str, value: str | None, limit: int = MAX_TEXT, *, required: bool = True) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InvalidInputError(f"{name} is needed (Art. 33(5))")
        return None
    if len(value) > limit:
        raise InvalidInputError(f"{name} has at most {limit} characters")
    if mask_text(value) != value:
        raise InvalidInputError(f"{name} looks like it holds personal data (an identifier, a phone number, an "
                                "e-mail address); describe the incident without it")
    return value.strip()


_REFERENCE = re.compile(r"(?=[^A-Za-z]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9./ -]{1,63}")
_LONG_DIGITS = re.compile(r"[0-9]{9}")


def _reference(value: str) -> str:
    """The supervisory authority's case reference (e.g. UODO's ``DKN.5110.1.2026``): letters, digits and
    ``. / -``, with a letter, and no run of nine digits. Checked by its own shape, not by the generic
    personal-number heuristic, which reads a file signature's digit groups as a phone number."""
    value = value.strip()
    if not _REFERENCE.fullmatch(value) or _LONG_DIGITS.search(value):
        raise InvalidInputError("authority_reference is the authority's case reference, like DKN.5110.1.2026 "
                                "(letters, digits, . / -; at most 64 characters)")
    return value


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInputError(f"{name} must carry a time zone offset")
    return value.astimezone(UTC)


def _codes(name: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> str:
    if not values or any(v not in allowed for v in values):
        raise InvalidInputError(f"{name} must be one or more of {', '.join(allowed)}")
    return ",".join(dict.fromkeys(values))


class BreachRegister:
    """Breaches as recorded and updated by the DPO; each step logged first."""

    def __init__(self, engine: Engine, audit: AuditLog, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.audit = audit
        self.clock = clock

    def record(self, principal: Principal, breach: NewBreach) -> dict[str, Any]:
        """Add a breach to the register."""
        now = self.clock.now()
        aware_at = _aware(breach.aware_at, "aware_at")
        assert aware_at is not None  # noqa: S101 - required
        if aware_at > now:
            raise InvalidInputError("aware_at is in the future")
        occurred_from, occurred_until = (_aware(breach.occurred_from, "occurred_from"),
                                         _aware(breach.occurred_until, "occurred_until"))
        if occurred_from and occurred_until and occurred_until < occurred_from:
            raise InvalidInputError("occurred_until is before occurred_from")
        if breach.risk not in BREACH_RISKS:
            raise InvalidInputError(f"risk must be one of {', '.join(BREACH_RISKS)}")
        if breach.subjects_count is not None and breach.subjects_count < 0:
            raise InvalidInputError("subjects_count must not be negative")
        row = {
            "id": clear_of_pii_patterns(lambda: "brc_" + secrets.token_urlsafe(12)), "aware_at": aware_at,
            "occurred_from": occurred_from, "occurred_until": occurred_until,
            "nature": _codes("nature", breach.nature, NATURES),
            "data_categories": _codes("data_categories", breach.data_categories, DATA_CATEGORIES),
            "subjects_count": breach.subjects_count,
            "actor_id": _text("actor_id", breach.actor_id, 128, required=False),
            "facts": _text("facts", breach.facts), "effects": _text("effects", breach.effects),
            "remedial_action": _text("remedial_action", breach.remedial_action), "risk": breach.risk,
            "authority_notified_at": None, "authority_reference": None, "subjects_notified_at": None,
            "not_notified_reason": _text("not_notified_reason", breach.not_notified_reason, 300, required=False),
            "recorded_by": principal.actor.id, "recorded_at": now, "updated_at": now,
        }
        self._log("gdpr.breach_recorded", principal, row)
        with write_connection(self.engine) as conn:
            repo.insert_breach(conn, row)
        return self._json(row)

    def update(self, principal: Principal, breach_id: str, *, authority_notified_at: datetime | None = None,
               authority_reference: str | None = None, subjects_notified_at: datetime | None = None,
               not_notified_reason: str | None = None, remedial_action: str | None = None,
               effects: str | None = None, risk: str | None = None) -> dict[str, Any]:
        """Record the notifications (Art. 33(1), 34), a changed risk, or more of the effects and remedies."""
        row = self._row(breach_id)
        values: dict[str, Any] = {}
        now = self.clock.now()
        for name, value in (("authority_notified_at", authority_notified_at),
                            ("subjects_notified_at", subjects_notified_at)):
            at = _aware(value, name)
            if at is not None:
                if at > now or at < aware(row["aware_at"]):
                    raise InvalidInputError(f"{name} must be between the moment of awareness and now")
                values[name] = at
        if authority_reference is not None:
            values["authority_reference"] = _reference(authority_reference)
        if not_notified_reason is not None:
            values["not_notified_reason"] = _text("not_notified_reason", not_notified_reason, 300)
        for name, text in (("remedial_action", remedial_action), ("effects", effects)):
            if text is not None:
                values[name] = _text(name, text)
        if risk is not None:
            if risk not in BREACH_RISKS:
                raise InvalidInputError(f"risk must be one of {', '.join(BREACH_RISKS)}")
            values["risk"] = risk
        if not values:
            raise InvalidInputError("nothing to change")
        updated = {**row, **values, "updated_at": now}
        self._log("gdpr.breach_updated", principal, updated)
        with write_connection(self.engine) as conn:
            repo.update_breach(conn, breach_id, {**values, "updated_at": now})
        return self._json(self._row(breach_id))

    def get(self, breach_id: str) -> dict[str, Any]:
        return self._json(self._row(breach_id))

    def listing(self, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
        """Every breach, the latest first."""
        if not 0 < limit <= LIST_LIMIT:
            raise InvalidInputError(f"limit must be 1 to {LIST_LIMIT}")
        with read_connection(self.engine) as conn:
            return [self._json(r) for r in repo.list_breaches(conn, limit=limit)]

    # -- helpers ---------------------------------------------------------------------------------

    def _row(self, breach_id: str) -> dict[str, Any]:
        with read_connection(self.engine) as conn:
            row = repo.get_breach(conn, breach_id) if isinstance(breach_id, str) and len(breach_id) <= 40 else None
        if row is None:
            raise BreachNotFoundError("no breach has this id")
        return row

    def _log(self, event_type: str, principal: Principal, row: dict[str, Any]) -> None:
        aware_at = aware(row["aware_at"])
        texts = json.dumps({k: row[k] for k in ("facts", "effects", "remedial_action", "not_notified_reason",
                                                "authority_reference")}, sort_keys=True, ensure_ascii=False)
        self.audit.record(event_type, actor=principal.actor, payload=BreachPayload(
            breach_id=row["id"], risk=row["risk"], aware_at=aware_at, notify_by=breach_notification_due(aware_at),
            subjects_count=row["subjects_count"], texts_sha256=hashlib.sha256(texts.encode("utf-8")).hexdigest(),
            authority_notified_at=row["authority_notified_at"], subjects_notified_at=row["subjects_notified_at"]))

    def _json(self, row: dict[str, Any]) -> dict[str, Any]:
        aware_at = aware(row["aware_at"])
        notify_by = breach_notification_due(aware_at)
        notified = row["authority_notified_at"]
        now = self.clock.now()
        waiting = notified is None and row["risk"] != "unlikely"

        def when(value: datetime | None) -> str | None:
            return None if value is None else format_time(aware(value))

        return {
            "id": row["id"], "aware_at": format_time(aware_at), "notify_by": format_time(notify_by),
            "hours_left": round((notify_by - now).total_seconds() / 3600, 2) if waiting else None,
            "overdue": waiting and now > notify_by,
            "notified_in_time": None if notified is None else aware(notified) <= notify_by,
            "occurred_from": when(row["occurred_from"]), "occurred_until": when(row["occurred_until"]),
            "nature": row["nature"].split(","), "data_categories": row["data_categories"].split(","),
            "subjects_count": row["subjects_count"], "actor_id": row["actor_id"], "facts": row["facts"],
            "effects": row["effects"], "remedial_action": row["remedial_action"], "risk": row["risk"],
            "subjects_to_be_told": row["risk"] == "high",
            "authority_notified_at": when(notified), "authority_reference": row["authority_reference"],
            "subjects_notified_at": when(row["subjects_notified_at"]),
            "not_notified_reason": row["not_notified_reason"], "recorded_by": row["recorded_by"],
            "recorded_at": when(row["recorded_at"]),
        }
