"""The retention job: apply ``policies/retention.yaml`` to every subject, with a dry run first.

It walks the vault's active subjects in token order, a page at a time; for each page it
reads the facts the schedules need in a few bulk queries (debts, cases, last contact,
completed requests, active legal holds, recordings) and asks the pure
:func:`gdpr.retention.due_actions` what is due today. The dry run reports that and
changes nothing. The run then, for each due action, appends a ``gdpr.retention_applied``
entry (schedule, rule, since when) and carries it out as Tarcza's own principal
``retention-job``: ``shred_subject`` crypto-shreds the subject (the vault logs
``vault.subject_shredded``), ``delete_recordings`` deletes one recording (``recording.shredded``).
Both go through the one erasure decision (:mod:`gdpr.erasure`), which assesses the same facts
again and hands the vault its clearance; an action it does not clear is skipped and logged.

Idempotent and resumable: a shredded subject is no longer active and a deleted recording
no longer listed, so a run interrupted anywhere and started again does only what is left;
a second run finds nothing due. A legal hold, an open claim and the accounting duty keep
the data whatever a schedule says (:func:`gdpr.retention.erasure_assessment`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Connection

from audit.events import ActorKind, GdprPayload, build_event
from contacts import repository as contacts_repository
from contacts.common import aware
from contacts.debt_info import DebtInfo, debt_infos
from contacts.service import ContactService
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection
from core.logging import get_logger
from gdpr import repository
from gdpr.erasure import ErasureDecision
from gdpr.retention import (
    DueAction,
    HoldFacts,
    RecordingFacts,
    RetentionPolicy,
    SubjectFacts,
    due_actions,
    facts_of,
)
from identity.principal import Principal
from vault.service import VaultService

__all__ = ["RETENTION_PRINCIPAL", "RetentionJob", "RetentionReport"]

log = get_logger(__name__)

RETENTION_PRINCIPAL: Final = Principal(id="retention-job", kind=ActorKind.SYSTEM)
PAGE: Final = 500
Progress = Callable[[int, int], None]  # (subjects done, actions taken so far)


@dataclass
class RetentionReport:
    """What a run (or a dry run) found due and did."""

    today: date
    dry_run: bool
    policy_sha256: str
    subjects_scanned: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)
    shredded: int = 0
    recordings_deleted: int = 0

    def to_json(self, *, with_actions: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "today": self.today.isoformat(), "dry_run": self.dry_run, "policy_sha256": self.policy_sha256,
            "subjects_scanned": self.subjects_scanned, "actions_due": len(self.actions),
            "shred_subject": sum(a["action"] == "shred_subject" for a in self.actions),
            "delete_recordings": sum(a["action"] == "delete_recordings" for a in self.actions),
            "shredded": self.shredded, "recordings_deleted": self.recordings_deleted,
        }
        if with_actions:
            out["actions"] = self.actions
        return out


class RetentionJob:
    """Apply a retention policy to every active subject (see the module docstring)."""

    def __init__(self, vault: VaultService, contacts: ContactService, policy: RetentionPolicy,
                 clock: Clock = SYSTEM_CLOCK, principal: Principal = RETENTION_PRINCIPAL) -> None:
        self.vault = vault
        self.contacts = contacts
        self.audit = contacts.audit
        self.engine = contacts.engine
        self.policy = policy
        self.clock = clock
        self.principal = principal
        self.erasure = ErasureDecision(vault, contacts, clock)

    def dry_run(self, progress: Progress | None = None) -> RetentionReport:
        """What is due today and why, changing nothing."""
        return self._walk(apply=False, progress=progress)

    def run(self, progress: Progress | None = None) -> RetentionReport:
        """Do what is due today, each action logged first."""
        return self._walk(apply=True, progress=progress)

    def subjects_to_scan(self) -> int:
        """How many active subjects there are (for a progress bar's total)."""
        return self.vault.active_count()

    def _walk(self, *, apply: bool, progress: Progress | None) -> RetentionReport:
        today = self.clock.now().date()
        report = RetentionReport(today, not apply, self.policy.sha256)
        after = ""
        while True:
            tokens = self.vault.active_subjects(after, PAGE)
            if not tokens:
                break
            after = tokens[-1]
            facts = self._facts(tokens)
            to_shred: list[tuple[str, list[DueAction]]] = []
            for token in tokens:
                actions = due_actions(self.policy, facts[token], today)
                report.actions += _actions_json(token, actions)
                if apply and actions:
                    self._delete_recordings(token, facts[token], actions, report)
                    shred = [a for a in actions if a.action == "shred_subject"]
                    if shred:
                        to_shred.append((token, shred))
            if to_shred:
                self._shred(to_shred, facts, report)
            report.subjects_scanned += len(tokens)
            if progress is not None:
                progress(report.subjects_scanned, len(report.actions))
        log.info("retention_walked", dry_run=not apply, subjects=report.subjects_scanned,
                 actions=len(report.actions), shredded=report.shredded, recordings=report.recordings_deleted)
        return report

    def _delete_recordings(self, token: str, facts: SubjectFacts, actions: list[DueAction],
                           report: RetentionReport) -> None:
        due = [a for a in actions if a.action == "delete_recordings" and a.recording_id is not None]
        if not due:
            return
        clearance = self.erasure.clear_for_retention({token: facts}, (), [(token, str(a.recording_id)) for a in due])
        for action in due:
            recording = str(action.recording_id)
            if (token, recording) not in clearance.recordings:
                log.warning("retention_not_cleared", subject=token, recording=recording)
                continue
            self.audit.record("gdpr.retention_applied", actor=self.principal.actor, subject=token,
                              payload=_payload(action.action, action.schedule, action.rule, action.since))
            if self.vault.delete_recording(self.principal, token, recording, "retention", clearance):
                report.recordings_deleted += 1

    def _shred(self, due: list[tuple[str, list[DueAction]]], facts: dict[str, SubjectFacts],
               report: RetentionReport) -> None:
        """Shred a page's due subjects the erasure decision clears: their ``gdpr.retention_applied`` entries
        first (each naming every schedule that made it due), then the vault's batch shredding."""
        clearance = self.erasure.clear_for_retention(facts, [token for token, _ in due])
        refused = [token for token, _ in due if token not in clearance.subjects]
        if refused:
            log.warning("retention_not_cleared", subjects=len(refused))
        due = [(token, shred) for token, shred in due if token in clearance.subjects]
        if not due:
            return
        now = self.clock.now()
        events = [(build_event("gdpr.retention_applied", actor=self.principal.actor, time=now, subject=token,
                               payload=_payload("shred_subject", ",".join(a.schedule for a in shred),
                                                "; ".join(sorted({a.rule for a in shred})),
                                                max(a.since for a in shred))), None)
                  for token, shred in due]
        self.audit.append_many(events)
        reports = self.vault.shred_many(self.principal, [token for token, _ in due], clearance)
        report.shredded += sum(not r.already_shredded for r in reports)

    def _facts(self, tokens: list[str]) -> dict[str, SubjectFacts]:
        first, last = tokens[0], tokens[-1]  # a page in token order: one range scan per table
        with read_connection(self.engine) as conn:
            debts = _debts_in_range(conn, first, last)
            closures = contacts_repository.case_closure_in_range(conn, first, last)
            contacts = contacts_repository.last_contact_in_range(conn, first, last)
            holds = repository.active_holds_in_range(conn, first, last)
            completed = repository.last_completed_in_range(conn, first, last)
        recordings = self.vault.recordings_of(first, last)
        return {token: SubjectFacts(
            debts=tuple(facts_of(d) for d in debts.get(token, [])),
            holds=tuple(HoldFacts(id=h["id"], reason=h["reason"], starts_on=h["starts_on"], ends_on=h["ends_on"])
                        for h in holds.get(token, [])),
            recordings=tuple(RecordingFacts(id=r.id, recorded_on=_day(r.created_at))
                             for r in recordings.get(token, []) if r.created_at is not None),
            case_closed_on=_day(closures[token]) if closures.get(token) is not None else None,
            last_contact_on=_day(contacts[token]) if token in contacts else None,
            request_completed_on=_day(completed[token]) if token in completed else None,
        ) for token in tokens}


def _debts_in_range(conn: Connection, first: str, last: str) -> dict[str, list[DebtInfo]]:
    """The debts of the subjects first..last, as debtor and as guarantor or co-debtor, each read for the
    subject with its legal history (one query per table)."""
    own = contacts_repository.debts_in_range(conn, first, last)
    other = contacts_repository.party_debts_in_range(conn, first, last)
    rows = [(token, row) for token, found in own.items() for row in found]
    rows += [(token, row) for token, found in other.items() for row, _role in found]
    infos = debt_infos(conn, [row for _, row in rows], viewers=[token for token, _ in rows])
    out: dict[str, list[DebtInfo]] = {}
    for (token, _), info in zip(rows, infos, strict=True):
        out.setdefault(token, []).append(info)
    return out


def _day(value: datetime | None) -> date:
    assert value is not None  # noqa: S101 - callers pass only present times
    return aware(value).date()


def _payload(action: str, schedule: str, rule: str, since: date) -> GdprPayload:
    return GdprPayload(request_id="retention", status=action, reason=f"{schedule}: {rule}; since {since}"[:500])


def _actions_json(token: str, actions: list[DueAction]) -> list[dict[str, Any]]:
    """The report's lines for one subject: each recording to delete, and the shredding once (its schedules named)."""
    out = [{"subject": token, "action": a.action, "schedule": a.schedule, "rule": a.rule,
            "since": a.since.isoformat(), "recording_id": a.recording_id}
           for a in actions if a.action == "delete_recordings"]
    shred = [a for a in actions if a.action == "shred_subject"]
    if shred:
        out.append({"subject": token, "action": "shred_subject", "schedule": ",".join(a.schedule for a in shred),
                    "rule": "; ".join(sorted({a.rule for a in shred})),
                    "since": max(a.since for a in shred).isoformat(), "recording_id": None})
    return out
