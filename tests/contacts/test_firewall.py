"""Tests of contacts.firewall: the contact-policy firewall's decisions, case by case."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from audit.events import Channel
from contacts.firewall import (
    ContactHistory,
    DebtState,
    Objection,
    PastContact,
    PlannedContact,
    SubjectState,
    Verdict,
    evaluate,
)
from contacts.rules import DEFAULT_RULES_PATH, RULE_IDS, ContactRules, load_rules, rules_from_yaml
from core.errors import InvalidInputError

WARSAW = ZoneInfo("Europe/Warsaw")
DEBT = "D-0001"
AGENT = "agent-17"
PHONE, SMS, EMAIL, LETTER, MESSENGER, VISIT = (
    Channel.PHONE,
    Channel.SMS,
    Channel.EMAIL,
    Channel.LETTER,
    Channel.MESSENGER,
    Channel.VISIT,
)
TUESDAY_10 = datetime(2025, 6, 10, 10, 0, tzinfo=WARSAW)  # an ordinary working day


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A time on the Warsaw clock."""
    return datetime(year, month, day, hour, minute, tzinfo=WARSAW)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A time in UTC (to check the conversion across a DST change)."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def past(channel: Channel, ago: timedelta, *, debt_id: str | None = DEBT, conversation: bool = False,
         direction: str = "outbound", at: datetime = TUESDAY_10) -> PastContact:
    """An earlier contact, ``ago`` before ``at``."""
    return PastContact(channel=channel, at=at - ago, debt_id=debt_id, conversation=conversation,
                       direction=direction)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    id: str
    planned: dict[str, Any] = field(default_factory=dict)
    subject: dict[str, Any] = field(default_factory=dict)
    debt: dict[str, Any] = field(default_factory=dict)
    history: tuple[PastContact, ...] = ()
    allowed: bool = True
    flagged: bool = False
    rules: tuple[str, ...] = ()


H, D = timedelta(hours=1), timedelta(days=1)
BARRED = {"consumer": True, "time_barred_on": date(2025, 1, 1)}
OTHER_DEBT = {"debt_id": "D-0003", "channel": SMS}

