"""The DPO's registers together: Art. 14 notices, Art. 19 recipients, the Art. 33(5) breach register.

:class:`GdprRegisters` is what the runtime offers the API, the CLI and the console, and what
the debt routes call when a debt changes in a way the registers must follow:

* a debt obtained as controller (bought) opens an Art. 14 notice for the debtor, and a
  guarantor or co-debtor linked to it opens one for them (their data came with it);
* an assignment of the claim to someone else records the assignee as a recipient of the
  data of the debtor and of every party (Art. 19; it received the data with the claim).

:meth:`GdprRegisters.ropa_facts` is what the Art. 30 record takes from them.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine, func, select

from audit.service import AuditLog
from contacts.debt_info import DebtInfo
from contacts.repository import debts
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection
from gdpr.breaches import BreachRegister
from gdpr.notices import NoticeBook
from gdpr.recipients import RecipientRegister
from identity.principal import Principal

__all__ = ["GdprRegisters"]


class GdprRegisters:
    """Art. 14 notices, Art. 19 recipients and the breach register, over one engine and log."""

    def __init__(self, engine: Engine, audit: AuditLog, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.clock = clock
        self.notices = NoticeBook(engine, audit, clock)
        self.recipients = RecipientRegister(engine, audit, clock)
        self.breaches = BreachRegister(engine, audit, clock)

    def debt_recorded(self, principal: Principal, debt: DebtInfo) -> None:
        """A debt held as controller opens the debtor's Art. 14 notice (once per debt)."""
        if debt.held_as == "controller":
            self.notices.open(principal, debt.subject, debt_id=debt.id, source=debt.creditor,
                              obtained_on=debt.assigned_on or self.clock.now().date())

    def party_linked(self, principal: Principal, debt: DebtInfo, party: str) -> None:
        """A guarantor or co-debtor of a debt held as controller gets their own Art. 14 notice."""
        if debt.held_as == "controller":
            self.notices.open(principal, party, debt_id=debt.id, source=debt.creditor,
                              obtained_on=debt.assigned_on or self.clock.now().date())

    def assigned(self, principal: Principal, debt: DebtInfo, assignee: str, on: date) -> None:
        """The claim went to ``assignee`` on ``on``: a recipient of the data of each party of the debt."""
        for subject in sorted(debt.party_tokens):
            self.recipients.add(principal, subject, kind="assignee", name=assignee, disclosed_on=on, debt_id=debt.id)

    def ropa_facts(self) -> dict[str, Any]:
        """What the Art. 30 record shows of the registers: recipients, notice and notification counts, and the
        creditors for which the firm collects as processor (Art. 30(2))."""
        with read_connection(self.engine) as conn:
            processor = conn.execute(select(debts.c.creditor, func.count()).where(debts.c.held_as == "processor")
                                     .group_by(debts.c.creditor).order_by(debts.c.creditor)).all()
        return {**self.recipients.summary(), "notices": self.notices.counts(),
                "processor_for": [{"controller": str(name), "debts": int(n)} for name, n in processor]}
