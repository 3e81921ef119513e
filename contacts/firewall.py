"""The contact-policy firewall: may this contact with a debtor take place?

A pure function of the rules (:mod:`contacts.rules`), the planned contact, the state of the
subject and of the debt, and the subject's recent contacts. No clock, no database: the
time of the contact is part of the question. Invariants:

- every rule of the set that is enabled and applies to the contact's direction is checked,
  and named in ``rules_checked``, in the order of :data:`contacts.rules.RULE_IDS`;
- a rule yields at most one :class:`Violation`, with the rule's action (or, for hour
  windows and weekend consent, the channel's own action) and the rule's source (its kind:
  statute, regulator guidance, industry code or firm policy, and the citation); the contact
  is allowed if and only if no violation says ``refuse``, and flagged if any says ``flag``;
- messages are written for a compliance officer and never contain personal data: only
  rule ids, channel names, purposes, hours, counts and dates;
- times are compared in the subject's time zone (hours, weekends, public holidays) and
  calendar dates of legal effect in the rules' ``legal_time_zone`` (limitation);
- rolling windows are half-open, ``(planned_at - window, planned_at]``: a contact exactly
  one window ago no longer counts; "the same debt" is the planned contact's debt, or any
  debt of the subject when the planned contact names none (the cautious reading); the
  per-person cap counts every debt and every listed channel of the subject;
- on a consumer's time-barred claim a demand is refused (statute), a request for voluntary
  payment only without the time-barred notice or with a threat (regulator guidance), and
  any request at all where the firm's ban is switched on (firm policy);
- what the firewall cannot check it refuses to guess: a naive datetime, an unknown time
  zone, a debt state for another debt, or a payment demand or request without the debt's state is an
  :class:`core.errors.InvalidInputError`.

The history passed in must not contain the planned contact itself.
"""

from __future__ import annotations

import dataclasses

from contacts.firewall_checks import CHECKS, Context
from contacts.firewall_model import (
    DEFAULT_PURPOSE,
    DEFAULT_TIME_ZONE,
    THREATS,
    ContactHistory,
    DebtState,
    Objection,
    PastContact,
    PlannedContact,
    Recipient,
    SubjectState,
    Verdict,
    Violation,
)
from contacts.rules import ContactRules
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
    "evaluate",
]


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
    ctx = Context(
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
    for rule_id, check in CHECKS.items():
        config = getattr(rules.rules, rule_id)
        if not config.enabled or planned.direction not in config.directions:
            continue
        checked.append(rule_id)
        violation = check(ctx)
        if violation is not None:
            violations.append(dataclasses.replace(violation, source_kind=config.source.kind,
                                                  source=config.source.cite))
    return Verdict(
        allowed=not any(v.action == "refuse" for v in violations),
        flagged=any(v.action == "flag" for v in violations),
        violations=tuple(violations),
        rules_checked=tuple(checked),
        rules_sha256=rules.sha256,
    )
