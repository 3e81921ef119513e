"""The real `tarcza keys` and `tarcza subject` commands, run as subprocesses on SQLite and PostgreSQL.

`keys` works on this machine's data directory; `subject` talks to a `tarcza serve` started for
the test, with the session of a `tarcza login` that used a TOTP code computed by pyotp. All
personal data is synthetic (Faker pl_PL, fixed seed). Each CLI call costs about 1.5 s, so the
tests are few and each covers a whole flow.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from faker import Faker

from api.runtime import Runtime
from audit.events import ActorKind
from audit.repository import EntryFilter
from identity.principal import SYSTEM, Principal, Role
from vault.service import NewSubject

TARCZA = [sys.executable, "-m", "api"]
PASSWORD = "correct horse battery staple"
PURPOSE = "debt_collection"
Enrol = Callable[[Runtime, str, list[str]], str]


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TARCZA, *args], env={**env, "COLUMNS": "200"}, capture_output=True, text=True,
                          timeout=120, input=stdin, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


@pytest.fixture
def fake() -> Faker:
    faker = Faker("pl_PL")
    faker.seed_instance(4711)
    return faker


def debtor(fake: Faker) -> dict[str, str]:
    return {"first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel()}


def dpo(runtime: Runtime) -> Principal:
    """A DPO whose second factor was verified just now (for reveals in this process)."""
    return Principal("test-dpo", ActorKind.USER, frozenset({Role.DPO}), second_factor_at=runtime.clock.now())


class TestKeysCommands:
    def test_status_and_resumed_rotation(self, initialised_runtime: Runtime, cli_env: dict[str, str],
                                         settings, fake: Faker) -> None:  # type: ignore[no-untyped-def]
        """`keys status` shows an interrupted rotation, `keys rotate` resumes and finishes it as the
        operator, and afterwards every subject still reveals in a fresh process."""
        people = [debtor(fake) for _ in range(5)]
        tokens = initialised_runtime.vault.create_subjects(SYSTEM, [NewSubject("debtor", p) for p in people])

        def stop_after_first_batch(done: int, total: int) -> None:
            if done:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            initialised_runtime.vault.rotate_keys(stop_after_first_batch, batch_size=2)

        status = ok(run(cli_env, "keys", "status"))
        assert "rotation 1 -> 2 in progress: 2 rewrapped, 3 to go" in status
        rotated = ok(run(cli_env, "keys", "rotate", "--batch-size", "2"))
        assert "rotated KEK version 1 -> 2 (resumed an interrupted rotation): 5 data key(s) rewrapped" in rotated
        assert "retired version(s): 1" in rotated
        after = json.loads(ok(run(cli_env, "keys", "status", "--json")))
        assert after == {"current_version": 2, "provider_versions": [2], "keys_by_version": {"2": 5},
                         "rotation_running": None}

        fresh = Runtime(settings)  # the keyfile changed under the first runtime: reopen it
        try:
            for token, person in zip(tokens, people, strict=True):
                shown = fresh.vault.reveal(dpo(fresh), token, ["pesel"], PURPOSE)
                assert shown == {"pesel": [person["pesel"]]}
            entry = fresh.audit.query(EntryFilter(event_type="vault.key_rotated")).items[-1].event
        finally:
            fresh.close()
        assert entry["actor"]["kind"] == "system"
        assert entry["actor"]["id"].startswith("operator:")
        assert entry["payload"]["rewrapped"] == 5


class TestSubjectCommands:
    def test_login_create_show_reveal_search_upload_play(self, initialised_runtime: Runtime,
                                                         cli_env: dict[str, str], server: str, tmp_path: Path,
                                                         fake: Faker, enrol: Enrol) -> None:
        """A DPO (also a collector) logged in with password and TOTP creates a subject, sees it masked,
        reveals it, finds it by PESEL, uploads a recording and plays a range of it through the server;
        a refused reveal is one `error:` line with the rule."""
        secret = enrol(initialised_runtime, "anna.dpo", ["dpo", "collector"])
        env = {**cli_env, "TARCZA_SESSION_FILE": str(tmp_path / "session")}
        next_code = pyotp.TOTP(secret).at(initialised_runtime.clock.now() + timedelta(seconds=30))  # not a replay
        ok(run(env, "login", "--server", server, "--username", "anna.dpo", "--password-stdin", "--code", next_code,
               stdin=PASSWORD + "\n"))

        person = {**debtor(fake), "email": fake.unique.safe_email()}
        args = [arg for name, value in person.items() for arg in ("--field", f"{name}={value}")]
        token = ok(run(env, "subject", "create", *args)).strip()
        assert token.startswith("sub_")

        masked = json.loads(ok(run(env, "subject", "show", token, "--json")))
        assert masked["first_name"] == [person["first_name"]]
        assert masked["pesel"] != [person["pesel"]]

        revealed = ok(run(env, "subject", "reveal", token, "--field", "pesel", "--field", "last_name",
                          "--purpose", PURPOSE))
        assert revealed.splitlines() == [f"pesel: {person['pesel']}", f"last_name: {person['last_name']}"]

        other = debtor(fake)
        second = ok(run(env, "subject", "create", *[a for n, v in other.items() for a in ("--field", f"{n}={v}")]))
        unknown = "sub_" + "0" * 22
        many = run(env, "subject", "reveal-many", "--field", "pesel", "--purpose", PURPOSE, "--tokens-file", "-",
                   stdin=f"{token}\n{second.strip()}\n{unknown}\n")
        assert many.returncode == 1
        lines = [json.loads(line) for line in many.stdout.splitlines()]
        assert [line.get("fields") for line in lines[:2]] == [{"pesel": [person["pesel"]]}, {"pesel": [other["pesel"]]}]
        assert (lines[2]["subject"], lines[2]["error"]["status"]) == (unknown, 404)
        assert many.stderr.strip() == "error: 1 of 3 subjects were not revealed (see their error lines)"
        both = json.loads(ok(run(env, "subject", "reveal-many", token, "--field", "last_name", "--purpose", PURPOSE)))
        assert both == {"subject": token, "fields": {"last_name": [person["last_name"]]}}

        found = ok(run(env, "subject", "search", "--field", "pesel", "--value-stdin", "--purpose", PURPOSE,
                       stdin=person["pesel"] + "\n"))
        assert found.split() == [token]

        audio = random.Random(4711).randbytes(200_000)
        recording = tmp_path / "call.ogg"
        recording.write_bytes(audio)
        uploaded = ok(run(env, "subject", "upload", token, str(recording), "--announced"))
        recording_id = next(line.split()[-1] for line in uploaded.splitlines() if line.startswith("recording_id"))
        assert f"sha256:       {hashlib.sha256(audio).hexdigest()}" in uploaded
        played = tmp_path / "range.ogg"
        ok(run(env, "subject", "play", token, recording_id, "--purpose", PURPOSE, "--out", str(played),
               "--start", "1000", "--end", "150000"))
        assert played.read_bytes() == audio[1000:150000]
        assert played.stat().st_mode & 0o777 == 0o600

        refused = run(env, "subject", "reveal", token, "--field", "pesel", "--purpose", "curiosity")
        assert refused.returncode == 1
        assert refused.stderr.startswith("error: HTTP 403")
        assert "rule: purpose" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert person["pesel"] not in refused.stderr + refused.stdout
