"""What the Art. 30 record takes from ``policies/processing.yaml`` and from the DPO's registers.

* third-country transfers (Art. 30(1)(e), 30(2)(c)) with the safeguard each rests on
  (Art. 45 adequacy, Art. 46 appropriate safeguards);
* joint controllers (Art. 26) and their arrangement;
* the record of the processing done as a creditor's processor (Art. 30(2)): the controllers
  (from the debts held as processor) and the categories of processing (from the file);
* the registers: recipients of the Art. 19 register (Art. 30(1)(d)), and the state of the
  Art. 14 information duty and of the Art. 19 notifications (for the DPO reading the record).

The file is validated like the other policy files (unique keys, ``extra="forbid"``, every
error naming the key path); nothing in it is a data subject's personal data.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from core.errors import ConfigurationError
from policies.yamlfile import read_policy_text, validated_document

__all__ = [
    "DEFAULT_PROCESSING_PATH",
    "ProcessingDocument",
    "ProcessingPolicy",
    "load_processing",
    "processing_from_yaml",
    "processor_record",
    "registers_part",
    "transfers_part",
]

DEFAULT_PROCESSING_PATH: Final = Path(__file__).resolve().parents[1] / "policies" / "processing.yaml"
_TEXT = Annotated[StrictStr, Field(min_length=1, max_length=500)]
_CATEGORY = Literal["identification", "contact", "financial", "notes", "location", "recordings", "contact_events"]

_NO_TRANSFERS: Final = (
    "None. No personal data is transferred to a third country or an international organisation (GDPR Art. 30(1)(e)).",
    ("Brak. Dane osobowe nie są przekazywane do państwa trzeciego ani organizacji międzynarodowej "
    "(art. 30 ust. 1 lit. e RODO)."))
_TRANSFERS: Final = (
    ("Personal data is transferred to the third countries below, each on the safeguard named (GDPR Art. 30(1)(e), "
    "Art. 45-46)."),
    ("Dane osobowe są przekazywane do poniższych państw trzecich, każdorazowo na podstawie wskazanego zabezpieczenia "
    "(art. 30 ust. 1 lit. e, art. 45-46 RODO)."))
_INFORMATION: Final = (
    ("Data about debtors comes from the creditors who assigned the receivables. For each receivable bought, the "
    "subject is informed as Art. 14 requires within one month of obtaining the data, or at the first contact if "
    "earlier (Art. 14(3)); each recipient of the data is recorded, and told of every rectification, erasure and "
    "restriction (Art. 19). The counts below are the registers' state when the record was generated."),
    ("Dane dłużników pochodzą od wierzycieli, którzy przelali wierzytelności. Po nabyciu każdej wierzytelności osoba "
    "otrzymuje informacje z art. 14 w ciągu miesiąca od pozyskania danych, a najpóźniej przy pierwszym kontakcie "
    "(art. 14 ust. 3); każdy odbiorca danych jest rejestrowany i powiadamiany o każdym sprostowaniu, usunięciu i "
    "ograniczeniu przetwarzania (art. 19). Liczby poniżej opisują stan rejestrów w chwili sporządzenia rejestru."))


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Transfer(_Model):
    recipient: _TEXT
    country: _TEXT
    data_categories: Annotated[tuple[_CATEGORY, ...], Field(min_length=1)]
    safeguard: _TEXT
    article: Annotated[StrictStr, Field(pattern=r"^Art\. (45|46|47|49)(\(\d\)(\([a-f]\))?)?$")]


class JointController(_Model):
    name: _TEXT
    subject_matter: _TEXT
    arrangement: _TEXT


class ProcessorProcessing(_Model):
    code: Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    en: _TEXT
    pl: _TEXT


class ProcessingDocument(_Model):
    """``policies/processing.yaml``."""

    version: Literal[1]
    third_country_transfers: tuple[Transfer, ...] = ()
    joint_controllers: tuple[JointController, ...] = ()
    processor_processing: Annotated[tuple[ProcessorProcessing, ...], Field(min_length=1)]


@dataclass(frozen=True)
class ProcessingPolicy:
    document: ProcessingDocument
    sha256: str
    source: str


def processing_from_yaml(text: str, source: str = "<string>") -> ProcessingPolicy:
    """Parse and validate the file; ``ConfigurationError`` naming ``source`` and the key paths."""
    document = validated_document(text, source, ProcessingDocument, ConfigurationError, "processing policy", "is")
    return ProcessingPolicy(document, hashlib.sha256(text.encode("utf-8")).hexdigest(), source)


@functools.lru_cache(maxsize=8)
def load_processing(path: Path | None = None) -> ProcessingPolicy:
    source = path if path is not None else DEFAULT_PROCESSING_PATH
    return processing_from_yaml(read_policy_text(source, ConfigurationError, "processing policy"), str(source))


def transfers_part(policy: ProcessingPolicy) -> dict[str, Any]:
    """The record's ``transfers`` and ``joint_controllers`` (Art. 30(1)(e), Art. 26)."""
    transfers = [t.model_dump(mode="json") for t in policy.document.third_country_transfers]
    statement = _TRANSFERS if transfers else _NO_TRANSFERS
    return {"transfers": {"third_countries": transfers, "statement": statement[0], "statement_pl": statement[1]},
            "joint_controllers": [j.model_dump(mode="json") for j in policy.document.joint_controllers]}


def processor_record(policy: ProcessingPolicy, controllers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The Art. 30(2) record: each controller the firm processes for, the categories of processing, the
    transfers; the security measures are those of the controller's record (Art. 30(2)(d))."""
    return {"article": "30(2)", "controllers": [dict(c) for c in controllers],
            "categories_of_processing": [p.model_dump(mode="json") for p in policy.document.processor_processing],
            "transfers": [t.model_dump(mode="json") for t in policy.document.third_country_transfers],
            "security_measures": "as in the controller's record above (Art. 30(2)(d), Art. 32(1))"}


def registers_part(registers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The registers as the record shows them (empty counts when the record is built from the files alone)."""
    facts = dict(registers or {})
    return {"statement": _INFORMATION[0], "statement_pl": _INFORMATION[1],
            "recipients": list(facts.get("recipients", [])),
            "notices": dict(facts.get("notices", {"open": 0, "overdue": 0, "given": 0, "exempt": 0})),
            "notifications": dict(facts.get("notifications", {"pending": 0, "notified": 0, "impossible": 0,
                                                               "disproportionate": 0})),
            "from_database": registers is not None}
