"""A debt as read back: its row, its legal history, its parties, and its limitation period with the reasoning.

:func:`debt_infos` turns stored rows into :class:`DebtInfo` values, reading the events and
parties of all the debts in two queries. The limitation period is never stored: it is read
from the history on every read (:func:`contacts.limitation.read_limitation`), so a corrected
rule or a new event changes it at once. A debt is read *for* a subject (``viewer``): the
debtor, or a guarantor or co-debtor, whose own period it shows (art. 372, 881 k.c.).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import Connection

from contacts import repository
from contacts.common import iso_date
from contacts.legal_events import LegalEvent, LegalEventKind
from contacts.limitation import BASE_KINDS, ClaimKind, LimitationReading, read_limitation

__all__ = ["DebtInfo", "Party", "debt_info", "debt_infos", "event_json", "legal_event"]


@dataclass(frozen=True)
class Party:
    """A guarantor or co-debtor of a debt (a subject token and the role)."""

    subject: str
    role: str


@dataclass(frozen=True)
class DebtInfo:
    """A debt read for ``viewer`` (the debtor, or one of its parties), with the period against them."""

    id: str
    subject: str
    creditor: str
    creditor_kind: str | None
    held_as: str
    kind: str
    consumer: bool
    amount_minor: int
    currency: str
    due_date: date
    assigned_on: date | None
    status: str
    settled_on: date | None
    events: tuple[LegalEvent, ...] = ()
    event_rows: tuple[dict[str, Any], ...] = field(default=(), repr=False, compare=False)
    parties: tuple[Party, ...] = ()
    viewer: str = ""
    reading: LimitationReading | None = field(default=None, compare=False)

    @property
    def role(self) -> str:
        """The viewer's role: ``debtor``, ``guarantor`` or ``co_debtor``."""
        if self.viewer in ("", self.subject):
            return "debtor"
        return next((p.role for p in self.parties if p.subject == self.viewer), "debtor")

    @property
    def party_tokens(self) -> frozenset[str]:
        """The debtor and every guarantor and co-debtor."""
        return frozenset({self.subject, *(p.subject for p in self.parties)})

    @property
    def limitation(self) -> LimitationReading:
        """The period against the viewer, read from the history."""
        assert self.reading is not None  # noqa: S101 - set by debt_info
        return self.reading

    @property
    def judgment_date(self) -> date | None:
        """The day the latest judgment or payment order against the viewer became final."""
        return self.limitation.confirmed_on

    @property
    def time_barred_on(self) -> date | None:
        """The first day the claim against the viewer is time-barred (None while the period does not run)."""
        return self.limitation.time_barred_on

    def time_barred(self, today: date) -> bool:
        return self.limitation.time_barred(today)

    def viewed_by(self, party: str) -> DebtInfo:
        """The same debt read for another of its parties (their own period)."""
        return replace(self, viewer=party, reading=self.reading_for(party))

    def reading_for(self, party: str) -> LimitationReading:
        """The period against another party of the debt."""
        return read_limitation(ClaimKind(self.kind), self.due_date, self.events, party=party)

    def to_json(self, today: date) -> dict[str, Any]:
        reading = self.limitation
        return {
            "id": self.id, "subject": self.subject, "creditor": self.creditor, "creditor_kind": self.creditor_kind,
            "held_as": self.held_as, "kind": self.kind, "consumer": self.consumer, "amount_minor": self.amount_minor,
            "currency": self.currency, "due_date": self.due_date.isoformat(), "status": self.status,
            "judgment_date": iso_date(self.judgment_date), "assigned_on": iso_date(self.assigned_on),
            "settled_on": iso_date(self.settled_on), "time_barred_on": iso_date(self.time_barred_on),
            "time_barred": self.time_barred(today), "role": self.role, "viewer": self.viewer or self.subject,
            "limitation": reading.to_json(),
            "kind_checked": self.creditor_kind is not None,
            "events": [event_json(row) for row in self.event_rows],
            "parties": [self._party_json(p, today) for p in self.parties],
        }

    def _party_json(self, party: Party, today: date) -> dict[str, Any]:
        reading = self.reading_for(party.subject)
        return {"subject": party.subject, "role": party.role, "time_barred_on": iso_date(reading.time_barred_on),
                "time_barred": reading.time_barred(today)}


def legal_event(row: dict[str, Any]) -> LegalEvent:
    """The event of a ``contact_debt_events`` row."""
    return LegalEvent(kind=LegalEventKind(row["kind"]), on=row["occurred_on"], source=row["source"] or "",
                      party=row["party"], assignee=row["assignee"], amount_minor=row["amount_minor"],
                      ground=row["ground"], withdrawn=bool(row["withdrawn"]))


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored event as the API shows it."""
    return {"seq": row["seq"], "kind": row["kind"], "on": row["occurred_on"].isoformat(), "party": row["party"],
            "source": row["source"] or None, "assignee": row["assignee"], "amount_minor": row["amount_minor"],
            "ground": row["ground"], "withdrawn": bool(row["withdrawn"]), "log_index": row["log_index"],
            "recorded_by": row["recorded_by"]}


def debt_info(row: dict[str, Any], event_rows: Sequence[dict[str, Any]] = (),
              party_rows: Sequence[dict[str, Any]] = (), viewer: str | None = None) -> DebtInfo:
    """A :class:`DebtInfo` of a debt row, its events and parties, read for ``viewer`` (default: the debtor)."""
    kind = ClaimKind(row["kind"])
    if kind not in BASE_KINDS:  # a row of an older version that 0013 did not see (it rewrites them)
        kind = ClaimKind.PERIODIC if kind is ClaimKind.JUDGMENT_PERIODIC else ClaimKind.GENERAL
    events = tuple(legal_event(r) for r in event_rows)
    who = viewer or row["subject_token"]
    return DebtInfo(
        id=row["id"], subject=row["subject_token"], creditor=row["creditor"], creditor_kind=row.get("creditor_kind"),
        held_as=row.get("held_as") or "controller", kind=kind.value, consumer=bool(row["consumer"]),
        amount_minor=int(row["amount_minor"]), currency=row["currency"], due_date=row["due_date"],
        assigned_on=row["assigned_on"], status=row["status"], settled_on=row["settled_on"], events=events,
        event_rows=tuple(event_rows), parties=tuple(Party(p["subject_token"], p["role"]) for p in party_rows),
        viewer=who, reading=read_limitation(kind, row["due_date"], events, party=who))


def debt_infos(conn: Connection, rows: Sequence[dict[str, Any]], viewer: str | None = None,
               viewers: Sequence[str | None] | None = None) -> list[DebtInfo]:
    """:func:`debt_info` of many rows, their events and parties read in two queries.

    ``viewers`` (one per row) overrides ``viewer`` for the rows read for a guarantor or co-debtor.
    """
    ids = [r["id"] for r in rows]
    events = repository.events_of_debts(conn, ids)
    parties = repository.parties_of_debts(conn, ids)
    who = list(viewers) if viewers is not None else [viewer] * len(rows)
    return [debt_info(r, events[r["id"]], parties[r["id"]], w) for r, w in zip(rows, who, strict=True)]
