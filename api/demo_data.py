"""Synthetic people and contact histories for ``tarcza demo seed``, from a seed.

Everything here is fictional (Faker ``pl_PL``; e-mail addresses on RFC 2606 domains) and a
pure function of ``(seed, index)``: Faker is reseeded for every person, so person 17 of
seed 0 is the same whether 20 or 20,000 are generated, in one batch or several. The
command and its tests therefore generate the same values without either writing them
anywhere: what the command stores goes through the vault, sealed.

Who is in the data: most people are debtors (kind ``debtor``) with every common
identifier; every fifth person is a guarantor of the debtor before them (kind
``third_party``, sharing that debtor's case), with fewer fields. Each has one to four
contacts (phone, SMS, e-mail, field visit), attempted or completed, some with notes, and
visits with a GPS position; notes and positions are sealed before they reach the log.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

from faker import Faker

from audit.events import Channel
from vault.errors import InvalidFieldValueError
from vault.validators import normalise

__all__ = ["DemoContact", "DemoPerson", "demo_people", "demo_person", "demo_recording"]

GUARANTOR_EVERY: Final = 5
CONTACTS_FROM: Final = datetime(2026, 1, 5, tzinfo=UTC)
AGENTS: Final = tuple(f"agent-{n:02d}" for n in range(1, 13))
FIELD_AGENTS: Final = tuple(f"field-agent-{n:02d}" for n in range(1, 6))
RECORDING_RATE: Final = 8000  # Hz, mono, 16-bit: one second is 16,000 bytes

# (event type, outcome, note or None) per channel. Notes hold no identifiers (they are sealed anyway).
_OUTCOMES: Final[dict[str, tuple[tuple[str, str, str | None], ...]]] = {
    "phone": (
        ("contact.attempted", "no-answer", None),
        ("contact.attempted", "voicemail", None),
        ("contact.completed", "promise-to-pay", "Dłużnik obiecał wpłatę raty do końca tygodnia."),
        ("contact.completed", "payment-plan-agreed", "Uzgodniono spłatę w trzech ratach miesięcznych."),
        ("contact.completed", "dispute", "Dłużnik kwestionuje wysokość odsetek; prosi o rozliczenie."),
        ("contact.completed", "refused", "Rozmówca odmówił rozmowy i rozłączył się."),
    ),
    "sms": (
        ("contact.attempted", "not-delivered", None),
        ("contact.completed", "delivered", None),
    ),
    "email": (
        ("contact.attempted", "bounced", None),
        ("contact.completed", "delivered", None),
        ("contact.completed", "replied", "Odpowiedź: prośba o przesłanie harmonogramu spłaty."),
    ),
    "visit": (
        ("contact.attempted", "not-home", "Nikt nie otworzył; zostawiono awizo w skrzynce."),
        ("contact.completed", "met-debtor", "Rozmowa na miejscu; dłużnik zadeklarował wpłatę."),
        ("contact.completed", "met-household-member", "Rozmowa z domownikiem; przekazano dane kontaktowe."),
    ),
}


@dataclass(frozen=True)
class DemoContact:
    """One synthetic contact: what a collection system would report (notes and GPS still in clear)."""

    event_type: str
    channel: Channel
    direction: Literal["outbound", "inbound"]
    agent_id: str
    outcome: str
    started_at: datetime
    ended_at: datetime | None = None
    note: str | None = None
    gps: str | None = None


@dataclass(frozen=True)
class DemoPerson:
    """One synthetic subject: kind, case, field values (as the vault takes them) and contacts."""

    index: int
    kind: str
    role: str  # debtor or guarantor
    case_id: str
    fields: dict[str, Any]
    contacts: tuple[DemoContact, ...]

    @property
    def pesel(self) -> str:
        return str(self.fields["pesel"])

    @property
    def phones(self) -> list[str]:
        return list(self.fields["phone"])

    @property
    def emails(self) -> list[str]:
        return list(self.fields.get("email", []))


def demo_people(seed: int, start: int, count: int) -> list[DemoPerson]:
    """People ``start`` .. ``start + count - 1`` of ``seed``."""
    fake = Faker("pl_PL")
    return [_person(fake, seed, index) for index in range(start, start + count)]


def demo_person(seed: int, index: int) -> DemoPerson:
    """Person ``index`` of ``seed`` (the same as in any :func:`demo_people` that covers it)."""
    return demo_people(seed, index, 1)[0]


def demo_recording(seed: int, index: int, seconds: float = 1.0) -> bytes:
    """A small WAV file of noise standing in for the recording of a call with person ``index``."""
    fake = Faker()
    fake.seed_instance(f"tarcza-demo/{seed}/recording/{index}")
    frames = int(RECORDING_RATE * seconds)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RECORDING_RATE)
        out.writeframes(fake.random.randbytes(frames * 2))
    return buffer.getvalue()


def case_of(seed: int, index: int) -> str:
    """The case number of person ``index``: a guarantor shares the case of the debtor before them."""
    debtor = index - 1 if _is_guarantor(index) else index
    return f"DEMO-{seed}-{debtor:06d}"


def _is_guarantor(index: int) -> bool:
    return index % GUARANTOR_EVERY == GUARANTOR_EVERY - 1


def _valid_phone(fake: Faker) -> str:
    while True:
        candidate = str(fake.phone_number())
        try:
            normalise("phone", "phone", candidate)
        except InvalidFieldValueError:
            continue
        return candidate


def _person(fake: Faker, seed: int, index: int) -> DemoPerson:
    fake.seed_instance(f"tarcza-demo/{seed}/{index}")
    rng = fake.random
    female = rng.random() < 0.5
    first = fake.first_name_female() if female else fake.first_name_male()
    last = fake.last_name_female() if female else fake.last_name_male()
    born: date = fake.date_of_birth(minimum_age=19, maximum_age=85)
    midnight = datetime(born.year, born.month, born.day, tzinfo=UTC)
    fields: dict[str, Any] = {
        "first_name": first, "last_name": last, "date_of_birth": born.isoformat(),
        "pesel": fake.pesel(date_of_birth=midnight, sex="F" if female else "M"),
        "phone": [_valid_phone(fake)], "address": [fake.address().replace("\n", ", ")],
    }
    guarantor = _is_guarantor(index)
    if not guarantor:
        fields["email"] = [fake.safe_email()]
        fields["iban"] = [fake.iban()]
        fields["employer"] = fake.company()
        if rng.random() < 0.3:
            fields["phone"].append(_valid_phone(fake))
    channels = ("phone", "sms") if guarantor else ("phone", "phone", "sms", "email", "visit")
    contacts = tuple(sorted((_contact(fake, rng.choice(channels)) for _ in range(rng.randint(1, 4))),
                            key=lambda c: c.started_at))
    return DemoPerson(index, "third_party" if guarantor else "debtor", "guarantor" if guarantor else "debtor",
                      case_of(seed, index), fields, contacts)


def _contact(fake: Faker, channel: str) -> DemoContact:
    rng = fake.random
    event_type, outcome, note = rng.choice(_OUTCOMES[channel])
    started = CONTACTS_FROM + timedelta(days=rng.randrange(90), hours=rng.randint(8, 19), minutes=rng.randrange(60))
    ended = started + timedelta(minutes=rng.randint(2, 25)) if event_type == "contact.completed" and channel in (
        "phone", "visit") else None
    gps = None
    if channel == "visit":
        place = fake.local_latlng(country_code="PL") or ("52.2297", "21.0122")  # a town, or Warsaw
        lat, lon = float(place[0]), float(place[1])
        gps = f"{lat + rng.uniform(-0.03, 0.03):.6f},{lon + rng.uniform(-0.03, 0.03):.6f}"
    agent = rng.choice(FIELD_AGENTS if channel == "visit" else AGENTS)
    inbound = channel == "phone" and event_type == "contact.completed" and rng.random() < 0.2
    return DemoContact(event_type, Channel(channel), "inbound" if inbound else "outbound", agent, outcome, started,
                       ended, note, gps)
