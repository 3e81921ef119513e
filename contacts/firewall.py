"""The contact-policy firewall: may this contact with a debtor take place?

A pure function of the rules (:mod:`contacts.rules`), the planned contact, the state of the
subject and of the debt, and the subject's recent contacts. No clock, no database: the
time of the contact is part of the question. Invariants:

- every rule of the set that is enabled and applies to the contact's direction is checked,
  and named in ``rules_checked``, in the order of :data:`contacts.rules.RULE_IDS`;
- a rule yields at most one :class:`Violation`, with the rule's action (or, for hour
  windows, the channel's own action); the contact is allowed if and only if no violation
  says ``refuse``, and flagged if any says ``flag``;
- messages are written for a compliance officer and never contain personal data: only
  rule ids, channel names, purposes, hours, counts and dates;
- times are compared in the subject's time zone (hours, weekends, public holidays) and
  calendar dates of legal effect in the rules' ``legal_time_zone`` (limitation);
- rolling windows are half-open, ``(planned_at - window, planned_at]``: a contact exactly
  one window ago no longer counts; "the same debt" is the planned contact's debt, or any
  debt of the subject when the planned contact names none (the cautious reading);
- what the firewall cannot check it refuses to guess: a naive datetime, an unknown time
  zone, a debt state for another debt, or a payment demand without the debt's state is an
  :class:`core.errors.InvalidInputError`.

The history passed in must not contain the planned contact itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from audit.events import Channel
from contacts.calendar import holiday_name, is_weekend
from contacts.rules import (
    Action,
    AllowedHoursRule,
    CeaseContactRule,
    ChannelOptOutRule,
    ContactRules,
    CooldownRule,
    Direction,
    FrequencyCapRule,
    HoursWindow,
    ObjectionRule,
    PublicHolidayRule,
    RestrictionRule,
    ThirdPartyDisclosureRule,
    TimeBarredDemandRule,
    WeekendRule,
)
from core.errors import InvalidInputError

__all__ = [
    "DEFAULT_PURPOSE",
    "DEFAULT_TIME_ZONE",
    "ContactHistory",
    "DebtState",
    "Objection",
    "PastContact",
    "PlannedContact",
    "Recipient",
    "SubjectState",
    "Verdict",
    "Violation",
    "evaluate",
]

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

    def __post_init__(self) -> None:
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
    """A rule the contact breaks, and what the rule says to do about it."""

    rule: str
    action: Action
    message: str


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


@dataclass(frozen=True)
class _Context:
    rules: ContactRules
    planned: PlannedContact
    subject: SubjectState
    debt: DebtState | None
    history: tuple[PastContact, ...]
    local: datetime  # planned_at in the subject's zone
    legal_date: date  # planned_at's date in the rules' legal zone

    @property
    def channel(self) -> Channel:
        return Channel(self.planned.channel)

    @property
    def minute_of_day(self) -> int:
        return self.local.hour * 60 + self.local.minute

    def on_same_debt(self, contact: PastContact) -> bool:
        """Whether an earlier contact concerns the planned contact's debt (any, if it names none)."""
        return self.planned.debt_id is None or contact.debt_id == self.planned.debt_id

    @property
    def debt_scope(self) -> str:
        return "this debt" if self.planned.debt_id is not None else "any debt of the subject"

    def within(self, contact: PastContact, window: timedelta) -> bool:
        return self.planned.planned_at - window < contact.at <= self.planned.planned_at


_Check = Callable[[_Context], Violation | None]


