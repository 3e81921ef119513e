"""What a subject asked for about being contacted, and the GDPR restriction and objections.

Opt-outs per channel, weekend consent per channel, the cease-contact flag and the
subject's time zone (``contact.preferences_changed``); an Art. 18 restriction
(``gdpr.restriction_applied`` / ``gdpr.restriction_lifted``) and Art. 21 objections per
purpose and channel (``gdpr.objection_recorded``). The firewall reads them as a
:class:`~contacts.firewall.SubjectState`; the vault's policies see the restriction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from audit.events import Channel, ContactPreferencesPayload, GdprPayload
from contacts import repository
from contacts.common import GDPR_ACTION, PURPOSE_PATTERN, READ_ACTION, RECORD_ACTION, Guard, channel_name
from contacts.firewall import Objection, SubjectState
from core.db import read_connection, write_connection
from core.errors import InvalidInputError
from identity.principal import Principal

__all__ = ["Preferences", "SubjectRuleBook", "subject_state"]

DEFAULT_TIME_ZONE: Final = "Europe/Warsaw"


@dataclass(frozen=True)
class Preferences:
    """What a subject asked for about being contacted (None: leave as it is)."""

    opted_out_channels: Sequence[str] | None = None
    weekend_channels: Sequence[str] | None = None
    cease_contact: bool | None = None
    time_zone: str | None = None


class SubjectRuleBook(Guard):
    """A subject's contact preferences, restriction and objections, each change in the audit log."""

    def state(self, subject: str) -> SubjectState:
        """The subject's contact rules as the firewall sees them (defaults where nothing was set)."""
        with read_connection(self.engine) as conn:
            return subject_state(repository.get_subject_rules(conn, subject),
                                  repository.active_objections(conn, subject))

    def state_for(self, principal: Principal, subject: str) -> SubjectState:
        """The subject's contact rules, if the principal may read the subject."""
        self.subject_known(subject)
        self.require(principal, READ_ACTION, subject)
        return self.state(subject)

    def set(self, principal: Principal, subject: str, prefs: Preferences) -> SubjectState:
        """Record what the subject asked for: opt-outs, weekend consent, cease contact, time zone."""
        values: dict[str, Any] = {}
        if prefs.opted_out_channels is not None:
            values["opted_out_channels"] = frozenset(channel_name(c) for c in prefs.opted_out_channels)
        if prefs.weekend_channels is not None:
            values["weekend_channels"] = frozenset(channel_name(c) for c in prefs.weekend_channels)
        if prefs.cease_contact is not None:
            values["cease_contact"] = bool(prefs.cease_contact)
        if prefs.time_zone is not None:
            values["time_zone"] = _time_zone(prefs.time_zone)
        if not values:
            raise InvalidInputError("name at least one preference to change")
        self.subject_active(subject)
        self.require(principal, RECORD_ACTION, subject)
        current = self.state(subject)
        after = {
            "opted_out_channels": values.get("opted_out_channels", current.opted_out_channels),
            "weekend_channels": values.get("weekend_channels", current.weekend_contact_allowed),
            "cease_contact": values.get("cease_contact", current.cease_contact),
            "time_zone": values.get("time_zone", current.time_zone),
        }
        self.audit.record("contact.preferences_changed", actor=principal.actor, subject=subject,
                          payload=ContactPreferencesPayload(
                              opted_out_channels=sorted(after["opted_out_channels"]),
                              weekend_channels=sorted(after["weekend_channels"]),
                              cease_contact=after["cease_contact"], time_zone=after["time_zone"]))
        now = self.clock.now()
        with write_connection(self.engine) as conn:
            repository.upsert_subject_rules(conn, subject, {**values, "updated_at": now}, defaults=_defaults(now))
        return self.state(subject)

    def set_restriction(self, principal: Principal, subject: str, restricted: bool, *,
                        request_id: str = "direct", reason: str | None = None) -> SubjectState:
        """Apply or lift a GDPR Art. 18 restriction: contacts stop except for legal claims; reveals need the DPO."""
        self.subject_known(subject)
        self.require(principal, GDPR_ACTION, subject)
        now = self.clock.now()
        event = "gdpr.restriction_applied" if restricted else "gdpr.restriction_lifted"
        self.audit.record(event, actor=principal.actor, subject=subject, payload=GdprPayload(
            request_id=request_id, article="18", status="applied" if restricted else "lifted", reason=reason))
        with write_connection(self.engine) as conn:
            current = repository.get_subject_rules(conn, subject)
            since = (current or {}).get("restricted_since") or now if restricted else None
            repository.upsert_subject_rules(conn, subject, {"restricted_since": since, "updated_at": now},
                                            defaults=_defaults(now))
        return self.state(subject)

    def record_objection(self, principal: Principal, subject: str, purpose: str, channel: str | None = None, *,
                         request_id: str = "direct", withdraw: bool = False) -> SubjectState:
        """Record (or withdraw) a GDPR Art. 21 objection to a purpose, on one channel or all."""
        if not PURPOSE_PATTERN.fullmatch(purpose or ""):
            raise InvalidInputError("purpose must be a policy identifier such as debt_collection")
        checked = channel_name(channel) if channel is not None else None
        self.subject_known(subject)
        self.require(principal, GDPR_ACTION, subject)
        now = self.clock.now()
        self.audit.record("gdpr.objection_recorded", actor=principal.actor, subject=subject, payload=GdprPayload(
            request_id=request_id, article="21", status="withdrawn" if withdraw else "recorded",
            reason=f"{purpose}/{checked or 'all'}"))
        with write_connection(self.engine) as conn:
            if withdraw:
                repository.withdraw_objections(conn, subject, purpose, checked, now)
            else:
                repository.insert_objection(conn, {"subject_token": subject, "purpose": purpose, "channel": checked,
                                                   "recorded_at": now, "withdrawn_at": None})
        return self.state(subject)


def subject_state(row: dict[str, Any] | None, objections: Sequence[tuple[str, str | None]]) -> SubjectState:
    found = frozenset(Objection(p, Channel(c) if c else None) for p, c in objections)
    if row is None:
        return SubjectState(objections=found)
    return SubjectState(
        time_zone=row["time_zone"], opted_out_channels=frozenset(Channel(c) for c in row["opted_out_channels"]),
        weekend_contact_allowed=frozenset(Channel(c) for c in row["weekend_channels"]),
        cease_contact=bool(row["cease_contact"]), restricted=row["restricted_since"] is not None,
        objections=found)


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError("time_zone must be an IANA time zone such as Europe/Warsaw") from None
    return value


def _defaults(now: datetime) -> dict[str, Any]:
    return {"time_zone": DEFAULT_TIME_ZONE, "opted_out_channels": frozenset(), "weekend_channels": frozenset(),
            "cease_contact": False, "restricted_since": None, "updated_at": now}


