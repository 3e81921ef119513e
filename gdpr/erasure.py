"""The one erasure decision: every path that shreds asks it, and only it hands the vault a clearance.

Paths: ``DELETE /v1/subjects/{token}`` (and ``tarcza subject shred``, which calls it), an erasure
request (``POST /v1/gdpr/requests/{id}/erase``, ``tarcza gdpr erase``, the console), and the
retention job (``/v1/gdpr/retention/run``, ``tarcza gdpr retention --run``, the console).

The decision, in order:

1. **who**: the policies allow ``gdpr.erase`` (the DPO and compliance officers, with a second
   factor verified in the last minutes; clients with ``gdpr:manage``; Tarcza's retention job);
2. **whether the law still needs the data**: :func:`gdpr.retention.erasure_assessment` of the
   subject's debts and legal holds (an open claim through its limitation period, the accounting
   duty after it, a binding hold), the same pure function the retention schedules use;
3. **the override**, only when 2 refuses and only as a named action: ``gdpr.erase_override`` is
   the DPO's alone, with a written justification of the break-glass length (sealed under the
   subject's key, so it goes with the subject), logged as ``gdpr.erasure_overridden`` naming the
   rules overridden, and it waits in the review queue like a break-glass reveal (an auditor or
   another DPO reviews it, never its author).

Only then does the vault shred, given an :class:`~vault.shredding.ErasureClearance` naming what
was cleared; nothing else in Tarcza builds one (an import scan keeps it so). Refusals are
logged (``gdpr.erasure_refused``, request ``direct`` for a DELETE) before they are answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from audit.events import ErasureOverridePayload, GdprPayload, sealed_b64
from contacts.common import iso_date
from contacts.service import ContactService
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection
from core.errors import ConflictError, PermissionDeniedError
from gdpr import repository
from gdpr.retention import ErasureAssessment, HoldFacts, SubjectFacts, erasure_assessment, facts_of
from identity.principal import Principal
from vault.records import ShredReport
from vault.service import VaultService
from vault.shredding import ErasureClearance

__all__ = ["ERASE", "OVERRIDE", "ErasureDecision", "ErasureRefusedError", "Override", "assessment_json"]

ERASE: Final = "gdpr.erase"
OVERRIDE: Final = "gdpr.erase_override"
DIRECT: Final = "direct"  # the request id a DELETE without a request is logged under


class ErasureRefusedError(ConflictError):
    """The law still needs the subject's data: the reasons and the first day erasure becomes possible."""

    code = "erasure-refused"
    title = "Erasure refused"


@dataclass(frozen=True)
class Override:
    """The DPO's decision to erase against the assessment, and why (sealed; at least the break-glass length)."""

    justification: str

    def __repr__(self) -> str:  # the justification may name people
        return "Override(justification=...)"


@dataclass(frozen=True)
class Erased:
    """What an erasure came to: shredded (maybe by override) or refused with the assessment."""

    assessment: ErasureAssessment
    report: ShredReport | None = None
    overridden: tuple[str, ...] = ()

    @property
    def erased(self) -> bool:
        return self.report is not None


def assessment_json(assessment: ErasureAssessment) -> dict[str, Any]:
    return {"allowed": assessment.allowed, "possible_from": iso_date(assessment.possible_from),
            "reasons": [{"rule": r.rule, "ref": r.ref, "until": iso_date(r.until), "detail": r.detail}
                        for r in assessment.reasons], **assessment.categories_json()}


