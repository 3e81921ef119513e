"""``tarcza demo seed``: fill a data directory with synthetic subjects, contacts and recordings.

Everything goes through the real services, as a collection system's import would: the
subjects through the vault's bulk path (sealed, blind-indexed, one ``vault.subject_created``
entry each); debts and cases through the contacts service; every contact through
:meth:`ContactService.record`, so the firewall decides it (a refused one is logged as
``contact.blocked``), its note is scrubbed and sealed, a visit's position sealed; the
recordings through ``store_recording`` (encrypted blobs, a ``recording.stored`` entry
each, announced to the debtor).

The actor is Tarcza's own system principal ``demo-seeder`` (kind ``system``), which the
policies allow to create subjects and record contacts; every entry names it, so the
demonstration data is easy to tell from real work in the log.

Idempotent per seed: the people are a pure function of ``(seed, index)``
(:mod:`api.demo_data`), a subject's idempotency key is ``demo:<seed>:<index>``, debts and
cases have fixed ids, and a contact's idempotency key is ``demo:<seed>:<index>:<n>``. A
re-run gets the same tokens back from the vault, the same debts and cases, the first
answer (receipt or refusal) for every contact, and skips recordings the subject already
has. Only ``policy.loaded``, which the policy engine records whenever a process loads it,
is new.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Final

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from api.cli.common import console, err_console, initialise_runtime, runtime
from api.demo_data import DemoContact, DemoPerson, demo_people, demo_recording
from api.runtime import Runtime
from audit.events import ActorKind
from audit.repository import EntryFilter
from contacts.debts import NewDebt
from contacts.service import ContactRecord, ContactRefusedError
from identity.principal import Principal
from vault.service import NewSubject

app = typer.Typer(no_args_is_help=True, help="Synthetic demonstration data (fictional people, Faker pl_PL).")

SEEDER: Final = Principal(id="demo-seeder", kind=ActorKind.SYSTEM)
RECORDING_TYPE: Final = "audio/wav"


@dataclass
class SeedSummary:
    subjects: int = 0
    new_subjects: int = 0
    third_parties: int = 0
    debts: int = 0
    events: int = 0
    new_events: int = 0
    refused: int = 0
    recordings: int = 0
    new_recordings: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"subjects": self.subjects, "new_subjects": self.new_subjects, "third_parties": self.third_parties,
                "debts": self.debts, "events": self.events, "new_events": self.new_events, "refused": self.refused,
                "recordings": self.recordings, "new_recordings": self.new_recordings,
                "seconds": round(self.seconds, 3)}


def subject_key(seed: int, index: int) -> str:
    return f"demo:{seed}:{index}"


def contact_key(seed: int, index: int, n: int) -> str:
    return f"demo:{seed}:{index}:{n}"


@app.command("seed")
def seed_command(
    subjects: Annotated[int, typer.Option(help="Synthetic subjects to create (debtors and guarantors).",
                                          min=1, max=10_000_000)] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the data; the same seed gives the same people.", min=0)] = 0,
    recordings: Annotated[int, typer.Option(help="Recordings (1 s WAV of noise) for the first debtors.",
                                            min=0)] = 0,
    batch: Annotated[int, typer.Option(help="Subjects per vault bulk call and per audit batch.",
                                       min=1, max=5000)] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Create synthetic subjects with contact histories (and recordings); safe to re-run with the same seed."""
    rt = runtime()
    for line in initialise_runtime(rt):  # what `tarcza init` does, if it has not been done
        err_console.print(line, style="dim")
    started = time.perf_counter()
    summary = SeedSummary()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, disable=as_json or not err_console.is_terminal) as bar:
        people_task = bar.add_task("subjects and contacts", total=subjects)
        recording_tokens: list[tuple[int, str]] = []
        for start in range(0, subjects, batch):
            people = demo_people(seed, start, min(batch, subjects - start))
            tokens = _seed_batch(rt, seed, people, summary)
            for person, token in zip(people, tokens, strict=True):
                if person.kind == "debtor" and len(recording_tokens) < recordings:
                    recording_tokens.append((person.index, token))
            bar.advance(people_task, len(people))
        if recordings:
            recording_task = bar.add_task("recordings", total=len(recording_tokens))
            for index, token in recording_tokens:
                _seed_recording(rt, seed, index, token, summary)
                bar.advance(recording_task)
    summary.seconds = time.perf_counter() - started
    if as_json:
        console.print_json(data=summary.to_json())
        return
    console.print(
        f"{summary.subjects} subjects ({summary.new_subjects} new, {summary.third_parties} third parties), "
        f"{summary.debts} debts, {summary.events} contacts ({summary.new_events} new, {summary.refused} refused "
        f"by the firewall), {summary.recordings} recordings "
        f"({summary.new_recordings} new) in {summary.seconds:.1f} s, as {SEEDER.id}")


