"""The contact-policy firewall's values: the planned contact, the subject, the debt, the history, the verdict.

Plain, immutable values (:mod:`contacts.firewall` evaluates them; :mod:`contacts.firewall_checks`
holds one check per rule). What the firewall cannot check it refuses to guess: a naive
datetime, an unknown time zone, channel, direction, recipient or threat is an
:class:`core.errors.InvalidInputError` when the value is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from audit.events import Channel
from contacts.rules import Action, Direction
from core.errors import InvalidInputError

__all__ = [
    "DEFAULT_PURPOSE",
    "DEFAULT_TIME_ZONE",
    "THREATS",
    "ContactHistory",
    "DebtState",
    "Objection",
    "PastContact",
    "PlannedContact",
    "Recipient",
    "SubjectState",
    "Verdict",
    "Violation",
]

#: What a contact may threaten the debtor with (checked on time-barred consumer claims).
THREATS: Final = ("court", "bailiff", "debt_register")

Recipient = Literal["debtor", "third_party"]
DEFAULT_PURPOSE: Final = "debt_collection"
DEFAULT_TIME_ZONE: Final = "Europe/Warsaw"
_PURPOSE = re.compile(r"[a-z][a-z0-9_]{0,62}")
_RECIPIENTS: Final = ("debtor", "third_party")
_DIRECTIONS: Final = ("outbound", "inbound")


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{name} must be a timezone-aware datetime")


def _require_channel(value: object, name: str) -> None:
    if value not in _CHANNELS:
        raise InvalidInputError(f"{name} is not a known channel; known: {[c.value for c in Channel]}")


_CHANNELS: frozenset[Channel] = frozenset(Channel)


def _require_direction(value: object) -> None:
    if value not in _DIRECTIONS:
        raise InvalidInputError(f"direction must be one of {list(_DIRECTIONS)}")


class Objection(NamedTuple):
    """A GDPR Art. 21 objection: to a purpose, on one channel or (``None``) on all of them."""

    purpose: str
    channel: Channel | None = None


@dataclass(frozen=True, kw_only=True)
class PlannedContact:
    """The contact asked about (or, when recording an outcome, the contact that took place).

    ``voluntary_payment_request`` marks a request to pay that demands nothing (on a
    time-barred claim: art. 117 § 2¹ k.c. forbids the demand, not the request);
    ``time_barred_notice`` says the contact tells the debtor the claim is time-barred;
    ``threats`` are what it threatens (:data:`THREATS`).

    ``conversation`` is only known once the contact happened; no rule reads it today (the
    caller records it in the history of later contacts).
    """

    channel: Channel
    planned_at: datetime
    agent_id: str
    debt_id: str | None
    recipient: Recipient = "debtor"
    discloses_debt: bool
    demands_payment: bool
    purpose: str = DEFAULT_PURPOSE
    direction: Direction = "outbound"
    conversation: bool | None = None
    voluntary_payment_request: bool = False
    time_barred_notice: bool = False
    threats: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.threats) - set(THREATS))
        if unknown:
            raise InvalidInputError(f"threats must be among {list(THREATS)}")
        _require_channel(self.channel, "channel")
        _require_aware(self.planned_at, "planned_at")
        _require_direction(self.direction)
        if self.recipient not in _RECIPIENTS:
            raise InvalidInputError(f"recipient must be one of {list(_RECIPIENTS)}")
        if not _PURPOSE.fullmatch(self.purpose):
            raise InvalidInputError("purpose must be a lower-case identifier such as 'debt_collection'")


@dataclass(frozen=True, kw_only=True)
class SubjectState:
    """What the subject asked for and where they live, as far as contact is concerned."""

    time_zone: str = DEFAULT_TIME_ZONE
    opted_out_channels: frozenset[Channel] = frozenset()
    objections: frozenset[Objection] = frozenset()
    restricted: bool = False
    cease_contact: bool = False
    weekend_contact_allowed: frozenset[Channel] = frozenset()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInputError("time_zone is not a known IANA time zone") from None

    @property
    def zone(self) -> ZoneInfo:
        """The subject's time zone."""
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True, kw_only=True)
class DebtState:
    """What the firewall needs to know of the debt the contact is about."""

    debt_id: str
    consumer: bool
    time_barred_on: date | None = None  # the first day the claim is time-barred, if known


@dataclass(frozen=True, kw_only=True)
class PastContact:
    """One earlier contact of the subject."""

    channel: Channel
    at: datetime
    debt_id: str | None = None
    conversation: bool = False
    direction: Direction = "outbound"

    def __post_init__(self) -> None:
        _require_channel(self.channel, "history channel")
        _require_aware(self.at, "history time")
        _require_direction(self.direction)


@dataclass(frozen=True)
class ContactHistory:
    """The subject's recent contacts (those older than every window may be left out)."""

    contacts: tuple[PastContact, ...] = ()


@dataclass(frozen=True)
class Violation:
    """A rule the contact breaks, what the rule says to do about it, and what the rule rests on
    (``source_kind``: statute, regulator_guidance, industry_code or firm_policy; ``source``: the citation)."""

    rule: str
    action: Action
    message: str
    source_kind: str = ""
    source: str = ""


@dataclass(frozen=True)
class Verdict:
    """The firewall's answer: allowed or not, flagged or not, and why."""

    allowed: bool
    flagged: bool
    violations: tuple[Violation, ...]
    rules_checked: tuple[str, ...]
    rules_sha256: str  # the fingerprint of the rule set that decided

    @property
    def refusals(self) -> tuple[Violation, ...]:
        """The violations that block the contact."""
        return tuple(v for v in self.violations if v.action == "refuse")

    @property
    def flags(self) -> tuple[Violation, ...]:
        """The violations recorded with a flag."""
        return tuple(v for v in self.violations if v.action == "flag")

    @property
    def refused_by(self) -> str | None:
        """The id of the first rule that blocks the contact, or None if it is allowed."""
        return self.refusals[0].rule if self.refusals else None