CASES = [
    # hours on a working day, Europe/Warsaw
    Case("working-day-05:59", {"planned_at": local(2025, 6, 10, 5, 59)}, allowed=False, rules=("allowed_hours",)),
    Case("working-day-06:00", {"planned_at": local(2025, 6, 10, 6, 0)}),
    Case("working-day-21:59", {"planned_at": local(2025, 6, 10, 21, 59)}),
    Case("working-day-22:00", {"planned_at": local(2025, 6, 10, 22, 0)}, allowed=False, rules=("allowed_hours",)),
    Case("sms-22:30", {"channel": SMS, "planned_at": local(2025, 6, 10, 22, 30)}, allowed=False,
         rules=("allowed_hours",)),
    Case("visit-19:59", {"channel": VISIT, "planned_at": local(2025, 6, 10, 19, 59)}),
    Case("visit-20:00", {"channel": VISIT, "planned_at": local(2025, 6, 10, 20, 0)}, allowed=False,
         rules=("allowed_hours",)),
    Case("email-23:00-flagged", {"channel": EMAIL, "planned_at": local(2025, 6, 10, 23, 0)}, flagged=True,
         rules=("allowed_hours",)),
    Case("letter-03:00", {"channel": LETTER, "planned_at": local(2025, 6, 10, 3, 0)}),
    # DST: spring forward on Sunday 2025-03-30 (CET -> CEST), fall back on Sunday 2025-10-26
    Case("dst-spring-monday-06:00-cest", {"planned_at": utc(2025, 3, 31, 4, 0)}),
    Case("dst-spring-monday-05:59-cest", {"planned_at": utc(2025, 3, 31, 3, 59)}, allowed=False,
         rules=("allowed_hours",)),
    Case("dst-spring-sunday-08:00-cest", {"planned_at": utc(2025, 3, 30, 6, 0)},
         {"weekend_contact_allowed": frozenset({PHONE})}),
    Case("dst-spring-sunday-07:59-cest", {"planned_at": utc(2025, 3, 30, 5, 59)},
         {"weekend_contact_allowed": frozenset({PHONE})}, allowed=False, rules=("weekend",)),
    Case("dst-autumn-monday-21:59-cet", {"planned_at": utc(2025, 10, 27, 20, 59)}),
    Case("dst-autumn-monday-22:00-cet", {"planned_at": utc(2025, 10, 27, 21, 0)}, allowed=False,
         rules=("allowed_hours",)),
    Case("dst-autumn-sunday-19:59-cet", {"planned_at": utc(2025, 10, 26, 18, 59)},
         {"weekend_contact_allowed": frozenset({PHONE})}),
    # weekends
    Case("saturday-without-consent", {"planned_at": local(2025, 6, 14, 10)}, allowed=False,
         rules=("weekend_consent",)),
    Case("saturday-with-consent", {"planned_at": local(2025, 6, 14, 10)},
         {"weekend_contact_allowed": frozenset({PHONE})}),
    Case("saturday-consent-for-sms-only", {"planned_at": local(2025, 6, 14, 10)},
         {"weekend_contact_allowed": frozenset({SMS})}, allowed=False, rules=("weekend_consent",)),
    Case("saturday-without-consent-at-21:00", {"planned_at": local(2025, 6, 14, 21)}, allowed=False,
         rules=("weekend", "weekend_consent")),
    Case("saturday-with-consent-20:00", {"planned_at": local(2025, 6, 14, 20)},
         {"weekend_contact_allowed": frozenset({PHONE})}, allowed=False, rules=("weekend",)),
    Case("saturday-with-consent-07:00", {"planned_at": local(2025, 6, 14, 7)},
         {"weekend_contact_allowed": frozenset({PHONE})}, allowed=False, rules=("weekend",)),
    Case("saturday-email-flagged", {"channel": EMAIL, "planned_at": local(2025, 6, 14, 10)}, flagged=True,
         rules=("weekend_consent",)),
    Case("sunday-letter", {"channel": LETTER, "planned_at": local(2025, 6, 15, 23)}),
    # public holidays
    Case("easter-monday-phone", {"planned_at": local(2025, 4, 21, 10)}, allowed=False, rules=("public_holiday",)),
    Case("easter-monday-visit", {"channel": VISIT, "planned_at": local(2025, 4, 21, 10)}, allowed=False,
         rules=("public_holiday",)),
    Case("easter-monday-letter", {"channel": LETTER, "planned_at": local(2025, 4, 21, 10)}),
    Case("easter-monday-email", {"channel": EMAIL, "planned_at": local(2025, 4, 21, 10)}),
    Case("easter-monday-phone-23:00", {"planned_at": local(2025, 4, 21, 23)}, allowed=False,
         rules=("public_holiday", "allowed_hours")),
    Case("wigilia-2025-phone", {"planned_at": local(2025, 12, 24, 10)}, allowed=False, rules=("public_holiday",)),
    Case("wigilia-2024-phone", {"planned_at": local(2024, 12, 24, 10)}),
    Case("holiday-on-saturday-with-consent", {"planned_at": local(2026, 8, 15, 10)},
         {"weekend_contact_allowed": frozenset({PHONE})}, allowed=False, rules=("public_holiday",)),
    # the 7-day cap: 3 phone attempts per debt
    Case("cap-reached", history=(past(PHONE, 6 * D + 23 * H), past(PHONE, 2 * D), past(PHONE, 1 * H)),
         allowed=False, rules=("frequency_cap",)),
    Case("cap-oldest-out-of-window", history=(past(PHONE, 7 * D + 1 * H), past(PHONE, 2 * D), past(PHONE, 1 * H))),
    Case("cap-oldest-exactly-7-days", history=(past(PHONE, 7 * D), past(PHONE, 2 * D), past(PHONE, 1 * H))),
    Case("cap-other-debt-does-not-count",
         history=(past(PHONE, 3 * D, debt_id="D-0002"), past(PHONE, 2 * D), past(PHONE, 1 * H))),
    Case("cap-other-channel-does-not-count", history=(past(SMS, 3 * D), past(PHONE, 2 * D), past(PHONE, 1 * H))),
    Case("cap-inbound-does-not-count",
         history=(past(PHONE, 3 * D, direction="inbound"), past(PHONE, 2 * D), past(PHONE, 1 * H))),
    Case("cap-one-visit-a-week", {"channel": VISIT}, history=(past(VISIT, 5 * D),), allowed=False,
         rules=("frequency_cap",)),
    # cooldown after a conversation on the same debt
    Case("cooldown-12h", history=(past(PHONE, 12 * H, conversation=True),), allowed=False,
         rules=("cooldown_after_conversation",)),
    Case("cooldown-after-visit-conversation", history=(past(VISIT, 3 * H, conversation=True),), allowed=False,
         rules=("cooldown_after_conversation",)),
    Case("cooldown-25h", history=(past(PHONE, 25 * H, conversation=True),)),
    Case("cooldown-exactly-24h", history=(past(PHONE, 24 * H, conversation=True),)),
    Case("cooldown-unanswered-attempt", history=(past(PHONE, 1 * H),)),
    Case("cooldown-other-debt", history=(past(PHONE, 1 * H, debt_id="D-0002", conversation=True),)),
    Case("cooldown-sms-follow-up", {"channel": SMS}, history=(past(PHONE, 1 * H, conversation=True),)),
    # third parties
    Case("third-party-disclosure", {"recipient": "third_party", "discloses_debt": True}, allowed=False,
         rules=("third_party_disclosure",)),
    Case("third-party-demand", {"recipient": "third_party", "discloses_debt": False, "demands_payment": True},
         allowed=False, rules=("third_party_disclosure",)),
    Case("third-party-neutral", {"recipient": "third_party", "discloses_debt": False}),
    Case("third-party-disclosure-inbound",
         {"recipient": "third_party", "discloses_debt": True, "direction": "inbound",
          "planned_at": local(2025, 6, 10, 23)}, allowed=False, rules=("third_party_disclosure",)),
    # opt-outs and objections (GDPR Art. 21)
    Case("opt-out-phone", subject={"opted_out_channels": frozenset({PHONE})}, allowed=False,
         rules=("channel_opt_out",)),
    Case("opt-out-phone-sms-goes", {"channel": SMS}, {"opted_out_channels": frozenset({PHONE})}),
    Case("objection-purpose-channel", subject={"objections": frozenset({Objection("debt_collection", PHONE)})},
         allowed=False, rules=("objection",)),
    Case("objection-other-channel", {"channel": SMS},
         {"objections": frozenset({Objection("debt_collection", PHONE)})}),
    Case("objection-all-channels", {"channel": SMS}, {"objections": frozenset({Objection("debt_collection")})},
         allowed=False, rules=("objection",)),
    Case("objection-other-purpose", subject={"objections": frozenset({Objection("marketing")})}),
    Case("objection-plain-tuple", subject={"objections": frozenset({("debt_collection", None)})}, allowed=False,
         rules=("objection",)),
    # restriction (GDPR Art. 18) and cease-contact
    Case("restriction-debt-collection", subject={"restricted": True}, allowed=False, rules=("restriction",)),
    Case("restriction-legal-claim", {"purpose": "legal_claim"}, {"restricted": True}),
    Case("cease-contact", subject={"cease_contact": True}, allowed=False, rules=("cease_contact",)),
    Case("cease-contact-legal-claim", {"channel": LETTER, "purpose": "legal_claim"}, {"cease_contact": True}),
    # payment demands on time-barred debts (art. 117 § 2¹ k.c.)
    Case("time-barred-consumer-demand", {"demands_payment": True}, debt=BARRED, allowed=False,
         rules=("time_barred_demand",)),
    Case("time-barred-consumer-no-demand", {"demands_payment": False}, debt=BARRED),
    Case("time-barred-business-demand", {"demands_payment": True}, debt={**BARRED, "consumer": False}),
    Case("not-yet-barred-demand", {"demands_payment": True},
         debt={"consumer": True, "time_barred_on": date(2025, 6, 11)}),
    Case("barred-from-today-demand", {"demands_payment": True},
         debt={"consumer": True, "time_barred_on": date(2025, 6, 10)}, allowed=False, rules=("time_barred_demand",)),
    Case("barred-by-warsaw-date", {"channel": LETTER, "demands_payment": True, "planned_at": utc(2025, 12, 31, 23, 30)},
         debt={"consumer": True, "time_barred_on": date(2026, 1, 1)}, allowed=False, rules=("time_barred_demand",)),
    Case("time-barred-demand-inbound", {"demands_payment": True, "direction": "inbound"}, debt=BARRED,
         allowed=False, rules=("time_barred_demand",)),
    # a request for voluntary payment of a time-barred consumer claim (UOKiK practice; art. 117 § 2¹ k.c.)
    Case("time-barred-voluntary-request-with-notice",
         {"voluntary_payment_request": True, "time_barred_notice": True}, debt=BARRED),
    Case("time-barred-voluntary-request-without-notice", {"voluntary_payment_request": True}, debt=BARRED,
         allowed=False, rules=("time_barred_voluntary_request",)),
    Case("time-barred-voluntary-request-threatening-court",
         {"voluntary_payment_request": True, "time_barred_notice": True, "threats": frozenset({"court"})},
         debt=BARRED, allowed=False, rules=("time_barred_voluntary_request",)),
    Case("time-barred-demand-even-with-notice",
         {"demands_payment": True, "voluntary_payment_request": True, "time_barred_notice": True}, debt=BARRED,
         allowed=False, rules=("time_barred_demand",)),
    Case("live-claim-request-may-mention-court",
         {"voluntary_payment_request": True, "threats": frozenset({"court"})},
         debt={"consumer": True, "time_barred_on": date(2025, 6, 11)}),
    Case("time-barred-business-request", {"voluntary_payment_request": True}, debt={**BARRED, "consumer": False}),
    # the cap per person across debts and channels: five outbound contacts a week
    Case("person-cap-sixth-across-debts-and-channels", OTHER_DEBT, debt={"debt_id": "D-0003"}, history=(
        past(PHONE, 4 * D, debt_id="D-0001"), past(SMS, 4 * D - 1 * H, debt_id="D-0002"),
        past(PHONE, 3 * D, debt_id="D-0003"), past(SMS, 2 * D, debt_id="D-0001"),
        past(PHONE, 1 * D, debt_id="D-0002")), allowed=False, rules=("person_cap",)),
    Case("person-cap-fifth-goes", OTHER_DEBT, debt={"debt_id": "D-0003"}, history=(
        past(PHONE, 4 * D, debt_id="D-0001"), past(SMS, 3 * D, debt_id="D-0002"),
        past(PHONE, 2 * D, debt_id="D-0003"), past(SMS, 1 * D, debt_id="D-0001"))),
    Case("person-cap-inbound-and-old-do-not-count", OTHER_DEBT, debt={"debt_id": "D-0003"}, history=(
        past(PHONE, 8 * D, debt_id="D-0001"), past(SMS, 3 * D, debt_id="D-0002", direction="inbound"),
        past(PHONE, 3 * D, debt_id="D-0003"), past(SMS, 2 * D, debt_id="D-0001"),
        past(PHONE, 1 * D, debt_id="D-0002"), past(LETTER, 1 * H, debt_id="D-0002"))),
    # several rules at once, reported in the order of RULE_IDS
    Case("several", {"planned_at": local(2025, 4, 21, 23)},
         {"cease_contact": True, "opted_out_channels": frozenset({PHONE})},
         history=(past(PHONE, 2 * H, conversation=True, at=local(2025, 4, 21, 23)),), allowed=False,
         rules=("cease_contact", "channel_opt_out", "public_holiday", "allowed_hours",
                "cooldown_after_conversation")),
]


