"""Tests of contacts.rules: the packaged contact rules and their validation."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from audit.events import Channel
from contacts.rules import (
    DEFAULT_RULES_PATH,
    RULE_IDS,
    SOURCE_KINDS,
    ContactRules,
    ContactRulesError,
    load_rules,
    rules_from_yaml,
)
from core.errors import InvalidInputError

PACKAGED_TEXT = DEFAULT_RULES_PATH.read_text(encoding="utf-8")


def _document() -> dict[str, Any]:
    document = yaml.safe_load(PACKAGED_TEXT)
    assert isinstance(document, dict)
    return copy.deepcopy(document)


def _refused(change: Callable[[dict[str, Any]], None]) -> ContactRulesError:
    document = _document()
    change(document)
    with pytest.raises(ContactRulesError) as caught:
        rules_from_yaml(yaml.safe_dump(document), source="test.yaml")
    return caught.value


@pytest.fixture(scope="module")
def rules() -> ContactRules:
    return load_rules()


class TestPackagedRules:
    def test_every_rule_is_present(self, rules: ContactRules) -> None:
        """The packaged file declares every rule id, each with an action and a source; each enabled but the firm's
        optional ban on asking for time-barred consumer claims."""
        assert tuple(type(rules.rules).model_fields) == RULE_IDS
        for rule_id in RULE_IDS:
            rule = getattr(rules.rules, rule_id)
            assert rule.enabled is (rule_id != "time_barred_request_ban")
            assert rule.action in ("refuse", "flag")
            assert rule.source.kind in SOURCE_KINDS
            assert rule.source.cite

    def test_kpf_hours(self, rules: ContactRules) -> None:
        """Calls are allowed 06:00-22:00 on working days and 08:00-20:00 at weekends, with consent for phone."""
        phone = Channel.PHONE
        assert (rules.rules.allowed_hours.hours[phone].start, rules.rules.allowed_hours.hours[phone].end) == (
            "06:00",
            "22:00",
        )
        assert (rules.rules.weekend.hours[phone].start, rules.rules.weekend.hours[phone].end) == ("08:00", "20:00")
        assert rules.rules.weekend_consent.channels[phone] is None

    def test_sources_say_who_stands_behind_each_rule(self, rules: ContactRules) -> None:
        """Defect 8: the weekend hours rest on the KPF code (an industry code), the weekend consent on the firm's
        own policy (the KPF code asks none), the public-holiday ban on firm policy naming the holiday act; the
        time-barred demand on art. 117 § 2¹ k.c. (statute), a voluntary request's conditions on UOKiK practice."""
        r = rules.rules
        assert (r.weekend.source.kind, "Konferencja Przedsiębiorstw Finansowych" in r.weekend.source.cite) == (
            "industry_code", True)
        assert r.weekend_consent.source.kind == "firm_policy"
        assert "KPF" in r.weekend_consent.source.cite
        assert "asks no consent" in r.weekend_consent.source.cite
        assert r.public_holiday.source.kind == "firm_policy"
        assert "o dniach wolnych od pracy" in r.public_holiday.source.cite
        assert (r.time_barred_demand.source.kind, "117 § 2¹" in r.time_barred_demand.source.cite) == ("statute", True)
        assert r.time_barred_voluntary_request.source.kind == "regulator_guidance"
        assert r.time_barred_request_ban.source.kind == "firm_policy"
        assert (r.person_cap.source.kind, r.person_cap.max_contacts, r.person_cap.window_days) == ("firm_policy", 5, 7)

    def test_a_rule_without_a_source_is_refused(self) -> None:
        """A rule must name its source: a file that drops one is invalid, naming the key path."""
        error = _refused(lambda d: d["rules"]["weekend"].pop("source"))
        assert "rules.weekend.source" in error.detail

    def test_letters_and_email_go_on_holidays(self, rules: ContactRules) -> None:
        """Public holidays block calls, messages and visits, but not letters or e-mail."""
        blocked = set(rules.rules.public_holiday.blocked_channels)
        assert blocked == {Channel.PHONE, Channel.SMS, Channel.MESSENGER, Channel.VISIT}

    def test_fingerprint_is_sha256_of_the_file(self, rules: ContactRules) -> None:
        """The loaded rules carry the SHA-256 of the file's bytes and name their source."""
        assert rules.sha256 == hashlib.sha256(DEFAULT_RULES_PATH.read_bytes()).hexdigest()
        assert rules.source == str(DEFAULT_RULES_PATH)
        assert rules.version == 1
        assert rules.sha256[:12] in repr(rules)

    def test_fingerprint_changes_with_the_text(self) -> None:
        """A change of a comment is a different rule set, with a different fingerprint."""
        assert rules_from_yaml(PACKAGED_TEXT).sha256 != rules_from_yaml(PACKAGED_TEXT + "# edited\n").sha256

    def test_load_is_cached(self) -> None:
        """Loading the packaged rules twice gives the same object."""
        assert load_rules() is load_rules()

    def test_other_path(self, tmp_path: Path) -> None:
        """Rules can be loaded from another file; an unreadable one is a ContactRulesError."""
        copy_path = tmp_path / "rules.yaml"
        copy_path.write_text(PACKAGED_TEXT, encoding="utf-8")
        assert load_rules(copy_path).rules == load_rules().rules
        with pytest.raises(ContactRulesError, match="cannot be read"):
            load_rules(tmp_path / "missing.yaml")


