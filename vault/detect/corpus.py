"""A synthetic corpus of Polish collection notes with ground truth, and its evaluation.

:func:`generate` builds notes (call notes, field-visit notes, SMS and e-mail replies) from
templates filled with fictional data: Faker ``pl_PL`` (names, PESEL, NIP, REGON, ID card
numbers, IBANs, phones, streets, cities, postcodes), passport numbers generated here with
their check digit, foreign IBANs with their mod-97 check digits, e-mail addresses on RFC
2606 domains (``example.pl``/``.com``/``.org``/``.net``). Every value that must be found
is recorded as a ground-truth :class:`Span`; distractors that must *not* be found are
mixed in: amounts (``1 250,00 zł``), dates, hours, case numbers (``I C 123/24``), invoice
numbers, postcodes, and numbers that look like identifiers but fail their checksum
(11 digits that are no PESEL, 10 that are no NIP, an account number with a typo, an ID
card number with a wrong check digit).

Names appear inflected as Polish needs them (``Rozmawiałem z Janem Kowalskim``,
``Zastałem Panią Annę Nowak``). The case forms come from hand-written tables here, not
from the detector's suffix rules, so the evaluation does not grade the detector against
itself; names outside the tables (drawn from Faker) are used inflected only where Polish
declension is regular (``-ski``/``-ska`` surnames; women's surnames not ending in ``-a``,
which do not decline) and in the nominative otherwise.

SMS replies are often typed without Polish letters (``Rozmawialem z Zofia Wozniak``) and
visit notes sometimes copy names in capitals; both happen here, in the proportions set in
:func:`generate`. Every value is generated, validated with :mod:`vault.validators` where a checker exists
(so a ground-truth identifier is valid and a distractor is not), and the same seed gives
the same corpus. :func:`evaluate` scores a detector: exact span and type match, per entity
type, for the checksummed identifiers together, and overall.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Final

from faker import Faker

from vault.detect.findings import (
    ADDRESS,
    CHECKSUMMED,
    DATE_OF_BIRTH,
    EMAIL,
    EMPLOYER,
    IBAN,
    ID_CARD,
    NAME,
    NIP,
    PASSPORT,
    PESEL,
    PHONE,
    REGON,
    Finding,
)
from vault.validators import is_valid

__all__ = ["Evaluation", "Note", "Score", "Span", "evaluate", "generate"]

CASES: Final = ("nom", "gen", "dat", "acc", "inst", "loc")

# Hand-written case forms: nominative -> "genitive dative accusative instrumental locative".
_MALE_FIRST: Final = {
    "Jan": "Jana Janowi Jana Janem Janie",
    "Piotr": "Piotra Piotrowi Piotra Piotrem Piotrze",
    "Paweł": "Pawła Pawłowi Pawła Pawłem Pawle",
    "Marek": "Marka Markowi Marka Markiem Marku",
    "Tomasz": "Tomasza Tomaszowi Tomasza Tomaszem Tomaszu",
    "Krzysztof": "Krzysztofa Krzysztofowi Krzysztofa Krzysztofem Krzysztofie",
    "Andrzej": "Andrzeja Andrzejowi Andrzeja Andrzejem Andrzeju",
    "Michał": "Michała Michałowi Michała Michałem Michale",
    "Adam": "Adama Adamowi Adama Adamem Adamie",
    "Marcin": "Marcina Marcinowi Marcina Marcinem Marcinie",
    "Łukasz": "Łukasza Łukaszowi Łukasza Łukaszem Łukaszu",
    "Jakub": "Jakuba Jakubowi Jakuba Jakubem Jakubie",
    "Grzegorz": "Grzegorza Grzegorzowi Grzegorza Grzegorzem Grzegorzu",
    "Wojciech": "Wojciecha Wojciechowi Wojciecha Wojciechem Wojciechu",
    "Kamil": "Kamila Kamilowi Kamila Kamilem Kamilu",
    "Dawid": "Dawida Dawidowi Dawida Dawidem Dawidzie",
    "Mateusz": "Mateusza Mateuszowi Mateusza Mateuszem Mateuszu",
    "Rafał": "Rafała Rafałowi Rafała Rafałem Rafale",
    "Stanisław": "Stanisława Stanisławowi Stanisława Stanisławem Stanisławie",
    "Józef": "Józefa Józefowi Józefa Józefem Józefie",
    "Jerzy": "Jerzego Jerzemu Jerzego Jerzym Jerzym",
    "Antoni": "Antoniego Antoniemu Antoniego Antonim Antonim",
    "Karol": "Karola Karolowi Karola Karolem Karolu",
    "Maciej": "Macieja Maciejowi Macieja Maciejem Macieju",
    "Zbigniew": "Zbigniewa Zbigniewowi Zbigniewa Zbigniewem Zbigniewie",
}
_FEMALE_FIRST: Final = {
    "Anna": "Anny Annie Annę Anną Annie",
    "Maria": "Marii Marii Marię Marią Marii",
    "Katarzyna": "Katarzyny Katarzynie Katarzynę Katarzyną Katarzynie",
    "Małgorzata": "Małgorzaty Małgorzacie Małgorzatę Małgorzatą Małgorzacie",
    "Agnieszka": "Agnieszki Agnieszce Agnieszkę Agnieszką Agnieszce",
    "Barbara": "Barbary Barbarze Barbarę Barbarą Barbarze",
    "Ewa": "Ewy Ewie Ewę Ewą Ewie",
    "Krystyna": "Krystyny Krystynie Krystynę Krystyną Krystynie",
    "Magdalena": "Magdaleny Magdalenie Magdalenę Magdaleną Magdalenie",
    "Elżbieta": "Elżbiety Elżbiecie Elżbietę Elżbietą Elżbiecie",
    "Joanna": "Joanny Joannie Joannę Joanną Joannie",
    "Aleksandra": "Aleksandry Aleksandrze Aleksandrę Aleksandrą Aleksandrze",
    "Monika": "Moniki Monice Monikę Moniką Monice",
    "Zofia": "Zofii Zofii Zofię Zofią Zofii",
    "Teresa": "Teresy Teresie Teresę Teresą Teresie",
    "Danuta": "Danuty Danucie Danutę Danutą Danucie",
    "Natalia": "Natalii Natalii Natalię Natalią Natalii",
    "Karolina": "Karoliny Karolinie Karolinę Karoliną Karolinie",
    "Marta": "Marty Marcie Martę Martą Marcie",
    "Beata": "Beaty Beacie Beatę Beatą Beacie",
    "Dorota": "Doroty Dorocie Dorotę Dorotą Dorocie",
    "Halina": "Haliny Halinie Halinę Haliną Halinie",
    "Jadwiga": "Jadwigi Jadwidze Jadwigę Jadwigą Jadwidze",
    "Julia": "Julii Julii Julię Julią Julii",
    "Olga": "Olgi Oldze Olgę Olgą Oldze",
}
# Men's surnames that decline as nouns; for women these are indeclinable.
_MALE_NOUN_SURNAMES: Final = {
    "Nowak": "Nowaka Nowakowi Nowaka Nowakiem Nowaku",
    "Wójcik": "Wójcika Wójcikowi Wójcika Wójcikiem Wójciku",
    "Kowalczyk": "Kowalczyka Kowalczykowi Kowalczyka Kowalczykiem Kowalczyku",
    "Woźniak": "Woźniaka Woźniakowi Woźniaka Woźniakiem Woźniaku",
    "Mazur": "Mazura Mazurowi Mazura Mazurem Mazurze",
    "Krawczyk": "Krawczyka Krawczykowi Krawczyka Krawczykiem Krawczyku",
    "Adamczyk": "Adamczyka Adamczykowi Adamczyka Adamczykiem Adamczyku",
    "Dudek": "Dudka Dudkowi Dudka Dudkiem Dudku",
    "Zając": "Zająca Zającowi Zająca Zającem Zającu",
    "Wieczorek": "Wieczorka Wieczorkowi Wieczorka Wieczorkiem Wieczorku",
    "Król": "Króla Królowi Króla Królem Królu",
    "Wróbel": "Wróbla Wróblowi Wróbla Wróblem Wróblu",
    "Pawlak": "Pawlaka Pawlakowi Pawlaka Pawlakiem Pawlaku",
    "Walczak": "Walczaka Walczakowi Walczaka Walczakiem Walczaku",
    "Stępień": "Stępnia Stępniowi Stępnia Stępniem Stępniu",
    "Michalak": "Michalaka Michalakowi Michalaka Michalakiem Michalaku",
    "Baran": "Barana Baranowi Barana Baranem Baranie",
    "Szewczyk": "Szewczyka Szewczykowi Szewczyka Szewczykiem Szewczyku",
    "Pietrzak": "Pietrzaka Pietrzakowi Pietrzaka Pietrzakiem Pietrzaku",
    "Marciniak": "Marciniaka Marciniakowi Marciniaka Marciniakiem Marciniaku",
    "Bąk": "Bąka Bąkowi Bąka Bąkiem Bąku",
    "Włodarczyk": "Włodarczyka Włodarczykowi Włodarczyka Włodarczykiem Włodarczyku",
    "Kubiak": "Kubiaka Kubiakowi Kubiaka Kubiakiem Kubiaku",
    "Wilk": "Wilka Wilkowi Wilka Wilkiem Wilku",
    "Lis": "Lisa Lisowi Lisa Lisem Lisie",
    "Mazurek": "Mazurka Mazurkowi Mazurka Mazurkiem Mazurku",
    "Kołodziej": "Kołodzieja Kołodziejowi Kołodzieja Kołodziejem Kołodzieju",
    "Szulc": "Szulca Szulcowi Szulca Szulcem Szulcu",
    "Sobczak": "Sobczaka Sobczakowi Sobczaka Sobczakiem Sobczaku",
    "Cieślak": "Cieślaka Cieślakowi Cieślaka Cieślakiem Cieślaku",
}
# Surnames in -a decline the same way for men and women.
_A_SURNAMES: Final = {
    "Sikora": "Sikory Sikorze Sikorę Sikorą Sikorze",
    "Duda": "Dudy Dudzie Dudę Dudą Dudzie",
    "Kania": "Kani Kani Kanię Kanią Kani",
    "Zięba": "Zięby Ziębie Ziębę Ziębą Ziębie",
}
_ADJECTIVAL_SURNAMES: Final = (
    "Kowalski", "Wiśniewski", "Kamiński", "Lewandowski", "Zieliński", "Szymański", "Dąbrowski", "Kozłowski",
    "Jankowski", "Kwiatkowski", "Piotrowski", "Grabowski", "Nowakowski", "Pawłowski", "Michalski", "Nowicki",
    "Jabłoński", "Majewski", "Olszewski", "Jaworski", "Malinowski", "Witkowski", "Górski", "Rutkowski",
    "Ostrowski", "Tomaszewski", "Wróblewski", "Zalewski", "Jakubowski", "Jasiński", "Zawadzki", "Sadowski",
    "Czarnecki", "Sawicki", "Sokołowski", "Urbański", "Wysocki", "Głowacki", "Krajewski", "Przybylski",
)
# City -> locative (as after "w"). Declined by hand.
_CITIES: Final = {
    "Warszawa": "Warszawie", "Kraków": "Krakowie", "Łódź": "Łodzi", "Wrocław": "Wrocławiu",
    "Poznań": "Poznaniu", "Gdańsk": "Gdańsku", "Szczecin": "Szczecinie", "Bydgoszcz": "Bydgoszczy",
    "Lublin": "Lublinie", "Białystok": "Białymstoku", "Katowice": "Katowicach", "Gdynia": "Gdyni",
    "Częstochowa": "Częstochowie", "Radom": "Radomiu", "Toruń": "Toruniu", "Sosnowiec": "Sosnowcu",
    "Rzeszów": "Rzeszowie", "Kielce": "Kielcach", "Gliwice": "Gliwicach", "Olsztyn": "Olsztynie",
    "Zielona Góra": "Zielonej Górze", "Bielsko-Biała": "Bielsku-Białej", "Opole": "Opolu", "Płock": "Płocku",
    "Tarnów": "Tarnowie", "Elbląg": "Elblągu", "Gorzów Wielkopolski": "Gorzowie Wielkopolskim",
    "Nowy Sącz": "Nowym Sączu",
}
# Adjectival street names -> locative ("na ulicy Długiej").
_STREETS: Final = {
    "Długa": "Długiej", "Polna": "Polnej", "Leśna": "Leśnej", "Słoneczna": "Słonecznej", "Szkolna": "Szkolnej",
    "Ogrodowa": "Ogrodowej", "Lipowa": "Lipowej", "Łąkowa": "Łąkowej", "Brzozowa": "Brzozowej",
    "Kwiatowa": "Kwiatowej", "Kolejowa": "Kolejowej", "Spokojna": "Spokojnej", "Zielona": "Zielonej",
    "Wiejska": "Wiejskiej", "Cicha": "Cichej", "Parkowa": "Parkowej",
}
# Street names in the genitive (after a person), the same after "na ulicy".
_GENITIVE_STREETS: Final = ("Mickiewicza", "Kościuszki", "Słowackiego", "Sienkiewicza", "Reymonta", "Kopernika",
                            "Jana Pawła II", "Piłsudskiego", "Chopina", "Prusa")
_EMPLOYERS: Final = (
    "Hurtownia Sosna Sp. z o.o.", "Przedsiębiorstwo Transportowe Zefir S.A.", "Piekarnia Złoty Kłos",
    "Zakład Stolarski Dębowy Dwór", "Magazyny Centralne Orzeł Sp. z o.o.", "Drukarnia Pióro Sp.j.",
    "Przychodnia Zdrowie Plus", "Sklep Spożywczy Pod Kasztanem", "Warsztat Samochodowy Tłok",
    "Firma Budowlana Cegiełka S.A.",
)
_MONTHS: Final = ("stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia", "września",
                  "października", "listopada", "grudnia")
_DOMAINS: Final = ("example.pl", "example.com", "example.org", "example.net")
_TRANSLIT: Final = str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ", "acelnoszzACELNOSZZ")
_PASSPORT_WEIGHTS: Final = (7, 3, 9, 1, 7, 3, 1, 7, 3)


@dataclass(frozen=True, slots=True)
class Span:
    """A ground-truth span: ``text[start:end]`` of a note is an ``entity_type``."""

    entity_type: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Note:
    """One synthetic note, what must be found in it, and its subject's known values."""

    kind: str
    text: str = field(repr=False)
    spans: tuple[Span, ...]
    known_values: Mapping[str, tuple[str, ...]] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Score:
    """Counts of exact matches (true positives), spurious findings and missed spans."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def __add__(self, other: Score) -> Score:
        return Score(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Precision and recall per entity type, for the checksummed identifiers together, and overall."""

    per_type: Mapping[str, Score]
    checksummed: Score
    overall: Score
    notes: int

    def to_json(self) -> dict[str, object]:
        def one(score: Score) -> dict[str, float | int]:
            return {"tp": score.tp, "fp": score.fp, "fn": score.fn,
                    "precision": round(score.precision, 4), "recall": round(score.recall, 4)}

        return {"notes": self.notes, "overall": one(self.overall), "checksummed": one(self.checksummed),
                "per_type": {entity: one(score) for entity, score in sorted(self.per_type.items())}}