@pytest.fixture(scope="module")
def rules() -> ContactRules:
    return load_rules()


def _planned(**changes: Any) -> PlannedContact:
    base: dict[str, Any] = {
        "channel": PHONE,
        "planned_at": TUESDAY_10,
        "agent_id": AGENT,
        "debt_id": DEBT,
        "recipient": "debtor",
        "discloses_debt": True,
        "demands_payment": False,
    }
    return PlannedContact(**{**base, **changes})


def _debt(**changes: Any) -> DebtState:
    return DebtState(**{"debt_id": DEBT, "consumer": True, "time_barred_on": None, **changes})


def _run(rules: ContactRules, case: Case) -> Verdict:
    return evaluate(rules, _planned(**case.planned), SubjectState(**case.subject), _debt(**case.debt),
                    ContactHistory(case.history))


def _rules_with(change: Any) -> ContactRules:
    document = copy.deepcopy(yaml.safe_load(DEFAULT_RULES_PATH.read_text(encoding="utf-8")))
    change(document["rules"])
    return rules_from_yaml(yaml.safe_dump(document), source="test")


class TestEvaluate:
    @pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
    def test_case(self, rules: ContactRules, case: Case) -> None:
        """The contact is allowed or refused, flagged or not, by exactly the rules the case names."""
        verdict = _run(rules, case)
        assert (verdict.allowed, verdict.flagged) == (case.allowed, case.flagged)
        assert tuple(v.rule for v in verdict.violations) == case.rules

    def test_messages_carry_no_identifiers(self, rules: ContactRules) -> None:
        """No message repeats the agent, the debt id or the subject's time zone."""
        case = Case("all", {"planned_at": local(2025, 4, 21, 23), "recipient": "third_party",
                            "demands_payment": True},
                    {"cease_contact": True, "restricted": True, "opted_out_channels": frozenset({PHONE}),
                     "objections": frozenset({Objection("debt_collection")})},
                    BARRED, history=(past(PHONE, 2 * H, conversation=True, at=local(2025, 4, 21, 23)),))
        verdict = _run(rules, case)
        assert len(verdict.violations) >= 8
        for violation in verdict.violations:
            assert DEBT not in violation.message
            assert AGENT not in violation.message
            assert "Warsaw" not in violation.message

    def test_message_names_the_numbers(self, rules: ContactRules) -> None:
        """A frequency-cap message gives the count, the window and the cap."""
        verdict = _run(rules, Case("cap", history=(past(PHONE, 3 * H), past(PHONE, 2 * H), past(PHONE, 1 * H))))
        assert verdict.violations[0].message == "3 phone contact(s) on this debt in the last 7 days; at most 3 allowed"


