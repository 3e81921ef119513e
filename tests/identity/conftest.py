"""Fixtures for identity tests: a runtime after `tarcza init` with a fixed clock, and fast argon2id."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher, Type

from api.runtime import Runtime
from core.clock import FixedClock
from identity.passwords import Passwords
from identity.service import Identity, transaction

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def rt(settings, clock: FixedClock) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    """A runtime after `tarcza init` (schema, log key, identity key) whose clock stands still."""
    from api.cli.common import initialise_runtime

    runtime = Runtime(settings, clock=clock)
    initialise_runtime(runtime)
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def fast_passwords() -> Passwords:
    """argon2id with tiny parameters: the same code path, without 64 MiB per hash."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID))


IdentityScope = Callable[[], AbstractContextManager[Identity]]


@pytest.fixture
def ident(rt: Runtime, fast_passwords: Passwords) -> IdentityScope:
    """Open an identity transaction on the test runtime (commit, then audit), like the edges do."""

    def scope() -> AbstractContextManager[Identity]:
        return transaction(rt.sessions, audit=lambda: rt.audit, clock=rt.clock, box=rt.secret_box_loader(),
                           passwords=fast_passwords)

    return scope


@pytest.fixture
def oathtool() -> str:
    """Path of oathtool (an independent TOTP implementation); skipped without it, failed in CI."""
    path = shutil.which("oathtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("oathtool is required in CI (Debian package oathtool)")
        pytest.skip("oathtool is not installed")
    return path


@pytest.fixture
def audit_types(rt: Runtime) -> Callable[[], list[str]]:
    """The identity.* event types in the audit log, oldest first."""
    from audit.repository import EntryFilter

    def types() -> list[str]:
        return [e.event["type"] for e in rt.audit.query(EntryFilter(event_type="identity.*"), limit=1000).items]

    return types
