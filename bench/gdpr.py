"""``tarcza bench gdpr``: a subject's export, erasure, and the retention job, at a realistic size.

The fill: ``subjects`` subjects in the vault (through its bulk path), each with a consumer
debt and a case (a tenth settled in 2019 with their case closed then: due for shredding;
the rest open), and ``events`` contact events in the audit log about them (bulk appends),
indexed in ``contact_events``. Then:

* **export** of one subject with a few contacts among them: the whole
  :meth:`GdprService.export` (a checkpoint, the reveal, the log export of the subject's
  entries with proofs, the archive) next to reading the same subject's entries from the
  log (p50 of several exports; target: at most 1 s);
* **erasure** per subject: :meth:`GdprService.erase` of a verified request (assessment from
  debts and holds, the shredding, the tombstone, closing the request), next to one bare
  durable audit append (target: at most 50 ms);
* **retention** over every subject: the dry run, then the run (which shreds the tenth that
  is due), next to a plain scan of the same debts (target: at most 60 s each).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine, insert, select, text

from audit.checkpoint import Signer
from audit.events import Actor, ActorKind, build_events
from audit.repository import EntryFilter
from audit.service import AuditLog
from bench.common import Progress, Result
from contacts import repository as contacts_repository
from contacts.rules import load_rules
from contacts.service import ContactService
from core import migrate
from core.db import make_engine, write_connection
from gdpr.retention import load_retention
from gdpr.retention_job import RetentionJob
from gdpr.service import GdprService
from identity.principal import Principal, Role
from policies.engine import CedarAuthorizer
from vault.detect import PiiDetector
from vault.fields import load_catalogue
from vault.keys import LocalKeyfileProvider
from vault.service import NewSubject, VaultService

SYSTEM = Principal(id="bench-crm", kind=ActorKind.SYSTEM)
ACTOR = Actor(id="bench-dialer", kind=ActorKind.SYSTEM)
BATCH = 1000
EXPORTS = 5
ERASURES = 30


def run(url: str, *, subjects: int = 10_000, events: int = 100_000, progress: Progress | None = None) -> list[Result]:
    say = progress or (lambda _msg: None)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with tempfile.TemporaryDirectory(prefix="tarcza-bench-gdpr-") as work:
        provider = LocalKeyfileProvider.create(Path(work) / "kek.json")
        log = AuditLog(engine, Signer.generate("tarcza/bench"), checkpoint_every_entries=10**12, batch_max=1000)
        authorizer = CedarAuthorizer.load()
        vault = VaultService(engine, provider, log, authorizer, load_catalogue())
        contacts = ContactService(engine, vault, log, authorizer, load_rules(), detector=PiiDetector)
        gdpr = GdprService(engine, vault, contacts, log, authorizer)
        dpo = Principal(id="bench-dpo", kind=ActorKind.USER, roles=frozenset({Role.DPO}),
                        second_factor_at=datetime.now(UTC))
        try:
            tokens = _fill(engine, vault, log, subjects, events, say)
            results = [_export(gdpr, log, dpo, tokens, Path(work), say)]
            results.append(_erasure(gdpr, log, dpo, tokens, say))
            results += _retention(engine, vault, contacts, len(tokens), say)
        finally:
            log.close()
            provider.close()
            engine.dispose()
    return results


def _fill(engine: Engine, vault: VaultService, log: AuditLog, subjects: int, events: int,
          say: Progress) -> list[str]:
    rng = random.Random(20261123)
    tokens: list[str] = []
    now = datetime.now(UTC)
    for start in range(0, subjects, BATCH):
        count = min(BATCH, subjects - start)
        batch = vault.create_subjects(SYSTEM, [NewSubject("debtor", {
            "first_name": "Jan", "last_name": f"Testowy{start + i}", "phone": f"+48 601 {rng.randrange(10**6):06d}"})
            for i in range(count)])
        tokens += batch
        debts, cases = [], []
        for i, token in enumerate(batch):
            settled = (start + i) % 10 == 0
            debt_id = f"BD-{start + i:07d}"
            debts.append({"id": debt_id, "subject_token": token, "creditor": "Przykładowy Bank S.A.",
                          "kind": "general", "consumer": True, "currency": "PLN", "amount_minor": 100_000,
                          "due_date": date(2018, 3, 31) if settled else date(2025, 6, 30), "judgment_date": None,
                          "assigned_on": None, "status": "settled" if settled else "open",
                          "settled_on": date(2019, 6, 10) if settled else None, "created_at": now, "updated_at": now})
            cases.append({"id": f"BC-{start + i:07d}", "subject_token": token, "debt_id": debt_id,
                          "status": "closed" if settled else "open", "opened_at": now,
                          "closed_at": datetime(2019, 7, 1, tzinfo=UTC) if settled else None})
        with write_connection(engine) as conn:
            conn.execute(insert(contacts_repository.debts), debts)
            conn.execute(insert(contacts_repository.cases), cases)
        say(f"subjects: {len(tokens):,}/{subjects:,}")
    started = datetime(2026, 3, 2, 9, tzinfo=UTC)
    for start in range(0, events, BATCH):
        count = min(BATCH, events - start)
        chosen = [tokens[rng.randrange(len(tokens))] for _ in range(count)]
        built = []
        for token in chosen:
            built += build_events("contact.attempted", actor=ACTOR, time=now, subjects=[token], payload={
                "channel": "phone", "direction": "outbound", "agent_id": "bench-agent", "outcome": "no_answer",
                "conversation": False, "started_at": started})
        receipts = log.append_many([(event, None) for event in built])
        rows = [{"id": r.event_id, "subject_token": token, "debt_id": None, "case_id": None,
                 "event_type": "contact.attempted", "channel": "phone", "direction": "outbound",
                 "agent_id": "bench-agent", "occurred_at": started, "conversation": False, "outcome": "no_answer",
                 "decision": "allow", "rules": "", "recording_id": None, "log_index": r.index, "recorded_at": now}
                for r, token in zip(receipts, chosen, strict=True)]
        with write_connection(engine) as conn:
            conn.execute(insert(contacts_repository.events), rows)
        if (start // BATCH) % 50 == 0:
            say(f"contact events: {start + count:,}/{events:,}")
    return tokens


def _export(gdpr: GdprService, log: AuditLog, dpo: Principal, tokens: list[str], work: Path,
            say: Progress) -> Result:
    say(f"export of one subject among {len(tokens):,} ({EXPORTS} times)")
    ours, bare = [], []
    for n in range(EXPORTS):
        token = tokens[1 + n * 7]  # open debts: subjects an export is asked for
        request = gdpr.receive(dpo, token, "access", date.today(), "letter")  # noqa: DTZ011 - today is today
        gdpr.verify_identity(dpo, request["id"], "id_document")
        began = time.perf_counter()
        gdpr.export(dpo, request["id"], work / f"export-{n}.zip")
        ours.append(time.perf_counter() - began)
        began = time.perf_counter()
        log.query(EntryFilter(subject=token), limit=100_000)
        bare.append(time.perf_counter() - began)
    return Result(f"export_one_subject_of_{len(tokens)}", statistics.median(ours), "s",
                  "read_subject_entries_from_log", statistics.median(bare), False, "value <= 1")


def _erasure(gdpr: GdprService, log: AuditLog, dpo: Principal, tokens: list[str], say: Progress) -> Result:
    say(f"erasure of {ERASURES} subjects, one verified request each")
    settled = [t for i, t in enumerate(tokens) if i % 10 == 0][-ERASURES:]
    ours, bare = [], []
    for token in settled:
        request = gdpr.receive(dpo, token, "erasure", date.today(), "letter")  # noqa: DTZ011
        gdpr.verify_identity(dpo, request["id"], "id_document")
        began = time.perf_counter()
        outcome = gdpr.erase(dpo, request["id"])
        ours.append(time.perf_counter() - began)
        if not outcome.erased:
            raise RuntimeError("a subject whose debt was settled in 2019 was not erased")
        began = time.perf_counter()
        log.record("operator.note", actor=ACTOR, payload={"code": "bench_baseline"})
        bare.append(time.perf_counter() - began)
    return Result("erasure_per_subject", statistics.median(ours) * 1000, "ms", "bare_audit_append",
                  statistics.median(bare) * 1000, False, "value <= 50")


def _retention(engine: Engine, vault: VaultService, contacts: ContactService, subjects: int,
               say: Progress) -> list[Result]:
    job = RetentionJob(vault, contacts, load_retention())
    say(f"retention dry run over {subjects:,} subjects")
    began = time.perf_counter()
    dry = job.dry_run()
    dry_s = time.perf_counter() - began
    began = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(select(contacts_repository.debts)).all()
        conn.execute(text("SELECT 1")).all()
    scan_s = time.perf_counter() - began
    due = sum(a["action"] == "shred_subject" for a in dry.actions)
    say(f"retention run: {due:,} subjects due for shredding")
    began = time.perf_counter()
    done = job.run()
    run_s = time.perf_counter() - began
    if done.shredded != due:
        raise RuntimeError(f"the run shredded {done.shredded} subjects, the dry run listed {due}")
    return [
        Result(f"retention_dry_run_{subjects}_subjects", dry_s, "s", "plain_scan_of_debts", scan_s, False,
               "value <= 60"),
        Result(f"retention_run_{subjects}_subjects_{due}_shredded", run_s, "s", "plain_scan_of_debts", scan_s,
               False, "value <= 60"),
    ]
