"""The subject's archive (GDPR Art. 15, 20) as the reveal of the officer who runs it.

:class:`SubjectExporter` gathers everything about a subject for :func:`gdpr.archive.build_archive`.
Every opening is the vault gate's (:mod:`vault.access`, ADR 0014): decided for the person or
client running the export, for the purpose ``gdpr_request`` (a fresh second factor, the purposes
of their roles, a compliance officer only by break-glass with a justification, reviewed),
recorded as theirs with the exporter named as the component acting for them (``via``), and only
then opened. The officer is decided once on the subject before anything else; a refusal is
recorded and nothing is written. The checkpoint covering the archive's log part is issued after
the openings, so the archive shows the export's own accesses.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from audit.export import export_log
from audit.repository import EntryFilter
from audit.service import AuditLog
from contacts.service import ContactService
from core.clock import SYSTEM_CLOCK, Clock
from gdpr import recipients
from gdpr.archive import ArchiveSummary, build_archive
from gdpr.export_data import (
    ErasureInfo,
    ExportContact,
    ExportContents,
    ExportDebt,
    ExportRecording,
    ExportRetention,
)
from gdpr.legal_texts import RECIPIENTS, purposes_from_policy
from gdpr.redaction import redact_third_parties
from gdpr.retention import load_retention
from identity.principal import Principal
from policies.authorizer import Authorizer
from vault.service import Action, VaultService

__all__ = ["CONTACT_TYPES", "EXPORTER", "EXPORT_PURPOSE", "SubjectExporter"]

EXPORTER: Final = "gdpr-exporter"
"""The component that opens a subject's data for their export, acting for the officer who runs it (``via``)."""
EXPORT_PURPOSE: Final = "gdpr_request"
CONTACT_TYPES: Final = frozenset({"contact.attempted", "contact.completed", "contact.received", "contact.visit"})


