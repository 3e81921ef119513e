"""Synthetic people and contact histories for ``tarcza demo seed``, from a seed.

Everything here is fictional (Faker ``pl_PL``; e-mail addresses on RFC 2606 domains) and a
pure function of ``(seed, index)``: Faker is reseeded for every person, so person 17 of
seed 0 is the same whether 20 or 20,000 are generated, in one batch or several. The
command and its tests therefore generate the same values without either writing them
anywhere: what the command stores goes through the vault, sealed.

Who is in the data: most people are debtors (kind ``debtor``) with every common
identifier, one or two debts from fictional creditors (some settled, some long
time-barred) and a case assigned to a collector; every fifth person is a guarantor of the
debtor before them (kind ``third_party``), with fewer fields. Each has one to four
contacts over four months on every channel (phone, SMS, e-mail, letter, field visit),
mostly on working days at working hours, about one in twenty outside them (the firewall
refuses those, which is part of the demonstration). Some notes name the person's own
values or a new phone number: the contacts service scrubs and seals them. Visits carry a
GPS position.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from faker import Faker

from audit.events import Channel
from vault.errors import InvalidFieldValueError
from vault.validators import normalise

__all__ = ["DemoContact", "DemoDebt", "DemoPerson", "demo_people", "demo_person", "demo_recording"]

GUARANTOR_EVERY: Final = 5
CONTACTS_FROM: Final = datetime(2026, 1, 5, tzinfo=UTC)
AGENTS: Final = tuple(f"agent-{n:02d}" for n in range(1, 13))
FIELD_AGENTS: Final = tuple(f"field-agent-{n:02d}" for n in range(1, 6))
RECORDING_RATE: Final = 8000  # Hz, mono, 16-bit: one second is 16,000 bytes

# (outcome, note template or None) per channel. Templates may name the person's own values
# ({first}, {last}, {street}, {phone2}, {email}): the contacts service finds them, seals them
# and stores the note with placeholders, as it would for a real agent's note.
_OUTCOMES: Final[dict[str, tuple[tuple[str, str | None], ...]]] = {
    "phone": (
        ("no_answer", None),
        ("voicemail", None),
        ("busy", None),
        ("promise_to_pay", "Dłużnik obiecał wpłatę raty do końca tygodnia."),
        ("answered", "Uzgodniono spłatę w trzech ratach miesięcznych; {first} {last} prosi o harmonogram."),
        ("disputed", "Dłużnik kwestionuje wysokość odsetek; prosi o rozliczenie na adres {email}."),
        ("answered", "Dłużnik podał nowy numer telefonu {phone2}, prosi o kontakt po 16:00."),
        ("refused", "Rozmówca odmówił rozmowy i rozłączył się."),
    ),
    "sms": (("sent", None), ("delivered", None), ("failed", None)),
    "email": (("sent", None), ("delivered", None), ("bounced", None),
              ("replied", "Odpowiedź: prośba o przesłanie harmonogramu spłaty.")),
    "letter": (("sent", None), ("delivered", None), ("returned", "Przesyłka zwrócona: adresat nieznany.")),
    "visit": (
        ("not_at_home", "Nikt nie otworzył; zostawiono awizo w skrzynce przy {street}."),
        ("met_debtor", "Rozmowa na miejscu z panem/panią {last}; zadeklarowano wpłatę."),
        ("third_party_present", "Rozmowa w obecności domownika; nie ujawniono celu wizyty."),
        ("promise_to_pay", "Dłużnik obiecał wpłatę do 10. dnia miesiąca."),
    ),
}
_WARSAW: Final = ZoneInfo("Europe/Warsaw")


@dataclass(frozen=True)
class DemoDebt:
    """A debt assigned for collection: id, creditor, kind for the limitation clock, amount, due date."""

    id: str
    creditor: str
    kind: str
    consumer: bool
    amount_minor: int
    due_date: date
    settled: bool = False


@dataclass(frozen=True)
class DemoContact:
    """One synthetic contact: what a collection system would report (notes and GPS still in clear)."""

    channel: Channel
    direction: Literal["outbound", "inbound"]
    agent_id: str
    outcome: str
    started_at: datetime
    ended_at: datetime | None = None
    note: str | None = None
    gps: str | None = None
    demands_payment: bool = False


@dataclass(frozen=True)
class DemoPerson:
    """One synthetic subject: kind, case, field values (as the vault takes them) and contacts."""

    index: int
    kind: str
    role: str  # debtor or guarantor
    case_id: str
    fields: dict[str, Any]
    contacts: tuple[DemoContact, ...]
    debts: tuple[DemoDebt, ...] = ()
    agent_id: str = ""  # the collector the collection system assigned the case to

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
    debts: tuple[DemoDebt, ...] = ()
    if not guarantor:
        debts = tuple(_debt(fake, seed, index, n) for n in range(1 if rng.random() < 0.8 else 2))
    values = {"first": first, "last": last, "street": fields["address"][0].split(",")[0],
              "phone2": _valid_phone(fake), "email": f"{fake.user_name()}@example.com"}
    channels = ("phone", "sms") if guarantor else ("phone", "phone", "sms", "email", "letter", "visit")
    contacts = tuple(sorted((_contact(fake, rng.choice(channels), values) for _ in range(rng.randint(1, 4))),
                            key=lambda c: c.started_at))
    return DemoPerson(index, "third_party" if guarantor else "debtor", "guarantor" if guarantor else "debtor",
                      case_of(seed, index), fields, contacts, debts, rng.choice(AGENTS))


_CREDITORS: Final = ("Przykładowy Bank S.A.", "Fikcyjna Telekomunikacja Sp. z o.o.", "Wzorcowa Energia S.A.",
                     "Pożyczki Testowe Sp. z o.o.", "Modelowe Wodociągi Sp. z o.o.")


def _debt(fake: Faker, seed: int, index: int, n: int) -> DemoDebt:
    """A debt: mostly a consumer's general claim due in the last few years; some business or long time-barred."""
    rng = fake.random
    roll = rng.random()
    kind, consumer = ("business", False) if roll < 0.1 else ("periodic", True) if roll < 0.3 else ("general", True)
    years_ago = 12 if rng.random() < 0.08 else rng.randint(1, 4)  # some claims long time-barred
    due = date(2026 - years_ago, rng.randint(1, 12), rng.randint(1, 28))
    return DemoDebt(f"DEMO-{seed}-{index:06d}-D{n}", rng.choice(_CREDITORS), kind, consumer,
                    rng.randint(200, 60_000) * 100, due, settled=rng.random() < 0.1)