def _seed_batch(rt: Runtime, seed: int, people: Sequence[DemoPerson], summary: SeedSummary) -> list[str]:
    """Create (or find again) a batch of subjects, their debts and cases, and record their contacts."""
    tokens = rt.vault.create_subjects(SEEDER, [NewSubject(p.kind, p.fields, subject_key(seed, p.index))
                                               for p in people])
    contacts = rt.contacts
    for person, token in zip(people, tokens, strict=True):
        summary.subjects += 1
        summary.third_parties += person.kind == "third_party"
        for debt in person.debts:
            contacts.debts.add(SEEDER, NewDebt(id=debt.id, subject=token, creditor=debt.creditor, kind=debt.kind,
                                               consumer=debt.consumer, amount_minor=debt.amount_minor,
                                               due_date=debt.due_date))
            summary.debts += 1
        if person.debts:
            contacts.debts.open_case(SEEDER, person.case_id, token, person.debts[0].id)
        new = 0
        for n, contact in enumerate(person.contacts):
            summary.events += 1
            try:
                receipt = contacts.record(SEEDER, _record(person, token, contact), contact_key(seed, person.index, n))
            except ContactRefusedError as refusal:
                summary.refused += 1
                new += not refusal.extra.get("duplicate")
                continue
            new += not receipt.duplicate
        summary.new_events += new
        summary.new_subjects += new == len(person.contacts)  # nothing of it was there before this run
    return tokens


def _record(person: DemoPerson, token: str, contact: DemoContact) -> ContactRecord:
    debt = person.debts[0] if person.debts else None
    gps = None if contact.gps is None else tuple(float(x) for x in contact.gps.split(","))
    return ContactRecord(
        subject=token, channel=contact.channel.value, direction=contact.direction, agent_id=contact.agent_id,
        started_at=contact.started_at, ended_at=contact.ended_at, debt_id=debt.id if debt else None,
        case_id=person.case_id if debt else None, outcome=contact.outcome,
        demands_payment=contact.demands_payment and debt is not None, notes=contact.note,
        gps=(gps[0], gps[1]) if gps else None, gps_accuracy_m=10 if gps else None,
        promise_amount_minor=(debt.amount_minor // 4 if debt else 10_000) if contact.outcome == "promise_to_pay"
        else None,
        promise_due=(contact.started_at + timedelta(days=14)).date() if contact.outcome == "promise_to_pay" else None,
        currency="PLN" if contact.outcome == "promise_to_pay" else None)


def _seed_recording(rt: Runtime, seed: int, index: int, token: str, summary: SeedSummary) -> None:
    summary.recordings += 1
    earlier = rt.audit.query(EntryFilter(subject=token, event_type="recording.stored", actor=SEEDER.id), limit=1)
    if earlier.items:
        return
    rt.vault.store_recording(SEEDER, token, io.BytesIO(demo_recording(seed, index)), RECORDING_TYPE, announced=True)
    summary.new_recordings += 1