# ---------------------------------------------------------------------------------------
# subjects


class _Skip(Exception):  # noqa: N818 - control flow inside the generator, never escapes it
    """The chosen template needs a form this subject does not have; pick another."""


@dataclass
class _Subject:
    female: bool
    first: str
    last: str
    first_forms: dict[str, str] | None
    last_forms: dict[str, str] | None
    pesel: str
    dob: str
    nip: str
    regon: str
    id_card: str
    passport: str
    iban: str
    phones: list[str]
    email: str
    street: str
    street_loc: str | None
    house: str
    postcode: str
    city: str
    city_loc: str | None
    employer: str

    @property
    def address(self) -> str:
        return f"ul. {self.street} {self.house}, {self.postcode} {self.city}"

    def known_values(self) -> dict[str, tuple[str, ...]]:
        # What the contacts service would pass: the subject's vault fields, the address
        # also split into street and city. Identifier fields are passed too (and ignored).
        return {
            "first_name": (self.first,), "last_name": (self.last,), "street": (self.street,),
            "city": (self.city,), "address": (self.address,), "employer": (self.employer,),
            "date_of_birth": (self.dob,), "pesel": (self.pesel,), "phone": tuple(self.phones),
            "email": (self.email,),
        }


def _forms(nominative: str, table: str) -> dict[str, str]:
    return dict(zip(CASES, [nominative, *table.split(" ")], strict=True))


