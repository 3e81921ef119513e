"""The record of processing activities (GDPR Art. 30(1)), generated from the policy files.

The record is never maintained by hand: :func:`build_record` reads the field catalogue
(``policies/fields.yaml``), the purposes (``policies/authorisation.yaml``), the
retention schedules (``policies/retention.yaml``) and the transfers, joint controllers and
processor activities (``policies/processing.yaml``, :mod:`gdpr.ropa_processing`), validates
each with the model its own loader uses, takes the registers' facts the caller passes (the
Art. 19 recipients, the Art. 14 notices, the creditors the firm is processor for: the Art.
30(2) record), and adds what the code itself fixes: the legal bases
(:data:`gdpr.legal_texts.LEGAL_BASES`), the categories of recipients
(:data:`gdpr.legal_texts.RECIPIENTS`), the kinds of data subjects the vault holds
(:data:`vault.models.SUBJECT_KINDS`) and the security measures Tarcza applies (Art. 32).
The controller's details are the caller's: they are a firm's data, not a data subject's.

Format ``tarcza-ropa/v1`` (:meth:`ProcessingRecord.to_json`); a person reads
:func:`render_html`, one page in Polish and in English.

Invariants:

* every file is read once, and the SHA-256 in the record is that of the very bytes that
  were parsed, so a record names exactly the policy it was built from;
* every purpose has a legal basis, every data category and every kind of data subject a
  description, every recipient a Polish text; a gap is a :class:`ConfigurationError`, never
  a record with a hole in it;
* nothing here is personal data of a data subject: categories, field names and rules only;
* pure apart from reading the four files: the time and the registers' facts are passed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import jinja2
import yaml
from pydantic import ValidationError

from audit.events import format_time
from core.errors import ConfigurationError, InvalidInputError
from gdpr.legal_texts import LEGAL_BASES, RECIPIENTS
from gdpr.retention import (
    ACCOUNTING_RETENTION_YEARS,
    DEFAULT_RETENTION_PATH,
    Period,
    RetentionPolicy,
    RetentionPolicyError,
    retention_from_yaml,
)
from gdpr.ropa_processing import (
    DEFAULT_PROCESSING_PATH,
    processing_from_yaml,
    processor_record,
    registers_part,
    transfers_part,
)
from policies.engine import PARAMETERS_FILE, POLICY_DIR, AuthorisationParameters
from policies.yamlfile import read_policy_text
from vault.fields import DEFAULT_CATALOGUE_PATH, FieldCatalogue, catalogue_from_yaml
from vault.models import SUBJECT_KINDS

__all__ = [
    "DATA_CATEGORY_DESCRIPTIONS",
    "DATA_SUBJECT_DESCRIPTIONS",
    "RECIPIENTS_PL",
    "ROPA_FORMAT",
    "Controller",
    "DataCategoryEntry",
    "DataSubjectCategory",
    "PolicySource",
    "ProcessingRecord",
    "PurposeEntry",
    "RecipientEntry",
    "RetentionEntry",
    "SecurityMeasure",
    "build_record",
    "render_html",
]

ROPA_FORMAT: Final = "tarcza-ropa/v1"
_MAX_CONTROLLER_TEXT: Final = 1000


@dataclass(frozen=True)
class _Text:
    en: str
    pl: str


#: Kind of data subject (vault/models.py SUBJECT_KINDS) -> who they are.
DATA_SUBJECT_DESCRIPTIONS: Final[Mapping[str, _Text]] = {
    "debtor": _Text(
        "debtors: persons against whom a receivable is pursued (consumers and sole traders), including "
        "assignors' customers whose receivables were assigned to the firm",
        "dłużnicy: osoby, od których dochodzona jest wierzytelność (konsumenci i przedsiębiorcy będący osobami "
        "fizycznymi), w tym klienci wierzycieli, których wierzytelności nabyto lub przekazano do windykacji"),
    "third_party": _Text(
        "third parties: persons other than the debtor whose data the firm holds in pursuing a claim, such as "
        "guarantors, co-debtors, heirs, legal representatives and persons reached at the debtor's address",
        "osoby trzecie: osoby inne niż dłużnik, których dane firma przetwarza przy dochodzeniu roszczenia, np. "
        "poręczyciele, współdłużnicy, spadkobiercy, przedstawiciele ustawowi oraz osoby zastane pod adresem "
        "dłużnika"),
}

#: Data category (fields.yaml, retention.yaml) -> what it holds.
DATA_CATEGORY_DESCRIPTIONS: Final[Mapping[str, _Text]] = {
    "identification": _Text("names and identifiers (PESEL, NIP, REGON, identity card, passport) and date of birth",
                            "imiona i nazwiska oraz identyfikatory (PESEL, NIP, REGON, dowód osobisty, paszport) "
                            "i data urodzenia"),
    "contact": _Text("postal addresses, telephone numbers and e-mail addresses",
                     "adresy pocztowe, numery telefonów i adresy e-mail"),
    "financial": _Text("bank account numbers and employer", "numery rachunków bankowych i pracodawca"),
    "notes": _Text("collectors' free-text notes about contacts with the subject",
                   "notatki pracowników z kontaktów z osobą (tekst swobodny)"),
    "location": _Text("GPS positions recorded during field visits", "położenie GPS zapisane podczas wizyt terenowych"),
    "recordings": _Text("recordings of telephone calls and field visits (voice)",
                        "nagrania rozmów telefonicznych i wizyt terenowych (głos)"),
    "contact_events": _Text(
        "the history of contacts: channel, direction, time, outcome, agent, and the firewall's decisions",
        "historia kontaktów: kanał, kierunek, czas, wynik, pracownik oraz decyzje reguł kontaktu"),
}

#: Polish texts of the categories of recipients (gdpr/legal_texts.py RECIPIENTS, in English).
RECIPIENTS_PL: Final[Mapping[str, str]] = {
    "the creditor who assigned the receivable, for its settlement":
        "wierzyciel, który przelał (zbył) wierzytelność, w celu jej rozliczenia",
    "courts, bailiffs (komornik) and lawyers, where the claim is pursued in proceedings":
        "sądy, komornicy i pełnomocnicy procesowi, gdy roszczenie jest dochodzone w postępowaniu",
    "postal, telecommunication and e-mail service providers delivering letters and messages":
        "operatorzy pocztowi i telekomunikacyjni oraz dostawcy poczty elektronicznej doręczający listy i wiadomości",
    "IT service providers hosting the firm's systems, under data processing agreements":
        "dostawcy usług IT utrzymujący systemy firmy, na podstawie umów powierzenia przetwarzania danych",
}

#: Purpose -> the purpose in Polish, worded for the record (the export's texts address the subject).
_PURPOSES_PL: Final[Mapping[str, str]] = {
    "debt_collection": "dochodzenie należności od osoby, której dane dotyczą (rozmowy, listy, wiadomości)",
    "field_visit": "wizyta terenowa pracownika u osoby, której dane dotyczą",
    "payment_processing": "rozliczanie i księgowanie wpłat osoby, której dane dotyczą",
    "complaint_handling": "rozpatrywanie reklamacji osoby, której dane dotyczą",
    "gdpr_request": "odpowiedź na żądania osoby, której dane dotyczą (art. 15–22 RODO)",
    "erasure": "usuwanie danych (kryptograficzne usunięcie klucza, art. 17 RODO)",
    "legal_claim": "ustalenie, dochodzenie lub obrona roszczeń",
    "audit": "audyt zgodności lub kontrola organu nadzorczego",
}

_EVENTS: Final[Mapping[str, _Text]] = {
    "case_closed": _Text("the closure of the subject's last case", "zamknięcia ostatniej sprawy osoby"),
    "debt_settled": _Text("the settlement or write-off of every debt of the subject",
                          "spłaty lub umorzenia wszystkich należności osoby"),
    "limitation_end": _Text("the end of the limitation period of the subject's last claim",
                            "upływu terminu przedawnienia ostatniego roszczenia"),
    "last_contact": _Text("the latest contact with the subject", "ostatniego kontaktu z osobą"),
    "request_completed": _Text("the completion of the latest data subject request",
                               "zakończenia ostatniego żądania osoby"),
    "contact_recorded": _Text("the day of each recording", "dnia każdego nagrania"),
}

_ACTIONS: Final[Mapping[str, _Text]] = {
    "shred_subject": _Text("the subject's key is destroyed (crypto-shredding): all their data becomes unreadable",
                           "klucz osoby zostaje zniszczony (usunięcie kryptograficzne): wszystkie jej dane stają się "
                           "nieczytelne"),
    "delete_recordings": _Text("the recording files are deleted", "pliki nagrań są usuwane"),
    "none": _Text("no action of its own: the data goes with the subject's key",
                  "brak odrębnej czynności: dane znikają wraz z kluczem osoby"),
}

_RETENTION_RULES: Final = _Text(
    "Whatever a schedule says, nothing is erased while a legal hold binds the subject, nor while an open claim "
    "can still be pursued (through the last day of its limitation period, Civil Code Arts. 117 to 125; GDPR "
    f"Art. 17(3)(e)), nor while the accounting evidence of a debt must be kept ({ACCOUNTING_RETENTION_YEARS} years "
    "from 1 January of the year after it was settled, written off or time-barred; Accounting Act Art. 74(2)(4); "
    "GDPR Art. 17(3)(b)).",
    "Niezależnie od harmonogramu nic nie jest usuwane, dopóki osobę obejmuje blokada prawna, dopóki otwarte "
    "roszczenie może być dochodzone (do ostatniego dnia terminu przedawnienia, art. 117–125 k.c.; art. 17 ust. 3 "
    "lit. e RODO) ani dopóki trzeba przechowywać dowody księgowe należności "
    f"({ACCOUNTING_RETENTION_YEARS} lat od 1 stycznia roku następującego po jej spłacie, umorzeniu lub "
    "przedawnieniu; art. 74 ust. 2 pkt 4 ustawy o rachunkowości; art. 17 ust. 3 lit. b RODO).")

# -- the record --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Controller:
    """Who keeps the record (Art. 30(1)(a)): the firm's name, address, contact and DPO contact.

    Plain strings given by the caller; they describe the firm, not a data subject.
    """

    name: str
    address: str
    contact: str
    dpo_contact: str | None = None

    def __post_init__(self) -> None:
        for what, value in (("name", self.name), ("address", self.address), ("contact", self.contact),
                            ("dpo_contact", self.dpo_contact)):
            if value is None and what == "dpo_contact":
                continue
            if not isinstance(value, str) or not value.strip() or len(value) > _MAX_CONTROLLER_TEXT:
                raise InvalidInputError(f"controller {what} must be 1 to {_MAX_CONTROLLER_TEXT} characters",
                                        field=what)


@dataclass(frozen=True)
class PurposeEntry:
    """A purpose of processing (Art. 30(1)(b)) with its legal basis (Art. 6), in English and Polish."""

    purpose: str
    description: str
    description_pl: str
    legal_basis: str
    legal_basis_pl: str


@dataclass(frozen=True)
class DataSubjectCategory:
    """A category of data subjects (Art. 30(1)(c)): a kind of subject the vault holds."""

    kind: str
    description: str
    description_pl: str


@dataclass(frozen=True)
class DataCategoryEntry:
    """A category of personal data (Art. 30(1)(c)) and the catalogue's fields in it (none for
    recordings and contact events, which are not vault fields)."""

    name: str
    description: str
    description_pl: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class RecipientEntry:
    """A category of recipients (Art. 30(1)(d))."""

    description: str
    description_pl: str


@dataclass(frozen=True)
class RetentionEntry:
    """How long a data category is kept (Art. 30(1)(f)): the schedule of ``policies/retention.yaml``."""

    data_category: str
    period: str
    period_pl: str
    starts_from: str
    starts_from_description: str
    starts_from_description_pl: str
    action: str
    action_description: str
    action_description_pl: str
    rule: str
    basis: str


@dataclass(frozen=True)
class SecurityMeasure:
    """One technical or organisational security measure (Art. 30(1)(g), Art. 32(1))."""

    code: str
    description: str
    description_pl: str


@dataclass(frozen=True)
class PolicySource:
    """A policy file the record was built from, by file name, with the SHA-256 (hex) of its bytes."""

    file: str
    sha256: str


@dataclass(frozen=True)
class ProcessingRecord:
    """The Art. 30(1) record of the controller's processing with Tarcza."""

    generated_at: datetime
    controller: Controller
    purposes: tuple[PurposeEntry, ...]
    data_subjects: tuple[DataSubjectCategory, ...]
    data_categories: tuple[DataCategoryEntry, ...]
    recipients: tuple[RecipientEntry, ...]
    third_country_transfers: tuple[Mapping[str, Any], ...]
    transfers_statement: str
    transfers_statement_pl: str
    retention: tuple[RetentionEntry, ...]
    retention_rules: str
    retention_rules_pl: str
    security_measures: tuple[SecurityMeasure, ...]
    sources: tuple[PolicySource, ...]
    joint_controllers: tuple[Mapping[str, Any], ...] = ()
    processor: Mapping[str, Any] = field(default_factory=dict)
    registers: Mapping[str, Any] = field(default_factory=dict)

    def source_sha256(self, file: str) -> str:
        """The SHA-256 of policy file ``file`` (e.g. ``fields.yaml``); KeyError if it was not used."""
        for source in self.sources:
            if source.file == file:
                return source.sha256
        raise KeyError(file)

    def to_json(self) -> dict[str, Any]:
        """The ``tarcza-ropa/v1`` document: keys and list orders fixed, times RFC 3339 UTC."""
        c = self.controller
        return {
            "format": ROPA_FORMAT,
            "generated_at": format_time(self.generated_at),
            "controller": {"name": c.name, "address": c.address, "contact": c.contact, "dpo_contact": c.dpo_contact},
            "purposes": [{"purpose": p.purpose, "description": p.description, "description_pl": p.description_pl,
                          "legal_basis": p.legal_basis, "legal_basis_pl": p.legal_basis_pl} for p in self.purposes],
            "data_subjects": [{"kind": s.kind, "description": s.description, "description_pl": s.description_pl}
                              for s in self.data_subjects],
            "data_categories": [{"name": d.name, "description": d.description, "description_pl": d.description_pl,
                                 "fields": list(d.fields)} for d in self.data_categories],
            "recipients": [{"description": r.description, "description_pl": r.description_pl}
                           for r in self.recipients],
            "transfers": {"third_countries": [dict(t) for t in self.third_country_transfers],
                          "statement": self.transfers_statement, "statement_pl": self.transfers_statement_pl},
            "joint_controllers": [dict(j) for j in self.joint_controllers],
            "retention": [{
                "data_category": r.data_category, "period": r.period, "period_pl": r.period_pl,
                "starts_from": r.starts_from, "starts_from_description": r.starts_from_description,
                "starts_from_description_pl": r.starts_from_description_pl, "action": r.action,
                "action_description": r.action_description, "action_description_pl": r.action_description_pl,
                "rule": r.rule, "basis": r.basis,
            } for r in self.retention],
            "retention_rules": self.retention_rules,
            "retention_rules_pl": self.retention_rules_pl,
            "security_measures": [{"code": m.code, "description": m.description, "description_pl": m.description_pl}
                                  for m in self.security_measures],
            "processor_record": dict(self.processor),
            "registers": dict(self.registers),
            "sources": [{"file": s.file, "sha256": s.sha256} for s in self.sources],
        }


