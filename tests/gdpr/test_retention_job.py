"""The retention job on SQLite and PostgreSQL: a dry run lists what is due and why without changing
anything; the run shreds the subject whose settled debt is out of the accounting period and deletes a
recording past its two years, skipping an open claim and a legal hold; a second run finds nothing; the
log verifies; `tarcza gdpr retention` does the same from the command line. Synthetic data only."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from typing import Any

import pytest
from faker import Faker
from sqlalchemy import text

from api.runtime import Runtime
from audit.events import ActorKind
from contacts.debts import NewDebt
from identity.principal import Principal, Role

CRM = Principal(id="crm", kind=ActorKind.SYSTEM)


def dpo(runtime: Runtime) -> Principal:
    return Principal("dpo-1", ActorKind.USER, frozenset({Role.DPO}), second_factor_at=runtime.clock.now())


@pytest.fixture
def fake() -> Faker:
    faker = Faker("pl_PL")
    faker.seed_instance(7401)
    return faker


def subject(rt: Runtime, fake: Faker, *, due: date, settled: date | None, close_case: bool) -> str:
    token = rt.vault.create_subject(CRM, "debtor", {"last_name": fake.last_name(), "pesel": fake.pesel()})
    debt_id = f"R-{fake.unique.random_int(10000, 99999)}"
    rt.contacts.debts.add(CRM, NewDebt(id=debt_id, subject=token, creditor="Przykładowy Bank S.A.", kind="general",
                                       consumer=True, amount_minor=10_000, due_date=due))
    if settled is not None:
        rt.contacts.debts.set_status(CRM, debt_id, "settled", settled_on=settled)
    rt.contacts.debts.open_case(CRM, f"C-{debt_id}", token, debt_id)
    if close_case:
        rt.contacts.debts.close_case(CRM, f"C-{debt_id}")
        with rt.engine.begin() as conn:  # closed when the debt was settled, years ago
            conn.execute(text("UPDATE contact_cases SET closed_at = :t WHERE id = :id"),
                         {"t": datetime(2019, 7, 1, tzinfo=UTC), "id": f"C-{debt_id}"})
    return token


class TestRetentionJob:
    def test_dry_run_then_run_then_nothing(self, initialised_runtime: Runtime, fake: Faker) -> None:
        """Only the settled, closed, unheld subject is shredded and only the old recording deleted; the dry run
        changed nothing, a second run does nothing, and every action is in the log before its effect."""
        rt = initialised_runtime
        old = subject(rt, fake, due=date(2018, 3, 31), settled=date(2019, 6, 10), close_case=True)
        open_claim = subject(rt, fake, due=date(2025, 6, 30), settled=None, close_case=False)
        held = subject(rt, fake, due=date(2018, 3, 31), settled=date(2019, 6, 10), close_case=True)
        rt.gdpr.add_hold(dpo(rt), held, "litigation", date(2026, 1, 1))
        fresh = rt.vault.store_recording(CRM, open_claim, [b"RIFF" + b"\x00" * 100], "audio/wav", announced=True)
        stale = rt.vault.store_recording(CRM, open_claim, [b"RIFF" + b"\x01" * 100], "audio/wav", announced=True)
        with rt.engine.begin() as conn:
            conn.execute(text("UPDATE vault_recordings SET created_at = :t WHERE id = :id"),
                         {"t": datetime(2023, 5, 1, tzinfo=UTC), "id": stale.recording_id})
        job = rt.retention_job()
        before = rt.audit.size()

        dry = job.dry_run()
        due = {(a["subject"], a["action"], a["recording_id"]) for a in dry.actions}
        assert due == {(old, "shred_subject", None), (open_claim, "delete_recordings", stale.recording_id)}
        assert rt.audit.size() == before
        assert rt.vault.subject_status(old) == "active"

        progress: list[tuple[int, int]] = []
        done = job.run(lambda subjects, actions: progress.append((subjects, actions)))
        assert (done.shredded, done.recordings_deleted) == (1, 1)
        assert progress[-1][0] == 3
        assert rt.vault.subject_status(old) == "shredded"
        assert rt.vault.subject_status(held) == "active"
        remaining = [r.id for r in rt.vault.recordings_of(open_claim)[open_claim]]
        assert remaining == [fresh.recording_id]
        entries = rt.audit.query(_filter(old), limit=100).items
        types = [e.event["type"] for e in entries]
        assert types.index("gdpr.retention_applied") < types.index("vault.subject_shredded")

        again = job.run()
        assert (again.actions, again.shredded, again.recordings_deleted) == ([], 0, 0)
        assert rt.audit.verify_database().entries == rt.audit.size()

    def test_cli_dry_run_and_run(self, initialised_runtime: Runtime, cli_env: dict[str, str], fake: Faker) -> None:
        """`tarcza gdpr retention --json` reports the due shredding; `--run` does it; the next dry run is empty."""
        rt = initialised_runtime
        old = subject(rt, fake, due=date(2018, 3, 31), settled=date(2019, 6, 10), close_case=True)

        def cli(*args: str) -> dict[str, Any]:
            result = subprocess.run([sys.executable, "-m", "api", "gdpr", "retention", *args, "--json"], env=cli_env,
                                    capture_output=True, text=True, timeout=120, check=False)
            assert result.returncode == 0, result.stderr
            return dict(json.loads(result.stdout))

        dry = cli()
        assert [(a["subject"], a["action"]) for a in dry["actions"]] == [(old, "shred_subject")]
        assert cli("--run")["shredded"] == 1
        assert cli()["actions"] == []


def _filter(token: str) -> Any:
    from audit.repository import EntryFilter

    return EntryFilter(subject=token)