def _adjectival(surname: str, female: bool) -> dict[str, str]:
    stem = surname[:-1]
    if female:
        return dict(zip(CASES, (surname, stem + "iej", stem + "iej", stem + "ą", stem + "ą", stem + "iej"),
                        strict=True))
    return dict(zip(CASES, (surname, stem + "iego", stem + "iemu", stem + "iego", stem + "im", stem + "im"),
                    strict=True))


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - seeded synthetic data, not a secret
        self.fake = Faker("pl_PL")
        self.fake.seed_instance(seed)

    # -- names --------------------------------------------------------------------------

    def _first(self, female: bool) -> tuple[str, dict[str, str] | None]:
        table = _FEMALE_FIRST if female else _MALE_FIRST
        if self.rng.random() < 0.75:
            name = self.rng.choice(sorted(table))
            return name, _forms(name, table[name])
        name = self.fake.first_name_female() if female else self.fake.first_name_male()
        return name, (_forms(name, table[name]) if name in table else None)

    def _last(self, female: bool) -> tuple[str, dict[str, str] | None]:
        roll = self.rng.random()
        if roll < 0.45:
            male = self.rng.choice(_ADJECTIVAL_SURNAMES)
            name = male[:-1] + "a" if female else male
            return name, _adjectival(name, female)
        if roll < 0.70:
            name = self.rng.choice(sorted(_MALE_NOUN_SURNAMES))
            if female:  # women's surnames not ending in -a do not decline
                return name, dict.fromkeys(CASES, name)
            return name, _forms(name, _MALE_NOUN_SURNAMES[name])
        if roll < 0.78:
            name = self.rng.choice(sorted(_A_SURNAMES))
            return name, _forms(name, _A_SURNAMES[name])
        name = self.fake.last_name_female() if female else self.fake.last_name_male()
        if name.endswith(("ska", "cka", "dzka") if female else ("ski", "cki", "dzki")):
            return name, _adjectival(name, female)
        if female and not name.endswith("a") and " " not in name:
            return name, dict.fromkeys(CASES, name)
        return name, None

    # -- identifiers --------------------------------------------------------------------

    def _checked(self, kind: str, make: Callable[[], str]) -> str:
        for _ in range(100):
            value = make()
            if is_valid(kind, value):
                return value
        raise RuntimeError(f"could not generate a valid {kind}")  # pragma: no cover

    def passport(self) -> str:
        letters = "".join(self.rng.choice(string.ascii_uppercase) for _ in range(2))
        digits = [self.rng.randrange(10) for _ in range(6)]
        values = [ord(ch) - 55 for ch in letters] + [0] + digits
        rest = sum(v * w for v, w in zip(values, _PASSPORT_WEIGHTS, strict=True))
        return f"{letters}{rest % 10}{''.join(map(str, digits))}"  # 9 * c ≡ -rest ≡ rest (mod 10) for c = rest % 10

    def foreign_iban(self) -> str:
        country, bban = self.rng.choice((
            ("DE", "".join(self.rng.choice(string.digits) for _ in range(18))),
            ("GB", "NWBK" + "".join(self.rng.choice(string.digits) for _ in range(14))),
            ("FR", "".join(self.rng.choice(string.digits) for _ in range(23))),
            ("CZ", "".join(self.rng.choice(string.digits) for _ in range(20))),
        ))
        numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
        return f"{country}{98 - int(numeric) % 97:02d}{bban}"

    def _mobile(self) -> str:
        return self._checked("phone", lambda: self.rng.choice("5678") + "".join(
            self.rng.choice(string.digits) for _ in range(8)))

    def _landline(self) -> str:
        areas = ("22", "12", "58", "61", "71", "81", "42", "32")
        return self._checked("phone", lambda: self.rng.choice(areas) + "".join(
            self.rng.choice(string.digits) for _ in range(7)))

    def subject(self) -> _Subject:
        female = self.rng.random() < 0.5
        first, first_forms = self._first(female)
        last, last_forms = self._last(female)
        born = self.fake.date_of_birth(minimum_age=19, maximum_age=85)
        pesel = self.fake.pesel(date_of_birth=datetime.combine(born, time(), tzinfo=UTC), sex="F" if female else "M")
        city = self.rng.choice(sorted(_CITIES)) if self.rng.random() < 0.8 else self.fake.city()
        if self.rng.random() < 0.5:
            street = self.rng.choice(sorted(_STREETS))
            street_loc: str | None = _STREETS[street]
        elif self.rng.random() < 0.5:
            street = street_loc = self.rng.choice(_GENITIVE_STREETS)
        else:
            street, street_loc = self.fake.street_name(), None
        house = str(self.rng.randint(1, 180)) + self.rng.choice(("", "", "", "a", "b"))
        if self.rng.random() < 0.6:
            house += f"/{self.rng.randint(1, 60)}"
        phones = [self._mobile()]
        if self.rng.random() < 0.3:
            phones.append(self._landline())
        local = f"{first}.{last}".lower().translate(_TRANSLIT).replace(" ", "")
        if self.rng.random() < 0.4:
            local += str(self.rng.randint(1, 99))
        return _Subject(
            female=female, first=first, last=last, first_forms=first_forms, last_forms=last_forms,
            pesel=pesel, dob=born.isoformat(),
            nip=self._checked("nip", self.fake.nip),
            regon=self._checked("regon", self.fake.regon if self.rng.random() < 0.7 else self.fake.local_regon),
            id_card=self._checked("id_card", self.fake.identity_card_number),
            passport=self._checked("passport", self.passport),
            iban=self._checked("iban", self.fake.iban if self.rng.random() < 0.85 else self.foreign_iban),
            phones=phones, email=f"{local}@{self.rng.choice(_DOMAINS)}",
            street=street, street_loc=street_loc, house=house, postcode=self.fake.postcode(),
            city=city, city_loc=_CITIES.get(city), employer=self.rng.choice(_EMPLOYERS),
        )

    # -- formatting variants --------------------------------------------------------------

    def fmt_phone(self, digits: str) -> str:
        if digits[0] in "5678":
            a, b, c = digits[:3], digits[3:6], digits[6:]
            return self.rng.choice((
                f"{a} {b} {c}", f"{a}-{b}-{c}", f"{a}{b}{c}", f"+48 {a} {b} {c}", f"+48 {a}-{b}-{c}",
                f"+48{a}{b}{c}", f"{a} {digits[3:5]} {digits[5:7]} {digits[7:]}", f"0048 {a} {b} {c}", f"{a}.{b}.{c}",
            ))
        area, rest = digits[:2], digits[2:]
        return self.rng.choice((
            f"({area}) {rest[:3]} {rest[3:5]} {rest[5:]}", f"{area} {rest[:3]} {rest[3:5]} {rest[5:]}",
            f"+48 {area} {rest[:3]} {rest[3:5]} {rest[5:]}", f"({area}) {rest}",
            f"{area} {rest[:3]}-{rest[3:5]}-{rest[5:]}",
        ))

    def fmt_nip(self, nip: str) -> str:
        return self.rng.choice((nip, f"{nip[:3]}-{nip[3:6]}-{nip[6:8]}-{nip[8:]}",
                                f"{nip[:3]}-{nip[3:5]}-{nip[5:7]}-{nip[7:]}",
                                f"{nip[:3]} {nip[3:6]} {nip[6:8]} {nip[8:]}", f"PL{nip}"))

    def fmt_iban(self, iban: str) -> str:
        grouped = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        if not iban.startswith("PL"):
            return self.rng.choice((grouped, iban))
        nrb = iban[2:]
        nrb_grouped = nrb[:2] + " " + " ".join(nrb[i:i + 4] for i in range(2, 26, 4))
        return self.rng.choice((grouped, iban, nrb_grouped, nrb, grouped, grouped.replace(" ", "-")))

    def fmt_id_card(self, number: str) -> str:
        return number if self.rng.random() < 0.8 else f"{number[:3]} {number[3:]}"

    def fmt_dob(self, iso: str) -> str:
        year, month, day = iso.split("-")
        return self.rng.choice((f"{day}.{month}.{year}", iso, f"{int(day)} {_MONTHS[int(month) - 1]} {year}",
                                f"{int(day)}.{month}.{year}"))

    # -- distractors --------------------------------------------------------------------

    def amount(self) -> str:
        whole = self.rng.choice((self.rng.randint(50, 999), self.rng.randint(1000, 99_999)))
        text = f"{whole:,}".replace(",", " ")
        return self.rng.choice((f"{text},{self.rng.randint(0, 99):02d} zł", f"{text} zł", f"{text},00 PLN"))

    def date(self) -> str:
        day, month, year = self.rng.randint(1, 28), self.rng.randint(1, 12), self.rng.randint(2023, 2025)
        return self.rng.choice((f"{day:02d}.{month:02d}.{year}", f"{year}-{month:02d}-{day:02d}",
                                f"{day} {_MONTHS[month - 1]} {year} r."))

    def case_number(self) -> str:
        return self.rng.choice((
            f"I C {self.rng.randint(1, 3999)}/{self.rng.randint(19, 25)}",
            f"II Nc {self.rng.randint(1, 9999)}/{self.rng.randint(19, 25)}",
            f"KM {self.rng.randint(1, 9999)}/{self.rng.randint(19, 25)}",
            f"IX GC {self.rng.randint(1, 999)}/{self.rng.randint(19, 25)}",
        ))

    def invoice(self) -> str:
        return self.rng.choice((
            f"FV/{self.rng.randint(2021, 2025)}/{self.rng.randint(1, 12):02d}/{self.rng.randint(1, 99999):05d}",
            f"F/{self.rng.randint(1, 99999)}/{self.rng.randint(2021, 2025)}",
            f"{self.rng.randint(2021, 2025)}/{self.rng.randint(1, 12):02d}/{self.rng.randint(1, 999999):06d}",
        ))

    def _digits(self, count: int) -> str:
        return str(self.rng.randint(1, 9)) + "".join(self.rng.choice(string.digits) for _ in range(count - 1))

    def bad_pesel(self) -> str:
        """11 digits shaped like a PESEL (a real date) whose check digit is wrong."""
        good = self.fake.pesel()
        return good[:10] + str((int(good[10]) + self.rng.randint(1, 9)) % 10)

    def bad_nip(self) -> str:
        return self._invalid("nip", lambda: self._digits(10))

    def bad_iban(self, good: str) -> str:
        i = self.rng.randrange(6, len(good))
        typo = good[:i] + str((int(good[i], 36) + 1) % 10) + good[i + 1:] if good[i].isdigit() else good
        return self.fmt_iban(typo) if not is_valid("iban", typo) else self.fmt_iban(good[:4] + "0" * (len(good) - 4))

    def bad_id_card(self, good: str) -> str:
        return self._invalid("id_card", lambda: good[:3] + str((int(good[3]) + self.rng.randint(1, 9)) % 10) + good[4:])

    def _invalid(self, kind: str, make: Callable[[], str]) -> str:
        for _ in range(100):
            value = make()
            if not is_valid(kind, value):
                return value
        raise RuntimeError(f"could not generate an invalid {kind}")  # pragma: no cover


