"""What can happen to a claim in law: the events of a debt's legal history, checked and put in order.

Pure: plain values in, plain values out. :mod:`contacts.limitation` reads the limitation
period from these events; the debt book stores them (``contact_debt_events``) and logs each
one (``debt.event_recorded``). Every kind names the provision that gives it its effect:

==========================  =====================================================================
kind                        effect on the limitation period (Kodeks cywilny unless said otherwise)
==========================  =====================================================================
``assignment``              none: the assignee takes the claim as it is, with the debtor's defences,
                            limitation included (art. 509, 513 § 1)
``judgment``                art. 125 § 1: six years from the day the judgment (or a court or
                            mediation settlement approved by a court) became final
``payment_order``           the same: a final payment order (nakaz zapłaty) is a court's decision
``court_action_started``    art. 123 § 1 pkt 1: interrupted; art. 124 § 2: does not run until the
                            proceedings end
``court_action_ended``      art. 124 § 2: runs anew from the end; a withdrawn or returned claim
                            has no effect at all (art. 203 § 2 and 130 § 2 k.p.c.)
``enforcement_started``     art. 123 § 1 pkt 1 (a bailiff, komornik): interrupted until it ends
``enforcement_ended``       art. 124 § 2: runs anew from the end
``mediation_started``       art. 123 § 1 pkt 3: interrupted until the mediation ends
``mediation_ended``         art. 124 § 2: runs anew from the end
``acknowledgement``         art. 123 § 1 pkt 2: interrupted; art. 124 § 1: runs anew from that day
``part_payment``            the same: paying a part acknowledges the claim (art. 123 § 1 pkt 2,
                            an acknowledgement by conduct, as the courts read it)
``suspension_started``      art. 121 pkt 4: force majeure; the period does not run while it lasts
``suspension_ended``        the period goes on, longer by the time it was suspended
==========================  =====================================================================

Invariants:

- an event names a day; an event ``*_ended`` closes the latest open ``*_started`` of its kind
  on or before it; starting a kind that is open, or ending one that is not, is refused;
- :func:`ordered` sorts by day, and within a day starts first and ends last, otherwise in
  the order recorded (so the reading does not depend on the order events were entered);
- an event concerns one party of the claim (``party``: a subject token: the debtor, a
  guarantor or a co-debtor) or, when ``party`` is None, every party. Interrupting the
  period against one of several debtors liable jointly and severally has no effect on the
  others (art. 372), and a guarantor is liable as such a debtor (art. 881); an assignment
  and a suspension for force majeure concern the claim itself, so they have no party;
- suspension applies only on the ground of art. 121 pkt 4 (force majeure): pkt 1 to 3 are
  claims between parents and children, wards and guardians, spouses, which a collection
  firm's creditor never has against its debtor;
- nothing here holds personal data: sources are court dockets, deed numbers, bank
  statement references; parties are subject tokens; assignees are organisations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from core.errors import InvalidInputError

__all__ = [
    "ARTICLES",
    "CLAIM_EVENTS",
    "ENDS",
    "STARTS",
    "SUSPENSION_GROUNDS",
    "LegalEvent",
    "LegalEventKind",
    "applying_to",
    "ordered",
    "pair_proceedings",
]


class LegalEventKind(StrEnum):
    """What happened to the claim; see the module's table for each effect."""

    ASSIGNMENT = "assignment"
    JUDGMENT = "judgment"
    PAYMENT_ORDER = "payment_order"
    COURT_ACTION_STARTED = "court_action_started"
    COURT_ACTION_ENDED = "court_action_ended"
    ENFORCEMENT_STARTED = "enforcement_started"
    ENFORCEMENT_ENDED = "enforcement_ended"
    MEDIATION_STARTED = "mediation_started"
    MEDIATION_ENDED = "mediation_ended"
    ACKNOWLEDGEMENT = "acknowledgement"
    PART_PAYMENT = "part_payment"
    SUSPENSION_STARTED = "suspension_started"
    SUSPENSION_ENDED = "suspension_ended"


K = LegalEventKind

#: The article that gives each kind its effect, as the reasoning names it.
ARTICLES: Final = {
    K.ASSIGNMENT: "art. 509, 513 § 1 k.c.",
    K.JUDGMENT: "art. 125 § 1 k.c.",
    K.PAYMENT_ORDER: "art. 125 § 1 k.c.",
    K.COURT_ACTION_STARTED: "art. 123 § 1 pkt 1 k.c.",
    K.COURT_ACTION_ENDED: "art. 124 § 2 k.c.",
    K.ENFORCEMENT_STARTED: "art. 123 § 1 pkt 1 k.c.",
    K.ENFORCEMENT_ENDED: "art. 124 § 2 k.c.",
    K.MEDIATION_STARTED: "art. 123 § 1 pkt 3 k.c.",
    K.MEDIATION_ENDED: "art. 124 § 2 k.c.",
    K.ACKNOWLEDGEMENT: "art. 123 § 1 pkt 2 k.c.",
    K.PART_PAYMENT: "art. 123 § 1 pkt 2 k.c.",
    K.SUSPENSION_STARTED: "art. 121 pkt 4 k.c.",
    K.SUSPENSION_ENDED: "art. 121 pkt 4 k.c.",
}

