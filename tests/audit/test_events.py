"""The event catalogue: closed payloads, no plaintext PII, canonical bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import SystemEventTypeError
from audit.events import (
    CATALOGUE,
    Actor,
    ActorKind,
    EventType,
    External,
    Payload,
    System,
    build_event,
    build_events,
    canonical_json,
    external_event_type,
    parse_leaf_input,
    sealed_b64,
)
from core.errors import InvalidInputError
from core.pii import find_personal_data, mask_text, mentions_any
from policies.actions import ACTIONS
from tests.security.pii_variants import disguised_pii

fake = Faker("pl_PL")
Faker.seed(7)
ACTOR = Actor(id="agent-1", kind=ActorKind.USER)
WHEN = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)


class TestBuildEvent:
    def test_canonical_bytes_are_rfc8785(self) -> None:
        """The leaf input is the RFC 8785 canonical JSON of the event, so anyone can recompute it."""
        event = build_event("contact.attempted", actor=ACTOR, time=WHEN, subject="sub_abcdefgh12",
                            payload={"channel": "phone", "direction": "outbound", "agent_id": "agent-1"})
        data = event.canonical()
        assert parse_leaf_input(data) == event.json_value()
        assert rfc8785.dumps(event.json_value()) == data
        assert b'"time":"2026-11-23T08:30:00.000000Z"' in data

    def test_times_are_spelled_one_way(self) -> None:
        """Equal instants in other offsets give the same canonical bytes."""
        other = WHEN.astimezone(timezone(timedelta(hours=2)))
        event_id = "00000000-0000-0000-0000-000000000000"
        a = build_event("operator.note", actor=ACTOR, time=WHEN, payload={"code": "x"}, event_id=event_id)
        b = build_event("operator.note", actor=ACTOR, time=other, payload={"code": "x"}, event_id=event_id)
        assert a.canonical() == b.canonical()

    @pytest.mark.parametrize("value_kind", ["pesel", "email", "phone_number", "iban", "nip"])
    def test_plaintext_pii_in_a_payload_is_refused(self, value_kind: str) -> None:
        """A PESEL, e-mail, phone, IBAN or NIP in a plain payload string is refused, and not echoed."""
        value = getattr(fake, value_kind)()
        with pytest.raises(InvalidInputError) as info:
            build_event("contact.attempted", actor=ACTOR, time=WHEN,
                        payload={"channel": "sms", "direction": "outbound", "agent_id": "a", "outcome": f"x {value}"})
        assert value not in info.value.detail

    def test_sealed_bytes_are_accepted(self) -> None:
        """Personal fields travel as sealed bytes (base64url), which the log accepts as opaque."""
        event = build_event("contact.completed", actor=ACTOR, time=WHEN,
                            payload={"channel": "visit", "direction": "outbound", "agent_id": "a",
                                     "notes": sealed_b64(b"TZ\x01" + bytes(40)), "gps": sealed_b64(bytes(30))})
        assert event.payload["notes"].startswith("VFoB")

    def test_payloads_are_closed(self) -> None:
        """An unknown payload key or event type is refused."""
        with pytest.raises(InvalidInputError, match="Extra inputs"):
            build_event("operator.note", actor=ACTOR, time=WHEN, payload={"code": "x", "surname": "Nowak"})
        with pytest.raises(InvalidInputError, match="unknown event type"):
            build_event("contact.teleport", actor=ACTOR, time=WHEN, payload={})

    def test_naive_time_is_refused(self) -> None:
        """Event times must be timezone-aware."""
        with pytest.raises(InvalidInputError):
            build_event("operator.note", actor=ACTOR, time=datetime(2026, 1, 1), payload={"code": "x"})  # noqa: DTZ001

    def test_non_canonical_leaf_input_is_rejected(self) -> None:
        """Parsing an exported leaf refuses JSON that is not in canonical form."""
        with pytest.raises(ValueError, match="canonical"):
            parse_leaf_input(b'{"b":1, "a":2}')


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(st.characters(blacklist_categories=("Cs",))),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8), children, max_size=4),
    max_leaves=20,
)


class TestCanonicalJson:
    @given(value=st.dictionaries(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10),
                                 _json_values, max_size=6))
    @settings(max_examples=400)
    def test_fast_serializer_equals_rfc8785(self, value: dict[str, Any]) -> None:
        """On the event domain (ASCII keys, no floats) canonical_json is byte-for-byte rfc8785.dumps."""
        assert canonical_json(value) == rfc8785.dumps(value)

    def test_catalogue_has_no_floats(self) -> None:
        """No payload field is a float, so the fast serializer's domain covers every event."""
        for event_type, known in CATALOGUE.items():
            for name, field in known.payload.model_fields.items():
                assert "float" not in str(field.annotation), (event_type, name)

    def test_unpaired_surrogate_is_refused(self) -> None:
        """Text that is not valid Unicode is refused, not written half-encoded."""
        with pytest.raises(InvalidInputError, match="surrogate"):
            canonical_json({"code": "\ud800"})