# ---------------------------------------------------------------------------------------
# templates
#
# A template is a list of sentences; each sentence is a str.format-like string whose fields
# name a slot and, for names and places, a case: {first:inst} {last:inst}, {city:loc}.
# Slots without an entity (amounts, dates...) are distractors or grammar ({a}: the feminine
# past-tense ending, {pan:acc}: "Pana"/"Panią").

_CALL: Final = (
    "Rozmowa telefoniczna z {pan:inst} {first:inst} {last:inst} pod numerem {phone}.",
    "Dzwoniłem do {first:gen} {last:gen}, tel. {phone}, brak odpowiedzi.",
    "Dłużnik potwierdził dane: PESEL {pesel}, data ur. {dob}.",
    "{pan:nom} {last:nom} zadeklarował{a} wpłatę {amount} do {date}.",
    "Przekazałem {first:dat} {last:dat} numer rachunku do spłaty, sprawa {case}.",
    "Klient{ka} poprosił{a} o kontakt na nr {phone2} po godz. 17:00.",
    "Rozmówca podał PESEL {pesel} w celu weryfikacji tożsamości.",
    "Dłużnik twierdzi, że faktura {invoice} na kwotę {amount} została opłacona.",
    "Podany przez rozmówcę numer klienta {bad_pesel} nie istnieje w systemie.",
    "Ustalono, że {pan:nom} {first:nom} {last:nom} pracuje w firmie {employer}.",
    "Nagranie rozmowy z {first:inst} {last:inst} dołączone do sprawy {case}.",
    "Rozmówca podał numer umowy {bad_nip}, sprawdzić w archiwum.",
    "Oddzwonić do {pan:gen} {last:gen} dnia {date} o 10:30.",
)
_VISIT: Final = (
    "Wizyta terenowa pod adresem {address}.",
    "Wizyta w miejscu zamieszkania dłużnika, ul. {street:nom}.",
    "Zastałem {pan:acc} {first:acc} {last:acc} w domu, okazano dowód osobisty {id_card}.",
    "Dłużnik okazał paszport {passport} zamiast dowodu.",
    "Nikogo nie zastałem na ulicy {street:loc}, pozostawiono awizo z kodem {postcode}.",
    "Sąsiedzi potwierdzili, że {pan:nom} {last:nom} nadal mieszka w {city:loc}.",
    "Dłużnik prowadzi działalność gospodarczą, NIP {nip}, REGON {regon}.",
    "Wręczono wezwanie do zapłaty {amount}, termin {date}, sygn. {case}.",
    "Dłużnik wskazał błędny numer dowodu {bad_id_card}, poprawny odczytano z dokumentu.",
    "Rozmowa z {first:inst} {last:inst} trwała 15 minut, klient{ka} był{a} spokojn{y}.",
    "Informacje o {first:loc} {last:loc} przekazano koordynatorowi.",
    "Ustalono nowy adres korespondencyjny: {address}.",
    "Agent AG-{agent} odnotował wizytę o 14:30, kod pocztowy rejonu {postcode}.",
)
_SMS: Final = (
    "SMS od dłużnika z nr {phone}: zapłacę {amount} do piątku.",
    "Odpowiedź SMS: proszę dzwonić na {phone2}, {first:nom}.",
    "SMS: spłacę w ratach po {amount}, pozdrawiam {first:nom} {last:nom}.",
    "SMS od {first:gen} {last:gen}: nie mogę rozmawiać, oddzwonię jutro.",
    "Dłużnik w SMS podał nowy numer {phone2} i prosi o kontakt po 18.",
)
_EMAIL: Final = (
    "Odpowiedź e-mail z adresu {email}: w załączeniu potwierdzenie przelewu z konta {iban}.",
    "E-mail od {first:gen} {last:gen} ({email}) z prośbą o rozłożenie długu na raty.",
    "Dłużnik prosi o korespondencję na adres {email} zamiast listownej na {address}.",
    "Przelew z rachunku {iban} na kwotę {amount} zaksięgowano {date}.",
    "Dłużnik podał rachunek {bad_iban}, przelew zwrócony przez bank.",
    "W stopce wiadomości: {first:nom} {last:nom}, tel. {phone}, {email}.",
    "Pismo dotyczy faktury {invoice} oraz sprawy {case}.",
    "Dane firmy dłużnika: NIP {nip}, REGON {regon}, siedziba w {city:loc}.",
)
_KINDS: Final = {"call": _CALL, "visit": _VISIT, "sms": _SMS, "email": _EMAIL}
_PAN: Final = {  # (male, female)
    "nom": ("Pan", "Pani"), "gen": ("Pana", "Pani"), "dat": ("Panu", "Pani"), "acc": ("Pana", "Panią"),
    "inst": ("Panem", "Panią"), "loc": ("Panu", "Pani"),
}