def _hhmm(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


def _window_text(window: HoursWindow) -> str:
    return f"{window.start}-{window.end}"


def _purposes_text(purposes: Iterable[str]) -> str:
    names = sorted(purposes)
    return ", ".join(names) if names else "none"


def _check_cease_contact(ctx: _Context) -> Violation | None:
    rule: CeaseContactRule = ctx.rules.rules.cease_contact
    if not ctx.subject.cease_contact or ctx.planned.purpose in rule.exempt_purposes:
        return None
    return Violation(
        "cease_contact",
        rule.action,
        "the subject asked not to be contacted; only these purposes may contact them: "
        f"{_purposes_text(rule.exempt_purposes)}",
    )


def _check_restriction(ctx: _Context) -> Violation | None:
    rule: RestrictionRule = ctx.rules.rules.restriction
    if not ctx.subject.restricted or ctx.planned.purpose in rule.exempt_purposes:
        return None
    return Violation(
        "restriction",
        rule.action,
        f"processing is restricted (GDPR Art. 18); purpose {ctx.planned.purpose} is not an exception "
        f"(exceptions: {_purposes_text(rule.exempt_purposes)})",
    )


def _check_objection(ctx: _Context) -> Violation | None:
    rule: ObjectionRule = ctx.rules.rules.objection
    matching = [
        objection
        for objection in ctx.subject.objections
        # by position, so that plain (purpose, channel) tuples work as well as Objection
        if objection[0] == ctx.planned.purpose and (objection[1] is None or objection[1] == ctx.channel)
    ]
    if not matching:
        return None
    scope = "every channel" if any(objection[1] is None for objection in matching) else f"{ctx.channel.value}"
    return Violation(
        "objection",
        rule.action,
        f"the subject objected (GDPR Art. 21) to processing for purpose {ctx.planned.purpose} on {scope}",
    )


def _check_channel_opt_out(ctx: _Context) -> Violation | None:
    rule: ChannelOptOutRule = ctx.rules.rules.channel_opt_out
    if ctx.channel not in ctx.subject.opted_out_channels:
        return None
    return Violation("channel_opt_out", rule.action, f"the subject opted out of {ctx.channel.value} contact")


def _check_third_party_disclosure(ctx: _Context) -> Violation | None:
    rule: ThirdPartyDisclosureRule = ctx.rules.rules.third_party_disclosure
    planned = ctx.planned
    if planned.recipient != "third_party" or not (planned.discloses_debt or planned.demands_payment):
        return None
    return Violation(
        "third_party_disclosure",
        rule.action,
        "a contact with a third party must not disclose the debt or demand its payment",
    )


def _check_time_barred_demand(ctx: _Context) -> Violation | None:
    rule: TimeBarredDemandRule = ctx.rules.rules.time_barred_demand
    if not ctx.planned.demands_payment:
        return None
    debt = ctx.debt
    if debt is None:
        raise InvalidInputError("a contact that demands payment needs the state of its debt to check limitation")
    if not debt.consumer or debt.time_barred_on is None or ctx.legal_date < debt.time_barred_on:
        return None
    return Violation(
        "time_barred_demand",
        rule.action,
        f"the claim against a consumer is time-barred since {debt.time_barred_on.isoformat()}: "
        "its payment cannot be demanded (art. 117 § 2¹ k.c.)",
    )


def _check_public_holiday(ctx: _Context) -> Violation | None:
    rule: PublicHolidayRule = ctx.rules.rules.public_holiday
    name = holiday_name(ctx.local.date())
    if name is None or ctx.channel not in rule.blocked_channels:
        return None
    return Violation(
        "public_holiday",
        rule.action,
        f"no {ctx.channel.value} contact on a public holiday ({name}, {ctx.local.date().isoformat()})",
    )


def _check_weekend(ctx: _Context) -> Violation | None:
    rule: WeekendRule = ctx.rules.rules.weekend
    window = rule.hours.get(ctx.channel)
    if not is_weekend(ctx.local.date()) or window is None:
        return None
    problems: list[str] = []
    if rule.consent_required and ctx.channel not in ctx.subject.weekend_contact_allowed:
        problems.append(f"{ctx.channel.value} contact at a weekend needs the subject's consent")
    if not window.contains(ctx.minute_of_day):
        problems.append(
            f"{ctx.channel.value} contact at a weekend only {_window_text(window)} local time, "
            f"planned at {_hhmm(ctx.minute_of_day)}"
        )
    if not problems:
        return None
    return Violation("weekend", window.action or rule.action, "; ".join(problems))


def _check_allowed_hours(ctx: _Context) -> Violation | None:
    rule: AllowedHoursRule = ctx.rules.rules.allowed_hours
    window = rule.hours.get(ctx.channel)
    if is_weekend(ctx.local.date()) or window is None or window.contains(ctx.minute_of_day):
        return None
    return Violation(
        "allowed_hours",
        window.action or rule.action,
        f"{ctx.channel.value} contact Monday to Friday only {_window_text(window)} local time, "
        f"planned at {_hhmm(ctx.minute_of_day)}",
    )


def _check_frequency_cap(ctx: _Context) -> Violation | None:
    rule: FrequencyCapRule = ctx.rules.rules.frequency_cap
    cap = rule.max_contacts.get(ctx.channel)
    if cap is None:
        return None
    window = timedelta(days=rule.window_days)
    earlier = sum(
        1
        for contact in ctx.history
        if contact.direction == "outbound"
        and contact.channel == ctx.channel
        and ctx.on_same_debt(contact)
        and ctx.within(contact, window)
    )
    if earlier < cap:
        return None
    return Violation(
        "frequency_cap",
        rule.action,
        f"{earlier} {ctx.channel.value} contact(s) on {ctx.debt_scope} in the last {rule.window_days} days; "
        f"at most {cap} allowed",
    )


def _check_cooldown(ctx: _Context) -> Violation | None:
    rule: CooldownRule = ctx.rules.rules.cooldown_after_conversation
    hours = rule.hours.get(ctx.channel, 0)
    if hours == 0:
        return None
    window = timedelta(hours=hours)
    conversations = [c.at for c in ctx.history if c.conversation and ctx.on_same_debt(c) and ctx.within(c, window)]
    if not conversations:
        return None
    hours_ago = int((ctx.planned.planned_at - max(conversations)).total_seconds() // 3600)
    return Violation(
        "cooldown_after_conversation",
        rule.action,
        f"a conversation on {ctx.debt_scope} took place {hours_ago} h ago; no {ctx.channel.value} contact "
        f"within {hours} h of a conversation",
    )


#: One check per rule id, in the order of ``RULE_IDS`` (a test holds them equal).
_CHECKS: Final[dict[str, _Check]] = {
    "cease_contact": _check_cease_contact,
    "restriction": _check_restriction,
    "objection": _check_objection,
    "channel_opt_out": _check_channel_opt_out,
    "third_party_disclosure": _check_third_party_disclosure,
    "time_barred_demand": _check_time_barred_demand,
    "public_holiday": _check_public_holiday,
    "weekend": _check_weekend,
    "allowed_hours": _check_allowed_hours,
    "frequency_cap": _check_frequency_cap,
    "cooldown_after_conversation": _check_cooldown,
}


def evaluate(
    rules: ContactRules,
    planned: PlannedContact,
    subject: SubjectState,
    debt: DebtState | None = None,
    history: ContactHistory | None = None,
) -> Verdict:
    """Check ``planned`` against every applicable rule and say whether it may go ahead."""
    if debt is not None and planned.debt_id != debt.debt_id:
        raise InvalidInputError("the debt state is for another debt than the planned contact")
    ctx = _Context(
        rules=rules,
        planned=planned,
        subject=subject,
        debt=debt,
        history=history.contacts if history is not None else (),
        local=planned.planned_at.astimezone(subject.zone),
        legal_date=planned.planned_at.astimezone(rules.legal_time_zone).date(),
    )
    checked: list[str] = []
    violations: list[Violation] = []
    for rule_id, check in _CHECKS.items():
        config = getattr(rules.rules, rule_id)
        if not config.enabled or planned.direction not in config.directions:
            continue
        checked.append(rule_id)
        violation = check(ctx)
        if violation is not None:
            violations.append(violation)
    return Verdict(
        allowed=not any(v.action == "refuse" for v in violations),
        flagged=any(v.action == "flag" for v in violations),
        violations=tuple(violations),
        rules_checked=tuple(checked),
        rules_sha256=rules.sha256,
    )
