"""Fixtures of the audit tests: a migrated database and an AuditLog with a fresh log key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from audit.checkpoint import Signer
from audit.events import Actor, ActorKind
from audit.service import AuditLog
from core import migrate
from core.db import make_engine

AGENT = Actor(id="agent-7", kind=ActorKind.USER)
SUBJECT = "sub_TESTSUBJECT0001"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def signer() -> Signer:
    return Signer.generate("tarcza/test-log")


@pytest.fixture
def audit_log(engine: Engine, signer: Signer) -> Iterator[AuditLog]:
    log = AuditLog(engine, signer, checkpoint_every_entries=10_000)
    yield log
    log.close()


def contact(log: AuditLog, subject: str = SUBJECT, channel: str = "sms", key: str | None = None):  # type: ignore[no-untyped-def]
    """Append a synthetic contact attempt."""
    return log.record("contact.attempted", actor=AGENT, subject=subject, idempotency_key=key,
                      payload={"channel": channel, "direction": "outbound", "agent_id": AGENT.id})