#: The kinds that open an interval, and the kind that closes each.
STARTS: Final = {
    K.COURT_ACTION_STARTED: K.COURT_ACTION_ENDED,
    K.ENFORCEMENT_STARTED: K.ENFORCEMENT_ENDED,
    K.MEDIATION_STARTED: K.MEDIATION_ENDED,
    K.SUSPENSION_STARTED: K.SUSPENSION_ENDED,
}
ENDS: Final = {end: start for start, end in STARTS.items()}
#: Kinds that concern the claim as a whole and so name no party.
CLAIM_EVENTS: Final = frozenset({K.ASSIGNMENT, K.SUSPENSION_STARTED, K.SUSPENSION_ENDED})
#: Grounds of suspension a collection firm's claim can have (art. 121 pkt 4).
SUSPENSION_GROUNDS: Final = ("force_majeure",)
_MAX_TEXT: Final = 200


@dataclass(frozen=True, kw_only=True)
class LegalEvent:
    """One event of a claim's legal history.

    ``on`` is the day it took effect: the day a judgment or payment order became final
    (prawomocność), the day an action was filed or an enforcement or mediation began or
    ended, the day of an acknowledgement or a payment. ``source`` says where it is
    documented (a docket, a deed, a statement reference). ``assignee`` (an organisation)
    is required for an assignment, ``amount_minor`` (positive) for a part payment,
    ``ground`` for a suspension; ``withdrawn`` marks a court action that ended by the
    claim being withdrawn or returned.
    """

    kind: LegalEventKind
    on: date
    source: str = ""
    party: str | None = None
    assignee: str | None = None
    amount_minor: int | None = None
    ground: str | None = None
    withdrawn: bool = False

    def __post_init__(self) -> None:
        try:
            kind = LegalEventKind(self.kind)
        except ValueError:
            raise InvalidInputError(
                f"event kind must be one of {', '.join(k.value for k in LegalEventKind)}") from None
        object.__setattr__(self, "kind", kind)
        if not isinstance(self.on, date):
            raise InvalidInputError(f"{kind.value}: the day it took effect is needed")
        if len(self.source) > _MAX_TEXT:
            raise InvalidInputError(f"{kind.value}: source has at most {_MAX_TEXT} characters")
        if kind in CLAIM_EVENTS and self.party is not None:
            raise InvalidInputError(f"{kind.value} concerns the claim itself, not one party")
        if (kind is K.ASSIGNMENT) != (self.assignee is not None):
            raise InvalidInputError("an assignment names its assignee, and only an assignment does")
        if (kind is K.PART_PAYMENT) != (self.amount_minor is not None):
            raise InvalidInputError("a part payment names its amount (amount_minor), and only a part payment does")
        if self.amount_minor is not None and self.amount_minor <= 0:
            raise InvalidInputError("a part payment's amount_minor must be positive")
        if kind is K.SUSPENSION_STARTED and self.ground not in SUSPENSION_GROUNDS:
            raise InvalidInputError(
                "a suspension applies here only for force majeure (ground: force_majeure, art. 121 pkt 4 k.c.); "
                "art. 121 pkt 1-3 concern claims between family members and guardians")
        if kind is not K.SUSPENSION_STARTED and self.ground is not None:
            raise InvalidInputError("only a suspension names a ground")
        if self.withdrawn and kind is not K.COURT_ACTION_ENDED:
            raise InvalidInputError("only a court action ends withdrawn (art. 203 § 2 k.p.c.)")

    @property
    def article(self) -> str:
        """The provision that gives this event its effect."""
        return ARTICLES[self.kind]


def _priority(event: LegalEvent) -> int:
    if event.kind in STARTS:
        return 0
    return 2 if event.kind in ENDS else 1


def ordered(events: Iterable[LegalEvent]) -> list[LegalEvent]:
    """The events by day; within a day starts first, ends last, the rest in the order given."""
    return [e for _, _, e in sorted(((e.on, _priority(e), n), n, e) for n, e in enumerate(events))]


def applying_to(events: Iterable[LegalEvent], party: str | None) -> list[LegalEvent]:
    """The events that concern ``party`` (those naming it or no one); all of them for ``party`` None."""
    return [e for e in events if party is None or e.party is None or e.party == party]


def pair_proceedings(events: Sequence[LegalEvent]) -> dict[int, int]:
    """For ordered ``events``: the position of each ``*_ended`` -> the position of the start it closes.

    ``InvalidInputError`` naming the kind and the day when an end has no open start, or a
    start is opened again while open (for the same party). A judgment or a payment order
    closes the open court action of its party (the proceedings ended with it). Starts left
    open are allowed: the proceedings are pending.
    """
    open_: dict[tuple[LegalEventKind, str | None], int] = {}
    pairs: dict[int, int] = {}
    for position, event in enumerate(events):
        key = (event.kind, event.party)
        if event.kind in STARTS:
            if key in open_:
                raise InvalidInputError(f"{event.kind.value} on {event.on}: the one started on "
                                        f"{events[open_[key]].on} has not ended")
            open_[key] = position
        elif event.kind in ENDS:
            start_key = (ENDS[event.kind], event.party)
            if start_key not in open_:
                raise InvalidInputError(f"{event.kind.value} on {event.on}: no {ENDS[event.kind].value} is open "
                                        "for it to end")
            pairs[position] = open_.pop(start_key)
        elif event.kind in (K.JUDGMENT, K.PAYMENT_ORDER):
            for party in (event.party, None):  # the proceedings ended with it
                if open_.pop((K.COURT_ACTION_STARTED, party), None) is not None:
                    break
    return pairs
