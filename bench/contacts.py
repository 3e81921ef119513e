"""``tarcza bench contacts``: recording contacts through the whole path, and scrubbing notes.

* recorded contacts per second through :meth:`ContactService.record` (authorisation, the
  firewall with its history query, scrubbing of the note, sealing of the note, the PII it
  held and a visit's position, the audit append, the index row), next to a bare audit
  append of a contact event of the same shape (built and appended one by one, as a caller
  with nothing to check or seal would); ours and the baseline take turns, batch by batch;
* scrubbed notes per second by the production detector next to presidio's
  ``AnalyzerEngine`` with the same recognizers, and the recall and precision of both on the
  synthetic corpus (:mod:`bench.detect`; target: at least twice presidio's speed at equal
  recall).
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from faker import Faker

from audit.checkpoint import Signer
from audit.events import Actor, ActorKind, build_event
from audit.service import AuditLog
from bench import detect
from bench.common import Progress, Result
from contacts.calendar import is_working_day
from contacts.debts import NewDebt
from contacts.rules import load_rules
from contacts.service import ContactRecord, ContactService
from core import migrate
from core.db import make_engine
from identity.principal import Principal
from policies.engine import CedarAuthorizer
from vault.detect import PiiDetector
from vault.fields import load_catalogue
from vault.keys import LocalKeyfileProvider
from vault.service import NewSubject, VaultService

SYSTEM = Principal(id="bench-dialer", kind=ActorKind.SYSTEM)
ACTOR = Actor(id="bench-dialer", kind=ActorKind.SYSTEM)
WARSAW = ZoneInfo("Europe/Warsaw")
FIRST_DAY = date(2024, 1, 2)  # contacts fall on Polish working days from here
STRIDE = 3  # working days between two contacts with one subject: under every cap, no cooldown
ROUNDS = 20


def run(url: str, *, contacts: int = 2000, subjects: int = 500, notes: int = 1000,
        progress: Progress | None = None) -> list[Result]:
    """Record ``contacts`` contacts about ``subjects`` subjects, then measure scrubbing on ``notes`` notes."""
    say = progress or (lambda _msg: None)
    results = _recording(url, contacts, subjects, say)
    say(f"scrubbing {notes} synthetic notes with both detectors")
    results += detect.run(notes=notes, progress=say)
    return results


def _recording(url: str, contacts: int, subjects: int, say: Progress) -> list[Result]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    with tempfile.TemporaryDirectory(prefix="tarcza-bench-keys-") as keys_dir:
        provider = LocalKeyfileProvider.create(Path(keys_dir) / "kek.json")
        log = AuditLog(engine, Signer.generate("tarcza/bench"), checkpoint_every_entries=10**12, batch_max=1000)
        authorizer = CedarAuthorizer.load()
        vault = VaultService(engine, provider, log, authorizer, load_catalogue())
        service = ContactService(engine, vault, log, authorizer, load_rules(), detector=PiiDetector)
        try:
            say(f"creating {subjects} subjects with a debt and a case each")
            people = _subjects(vault, service, subjects)
            records = _contacts(people, contacts)
            service.detector()  # built before the clock starts, as in a running server
            ours, bare = _paired(service, log, records, say)
        finally:
            log.close()
            provider.close()
            engine.dispose()
    return [Result("contacts_recorded_per_s", ours, "contacts/s", "bare_audit_append_per_s", bare,
                   higher_is_better=True)]


def _subjects(vault: VaultService, service: ContactService, count: int) -> list[tuple[str, str, str]]:
    """``count`` subjects with names and an address, each with a consumer debt and a case."""
    fake = Faker("pl_PL")
    fake.seed_instance(6)
    tokens = vault.create_subjects(SYSTEM, [NewSubject("debtor", {
        "first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel(),
        "address": fake.address().replace("\n", ", ")}) for _ in range(count)])
    out = []
    for n, token in enumerate(tokens):
        debt_id, case_id = f"B-{n:06d}", f"BC-{n:06d}"
        service.debts.add(SYSTEM, NewDebt(id=debt_id, subject=token, creditor="Przykładowy Bank S.A.", kind="general",
                                         consumer=True, amount_minor=100_000, due_date=date(2025, 5, 31)))
        service.debts.open_case(SYSTEM, case_id, token, debt_id)
        out.append((token, debt_id, case_id))
    return out


def _contacts(people: list[tuple[str, str, str]], count: int) -> list[ContactRecord]:
    """Contacts the firewall allows: working days, working hours, spread so no cap or cooldown bites.

    Half carry a note with PII (a phone number and a PESEL); some are field visits with a
    GPS position.
    """
    fake = Faker("pl_PL")
    fake.seed_instance(7)
    rng = random.Random(7)
    rounds = -(-count // len(people))
    days = _working_days(FIRST_DAY, rounds * STRIDE)
    out: list[ContactRecord] = []
    for n in range(count):
        position, round_ = n % len(people), n // len(people)
        token, debt_id, case_id = people[position]
        day = days[round_ * STRIDE]
        at = datetime(day.year, day.month, day.day, 9 + rng.randrange(8), rng.randrange(60), tzinfo=WARSAW)
        visit = position % 10 == 9 and round_ % 3 == 0  # a tenth of the subjects, every ninth working day
        at = at.astimezone(UTC)
        note = (f"Dłużnik podał nowy numer {fake.phone_number()} i prosi o kontakt po 16:00; PESEL {fake.pesel()}."
                if n % 2 == 0 else None)
        out.append(ContactRecord(
            subject=token, channel="visit" if visit else "phone", direction="outbound",
            agent_id="bench-agent", started_at=at, debt_id=debt_id, case_id=case_id,
            outcome="not_at_home" if visit else "no_answer", notes=note,
            gps=(52.0 + rng.random(), 21.0 + rng.random()) if visit else None, gps_accuracy_m=10 if visit else None))
    return out


def _working_days(first: date, count: int) -> list[date]:
    out: list[date] = []
    day = first
    while len(out) < count:
        if is_working_day(day):
            out.append(day)
        day += timedelta(days=1)
    return out


def _bare(log: AuditLog, record: ContactRecord) -> None:
    event = build_event("contact.attempted", actor=ACTOR, time=datetime.now(UTC), subject=record.subject, payload={
        "channel": record.channel, "direction": record.direction, "agent_id": record.agent_id,
        "debt_id": record.debt_id, "case_id": record.case_id, "outcome": record.outcome,
        "started_at": record.started_at})
    log.append(event)


def _paired(service: ContactService, log: AuditLog, records: list[ContactRecord],
            say: Progress) -> tuple[float, float]:
    """Contacts per second through the service and by bare appends, in alternating batches."""
    size = max(1, len(records) // ROUNDS)
    ours_time = bare_time = 0.0
    done = 0
    for start in range(0, len(records), size):
        chunk = records[start:start + size]
        began = time.perf_counter()
        for record in chunk:
            service.record(SYSTEM, record)
        ours_time += time.perf_counter() - began
        began = time.perf_counter()
        for record in chunk:
            _bare(log, record)
        bare_time += time.perf_counter() - began
        done += len(chunk)
        say(f"recorded {done}/{len(records)} contacts (and as many bare appends)")
    return len(records) / ours_time, len(records) / bare_time
