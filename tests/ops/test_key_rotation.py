"""Key operations that coordinate, through real ``tarcza serve`` processes and the real CLI, on SQLite and
PostgreSQL: ``tarcza keys rotate`` refuses while a server holds the installation and names the command to
use; rotating through a server's API needs no restart, of that server or of another one on the same
installation (ADR 0022)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pyotp
import pytest

from api.runtime import Runtime
from tests.conftest import TEST_PASSWORD
from tests.headers import person_headers
from tests.serving import tarcza_serve

TARCZA = [sys.executable, "-m", "api"]
ADMIN = "ala.admin"


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TARCZA, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300,
                          check=False)


def key_status(env: dict[str, str]) -> dict[str, object]:
    done = run(env, "keys", "status", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def create_subject(url: str, headers: dict[str, str], name: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/subjects", headers=headers, timeout=60,
                      json={"kind": "debtor", "fields": {"first_name": name, "last_name": "Wiśniewska"}})


def masked(url: str, headers: dict[str, str], token: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/subjects/{token}", headers=headers, timeout=60)


@pytest.fixture
def admin_env(initialised_runtime: Runtime, cli_env: dict[str, str], enrol, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The CLI environment with its own session file, and a function logging the admin in to a server."""
    secret = enrol(initialised_runtime, ADMIN, ["admin"])
    env = {**cli_env, "TARCZA_SESSION_FILE": str(tmp_path / "session")}

    def login(url: str) -> None:
        code = pyotp.TOTP(secret).at(initialised_runtime.clock.now() + timedelta(seconds=30))  # not the enrolment's
        done = run(env, "login", "--server", url, "--username", ADMIN, "--password-stdin", "--code", code,
                   stdin=TEST_PASSWORD + "\n")
        assert done.returncode == 0, done.stderr

    return env, login


class TestRotationCoordinates:
    def test_cli_rotation_refuses_while_a_server_runs(self, initialised_runtime: Runtime, cli_env: dict[str, str],
                                                      tmp_path: Path) -> None:
        """`tarcza keys rotate` beside a running server exits 1 with one line naming the server and the command
        to rotate through it, and rotates nothing."""
        with tarcza_serve(cli_env, tmp_path / "serve.log", timeout=90) as (url, _proc):
            done = run(cli_env, "keys", "rotate")
            assert done.returncode == 1, done.stdout
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1, done.stderr
            assert lines[0].startswith("error: refusing to rotate keys on this machine: a server is running")
            assert f"`tarcza keys rotate --server {url}`" in lines[0]
            assert key_status(cli_env)["current_version"] == 1

    def test_a_killed_server_does_not_block_rotation(self, initialised_runtime: Runtime, cli_env: dict[str, str],
                                                     tmp_path: Path) -> None:
        """A server killed with SIGKILL leaves a stale registration that the next rotation detects, removes,
        and rotates past; a server stopped normally leaves none."""
        run_dir = initialised_runtime.settings.data_dir / "run"
        with tarcza_serve(cli_env, tmp_path / "serve.log", timeout=90) as (url, proc):
            registered = [json.loads(p.read_text()) for p in run_dir.glob("server-*.json")]
            assert [(r["pid"], r["url"]) for r in registered] == [(proc.pid, url)]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert list(run_dir.glob("server-*.json"))  # stale: nobody removed it
        done = run(cli_env, "keys", "rotate")
        assert done.returncode == 0, done.stderr
        assert "rotated KEK version 1 -> 2" in done.stdout
        assert not list(run_dir.glob("server-*.json"))
        with tarcza_serve(cli_env, tmp_path / "serve2.log", timeout=90):
            assert len(list(run_dir.glob("server-*.json"))) == 1
        assert not list(run_dir.glob("server-*.json"))

    def test_rotation_through_the_server_needs_no_restart(self, initialised_runtime: Runtime, admin_env,  # type: ignore[no-untyped-def]
                                                          tmp_path: Path) -> None:
        """`tarcza keys rotate --server URL` as a logged-in admin rotates inside the server, which creates and
        reads subjects right after without a restart."""
        env, login = admin_env
        writer = person_headers(initialised_runtime, "dpo")  # the DPO writes and sees names in clear
        with tarcza_serve(env, tmp_path / "serve.log", timeout=90) as (url, _proc):
            before = create_subject(url, writer, "Zofia")
            assert before.status_code == 201, before.text
            login(url)
            done = run(env, "keys", "rotate", "--server", url)
            assert done.returncode == 0, done.stderr
            assert "rotated KEK version 1 -> 2" in done.stdout
            after = create_subject(url, writer, "Halina")
            assert after.status_code == 201, after.text
            for token, initial in ((before.json()["token"], "Z"), (after.json()["token"], "H")):
                read = masked(url, writer, token)
                assert read.status_code == 200, read.text
                assert read.json()["fields"]["first_name"][0].startswith(initial)  # opened under the new key
        assert key_status(env)["provider_versions"] == [2]

    def test_another_server_follows_a_rotation_without_restart(self, initialised_runtime: Runtime, admin_env,  # type: ignore[no-untyped-def]
                                                               tmp_path: Path) -> None:
        """With two servers on one installation, a rotation through the first leaves the second creating
        subjects and reading ones it never saw, instead of answering 503 until restarted."""
        env, login = admin_env
        writer = person_headers(initialised_runtime, "dpo")  # the DPO writes and sees names in clear
        with tarcza_serve(env, tmp_path / "a.log", timeout=90) as (first, _a), \
                tarcza_serve(env, tmp_path / "b.log", timeout=90) as (second, _b):
            early = create_subject(first, writer, "Zofia")
            assert early.status_code == 201, early.text
            assert create_subject(second, writer, "Irena").status_code == 201  # the second has its keys open
            login(first)
            admin = {"Authorization": f"Bearer {json.loads(Path(env['TARCZA_SESSION_FILE']).read_text())['token']}"}
            rotated = httpx.post(f"{first}/v1/keys/rotate", headers=admin, timeout=120)
            assert rotated.status_code == 200, rotated.text
            assert (rotated.json()["from_version"], rotated.json()["to_version"]) == (1, 2)
            created = create_subject(second, writer, "Halina")
            assert created.status_code == 201, created.text
            read = masked(second, writer, early.json()["token"])
            assert read.status_code == 200, read.text
            assert read.json()["fields"]["first_name"][0].startswith("Z")  # opened under the new key