class _Builder:
    """Assembles one note, recording the span of every value that must be found."""

    def __init__(self, gen: _Generator, subject: _Subject, *, ascii_only: bool = False,
                 upper_names: bool = False) -> None:
        self.gen = gen
        self.subject = subject
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.length = 0
        self.ascii_only = ascii_only  # SMS typed without Polish letters
        self.upper_names = upper_names  # names in capitals, as copied from a form

    def add(self, text: str, entity: str | None = None) -> None:
        if self.ascii_only:
            text = text.translate(_TRANSLIT)  # one character for one: spans keep their offsets
        if entity == NAME and self.upper_names:
            text = text.upper()
        if text.startswith(".") and self.parts and self.parts[-1].endswith("."):
            text = text[1:]  # "Sp. z o.o." at the end of a sentence takes no second full stop
        if entity is not None:
            self.spans.append(Span(entity, self.length, self.length + len(text)))
        self.parts.append(text)
        self.length += len(text)

    def sentence(self, template: str) -> None:
        """Append one sentence, or raise _Skip (leaving the note as it was) if it does not fit."""
        mark = (len(self.parts), len(self.spans), self.length)
        try:
            for literal, name, spec, _conv in string.Formatter().parse(template):
                self.add(literal)
                if name is not None:
                    self.slot(name, spec or "nom")
        except _Skip:
            del self.parts[mark[0]:]
            del self.spans[mark[1]:]
            self.length = mark[2]
            raise

    def slot(self, name: str, case: str) -> None:
        s, g = self.subject, self.gen
        if name in ("first", "last"):
            forms = s.first_forms if name == "first" else s.last_forms
            if forms is None and case != "nom":
                raise _Skip
            self.add(forms[case] if forms else (s.first if name == "first" else s.last), NAME)
        elif name == "pan":
            self.add(_PAN[case][s.female])
        elif name in ("a", "ka"):
            self.add(name if s.female else "")
        elif name == "y":
            self.add("a" if s.female else "y")
        elif name == "phone":
            self.add(g.fmt_phone(s.phones[0]), PHONE)
        elif name == "phone2":
            self.add(g.fmt_phone(s.phones[-1]), PHONE)
        elif name == "pesel":
            self.add(s.pesel, PESEL)
        elif name == "dob":
            self.add(g.fmt_dob(s.dob), DATE_OF_BIRTH)
        elif name == "nip":
            self.add(g.fmt_nip(s.nip), NIP)
        elif name == "regon":
            self.add(s.regon, REGON)
        elif name == "id_card":
            self.add(g.fmt_id_card(s.id_card), ID_CARD)
        elif name == "passport":
            self.add(s.passport, PASSPORT)
        elif name == "iban":
            self.add(g.fmt_iban(s.iban), IBAN)
        elif name == "email":
            self.add(s.email, EMAIL)
        elif name == "address":
            self.add(s.address, ADDRESS)
        elif name == "street":
            street = s.street if case == "nom" else s.street_loc
            if street is None:
                raise _Skip
            self.add(f"{street} {s.house}" if case == "nom" else street, ADDRESS)
        elif name == "city":
            if s.city_loc is None:
                raise _Skip
            self.add(s.city_loc, ADDRESS)
        elif name == "employer":
            self.add(s.employer, EMPLOYER)
        else:
            self.add(self.distractor(name))

    def distractor(self, name: str) -> str:
        g = self.gen
        makers: dict[str, Callable[[], str]] = {
            "amount": g.amount, "date": g.date, "case": g.case_number, "invoice": g.invoice,
            "bad_pesel": g.bad_pesel, "bad_nip": g.bad_nip, "postcode": g.fake.postcode,
            "bad_iban": lambda: g.bad_iban(self.subject.iban),
            "bad_id_card": lambda: g.bad_id_card(self.subject.id_card),
            "agent": lambda: str(g.rng.randint(100, 999)),
        }
        return makers[name]()

    def note(self, kind: str) -> Note:
        return Note(kind, "".join(self.parts), tuple(self.spans), self.subject.known_values())


