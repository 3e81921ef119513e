"""Guarded side rows: the log's optimistic lock for callers that decide on what they read (a contact's
firewall on the subject's history). On SQLite and PostgreSQL, through AuditLog.append_group."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, Engine, Index, Integer, MetaData, String, Table, select

from audit.events import build_event
from audit.sequencer import Receipt, SideRow, StaleDecisionError
from audit.service import AuditLog
from tests.audit.conftest import AGENT, SUBJECT

_meta = MetaData()
CHAINS = Table(
    "test_guarded_chains", _meta,
    Column("id", String(36), primary_key=True),
    Column("chain", String(16), nullable=False),
    Column("number", Integer, nullable=False),
    Column("log_index", BigInteger, nullable=False),
    Index("uq_test_guarded_chains", "chain", "number", unique=True),
)


@pytest.fixture
def chains(engine: Engine) -> Iterator[Table]:
    _meta.create_all(engine)
    yield CHAINS
    _meta.drop_all(engine)


def _entry(chain: str, number: int, key: str | None = None) -> tuple[Any, str | None, SideRow]:
    event = build_event("contact.attempted", actor=AGENT, subject=SUBJECT, time=datetime.now(UTC),
                        payload={"channel": "sms", "direction": "outbound", "agent_id": AGENT.id})
    return event, key, SideRow(CHAINS, {"id": event.id, "chain": chain, "number": number},
                               guard=("chain", "number"))


def _kinds(results: list[Receipt | Exception]) -> list[str]:
    return ["stale" if isinstance(r, StaleDecisionError) else "dup" if isinstance(r, Receipt) and r.duplicate
            else "new" if isinstance(r, Receipt) else type(r).__name__ for r in results]


def _rows(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return sorted((str(c), int(n)) for c, n in conn.execute(select(CHAINS.c.chain, CHAINS.c.number)))


def test_taken_guard_refuses_the_entry_and_the_rest_of_its_chain(audit_log: AuditLog, engine: Engine,
                                                                 chains: Table) -> None:
    """A caller that read chain "a" at 1 (numbers 2, 3) after another took 2 is refused for both; a
    chain it shares the group with is appended, and the log holds no entry of the refused ones."""
    assert _kinds(audit_log.append_group([_entry("a", 1), _entry("a", 2)])) == ["new", "new"]
    size = audit_log.size()
    results = audit_log.append_group([_entry("a", 2), _entry("a", 3), _entry("b", 1)])
    assert _kinds(results) == ["stale", "stale", "new"]
    assert audit_log.size() == size + 1
    assert _rows(engine) == [("a", 1), ("a", 2), ("b", 1)]


def test_the_same_guard_twice_in_one_batch_lands_once(audit_log: AuditLog, engine: Engine,
                                                      chains: Table) -> None:
    assert _kinds(audit_log.append_group([_entry("c", 1), _entry("c", 1), _entry("c", 2)])) == [
        "new", "stale", "stale"]
    assert _rows(engine) == [("c", 1)]


def test_a_duplicate_breaks_its_chain(audit_log: AuditLog, engine: Engine, chains: Table) -> None:
    """A retried entry answered by its idempotency key writes no side row, so the next number of its
    chain would land after a hole: it is refused as stale (decided again) rather than trusted."""
    first = _entry("d", 1, key="guard-test-key")
    assert _kinds(audit_log.append_group([first])) == ["new"]
    assert _kinds(audit_log.append_group([first, _entry("d", 2)])) == ["dup", "stale"]
    assert _rows(engine) == [("d", 1)]
