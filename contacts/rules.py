"""The contact rules: what the contact-policy firewall enforces, loaded from YAML.

The rules live in ``policies/contact_rules.yaml`` and are validated whole before use.
Invariants:

- every rule of :data:`RULE_IDS` is present in the file, and nothing else is (pydantic
  ``extra="forbid"`` at every level): a rule cannot be dropped or misspelt silently; to
  switch one off, say ``enabled: false``;
- every rule has an ``action``: ``refuse`` (the contact is blocked) or ``flag`` (it goes
  ahead and is recorded with a flag);
- every rule names its ``source``: the kind (``statute``, ``regulator_guidance``,
  ``industry_code``, ``firm_policy``) and the citation, which the firewall's answer repeats
  with each violation, so a refusal says whether the law, a regulator, an industry code or
  the firm's own choice stands behind it;
- channel names are those of :class:`audit.events.Channel`; times are quoted ``"HH:MM"``
  strings in the subject's local time, a window is ``[start, end)`` with ``start < end``
  (``"24:00"`` is allowed as an end); caps and cooldowns are non-negative integers;
- a duplicate key anywhere in the YAML is an error (YAML itself would keep the last one);
- every error is a :class:`ContactRulesError` naming the source and the key path;
- the loaded rules carry the SHA-256 of the exact text they came from (for a file, that of
  its bytes, as ``sha256sum`` prints it), so a caller can log which rule set decided.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from audit.events import Channel
from core.errors import InvalidInputError
from policies.yamlfile import read_policy_text, validated_document

__all__ = [
    "DEFAULT_RULES_PATH",
    "RULE_IDS",
    "SOURCE_KINDS",
    "Action",
    "AllowedHoursRule",
    "CeaseContactRule",
    "ChannelOptOutRule",
    "ContactRules",
    "ContactRulesDocument",
    "ContactRulesError",
    "CooldownRule",
    "Direction",
    "FrequencyCapRule",
    "HoursWindow",
    "ObjectionRule",
    "PersonCapRule",
    "PublicHolidayRule",
    "RestrictionRule",
    "RuleSet",
    "Source",
    "SourceKind",
    "ThirdPartyDisclosureRule",
    "TimeBarredDemandRule",
    "TimeBarredRequestBanRule",
    "TimeBarredVoluntaryRequestRule",
    "WeekendConsentRule",
    "WeekendRule",
    "load_rules",
    "rules_from_yaml",
]

# Found by path beside this package, as vault/fields.py finds policies/fields.yaml (same reason).
DEFAULT_RULES_PATH: Final = Path(__file__).resolve().parents[1] / "policies" / "contact_rules.yaml"

#: The rule ids, in the order the firewall checks them and reports violations.
RULE_IDS: Final = (
    "cease_contact",
    "restriction",
    "objection",
    "channel_opt_out",
    "third_party_disclosure",
    "time_barred_demand",
    "time_barred_voluntary_request",
    "time_barred_request_ban",
    "public_holiday",
    "weekend",
    "weekend_consent",
    "allowed_hours",
    "frequency_cap",
    "person_cap",
    "cooldown_after_conversation",
)

#: The kinds of source a rule can rest on, from binding law to the firm's own choice.
SOURCE_KINDS: Final = ("statute", "regulator_guidance", "industry_code", "firm_policy")

Action = Literal["refuse", "flag"]
SourceKind = Literal["statute", "regulator_guidance", "industry_code", "firm_policy"]
Direction = Literal["outbound", "inbound"]

_TIME = re.compile(r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})")
_PURPOSE = re.compile(r"[a-z][a-z0-9_]{0,62}")
_MINUTES_PER_DAY: Final = 24 * 60


class ContactRulesError(InvalidInputError):
    """The contact rules file cannot be used: not YAML, a duplicate key, or invalid content."""

    code = "invalid-contact-rules"
    title = "Invalid contact rules"


def _minutes(value: str) -> int:
    match = _TIME.fullmatch(value)
    if match is None:
        raise ValueError(f"times are quoted 'HH:MM' strings; got {value!r}")
    hour, minute = int(match["hour"]), int(match["minute"])
    if minute > 59 or hour > 24 or (hour == 24 and minute != 0):
        raise ValueError(f"{value!r} is not a time between '00:00' and '24:00'")
    return hour * 60 + minute


def _unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(set(values)) != len(values):
        raise ValueError("the list repeats an entry")
    return values


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HoursWindow(_Model):
    """A daily window of local time, ``[start, end)``; ``action`` overrides the rule's."""

    start: StrictStr
    end: StrictStr
    action: Action | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted_time(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # PyYAML (YAML 1.1) reads an unquoted 22:00 as the base-60 integer 1320
            raise ValueError("times are quoted 'HH:MM' strings (unquoted 22:00 reads as a number)")
        return value

    @field_validator("start", "end")
    @classmethod
    def _is_time(cls, value: str) -> str:
        _minutes(value)
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> HoursWindow:
        if self.start_minute >= self.end_minute:
            raise ValueError(f"start {self.start!r} must be before end {self.end!r}")
        return self

    @property
    def start_minute(self) -> int:
        """Minutes after local midnight at which the window opens."""
        return _minutes(self.start)

    @property
    def end_minute(self) -> int:
        """Minutes after local midnight at which the window closes (excluded)."""
        return _minutes(self.end)

    def contains(self, minute_of_day: int) -> bool:
        """Whether a local time, in minutes after midnight, falls inside the window."""
        return self.start_minute <= minute_of_day < self.end_minute


class Source(_Model):
    """What a rule rests on: the kind of source and the citation (an article, a decision, a code, a policy)."""

    kind: SourceKind
    cite: Annotated[StrictStr, Field(min_length=1, max_length=500)]


class _Rule(_Model):
    enabled: StrictBool = True
    action: Action
    source: Source
    directions: Annotated[tuple[Direction, ...], Field(min_length=1)] = ("outbound",)

    @field_validator("directions")
    @classmethod
    def _directions_unique(cls, value: tuple[Direction, ...]) -> tuple[Direction, ...]:
        return _unique(value)


class _PurposeExemptRule(_Rule):
    exempt_purposes: tuple[StrictStr, ...] = ()

    @field_validator("exempt_purposes")
    @classmethod
    def _purposes_are_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for purpose in value:
            if not _PURPOSE.fullmatch(purpose):
                raise ValueError(f"purposes are lower-case identifiers; got {purpose!r}")
        return _unique(value)


class AllowedHoursRule(_Rule):
    """Monday to Friday (holidays included), contact on a listed channel only inside its window."""

    hours: dict[Channel, HoursWindow]


class WeekendRule(_Rule):
    """Saturday and Sunday: contact on a listed channel only inside its window."""

    hours: dict[Channel, HoursWindow]


class WeekendConsentRule(_Rule):
    """Saturday and Sunday: a listed channel needs the subject's consent; the channel's own action (or the rule's)."""

    channels: dict[Channel, Action | None]


class PersonCapRule(_Rule):
    """At most ``max_contacts`` earlier outbound contacts with one person in a rolling window, across every debt
    and every listed channel."""

    window_days: Annotated[StrictInt, Field(ge=1, le=366)]
    max_contacts: Annotated[StrictInt, Field(ge=0, le=10000)]
    channels: tuple[Channel, ...]

    @field_validator("channels")
    @classmethod
    def _channels_unique(cls, value: tuple[Channel, ...]) -> tuple[Channel, ...]:
        return _unique(value)


class PublicHolidayRule(_Rule):
    """On a public holiday, no contact on the listed channels."""

    blocked_channels: tuple[Channel, ...]

    @field_validator("blocked_channels")
    @classmethod
    def _channels_unique(cls, value: tuple[Channel, ...]) -> tuple[Channel, ...]:
        return _unique(value)


class FrequencyCapRule(_Rule):
    """At most ``max_contacts[channel]`` earlier contacts per debt in a rolling window."""

    window_days: Annotated[StrictInt, Field(ge=1, le=366)]
    max_contacts: dict[Channel, Annotated[StrictInt, Field(ge=0, le=1000)]]


class CooldownRule(_Rule):
    """No contact on a listed channel within ``hours[channel]`` of a conversation on the debt."""

    hours: dict[Channel, Annotated[StrictInt, Field(ge=0, le=24 * 366)]]


class ThirdPartyDisclosureRule(_Rule):
    """A contact with a third party must not disclose the debt or demand its payment."""


class ChannelOptOutRule(_Rule):
    """No contact on a channel the subject opted out of."""


class ObjectionRule(_Rule):
    """No contact for a purpose (and channel) the subject objected to (GDPR Art. 21)."""


class RestrictionRule(_PurposeExemptRule):
    """While processing is restricted (GDPR Art. 18), only the exempt purposes may contact."""


class CeaseContactRule(_PurposeExemptRule):
    """After the subject asked the firm to stop contacting, only the exempt purposes may."""


class TimeBarredDemandRule(_Rule):
    """No demand for payment of a time-barred claim against a consumer (art. 117 § 2¹ k.c.)."""


class TimeBarredVoluntaryRequestRule(_Rule):
    """A request for voluntary payment of a time-barred consumer claim tells the debtor it is time-barred and
    threatens nothing (no court, bailiff or debt register); the listed threats are what the firewall checks."""

    threats: tuple[Annotated[StrictStr, Field(pattern=r"^[a-z][a-z_]{0,31}$")], ...]


class TimeBarredRequestBanRule(_Rule):
    """The firm's own choice, if it makes it: no payment request at all on a time-barred consumer claim."""


class RuleSet(_Model):
    """Every rule of the firewall, by id."""

    cease_contact: CeaseContactRule
    restriction: RestrictionRule
    objection: ObjectionRule
    channel_opt_out: ChannelOptOutRule
    third_party_disclosure: ThirdPartyDisclosureRule
    time_barred_demand: TimeBarredDemandRule
    time_barred_voluntary_request: TimeBarredVoluntaryRequestRule
    time_barred_request_ban: TimeBarredRequestBanRule
    public_holiday: PublicHolidayRule
    weekend: WeekendRule
    weekend_consent: WeekendConsentRule
    allowed_hours: AllowedHoursRule
    frequency_cap: FrequencyCapRule
    person_cap: PersonCapRule
    cooldown_after_conversation: CooldownRule


class ContactRulesDocument(_Model):
    """The YAML document: a format version, the legal time zone, and the rules."""

    version: Literal[1]
    legal_time_zone: StrictStr = "Europe/Warsaw"
    rules: RuleSet

    @field_validator("legal_time_zone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


@dataclass(frozen=True)
class ContactRules:
    """Validated contact rules, with the fingerprint of the text they came from."""

    document: ContactRulesDocument
    sha256: str
    source: str

    @property
    def rules(self) -> RuleSet:
        """The rules, by id."""
        return self.document.rules

    @property
    def version(self) -> int:
        """The format version of the file."""
        return self.document.version

    @property
    def legal_time_zone(self) -> ZoneInfo:
        """The zone whose calendar dates decide legal questions (limitation)."""
        return ZoneInfo(self.document.legal_time_zone)

    def __repr__(self) -> str:
        return f"ContactRules(version={self.version}, sha256={self.sha256[:12]}..., source={self.source!r})"


def rules_from_yaml(text: str, source: str = "<string>") -> ContactRules:
    """Parse and validate contact rules; ``ContactRulesError`` naming ``source`` and the path."""
    validated = validated_document(text, source, ContactRulesDocument, ContactRulesError, "contact rules", "are")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return ContactRules(document=validated, sha256=digest, source=source)


@functools.lru_cache(maxsize=8)
def load_rules(path: Path | None = None) -> ContactRules:
    """The rules at ``path`` (default: the packaged ``policies/contact_rules.yaml``), cached."""
    source = path if path is not None else DEFAULT_RULES_PATH
    text = read_policy_text(source, ContactRulesError, "contact rules", "are")
    return rules_from_yaml(text, source=str(source))
