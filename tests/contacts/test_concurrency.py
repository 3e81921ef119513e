"""The firewall under concurrency, on SQLite and PostgreSQL: contacts with one debtor recorded at the
same moment from many threads are decided one after another, so the frequency cap and the cooldown
hold as they would for contacts that came one by one. Synthetic data only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from faker import Faker

from api.runtime import Runtime
from audit.events import ActorKind
from audit.repository import EntryFilter
from contacts.debts import NewDebt
from contacts.service import ContactRecord, ContactRefusedError
from identity.principal import Principal
from vault.service import NewSubject

WARSAW = ZoneInfo("Europe/Warsaw")
DIALER = Principal(id="dialer-test", kind=ActorKind.SYSTEM)
THREADS = 8
CAP = 3  # phone calls per debt in 7 days, policies/contact_rules.yaml


def _debtor(runtime: Runtime, fake: Faker, n: int) -> tuple[str, str]:
    [token] = runtime.vault.create_subjects(DIALER, [NewSubject("debtor", {
        "first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel()})])
    debt_id = f"RACE-{n:05d}"
    runtime.contacts.debts.add(DIALER, NewDebt(id=debt_id, subject=token, creditor="Przykładowy Bank S.A.",
                                               kind="general", consumer=True, amount_minor=100_000,
                                               due_date=date(2026, 6, 30)))
    return token, debt_id


def _call(token: str, debt_id: str, **extra: Any) -> ContactRecord:
    """A call at one moment: every other call of the test counts against its cap (the cap looks back
    from the call's own time, so an earlier call arriving late is judged against its own past)."""
    return ContactRecord(subject=token, channel="phone", direction="outbound", agent_id="agent-race",
                         started_at=datetime(2026, 11, 17, 10, 0, tzinfo=WARSAW), debt_id=debt_id, **extra)


def _at_once(jobs: list[Callable[[], object]]) -> list[object]:
    """Run every job in its own thread, released together; each one's result or exception."""
    results: list[object] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except Exception as exc:  # noqa: BLE001 - the test sorts results from refusals
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


@pytest.fixture
def fake() -> Faker:
    faker = Faker("pl_PL")
    faker.seed_instance(20261123)
    return faker


def test_concurrent_calls_never_exceed_the_frequency_cap(initialised_runtime: Runtime, fake: Faker) -> None:
    """Eight calls on one debt, started together: exactly three are recorded, five refused by the cap,
    and the log holds three contact entries and five contact.blocked entries for the debtor."""
    runtime = initialised_runtime
    token, debt_id = _debtor(runtime, fake, 1)
    jobs: list[Callable[[], object]] = [
        (lambda: runtime.contacts.record(DIALER, _call(token, debt_id, outcome="no_answer")))
        for _ in range(THREADS)]
    results = _at_once(jobs)
    refused = [r for r in results if isinstance(r, ContactRefusedError)]
    others = [r for r in results if isinstance(r, Exception) and not isinstance(r, ContactRefusedError)]
    assert others == []
    assert len(refused) == THREADS - CAP
    assert all("frequency_cap" in [rule["rule"] for rule in r.extra["rules"]] for r in refused)
    page = runtime.audit.query(EntryFilter(subject=token), limit=100)
    types = sorted(item.event["type"] for item in page.items)
    assert types.count("contact.blocked") == THREADS - CAP
    assert len([t for t in types if t.startswith("contact.") and t != "contact.blocked"]) == CAP


def test_concurrent_batches_and_singles_share_one_history(initialised_runtime: Runtime, fake: Faker) -> None:
    """Batches of two calls for several debtors race single calls for the same debtors: per debtor,
    never more than the cap is recorded, whichever request won."""
    runtime = initialised_runtime
    debtors = [_debtor(runtime, fake, n) for n in range(2, 6)]

    def batch() -> object:
        return runtime.contacts.record_many(DIALER, [_call(t, d) for t, d in debtors for _ in (0, 1)])

    jobs: list[Callable[[], object]] = [batch for _ in range(3)]
    jobs += [(lambda t=t, d=d: runtime.contacts.record(DIALER, _call(t, d))) for t, d in debtors]
    results = _at_once(jobs)
    assert [r for r in results if isinstance(r, Exception) and not isinstance(r, ContactRefusedError)] == []
    for token, _debt in debtors:
        page = runtime.audit.query(EntryFilter(subject=token), limit=100)
        recorded = [item for item in page.items if item.event["type"] == "contact.attempted"]
        assert len(recorded) == CAP, token


def test_two_servers_on_one_database_share_the_cap(initialised_runtime: Runtime, fake: Faker) -> None:
    """Two runtimes on one database (two server processes: separate locks, sequencers and pools) race
    calls on one debt: the log's guard refuses the stale ones, they are decided again, and three land."""
    first = initialised_runtime
    second = Runtime(first.settings)
    try:
        token, debt_id = _debtor(first, fake, 9)
        jobs: list[Callable[[], object]] = [
            (lambda rt=rt: rt.contacts.record(DIALER, _call(token, debt_id, outcome="no_answer")))
            for rt in [first, second] * (THREADS // 2)]
        results = _at_once(jobs)
        assert [r for r in results if isinstance(r, Exception) and not isinstance(r, ContactRefusedError)] == []
        assert len([r for r in results if isinstance(r, ContactRefusedError)]) == THREADS - CAP
        page = first.audit.query(EntryFilter(subject=token), limit=100)
        assert len([i for i in page.items if i.event["type"] == "contact.attempted"]) == CAP
    finally:
        second.close()
