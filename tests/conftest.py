"""Fixtures shared by every test: a database on each backend, settings, a runtime, the app.

``database_url`` runs a test once on SQLite (a file in a temporary directory) and once on
PostgreSQL (a fresh database of its own, dropped afterwards). PostgreSQL tests run whenever
the server is reachable; with ``CI=true`` an unreachable server fails the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

PG_ADMIN_URL = os.environ.get("TARCZA_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI") == "true"
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"


def _pg_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but unavailable: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(autouse=True, scope="session")
def _no_user_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test reads the developer's ~/.config/tarcza/config.env or TARCZA_CONFIG: either could name a real
    installation (its database URL) that a test's `tarcza init` would then write to."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    patch.delenv("TARCZA_CONFIG", raising=False)
    yield
    patch.undo()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL), dropped after the test."""
    name = f"tarcza_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _pg_unavailable(str(exc).splitlines()[0])
        raise  # unreachable: skip/fail raise
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        try:
            yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test."""
    return str(request.param)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "var"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def database_url(backend: str, data_dir: Path, request: pytest.FixtureRequest) -> str:
    """A database URL of the backend under test, empty and private to this test."""
    if backend == "sqlite":
        return f"sqlite:///{data_dir / 'tarcza.db'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def settings(data_dir: Path, database_url: str):  # type: ignore[no-untyped-def]
    from core.settings import load_settings

    return load_settings(data_dir=data_dir, database_url=database_url)


@pytest.fixture
def migrated_runtime(settings):  # type: ignore[no-untyped-def]
    """A runtime whose database is at the newest schema."""
    from api.runtime import Runtime
    from core import migrate

    rt = Runtime(settings)
    migrate.upgrade(rt.engine)
    yield rt
    rt.close()


@pytest.fixture
def cli_env(data_dir: Path, database_url: str) -> dict[str, str]:
    """Environment for running the real ``tarcza`` command against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
    env.update({"TARCZA_DATA_DIR": str(data_dir), "TARCZA_DATABASE_URL": database_url,
                "TARCZA_KNOWN_LOGS": str(data_dir.parent / "known_logs")})  # pinned log keys: never the user's
    return env


@pytest.fixture
def initialised_runtime(settings):  # type: ignore[no-untyped-def]
    """A runtime after `tarcza init`: schema, installation record and keys in the data directory."""
    from api.cli.common import initialise_runtime
    from api.runtime import Runtime

    rt = Runtime(settings)
    initialise_runtime(rt)
    yield rt
    rt.close()


@pytest.fixture
def server(initialised_runtime, cli_env: dict[str, str], tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """`tarcza serve` on a free port for the test database; yields its base URL."""
    from tests.serving import tarcza_serve

    with tarcza_serve(cli_env, tmp_path / "serve.log", timeout=60) as (url, _proc):
        yield url


TEST_PASSWORD = "correct horse battery staple"


def _enrolled_user(runtime, username: str, roles: list[str]) -> str:  # type: ignore[no-untyped-def]
    """Create a user (password TEST_PASSWORD) with a confirmed TOTP factor; return the TOTP secret."""
    import pyotp

    from api.auth import identity_transaction
    from api.cli.identity import operator_actor

    with identity_transaction(runtime) as identity:
        identity.users.create(username, TEST_PASSWORD, roles, actor=operator_actor())
        secret = identity.factors.begin(identity.users.by_username(username)).secret
    with identity_transaction(runtime) as identity:
        assert identity.factors.confirm(identity.users.by_username(username), pyotp.TOTP(secret).now()).ok
    return str(secret)


@pytest.fixture
def enrol():  # type: ignore[no-untyped-def]
    """``enrol(runtime, username, roles) -> TOTP secret``: a user with a confirmed second factor."""
    return _enrolled_user
