"""The legal bases of the purposes of processing (GDPR Art. 6, 9), cited in English and in Polish.

Used by the subject export (the purposes and their bases, Art. 15(1)(a), 13(1)(c)) and the
record of processing activities (Art. 30). A firm's DPO should review them (ADR 0009).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from core.errors import InvalidInputError
from gdpr.export_data import ExportPurpose

__all__ = ["LEGAL_BASES", "RECIPIENTS", "LegalBasis", "purposes_from_policy"]

RECIPIENTS: Final = (
    "the creditor who assigned the receivable, for its settlement",
    "courts, bailiffs (komornik) and lawyers, where the claim is pursued in proceedings",
    "postal, telecommunication and e-mail service providers delivering letters and messages",
    "IT service providers hosting the firm's systems, under data processing agreements",
)
"""Categories of recipients (GDPR Art. 15(1)(c)); the firm adjusts them to its own processors."""


@dataclass(frozen=True)
class LegalBasis:
    """The legal basis of a purpose, cited in English and in Polish, and the purpose in Polish."""

    en: str
    pl: str
    purpose_pl: str


#: Purpose (policies/authorisation.yaml) -> legal basis. GDPR = RODO (Regulation (EU) 2016/679).
LEGAL_BASES: Final[Mapping[str, LegalBasis]] = {
    "debt_collection": LegalBasis(
        "GDPR Art. 6(1)(f): the legitimate interest of the creditor and of the assignee of the receivable in "
        "recovering it; Art. 6(1)(b) where we are a party to a contract with you; Art. 6(1)(c) where a law "
        "requires the processing",
        "art. 6 ust. 1 lit. f RODO: prawnie uzasadniony interes wierzyciela i nabywcy wierzytelności w jej "
        "dochodzeniu; art. 6 ust. 1 lit. b RODO, gdy jesteśmy stroną umowy z Panią/Panem; art. 6 ust. 1 lit. c "
        "RODO, gdy przetwarzanie nakazuje przepis prawa",
        "dochodzenie należności od Pani/Pana (rozmowy, listy, wiadomości)"),
    "field_visit": LegalBasis(
        "GDPR Art. 6(1)(f): the legitimate interest of the creditor and of the assignee in recovering the "
        "receivable, including by a visit",
        "art. 6 ust. 1 lit. f RODO: prawnie uzasadniony interes wierzyciela i nabywcy wierzytelności w jej "
        "dochodzeniu, także podczas wizyty",
        "wizyta terenowa u Pani/Pana"),
    "payment_processing": LegalBasis(
        "GDPR Art. 6(1)(b) and (f): settling the debt; Art. 6(1)(c): accounting and tax obligations "
        "(Accounting Act of 29 September 1994)",
        "art. 6 ust. 1 lit. b i f RODO: rozliczenie należności; art. 6 ust. 1 lit. c RODO: obowiązki "
        "rachunkowe i podatkowe (ustawa z dnia 29 września 1994 r. o rachunkowości)",
        "rozliczanie i księgowanie Pani/Pana wpłat"),
    "complaint_handling": LegalBasis(
        "GDPR Art. 6(1)(c): the duty to answer a complaint; Art. 6(1)(f): the legitimate interest in "
        "resolving it",
        "art. 6 ust. 1 lit. c RODO: obowiązek rozpatrzenia reklamacji; art. 6 ust. 1 lit. f RODO: prawnie "
        "uzasadniony interes w jej wyjaśnieniu",
        "rozpatrzenie Pani/Pana reklamacji"),
    "gdpr_request": LegalBasis(
        "GDPR Art. 6(1)(c) with Arts. 12 to 22: the controller's duty to answer data subject requests",
        "art. 6 ust. 1 lit. c RODO w związku z art. 12–22 RODO: obowiązek odpowiedzi na żądania osoby, "
        "której dane dotyczą",
        "odpowiedź na Pani/Pana żądanie dotyczące danych osobowych"),
    "erasure": LegalBasis(
        "GDPR Art. 6(1)(c) with Art. 17: the duty to erase data on request or when it is no longer needed",
        "art. 6 ust. 1 lit. c RODO w związku z art. 17 RODO: obowiązek usunięcia danych na żądanie lub gdy nie "
        "są już potrzebne",
        "usunięcie Pani/Pana danych (art. 17 RODO)"),
    "legal_claim": LegalBasis(
        "GDPR Art. 6(1)(f), and Art. 9(2)(f) for special categories of data: establishing, exercising or "
        "defending legal claims (see also Arts. 17(3)(e) and 18(2))",
        "art. 6 ust. 1 lit. f RODO oraz art. 9 ust. 2 lit. f RODO dla szczególnych kategorii danych: ustalenie, "
        "dochodzenie lub obrona roszczeń (zob. też art. 17 ust. 3 lit. e i art. 18 ust. 2 RODO)",
        "ustalenie, dochodzenie lub obrona roszczeń"),
    "audit": LegalBasis(
        "GDPR Art. 6(1)(c) with Arts. 5(2), 24 and 58: accountability, and inspections by the supervisory "
        "authority",
        "art. 6 ust. 1 lit. c RODO w związku z art. 5 ust. 2, art. 24 i art. 58 RODO: rozliczalność oraz "
        "kontrole organu nadzorczego",
        "audyt zgodności lub kontrola organu nadzorczego"),
}


def purposes_from_policy(descriptions: Mapping[str, str]) -> tuple[ExportPurpose, ...]:
    """The purposes of ``policies/authorisation.yaml`` (name -> description) with their legal bases.

    A purpose without an entry in :data:`LEGAL_BASES` is refused: an export must state a basis.
    """
    out: list[ExportPurpose] = []
    for purpose, description in descriptions.items():
        basis = LEGAL_BASES.get(purpose)
        if basis is None:
            raise InvalidInputError(f"no legal basis is defined for purpose {purpose!r}", purpose=purpose)
        out.append(ExportPurpose(purpose=purpose, legal_basis=basis.en, description=description,
                                 legal_basis_pl=basis.pl, description_pl=basis.purpose_pl))
    return tuple(out)
