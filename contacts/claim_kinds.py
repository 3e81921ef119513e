"""Which kind of claim a debt is, checked against who the creditor is and whether the debtor is a consumer.

Pure. The kind decides the limitation period (:mod:`contacts.limitation`, art. 118 k.c.):

=========== ================================================================================
kind        when
=========== ================================================================================
general     six years: a claim not connected with running a business and not periodic
periodic    three years: periodic performances (rent, subscription fees, instalments of
            interest), whoever the creditor is
business    three years: a claim connected with running a business, i.e. of a creditor who
            runs one (a bank, a lender, a telecom, a utility, any entrepreneur)
=========== ================================================================================

The reading (statute: art. 118 k.c.; its application to consumer debts is the courts'
settled reading, and an assignment does not change the claim, art. 509 k.c.):

- a claim of an entrepreneur against anyone, a consumer included, arises from its business:
  a consumer's debt bought from a bank, a telecom or a lender is ``business`` (or
  ``periodic``), never ``general``. Entered as general it would get six years instead of
  three (issue 17, defect 7);
- a creditor who is a private person (``individual``) has no claim connected with a
  business: ``general`` or ``periodic``;
- a consumer is a person dealing with an entrepreneur (art. 22¹ k.c.), so a debt owed to an
  ``individual`` is not a consumer debt;
- ``creditor_kind`` may be left out (older integrations): then nothing is checked and the
  debt says so. The old judgment kinds (``judgment``, ``judgment_periodic``) are accepted
  and stored as their base kind with a judgment event: ``judgment_periodic`` as
  ``periodic``, ``judgment`` as ``business`` for an entrepreneur's claim and ``general`` otherwise.
"""

from __future__ import annotations

from typing import Final

from contacts.limitation import BASE_KINDS, ClaimKind
from core.errors import InvalidInputError

__all__ = ["BUSINESS_CREDITORS", "CLAIM_KINDS", "CREDITOR_KINDS", "ClaimKindError", "base_kind_for", "check_claim_kind"]

#: Kinds of creditor: every one but ``individual`` runs a business.
CREDITOR_KINDS: Final = ("bank", "lender", "telecom", "utility", "other_business", "individual")
BUSINESS_CREDITORS: Final = frozenset(CREDITOR_KINDS) - {"individual"}
#: The kinds a debt may be posted with (the judgment kinds for compatibility: see the module docs).
CLAIM_KINDS: Final = tuple(k.value for k in ClaimKind)


class ClaimKindError(InvalidInputError):
    """The claim kind does not fit the creditor or the consumer flag."""

    code = "claim-kind"
    title = "Claim kind does not fit the creditor"


def _kind(value: str) -> ClaimKind:
    try:
        return ClaimKind(value)
    except ValueError:
        raise InvalidInputError(f"kind must be one of {', '.join(CLAIM_KINDS)}") from None


def base_kind_for(kind: str, creditor_kind: str | None) -> ClaimKind:
    """The base kind a debt is stored with (``judgment`` becomes business or general, see the module docs)."""
    claim = _kind(kind)
    if claim is ClaimKind.JUDGMENT_PERIODIC:
        return ClaimKind.PERIODIC
    if claim is ClaimKind.JUDGMENT:
        return ClaimKind.BUSINESS if creditor_kind in BUSINESS_CREDITORS else ClaimKind.GENERAL
    return claim


def check_claim_kind(kind: ClaimKind, creditor_kind: str | None, consumer: bool) -> None:
    """``ClaimKindError`` unless a base ``kind`` fits the creditor and the consumer flag (see the module docs)."""
    if kind not in BASE_KINDS:
        raise InvalidInputError(f"kind must be one of {', '.join(k.value for k in BASE_KINDS)}")
    if creditor_kind is None:
        return
    if creditor_kind not in CREDITOR_KINDS:
        raise InvalidInputError(f"creditor_kind must be one of {', '.join(CREDITOR_KINDS)}")
    if creditor_kind in BUSINESS_CREDITORS and kind is ClaimKind.GENERAL:
        whose = "against a consumer " if consumer else ""
        raise ClaimKindError(
            f"a claim of a {creditor_kind} creditor {whose}is connected with running its business: kind must be "
            "business or periodic (three years, art. 118 k.c.), not general (six years); buying the claim does "
            "not change it (art. 509 k.c.)")
    if creditor_kind == "individual" and kind is ClaimKind.BUSINESS:
        raise ClaimKindError("a creditor who is a private person has no claim connected with running a business: "
                             "kind must be general or periodic (art. 118 k.c.)")
    if creditor_kind == "individual" and consumer:
        raise ClaimKindError("a consumer deals with an entrepreneur (art. 22¹ k.c.): a debt owed to a private person "
                             "is not a consumer debt; set consumer to false")
