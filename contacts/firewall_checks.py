"""One check per rule of the contact-policy firewall, in the order of :data:`contacts.rules.RULE_IDS`.

Each check is a pure function of the :class:`Context` (the rules, the planned contact, the
subject, the debt, the history, the times in the subject's and the legal zones) and answers
at most one :class:`contacts.firewall_model.Violation`, with the rule's action (or a
channel's own); :func:`contacts.firewall.evaluate` adds the rule's source to it. Messages
are written for a compliance officer and never contain personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from audit.events import Channel
from contacts.calendar import holiday_name, is_weekend
from contacts.firewall_model import DebtState, PastContact, PlannedContact, SubjectState, Violation
from contacts.rules import (
    AllowedHoursRule,
    CeaseContactRule,
    ChannelOptOutRule,
    ContactRules,
    CooldownRule,
    FrequencyCapRule,
    HoursWindow,
    ObjectionRule,
    PersonCapRule,
    PublicHolidayRule,
    RestrictionRule,
    ThirdPartyDisclosureRule,
    TimeBarredDemandRule,
    TimeBarredRequestBanRule,
    TimeBarredVoluntaryRequestRule,
    WeekendConsentRule,
    WeekendRule,
)
from core.errors import InvalidInputError

__all__ = ["CHECKS", "Context"]

@dataclass(frozen=True)
class Context:
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


_Check = Callable[[Context], Violation | None]


def _hhmm(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


def _window_text(window: HoursWindow) -> str:
    return f"{window.start}-{window.end}"


def _purposes_text(purposes: Iterable[str]) -> str:
    names = sorted(purposes)
    return ", ".join(names) if names else "none"


def _check_cease_contact(ctx: Context) -> Violation | None:
    rule: CeaseContactRule = ctx.rules.rules.cease_contact
    if not ctx.subject.cease_contact or ctx.planned.purpose in rule.exempt_purposes:
        return None
    return Violation(
        "cease_contact",
        rule.action,
        "the subject asked not to be contacted; only these purposes may contact them: "
        f"{_purposes_text(rule.exempt_purposes)}",
    )


def _check_restriction(ctx: Context) -> Violation | None:
    rule: RestrictionRule = ctx.rules.rules.restriction
    if not ctx.subject.restricted or ctx.planned.purpose in rule.exempt_purposes:
        return None
    return Violation(
        "restriction",
        rule.action,
        f"processing is restricted (GDPR Art. 18); purpose {ctx.planned.purpose} is not an exception "
        f"(exceptions: {_purposes_text(rule.exempt_purposes)})",
    )


def _check_objection(ctx: Context) -> Violation | None:
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


def _check_channel_opt_out(ctx: Context) -> Violation | None:
    rule: ChannelOptOutRule = ctx.rules.rules.channel_opt_out
    if ctx.channel not in ctx.subject.opted_out_channels:
        return None
    return Violation("channel_opt_out", rule.action, f"the subject opted out of {ctx.channel.value} contact")


def _check_third_party_disclosure(ctx: Context) -> Violation | None:
    rule: ThirdPartyDisclosureRule = ctx.rules.rules.third_party_disclosure
    planned = ctx.planned
    if planned.recipient != "third_party" or not (planned.discloses_debt or planned.demands_payment):
        return None
    return Violation(
        "third_party_disclosure",
        rule.action,
        "a contact with a third party must not disclose the debt or demand its payment",
    )


def _barred_consumer_debt(ctx: Context, what: str) -> DebtState | None:
    """The debt if it is a consumer's and time-barred on the contact's legal date; None otherwise."""
    debt = ctx.debt
    if debt is None:
        raise InvalidInputError(f"a contact that {what} needs the state of its debt to check limitation")
    if not debt.consumer or debt.time_barred_on is None or ctx.legal_date < debt.time_barred_on:
        return None
    return debt


def _check_time_barred_demand(ctx: Context) -> Violation | None:
    rule: TimeBarredDemandRule = ctx.rules.rules.time_barred_demand
    if not ctx.planned.demands_payment:
        return None
    debt = _barred_consumer_debt(ctx, "demands payment")
    if debt is None:
        return None
    return Violation(
        "time_barred_demand",
        rule.action,
        f"the claim against a consumer is time-barred since {_day(debt.time_barred_on)}: its satisfaction cannot "
        "be demanded (art. 117 § 2¹ k.c.); a request for voluntary payment that says the claim is time-barred and "
        "threatens nothing may be made instead",
    )


def _check_time_barred_voluntary_request(ctx: Context) -> Violation | None:
    rule: TimeBarredVoluntaryRequestRule = ctx.rules.rules.time_barred_voluntary_request
    planned = ctx.planned
    if not planned.voluntary_payment_request:
        return None
    debt = _barred_consumer_debt(ctx, "asks for a voluntary payment")
    if debt is None:
        return None
    problems: list[str] = []
    if not planned.time_barred_notice:
        problems.append("it must tell the debtor the claim is time-barred (time_barred_notice)")
    threats = sorted(t for t in planned.threats if t in rule.threats)
    if threats:
        problems.append(f"it must not threaten {', '.join(threats)}: none can follow on a time-barred claim")
    if not problems:
        return None
    return Violation("time_barred_voluntary_request", rule.action,
                     f"a request for voluntary payment of a consumer claim time-barred since "
                     f"{_day(debt.time_barred_on)} is misleading unless it says so and threatens nothing: "
                     + "; ".join(problems))


def _check_time_barred_request_ban(ctx: Context) -> Violation | None:
    rule: TimeBarredRequestBanRule = ctx.rules.rules.time_barred_request_ban
    planned = ctx.planned
    if not (planned.voluntary_payment_request or planned.demands_payment):
        return None
    debt = _barred_consumer_debt(ctx, "asks for payment")
    if debt is None:
        return None
    return Violation("time_barred_request_ban", rule.action,
                     f"the firm asks for no payment of a consumer claim time-barred since {_day(debt.time_barred_on)}")


def _day(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def _check_public_holiday(ctx: Context) -> Violation | None:
    rule: PublicHolidayRule = ctx.rules.rules.public_holiday
    name = holiday_name(ctx.local.date())
    if name is None or ctx.channel not in rule.blocked_channels:
        return None
    return Violation(
        "public_holiday",
        rule.action,
        f"no {ctx.channel.value} contact on a public holiday ({name}, {ctx.local.date().isoformat()})",
    )


def _check_weekend(ctx: Context) -> Violation | None:
    rule: WeekendRule = ctx.rules.rules.weekend
    window = rule.hours.get(ctx.channel)
    if not is_weekend(ctx.local.date()) or window is None or window.contains(ctx.minute_of_day):
        return None
    return Violation(
        "weekend",
        window.action or rule.action,
        f"{ctx.channel.value} contact at a weekend only {_window_text(window)} local time, "
        f"planned at {_hhmm(ctx.minute_of_day)}",
    )


def _check_weekend_consent(ctx: Context) -> Violation | None:
    rule: WeekendConsentRule = ctx.rules.rules.weekend_consent
    if not is_weekend(ctx.local.date()) or ctx.channel not in rule.channels:
        return None
    if ctx.channel in ctx.subject.weekend_contact_allowed:
        return None
    return Violation("weekend_consent", rule.channels[ctx.channel] or rule.action,
                     f"{ctx.channel.value} contact at a weekend needs the subject's consent")


def _check_allowed_hours(ctx: Context) -> Violation | None:
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


def _check_frequency_cap(ctx: Context) -> Violation | None:
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


def _check_person_cap(ctx: Context) -> Violation | None:
    rule: PersonCapRule = ctx.rules.rules.person_cap
    if ctx.channel not in rule.channels:
        return None
    window = timedelta(days=rule.window_days)
    counted = [c for c in ctx.history
               if c.direction == "outbound" and c.channel in rule.channels and ctx.within(c, window)]
    if len(counted) < rule.max_contacts:
        return None
    debts = len({c.debt_id for c in counted})
    channels = len({c.channel for c in counted})
    return Violation(
        "person_cap",
        rule.action,
        f"{len(counted)} outbound contact(s) with this person in the last {rule.window_days} days, on "
        f"{debts} debt(s) and {channels} channel(s); at most {rule.max_contacts} per person allowed",
    )


def _check_cooldown(ctx: Context) -> Violation | None:
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
CHECKS: Final[dict[str, _Check]] = {
    "cease_contact": _check_cease_contact,
    "restriction": _check_restriction,
    "objection": _check_objection,
    "channel_opt_out": _check_channel_opt_out,
    "third_party_disclosure": _check_third_party_disclosure,
    "time_barred_demand": _check_time_barred_demand,
    "time_barred_voluntary_request": _check_time_barred_voluntary_request,
    "time_barred_request_ban": _check_time_barred_request_ban,
    "public_holiday": _check_public_holiday,
    "weekend": _check_weekend,
    "weekend_consent": _check_weekend_consent,
    "allowed_hours": _check_allowed_hours,
    "frequency_cap": _check_frequency_cap,
    "person_cap": _check_person_cap,
    "cooldown_after_conversation": _check_cooldown,
}