class TestVerdict:
    def test_every_rule_is_checked_outbound(self, rules: ContactRules) -> None:
        """An outbound contact is checked against every rule, in the order of RULE_IDS."""
        verdict = _run(rules, Case("plain"))
        assert verdict.rules_checked == tuple(r for r in RULE_IDS if r != "time_barred_request_ban")
        assert verdict.violations == ()
        assert verdict.refused_by is None

    def test_inbound_checks_content_rules_only(self, rules: ContactRules) -> None:
        """An inbound contact is checked only against the rules that apply to both directions."""
        verdict = _run(rules, Case("inbound", {"direction": "inbound", "planned_at": local(2025, 4, 21, 23)},
                                   {"cease_contact": True}))
        assert verdict.rules_checked == ("third_party_disclosure", "time_barred_demand",
                                         "time_barred_voluntary_request")
        assert verdict.allowed

    def test_violations_carry_the_rules_source(self, rules: ContactRules) -> None:
        """Each violation names the kind of source its rule rests on and the citation, as the rule file says."""
        verdict = _run(rules, Case("late-saturday", {"planned_at": local(2025, 6, 14, 21)}))
        assert [(v.rule, v.source_kind) for v in verdict.violations] == [("weekend", "industry_code"),
                                                                         ("weekend_consent", "firm_policy")]
        assert verdict.violations[0].source == rules.rules.weekend.source.cite

    def test_firm_ban_on_requests_is_labelled_firm_policy(self) -> None:
        """With the firm's ban switched on, even a lawful request for voluntary payment of a time-barred consumer
        claim is refused, and the refusal says it is the firm's policy, not the law."""
        rules = _rules_with(lambda r: r["time_barred_request_ban"].update(enabled=True))
        verdict = _run(rules, Case("ban", {"voluntary_payment_request": True, "time_barred_notice": True},
                                   debt=BARRED))
        assert [(v.rule, v.source_kind) for v in verdict.refusals] == [("time_barred_request_ban", "firm_policy")]

    def test_unknown_threat_is_refused(self) -> None:
        """A threat the firewall does not know is an input error, not silently ignored."""
        with pytest.raises(InvalidInputError, match="threats"):
            _planned(threats=frozenset({"prison"}))

    def test_disabled_rule_is_not_checked(self) -> None:
        """A rule with enabled: false is neither checked nor reported."""
        rules = _rules_with(lambda r: r["allowed_hours"].update(enabled=False))
        verdict = _run(rules, Case("late", {"planned_at": local(2025, 6, 10, 23)}))
        assert "allowed_hours" not in verdict.rules_checked
        assert verdict.allowed

    def test_flag_action_lets_the_contact_through(self) -> None:
        """A rule whose action is flag records the violation without blocking the contact."""
        rules = _rules_with(lambda r: r["frequency_cap"].update(action="flag"))
        verdict = _run(rules, Case("cap", history=(past(PHONE, 3 * H), past(PHONE, 2 * H), past(PHONE, 1 * H))))
        assert (verdict.allowed, verdict.flagged) == (True, True)
        assert [v.rule for v in verdict.flags] == ["frequency_cap"]
        assert verdict.refusals == ()

    def test_refused_by_and_fingerprint(self, rules: ContactRules) -> None:
        """The verdict names the first refusing rule and the fingerprint of the rule set."""
        verdict = _run(rules, Case("late", {"planned_at": local(2025, 6, 10, 23)}, {"cease_contact": True}))
        assert verdict.refused_by == "cease_contact"
        assert verdict.rules_sha256 == rules.sha256

    def test_contact_without_debt_counts_every_debt(self, rules: ContactRules) -> None:
        """A contact naming no debt is capped by the subject's contacts on any debt (the cautious reading)."""
        history = ContactHistory(tuple(past(PHONE, n * H, debt_id=f"D-{n}") for n in (1, 2, 3)))
        verdict = evaluate(rules, _planned(debt_id=None), SubjectState(), None, history)
        assert [v.rule for v in verdict.violations] == ["frequency_cap"]

    def test_inputs_are_immutable(self) -> None:
        """The input dataclasses are frozen."""
        with pytest.raises(dataclasses.FrozenInstanceError):
            _planned().channel = SMS  # type: ignore[misc]