# -- building ----------------------------------------------------------------------------------


def _read(path: Path, what: str) -> tuple[str, PolicySource]:
    text = read_policy_text(path, ConfigurationError, what)
    return text, PolicySource(path.name, hashlib.sha256(text.encode("utf-8")).hexdigest())


def _parameters(text: str, source: str) -> AuthorisationParameters:
    """``authorisation.yaml`` with the model :func:`policies.engine.load_policy_bundle` uses (no Cedar needed)."""
    try:
        return AuthorisationParameters.model_validate(yaml.safe_load(text) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigurationError(f"authorisation parameters {source} are invalid: "
                                 f"{str(exc).strip().splitlines()[0][:300]}") from None


def _purposes(descriptions: Mapping[str, str]) -> tuple[PurposeEntry, ...]:
    out: list[PurposeEntry] = []
    for purpose, description in descriptions.items():
        basis = LEGAL_BASES.get(purpose)
        if basis is None:
            raise ConfigurationError(
                f"no legal basis is defined for purpose {purpose!r} (gdpr.legal_texts.LEGAL_BASES)", purpose=purpose)
        out.append(PurposeEntry(purpose, description, _PURPOSES_PL.get(purpose, basis.purpose_pl), basis.en, basis.pl))
    return tuple(out)


def _described(table: Mapping[str, _Text], name: str, what: str) -> _Text:
    text = table.get(name)
    if text is None:
        raise ConfigurationError(f"the record has no description of {what} {name!r}", name=name)
    return text


def _data_categories(catalogue: FieldCatalogue, retention: RetentionPolicy) -> tuple[DataCategoryEntry, ...]:
    fields: dict[str, list[str]] = {}
    for spec in catalogue.fields.values():
        fields.setdefault(spec.data_category, []).append(spec.name)
    names = list(fields) + [name for name in retention.schedules if name not in fields]
    out: list[DataCategoryEntry] = []
    for name in names:
        text = _described(DATA_CATEGORY_DESCRIPTIONS, name, "data category")
        out.append(DataCategoryEntry(name, text.en, text.pl, tuple(fields.get(name, ()))))
    return tuple(out)


def _recipients(recipients: Sequence[str]) -> tuple[RecipientEntry, ...]:
    out: list[RecipientEntry] = []
    for recipient in recipients:
        polish = RECIPIENTS_PL.get(recipient)
        if polish is None:
            raise ConfigurationError("a category of recipients has no Polish text (gdpr.ropa.RECIPIENTS_PL)")
        out.append(RecipientEntry(recipient, polish))
    return tuple(out)


def _polish_count(count: int, one: str, few: str, many: str) -> str:
    if count == 1:
        return f"1 {one}"
    if count % 10 in (2, 3, 4) and count % 100 not in (12, 13, 14):
        return f"{count} {few}"
    return f"{count} {many}"


def _period_pl(period: Period) -> str:
    """The period in Polish, e.g. ``2 lata`` or ``1 rok 6 miesięcy`` (``0 dni`` for none)."""
    parts = [_polish_count(count, *forms) for count, forms in (
        (period.years, ("rok", "lata", "lat")), (period.months, ("miesiąc", "miesiące", "miesięcy")),
        (period.days, ("dzień", "dni", "dni"))) if count]
    return " ".join(parts) or "0 dni"


def _retention(retention: RetentionPolicy) -> tuple[RetentionEntry, ...]:
    out: list[RetentionEntry] = []
    for name, schedule in retention.schedules.items():
        event = _described(_EVENTS, schedule.starts_from, "retention event")
        action = _described(_ACTIONS, schedule.action, "retention action")
        out.append(RetentionEntry(
            data_category=name, period=schedule.period.describe(), period_pl=_period_pl(schedule.period),
            starts_from=schedule.starts_from, starts_from_description=event.en, starts_from_description_pl=event.pl,
            action=schedule.action, action_description=action.en, action_description_pl=action.pl,
            rule=schedule.rule, basis=schedule.basis))
    return tuple(out)


def _security_measures(parameters: AuthorisationParameters) -> tuple[SecurityMeasure, ...]:
    minutes = parameters.second_factor_max_age_minutes
    chars = parameters.break_glass_min_justification
    return (
        SecurityMeasure(
            "encryption_at_rest",
            "Every personal-data field is encrypted on its own with AES-256-GCM under a data key of its subject "
            "(envelope encryption); the associated data binds each ciphertext to its subject, field and format "
            "version. Recordings are encrypted in authenticated segments under the subject's key.",
            "Każde pole danych osobowych jest szyfrowane osobno algorytmem AES-256-GCM kluczem danych przypisanym "
            "do osoby (szyfrowanie kopertowe); dane uwierzytelniane wiążą każdy szyfrogram z osobą, polem i wersją "
            "formatu. Nagrania są szyfrowane w uwierzytelnianych segmentach kluczem osoby."),
        SecurityMeasure(
            "key_management",
            "Data keys are wrapped by key-encryption keys held in a keyfile readable by the service only "
            "(optionally sealed under a passphrase) or generated and used inside a hardware security module "
            "(PKCS#11); key-encryption keys are rotated without downtime.",
            "Klucze danych są opakowane kluczami szyfrującymi klucze, przechowywanymi w pliku kluczy dostępnym "
            "tylko dla usługi (opcjonalnie zabezpieczonym hasłem) albo wygenerowanymi i używanymi wewnątrz "
            "sprzętowego modułu bezpieczeństwa (PKCS#11); klucze te są wymieniane bez przerwy w działaniu."),
        SecurityMeasure(
            "blind_indexes",
            "Searchable fields are found by blind indexes (HMAC-SHA-256 under keys of their own, separate from the "
            "encryption keys), never by decrypting stored data.",
            "Pola wyszukiwalne są odnajdywane za pomocą indeksów ślepych (HMAC-SHA-256 z odrębnymi kluczami, "
            "innymi niż klucze szyfrujące), bez odszyfrowywania przechowywanych danych."),
        SecurityMeasure(
            "access_control",
            "Every access is decided by Cedar authorisation policies kept as versioned files: role, stated purpose, "
            "case assignment, restriction and objection of the subject. A break-glass access needs a written "
            f"justification of at least {chars} characters and is reviewed afterwards.",
            "O każdym dostępie rozstrzygają polityki autoryzacji Cedar przechowywane jako wersjonowane pliki: rola, "
            "deklarowany cel, przydział sprawy, ograniczenie przetwarzania i sprzeciw osoby. Dostęp awaryjny "
            f"(break-glass) wymaga pisemnego uzasadnienia o długości co najmniej {chars} znaków i podlega "
            "późniejszemu przeglądowi."),
        SecurityMeasure(
            "authentication",
            "Users log in with a password (stored as an argon2id hash) and a second factor (TOTP, RFC 6238; each "
            "code accepted once, failed attempts limited). Revealing data in clear needs a second factor verified "
            f"within the last {minutes} minutes. Systems use API clients whose secrets are stored only as hashes, "
            "limited by scopes and purposes.",
            "Użytkownicy logują się hasłem (przechowywanym jako skrót argon2id) i drugim składnikiem (TOTP, "
            "RFC 6238; każdy kod przyjmowany jednokrotnie, liczba nieudanych prób ograniczona). Odkrycie danych "
            f"jawnych wymaga drugiego składnika zweryfikowanego w ciągu ostatnich {minutes} minut. Systemy "
            "korzystają z klientów API, których sekrety są przechowywane wyłącznie jako skróty, z ograniczonym "
            "zakresem uprawnień i celów."),
        SecurityMeasure(
            "audit_log",
            "Every access, reveal, search, contact, recording and data protection action is written to an "
            "append-only, tamper-evident audit log (a Merkle tree per RFC 9162 with checkpoints signed with "
            "Ed25519) before any data leaves the vault in clear; auditors verify exports of the log offline.",
            "Każdy dostęp, odkrycie danych, wyszukiwanie, kontakt, nagranie i czynność z zakresu ochrony danych "
            "jest zapisywany w rejestrze zdarzeń, do którego można tylko dopisywać i którego zmiana jest wykrywalna "
            "(drzewo Merkle zgodne z RFC 9162, punkty kontrolne podpisane Ed25519), zanim jakiekolwiek dane jawne "
            "opuszczą sejf; audytorzy weryfikują wyciągi z rejestru bez dostępu do systemu."),
        SecurityMeasure(
            "data_minimisation",
            "Collection systems hold subject tokens, not personal data; roles see masked values by default; "
            "personal data found in free-text notes is sealed and replaced by placeholders; the application's "
            "logs are filtered so that they hold no personal data.",
            "Systemy windykacyjne przechowują tokeny osób, a nie ich dane; role widzą domyślnie dane maskowane; "
            "dane osobowe wykryte w notatkach są szyfrowane i zastępowane oznaczeniami; dzienniki aplikacji są "
            "filtrowane tak, by nie zawierały danych osobowych."),
        SecurityMeasure(
            "erasure",
            "Erasure and retention are carried out by crypto-shredding: destroying a subject's data keys makes every "
            "field, note and recording of the subject unreadable at once, also in backups and in the audit log, "
            "whose proofs still verify. Retention schedules are applied by a job from the policy files, respecting "
            "legal holds.",
            "Usuwanie danych i okresy przechowywania są realizowane przez usunięcie kryptograficzne: zniszczenie "
            "kluczy danych osoby czyni nieczytelnymi od razu wszystkie jej pola, notatki i nagrania, także w kopiach "
            "zapasowych i w rejestrze zdarzeń, którego dowody nadal dają się zweryfikować. Harmonogramy "
            "przechowywania stosuje zadanie oparte na plikach polityk, z poszanowaniem blokad prawnych."),
    )


def build_record(controller: Controller, *, catalogue: Path | None = None, retention: Path | None = None,
                 purposes: Path | None = None, processing: Path | None = None,
                 registers: Mapping[str, Any] | None = None, generated_at: datetime) -> ProcessingRecord:
    """The Art. 30(1) record for ``controller``, built from the policy files.

    ``catalogue`` is the field catalogue (default: the packaged ``policies/fields.yaml``),
    ``retention`` the retention schedules (``policies/retention.yaml``), ``purposes`` the
    authorisation parameters that list the purposes (``policies/authorisation.yaml``),
    ``processing`` the transfers, joint controllers and processor activities
    (``policies/processing.yaml``). ``registers`` are the facts of the DPO's registers
    (:meth:`gdpr.registers.GdprRegisters.ropa_facts`); without them the record says so.
    ``ConfigurationError`` if a file cannot be read or is invalid, or if the record would
    lack a legal basis or a description; ``InvalidInputError`` for a naive ``generated_at``.
    """
    if not isinstance(generated_at, datetime) or generated_at.tzinfo is None:
        raise InvalidInputError("generated_at must be a timezone-aware datetime")
    fields_path = catalogue if catalogue is not None else DEFAULT_CATALOGUE_PATH
    parameters_path = purposes if purposes is not None else POLICY_DIR / PARAMETERS_FILE
    retention_path = retention if retention is not None else DEFAULT_RETENTION_PATH
    fields_text, fields_source = _read(fields_path, "field catalogue")
    parameters_text, parameters_source = _read(parameters_path, "authorisation parameters")
    retention_text, retention_source = _read(retention_path, "retention policy")
    processing_path = processing if processing is not None else DEFAULT_PROCESSING_PATH
    processing_text, processing_source = _read(processing_path, "processing policy")
    more = processing_from_yaml(processing_text, source=str(processing_path))
    moved = transfers_part(more)
    field_catalogue = catalogue_from_yaml(fields_text, source=str(fields_path))
    parameters = _parameters(parameters_text, str(parameters_path))
    try:
        schedules = retention_from_yaml(retention_text, source=str(retention_path))
    except RetentionPolicyError as exc:
        raise ConfigurationError(exc.detail) from None
    texts = {kind: _described(DATA_SUBJECT_DESCRIPTIONS, kind, "subject kind") for kind in SUBJECT_KINDS}
    subjects = tuple(DataSubjectCategory(kind, text.en, text.pl) for kind, text in texts.items())
    return ProcessingRecord(
        generated_at=generated_at, controller=controller, purposes=_purposes(parameters.purposes),
        data_subjects=subjects, data_categories=_data_categories(field_catalogue, schedules),
        recipients=_recipients(RECIPIENTS), third_country_transfers=tuple(moved["transfers"]["third_countries"]),
        transfers_statement=moved["transfers"]["statement"], transfers_statement_pl=moved["transfers"]["statement_pl"],
        retention=_retention(schedules), retention_rules=_RETENTION_RULES.en, retention_rules_pl=_RETENTION_RULES.pl,
        security_measures=_security_measures(parameters),
        sources=(fields_source, parameters_source, retention_source, processing_source),
        joint_controllers=tuple(moved["joint_controllers"]),
        processor=processor_record(more, (registers or {}).get("processor_for", ())),
        registers=registers_part(registers))


# -- the page ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(record: ProcessingRecord) -> str:
    """``ropa.html``: the record in Polish, then in English; autoescaped, no script, no external resource."""
    return _templates().get_template("ropa.html").render(data=record.to_json(), languages=("pl", "en"))