class SubjectExporter:
    """Builds a subject's archive as the reveal of the principal who asks for it."""

    def __init__(self, vault: VaultService, contacts: ContactService, audit: AuditLog, authorizer: Authorizer,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.vault = vault
        self.contacts = contacts
        self.audit = audit
        self.authorizer = authorizer
        self.clock = clock

    def build(self, principal: Principal, subject: str, request_id: str, out: Path, *,
              include_recordings: bool = False, justification: str | None = None) -> ArchiveSummary:
        """The subject's archive at ``out``, opened as ``principal``'s reveal (see the module docstring)."""
        opener = _Opener(self.vault, principal, subject, justification)
        opener.check()  # the officer's decision on this subject, before anything else happens
        contents = self._gather(subject, request_id, include_recordings, opener)
        self.audit.issue_checkpoint()  # the archive's log part is covered by a checkpoint that includes everything
        with tempfile.TemporaryDirectory(prefix="tarcza-export-log-") as work:
            log_dir = Path(work) / "log"
            export_log(self.audit, log_dir, EntryFilter(subject=subject))
            return build_archive(contents, log_dir, out, include_recordings=include_recordings,
                                 signer=self.audit.signer)

    def _gather(self, subject: str, request_id: str, include_recordings: bool, opener: _Opener) -> ExportContents:
        """Everything about the subject, for the archive (see :meth:`export`), opened by ``opener``."""
        status = self.vault.subject_status(subject)
        entries = self.audit.query(EntryFilter(subject=subject), limit=100_000).items
        kind = next((e.event["payload"].get("subject_kind") for e in entries
                     if e.event["type"] == "vault.subject_created"), "debtor")
        fields: dict[str, list[str]] = {}
        notes: dict[int, str] = {}
        if status == "active":
            fields = opener.fields(list(self.vault.catalogue.names()))
            sealed = [(e.index, "note", e.event["payload"].get("notes_original") or e.event["payload"]["notes"])
                      for e in entries if e.event["type"] in CONTACT_TYPES and "notes" in e.event["payload"]]
            if sealed:
                opened = opener.event_values([(f, _unb64(b)) for _, f, b in sealed])
                detector = self.contacts.detector()
                notes = {index: redact_third_parties(text, fields, detector)
                         for (index, _, _), text in zip(sealed, opened, strict=True)}
        contacts = [_export_contact(e.index, e.event, notes.get(e.index)) for e in entries
                    if e.event["type"] in CONTACT_TYPES or e.event["type"] == "contact.blocked"]
        recordings = [_export_recording(e.index, e.event, opener if include_recordings and status == "active"
                                        else None) for e in entries if e.event["type"] == "recording.stored"]
        debts = [ExportDebt(id=d.id, creditor=d.creditor, assigned_on=d.assigned_on, kind=d.kind,
                            consumer=d.consumer, amount_minor=d.amount_minor, currency=d.currency,
                            due_date=d.due_date, status=d.status, time_barred_on=d.time_barred_on,
                            judgment_date=d.judgment_date, settled_on=d.settled_on)
                 for d in self.contacts.debts.of_subject(subject)]
        retention = [ExportRetention(data_category=name, period=schedule.rule, basis=schedule.basis)
                     for name, schedule in load_retention().schedules.items()]
        purposes = purposes_from_policy(self._purpose_descriptions())
        tombstone = next((e for e in entries if e.event["type"] == "gdpr.erasure_performed"), None)
        shredded = next((e for e in entries if e.event["type"] == "vault.subject_shredded"), None)
        erasure = None if shredded is None else ErasureInfo(
            erased_at=_parse_time(shredded.event["time"]), tombstone_log_index=tombstone.index if tombstone else None)
        return ExportContents(
            subject=subject, subject_kind="third_party" if kind == "third_party" else "debtor",
            status="shredded" if status == "shredded" else "active", generated_at=self.clock.now(),
            shredded_at=erasure.erased_at if erasure else None, request_id=request_id, fields=fields,
            contacts=contacts, recordings=recordings, debts=debts, purposes=purposes, recipients=RECIPIENTS,
            retention=retention, erasure=erasure,
            recipient_register=recipients.for_export(self.contacts.engine, subject))

    def _purpose_descriptions(self) -> dict[str, str]:
        parameters = getattr(self.authorizer, "parameters", None)
        purposes = getattr(parameters, "purposes", None)
        return dict(purposes) if purposes else {"debt_collection": "collecting a debt from the subject"}


class _Opener:
    """The officer's openings for one export, each through the vault's gate (decided, recorded, then opened),
    with the exporter named as the component acting for them."""

    def __init__(self, vault: VaultService, principal: Principal, subject: str, justification: str | None) -> None:
        self.vault = vault
        self.principal = principal
        self.subject = subject
        self.justification = justification

    def check(self) -> None:
        """Whether the officer may reveal this subject for the export: refused (and recorded) before anything.

        The gate records a refusal; an allowed answer here is a question only, each opening below
        is decided and recorded again by the gate.
        """
        gate = self.vault.gate
        decision = gate.decide(self.principal, Action.REVEAL, self.subject, purpose=EXPORT_PURPOSE,
                               justification=self.justification)
        if not decision.allowed:
            gate.refuse(self.principal, Action.REVEAL, self.subject, decision, fields=[], purpose=EXPORT_PURPOSE,
                        via=EXPORTER)

    def fields(self, names: Sequence[str]) -> dict[str, list[str]]:
        return self.vault.reveal(self.principal, self.subject, names, EXPORT_PURPOSE, self.justification,
                                 via=EXPORTER)

    def event_values(self, values: Sequence[tuple[str, bytes]]) -> list[str]:
        return self.vault.open_event_values(self.principal, self.subject, values, EXPORT_PURPOSE, full=True,
                                            justification=self.justification, via=EXPORTER)

    def recording(self, recording_id: str) -> Iterable[bytes]:
        return self.vault.read_recording(self.principal, self.subject, recording_id, EXPORT_PURPOSE,
                                         justification=self.justification, via=EXPORTER)


def _export_recording(index: int, event: dict[str, Any], opener: _Opener | None) -> ExportRecording:
    payload = event["payload"]
    recording_id = payload["recording_id"]

    def stream() -> Iterable[bytes]:
        assert opener is not None  # noqa: S101 - only called when recordings are included
        return opener.recording(recording_id)

    return ExportRecording(recording_id=recording_id, sha256=payload["sha256"], size=payload["size"],
                           created_at=_parse_time(event["time"]), media_type=payload.get("media_type"),
                           duration_ms=payload.get("duration_ms"), log_index=index,
                           open=stream if opener is not None else None)


def _export_contact(index: int, event: dict[str, Any], note: str | None) -> ExportContact:
    payload = event["payload"]
    blocked = event["type"] == "contact.blocked"
    return ExportContact(
        log_index=index, event_id=event["id"], event_type=event["type"],
        time=_parse_time(payload.get("planned_at" if blocked else "started_at") or event["time"]),
        channel=payload["channel"], direction=payload.get("direction"), outcome=payload.get("outcome"),
        agent_id=payload.get("agent_id"), debt_id=payload.get("debt_id"), case_id=payload.get("case_id"), note=note,
        decision=f"blocked: {payload.get('rule')}" if blocked else "allowed",
        flags=tuple(payload.get("rules", []) if blocked else payload.get("policy_flags", [])),
        recording_id=payload.get("recording_id"))


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