class TestValidation:
    def test_error_is_an_invalid_input_error(self) -> None:
        """A rules error belongs to the InvalidInputError family and names its source."""
        error = _refused(lambda d: d["rules"]["objection"].update(action="deny"))
        assert isinstance(error, InvalidInputError)
        assert "test.yaml" in error.detail
        assert "rules.objection.action" in error.detail

    def test_hour_out_of_range(self) -> None:
        """An hour past 24:00 is refused, naming the window's key path."""
        error = _refused(lambda d: d["rules"]["allowed_hours"]["hours"]["phone"].update(end="25:00"))
        assert "rules.allowed_hours.hours.phone.end" in error.detail

    def test_minutes_out_of_range(self) -> None:
        """A time with 60 minutes is refused."""
        error = _refused(lambda d: d["rules"]["weekend"]["hours"]["sms"].update(start="08:60"))
        assert "rules.weekend.hours.sms.start" in error.detail

    def test_start_not_before_end(self) -> None:
        """A window whose start is not before its end is refused."""
        error = _refused(lambda d: d["rules"]["allowed_hours"]["hours"]["visit"].update(start="20:00"))
        assert "rules.allowed_hours.hours.visit" in error.detail
        assert "must be before end" in error.detail

    def test_unquoted_time(self) -> None:
        """An unquoted 22:00 (a base-60 number in YAML 1.1) is refused with a hint to quote it."""
        text = PACKAGED_TEXT.replace('phone: {start: "06:00", end: "22:00"}', "phone: {start: 06:00, end: 22:00}")
        assert text != PACKAGED_TEXT
        with pytest.raises(ContactRulesError, match=r"rules\.allowed_hours\.hours\.phone\.end: .*quoted"):
            rules_from_yaml(text, source="test.yaml")

    def test_unknown_channel(self) -> None:
        """A channel that does not exist is refused, naming it in the path."""
        error = _refused(lambda d: d["rules"]["frequency_cap"]["max_contacts"].update(fax=1))
        assert "rules.frequency_cap.max_contacts.fax" in error.detail

    def test_unknown_blocked_channel(self) -> None:
        """An unknown channel in a list is refused, naming its position."""
        error = _refused(lambda d: d["rules"]["public_holiday"]["blocked_channels"].append("pigeon"))
        assert "rules.public_holiday.blocked_channels[4]" in error.detail

    def test_negative_cap(self) -> None:
        """A negative frequency cap is refused."""
        error = _refused(lambda d: d["rules"]["frequency_cap"]["max_contacts"].update(phone=-1))
        assert "rules.frequency_cap.max_contacts.phone" in error.detail

    def test_negative_cooldown(self) -> None:
        """A negative cooldown is refused."""
        error = _refused(lambda d: d["rules"]["cooldown_after_conversation"]["hours"].update(phone=-24))
        assert "rules.cooldown_after_conversation.hours.phone" in error.detail

    def test_unknown_key_in_a_rule(self) -> None:
        """A key a rule does not know is refused, not ignored."""
        error = _refused(lambda d: d["rules"]["weekend"].update(sundays_only=True))
        assert "rules.weekend.sundays_only" in error.detail

    def test_unknown_rule(self) -> None:
        """A rule id the firewall does not know is refused."""
        error = _refused(lambda d: d["rules"].update(full_moon={"action": "refuse"}))
        assert "rules.full_moon" in error.detail

    def test_unknown_top_level_key(self) -> None:
        """An unknown top-level key is refused."""
        error = _refused(lambda d: d.update(author="someone"))
        assert "author" in error.detail

    def test_missing_rule(self) -> None:
        """A rule cannot be dropped silently: every rule id must be present."""
        error = _refused(lambda d: d["rules"].pop("cease_contact"))
        assert "rules.cease_contact" in error.detail

    def test_bad_direction(self) -> None:
        """Directions are outbound or inbound, without repeats."""
        error = _refused(lambda d: d["rules"]["objection"].update(directions=["outbound", "outbound"]))
        assert "rules.objection.directions" in error.detail

    def test_bad_purpose(self) -> None:
        """Exempt purposes are lower-case identifiers."""
        error = _refused(lambda d: d["rules"]["restriction"].update(exempt_purposes=["Legal Claim"]))
        assert "rules.restriction.exempt_purposes" in error.detail

    def test_unknown_time_zone(self) -> None:
        """The legal time zone must exist."""
        error = _refused(lambda d: d.update(legal_time_zone="Europe/Atlantis"))
        assert "legal_time_zone" in error.detail

    def test_unknown_version(self) -> None:
        """Only format version 1 is known."""
        error = _refused(lambda d: d.update(version=2))
        assert "version" in error.detail

    def test_enabled_is_a_boolean(self) -> None:
        """`enabled: "no"` is refused rather than read as true."""
        error = _refused(lambda d: d["rules"]["weekend"].update(enabled="no"))
        assert "rules.weekend.enabled" in error.detail

    def test_duplicate_key(self) -> None:
        """A key repeated in a mapping is refused, naming its full path and line."""
        line = '      phone: {start: "06:00", end: "22:00"}\n'
        text = PACKAGED_TEXT.replace(line, line + line)
        with pytest.raises(ContactRulesError, match=r"duplicate key rules\.allowed_hours\.hours\.phone \(line \d+\)"):
            rules_from_yaml(text, source="test.yaml")

    def test_duplicate_rule(self) -> None:
        """A rule declared twice is refused (YAML alone would keep the second silently)."""
        text = PACKAGED_TEXT + "  objection:\n    action: flag\n"
        with pytest.raises(ContactRulesError, match=r"duplicate key rules\.objection"):
            rules_from_yaml(text)

    def test_not_yaml(self) -> None:
        """Text that is not YAML is refused."""
        with pytest.raises(ContactRulesError, match="not valid YAML"):
            rules_from_yaml("rules: [unclosed", source="test.yaml")

    def test_empty_document(self) -> None:
        """An empty file is refused."""
        with pytest.raises(ContactRulesError, match="invalid"):
            rules_from_yaml("", source="test.yaml")