class ErasureDecision:
    """Decides every erasure (see the module docstring) and hands the vault its clearance."""

    def __init__(self, vault: VaultService, contacts: ContactService, clock: Clock = SYSTEM_CLOCK) -> None:
        self.vault = vault
        self.contacts = contacts
        self.engine = contacts.engine
        self.audit = contacts.audit
        self.authorizer = contacts.authorizer
        self.clock = clock

    # -- the assessment --------------------------------------------------------------------------

    def assess(self, subject: str) -> ErasureAssessment:
        """What an erasure of the subject comes to today (no decision about who asks, no effect)."""
        with read_connection(self.engine) as conn:
            hold_rows = repository.holds_of(conn, subject, active_only=True)
        debts = [facts_of(d) for d in self.contacts.debts.of_subject(subject)]
        holds = [HoldFacts(id=h["id"], reason=h["reason"], starts_on=h["starts_on"], ends_on=h["ends_on"])
                 for h in hold_rows]
        return erasure_assessment(debts, holds, self._today())

    # -- erasing ---------------------------------------------------------------------------------

    def erase_directly(self, principal: Principal, subject: str) -> ShredReport:
        """``DELETE /v1/subjects/{token}``: erase if the decision allows it, else ErasureRefusedError (409).

        Idempotent: a subject already shredded answers its report again (nothing is assessed).
        """
        status = self.vault.subject_status(subject)  # SubjectNotFoundError for an unknown token
        self._require(principal, ERASE, subject)
        if status == "shredded":
            return self.vault.shred(principal, subject, ErasureClearance(frozenset({subject})))
        outcome = self.erase(principal, subject, request_id=DIRECT)
        if outcome.report is None:
            raise _refused(outcome.assessment)
        return outcome.report

    def erase(self, principal: Principal, subject: str, *, request_id: str,
              override: Override | None = None) -> Erased:
        """Erase ``subject`` for ``request_id`` if the assessment (or the DPO's override) allows it.

        A refusal is logged (``gdpr.erasure_refused``) and returned, not raised: a request's
        refusal is an answer to the requester. An override is decided (``gdpr.erase_override``:
        the DPO, fresh, justified) only when the assessment refuses, and logged before the shredding.
        """
        self._require(principal, ERASE, subject)
        assessment = self.assess(subject)
        overridden: tuple[str, ...] = ()
        if not assessment.allowed:
            rules = tuple(sorted({r.rule for r in assessment.reasons}))
            if override is None:
                self._log("gdpr.erasure_refused", principal, subject, request_id, status="refused",
                          due=assessment.possible_from, reason=",".join(rules))
                return Erased(assessment)
            self._require(principal, OVERRIDE, subject, justification=override.justification)
            sealed = sealed_b64(self.vault.event_sealer(subject).seal("note", override.justification))
            self.audit.record("gdpr.erasure_overridden", actor=principal.actor, subject=subject,
                              payload=ErasureOverridePayload(request_id=request_id, overridden=list(rules),
                                                             justification=sealed,
                                                             due=_midnight(assessment.possible_from)))
            overridden = rules
        clearance = ErasureClearance(frozenset({subject}), override=bool(overridden))
        report = self.vault.shred(principal, subject, clearance)
        if request_id == DIRECT:
            self._log("gdpr.erasure_performed", principal, subject, request_id, status="erased")
        return Erased(assessment, report, overridden)

    # -- the retention job -----------------------------------------------------------------------

    def clear_for_retention(self, facts: Mapping[str, SubjectFacts], subjects: Iterable[str],
                            recordings: Iterable[tuple[str, str]] = ()) -> ErasureClearance:
        """What of a retention run's due actions the decision clears: each subject whose assessment of the
        same facts allows erasure today, and each recording whose subject no legal hold binds.

        The retention job (Tarcza's own principal) needs no fresh factor; its schedules already
        asked the same pure assessment, so in a consistent run everything due is cleared.
        """
        today = self._today()
        cleared = frozenset(token for token in subjects
                            if erasure_assessment(facts[token].debts, facts[token].holds, today).allowed)
        deletable = frozenset((token, recording) for token, recording in recordings
                              if not any(hold.binds_on(today) for hold in facts[token].holds))
        return ErasureClearance(cleared, deletable)

    # -- helpers ---------------------------------------------------------------------------------

    def _require(self, principal: Principal, action: str, subject: str, *, justification: str | None = None) -> None:
        decision = self.authorizer.decide(principal, action, self.vault.store.resource(subject), purpose=None,
                                          now=self.clock.now(), justification=justification)
        if not decision.allowed:
            raise PermissionDeniedError(f"{action} refused by a {decision.rule} rule", rule=decision.rule)

    def _log(self, event_type: str, principal: Principal, subject: str, request_id: str, *, status: str,
             due: date | None = None, reason: str | None = None) -> int:
        receipt = self.audit.record(event_type, actor=principal.actor, subject=subject, payload=GdprPayload(
            request_id=request_id, article="17", status=status, reason=reason, due=_midnight(due)))
        return receipt.index

    def _today(self) -> date:
        return self.clock.now().date()


def _refused(assessment: ErasureAssessment) -> ErasureRefusedError:
    rules = ", ".join(sorted({r.rule for r in assessment.reasons}))
    return ErasureRefusedError(f"erasure is refused while these keep the data: {rules} (GDPR Art. 17(3)(b), (e))",
                               **assessment_json(assessment))


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)