class TestInvalidInput:
    def test_naive_datetime(self) -> None:
        """A planned time without a time zone is refused."""
        with pytest.raises(InvalidInputError, match="timezone-aware"):
            _planned(planned_at=datetime(2025, 6, 10, 10, 0))  # noqa: DTZ001

    def test_naive_history(self) -> None:
        """An earlier contact without a time zone is refused."""
        with pytest.raises(InvalidInputError, match="timezone-aware"):
            PastContact(channel=PHONE, at=datetime(2025, 6, 10, 10, 0))  # noqa: DTZ001

    def test_unknown_time_zone(self) -> None:
        """A subject in an unknown time zone is refused."""
        with pytest.raises(InvalidInputError, match="time zone"):
            SubjectState(time_zone="Europe/Atlantis")

    def test_unknown_channel(self) -> None:
        """A channel outside the catalogue is refused."""
        with pytest.raises(InvalidInputError, match="channel"):
            _planned(channel="fax")

    def test_bad_recipient_and_purpose(self) -> None:
        """The recipient is debtor or third_party; the purpose is an identifier."""
        with pytest.raises(InvalidInputError, match="recipient"):
            _planned(recipient="neighbour")
        with pytest.raises(InvalidInputError, match="purpose"):
            _planned(purpose="Debt collection!")

    def test_debt_state_of_another_debt(self, rules: ContactRules) -> None:
        """A debt state for another debt than the contact's is refused."""
        with pytest.raises(InvalidInputError, match="another debt"):
            evaluate(rules, _planned(), SubjectState(), _debt(debt_id="D-0002"))

    def test_demand_without_debt_state(self, rules: ContactRules) -> None:
        """A payment demand cannot be checked for limitation without the debt's state, so it is refused."""
        with pytest.raises(InvalidInputError, match="state of its debt"):
            evaluate(rules, _planned(demands_payment=True), SubjectState())