def generate(count: int = 1000, seed: int = 7) -> list[Note]:
    """``count`` notes (1 to 4 per fictional subject), the same for the same seed."""
    gen = _Generator(seed)
    notes: list[Note] = []
    while len(notes) < count:
        subject = gen.subject()
        for _ in range(min(gen.rng.randint(1, 4), count - len(notes))):
            kind = gen.rng.choice(sorted(_KINDS))
            builder = _Builder(gen, subject, ascii_only=kind == "sms" and gen.rng.random() < 0.5,
                               upper_names=kind == "visit" and gen.rng.random() < 0.15)
            wanted = gen.rng.randint(2, 5)
            sentences = 0
            for template in gen.rng.sample(_KINDS[kind], len(_KINDS[kind])):
                if sentences == wanted:
                    break
                if sentences:
                    builder.add(gen.rng.choice((" ", " ", "\n")))
                try:
                    builder.sentence(template)
                    sentences += 1
                except _Skip:
                    if sentences:  # drop the separator added for the skipped sentence
                        builder.parts.pop()
                        builder.length -= 1
            notes.append(builder.note(kind))
    return notes


# ---------------------------------------------------------------------------------------
# evaluation


def evaluate(detect: Callable[[str, Mapping[str, Sequence[str]]], Sequence[Finding]],
             notes: Iterable[Note]) -> Evaluation:
    """Score ``detect`` on ``notes``: a finding counts only with the exact span and entity type."""
    counts: dict[str, Score] = {}
    total = 0
    for note in notes:
        total += 1
        gold = {(s.entity_type, s.start, s.end) for s in note.spans}
        found = {(f.entity_type, f.start, f.end) for f in detect(note.text, note.known_values)}
        for entity in {e for e, _, _ in gold | found}:
            g = {x for x in gold if x[0] == entity}
            f = {x for x in found if x[0] == entity}
            counts[entity] = counts.get(entity, Score()) + Score(len(g & f), len(f - g), len(g - f))
    checksummed = sum((s for e, s in counts.items() if e in CHECKSUMMED), Score())
    overall = sum(counts.values(), Score())
    return Evaluation(per_type=counts, checksummed=checksummed, overall=overall, notes=total)