class TestBuildEvents:
    """build_events: the same event about many subjects, validated once."""

    def test_equal_to_one_by_one_but_for_the_ids(self) -> None:
        subjects = ["sub_AAAAAAAAAAAAAAAAAAAAAA", "sub_BBBBBBBBBBBBBBBBBBBBBB", "sub_CCCCCCCCCCCCCCCCCCCCCC"]
        payload = {"fields": ["pesel", "phone"], "subject_kind": "debtor"}
        many = build_events("vault.subject_created", actor=ACTOR, time=WHEN, payload=payload, subjects=subjects)
        assert len({e.id for e in many}) == 3
        for event, subject in zip(many, subjects, strict=True):
            single = build_event("vault.subject_created", actor=ACTOR, time=WHEN, payload=payload, subject=subject,
                                 event_id=event.id)
            assert event.canonical() == single.canonical()
        assert many[0].payload is not many[1].payload

    def test_a_bad_subject_or_payload_is_refused(self) -> None:
        payload = {"fields": ["pesel"], "subject_kind": "debtor"}
        with pytest.raises(InvalidInputError):
            build_events("vault.subject_created", actor=ACTOR, time=WHEN, payload=payload,
                         subjects=["sub_AAAAAAAAAAAAAAAAAAAAAA", "has spaces"])
        with pytest.raises(InvalidInputError):
            build_events("vault.subject_created", actor=ACTOR, time=WHEN, payload={"fields": ["00012345678"]},
                         subjects=["sub_AAAAAAAAAAAAAAAAAAAAAA"])
        assert build_events("vault.subject_created", actor=ACTOR, time=WHEN, payload=payload, subjects=[]) == []


class TestAuthors:
    """Every event type names who may author it (ADR 0017)."""

    def test_every_type_declares_its_authors(self) -> None:
        """Each catalogue entry is an EventType with a closed payload model and System or External authors;
        a system type names its component, an external one a policy action and the client scope for it."""
        for event_type, known in CATALOGUE.items():
            assert isinstance(known, EventType), event_type
            assert issubclass(known.payload, Payload), event_type
            assert known.payload.model_config.get("extra") == "forbid", event_type
            if isinstance(known.authors, System):
                assert known.authors.component.islower(), event_type
            else:
                assert isinstance(known.authors, External), event_type
                assert ACTIONS[known.authors.action].scope == known.authors.scope, event_type
                assert set(known.authors.sealed_from_plaintext) <= set(known.payload.model_fields), event_type

    def test_only_operator_notes_come_from_outside(self) -> None:
        """The only type an outside principal may append is operator.note; contacts, reviews and the
        verification result are Tarcza's own, refused with the type and owner named."""
        assert [t for t, k in CATALOGUE.items() if isinstance(k.authors, External)] == ["operator.note"]
        for event_type in ("contact.completed", "policy.break_glass_reviewed", "audit.log_verified", "vault.access"):
            with pytest.raises(SystemEventTypeError) as refused:
                external_event_type(event_type)
            assert refused.value.status == 403
            assert refused.value.extra["event_type"] == event_type
            assert event_type in refused.value.detail
        with pytest.raises(InvalidInputError):
            external_event_type("no.such_type")

    def test_server_sealed_fields_count_by_presence_in_the_fingerprint(self) -> None:
        """A retried note seals its details into new bytes yet has the same request fingerprint; other
        fields still count."""
        def note(details: bytes, code: str = "callback") -> bytes:
            return build_event("operator.note", actor=ACTOR, time=WHEN, subject="sub_AAAAAAAAAAAAAAAAAAAAAA",
                               payload={"code": code, "details": sealed_b64(details)}).request_fingerprint()

        assert note(b"\x01" * 40) == note(b"\x02" * 40)
        assert note(b"\x01" * 40) != note(b"\x01" * 40, code="other")


UUIDS = st.uuids().map(str)
DIGESTS = st.binary(min_size=1, max_size=64).map(lambda b: __import__("hashlib").sha256(b).hexdigest())


class TestDisguisedPersonalData:
    """The plain-text check normalises Unicode and separators before it looks (issue 16, defect 9)."""

    @given(value=disguised_pii())
    @settings(max_examples=500)
    def test_disguised_values_are_found(self, value: str) -> None:
        """Property: a PESEL, NIP, phone, e-mail or IBAN with separators, x placeholders, full-width forms,
        other scripts' digits or look-alike letters is found, masked in logs and refused in a Code and a Text."""
        assert find_personal_data(value) is not None
        assert mask_text(value) != value
        for payload in ({"debt_id": "D-1", "creditor": f"Bank {value}"}, {"debt_id": value}):
            with pytest.raises(InvalidInputError):
                build_event("debt.recorded", actor=ACTOR, time=WHEN, payload=payload)

    @given(value=st.one_of(UUIDS, DIGESTS, st.dates().map(str), st.datetimes(timezones=st.just(UTC)).map(
        lambda d: d.isoformat()), st.ip_addresses(v=4).map(str)))
    @settings(max_examples=300)
    def test_tarcza_s_own_shapes_are_not_personal(self, value: str) -> None:
        """Property: UUIDs, hex digests, ISO dates and times and IPv4 addresses are not taken for numbers."""
        if value[:1] == "0" and "-" not in value and ":" not in value and "." not in value:
            value = "f" + value[1:]  # an all-digit digest of 64 characters would be a number written long
        assert find_personal_data(value) is None, value

    @pytest.mark.parametrize("text", ["called_wojcik_zielinska", "WOJCIKZIELINSKA:visit", "visit.wójcik",
                                      "vіsit_wоjcik", "cb_512345678", "cb:512-345-678", "anna.testowa"])
    def test_the_subject_s_own_values_are_found_however_spelled(self, text: str) -> None:
        """A code that spells the subject's own name, phone or e-mail's local part (any case, accents, separators,
        look-alike letters) is recognised."""
        values = ["Anna", "Wójcik-Zielińska", "+48512345678", "anna.testowa@example.pl"]
        assert mentions_any(text, values)

    @pytest.mark.parametrize("text", ["violation_reported", "callback_requested", "annals", "2026-11-17"])
    def test_other_words_are_not_the_subject_s_values(self, text: str) -> None:
        """Short names are matched as whole words only, so ordinary codes are not refused."""
        assert not mentions_any(text, ["Ola", "Ann", "Wójcik-Zielińska", "+48512345678"])