def _local_time(fake: Faker, channel: str) -> datetime:
    """A local time on a working day at working hours; about one in twenty breaks the contact rules."""
    rng = fake.random
    day = CONTACTS_FROM.date() + timedelta(days=rng.randrange(120))
    if rng.random() >= 0.05:
        while day.weekday() >= 5:
            day += timedelta(days=1)
        hour = rng.randint(9, 18) if channel == "visit" else rng.randint(8, 20)
    else:
        hour = rng.choice((5, 21, 22)) if channel != "visit" else 20
    return datetime(day.year, day.month, day.day, hour, rng.randrange(60), tzinfo=_WARSAW)


def _contact(fake: Faker, channel: str, values: dict[str, str]) -> DemoContact:
    rng = fake.random
    outcome, template = rng.choice(_OUTCOMES[channel])
    started = _local_time(fake, channel)
    talked = outcome in ("answered", "promise_to_pay", "disputed", "refused", "met_debtor", "third_party_present")
    ended = started + timedelta(minutes=rng.randint(2, 25)) if talked and channel in ("phone", "visit") else None
    gps = None
    if channel == "visit":
        place = fake.local_latlng(country_code="PL") or ("52.2297", "21.0122")  # a town, or Warsaw
        lat, lon = float(place[0]), float(place[1])
        gps = f"{lat + rng.uniform(-0.03, 0.03):.6f},{lon + rng.uniform(-0.03, 0.03):.6f}"
    agent = rng.choice(FIELD_AGENTS if channel == "visit" else AGENTS)
    inbound = channel == "phone" and talked and rng.random() < 0.2
    demands = channel in ("phone", "letter", "sms") and not inbound and rng.random() < 0.7
    note = template.format(**values) if template else None
    return DemoContact(Channel(channel), "inbound" if inbound else "outbound", agent, outcome,
                       started.astimezone(UTC), ended.astimezone(UTC) if ended else None, note, gps, demands)
