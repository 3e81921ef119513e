"""The real `tarcza contact` commands against a `tarcza serve` started for the test, on SQLite and
PostgreSQL: a collector logged in with password and TOTP records a debt and a case, asks the firewall,
records a contact with a note holding PII, lists the history; a refusal is one `error:` line and exit 1.
`tarcza contact rules` validates a rules file without a server. Synthetic data only."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyotp
from faker import Faker

from api.runtime import Runtime

PASSWORD = "correct horse battery staple"
Enrol = Callable[[Runtime, str, list[str]], str]


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api", *args], env={**env, "COLUMNS": "200"}, capture_output=True,
                          text=True, timeout=120, input=stdin, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def login(runtime: Runtime, env: dict[str, str], server_url: str, username: str, roles: list[str],
          enrol: Enrol) -> None:
    secret = enrol(runtime, username, roles)
    code = pyotp.TOTP(secret).at(runtime.clock.now() + timedelta(seconds=30))
    ok(run(env, "login", "--server", server_url, "--username", username, "--password-stdin", "--code", code,
           stdin=PASSWORD + "\n"))


class TestContactCommands:
    def test_debt_case_check_record_history(self, initialised_runtime: Runtime, cli_env: dict[str, str],
                                            server: str, tmp_path: Path, enrol: Enrol) -> None:
        """The whole flow through the CLI; the note's PESEL never appears in any output."""
        fake = Faker("pl_PL")
        fake.seed_instance(77)
        env = {**cli_env, "TARCZA_SESSION_FILE": str(tmp_path / "session")}
        login(initialised_runtime, env, server, "kasia.collector", ["collector"], enrol)
        pesel = fake.pesel()
        token = ok(run(env, "subject", "create", "--field", f"last_name={fake.last_name()}", "--field",
                       f"pesel={pesel}")).strip()
        debt = {"id": "D-CLI-1", "subject": token, "creditor": "Przykładowy Bank S.A.", "kind": "general",
                "consumer": True, "amount_minor": 99_900, "due_date": "2025-01-31"}
        assert ok(run(env, "contact", "debt", "-", stdin=json.dumps(debt))).strip() == (
            "debt D-CLI-1 (general, consumer): time-barred from 2032-01-01")
        assert ok(run(env, "contact", "case", "C-CLI-1", token, "--debt-id", "D-CLI-1")).strip() == (
            "case C-CLI-1 is open")

        contact = {"subject": token, "channel": "phone", "agent_id": "agent-1", "debt_id": "D-CLI-1",
                   "case_id": "C-CLI-1", "started_at": "2026-11-17T09:00:00+01:00", "outcome": "answered",
                   "notes": f"Dłużnik potwierdził PESEL {pesel}."}
        night = run(env, "contact", "check", "-", stdin=json.dumps({**contact, "started_at":
                                                                     "2026-11-17T23:00:00+01:00"}))
        assert night.returncode == 1
        assert "allowed_hours" in night.stdout
        assert ok(run(env, "contact", "check", "-", stdin=json.dumps(contact))).startswith("allowed")

        recorded = ok(run(env, "contact", "record", "-", "--idempotency-key", "cli-1", stdin=json.dumps(contact)))
        assert "recorded contact.completed" in recorded
        assert "1 PII value(s) sealed" in recorded
        history = json.loads(ok(run(env, "contact", "history", token, "--json")))
        assert [(i["event_type"], i["decision"]) for i in history["items"]] == [("contact.completed", "allow")]

        refused = run(env, "contact", "record", "-", stdin=json.dumps({**contact, "started_at":
                                                                       "2026-11-18T05:00:00+01:00"}))
        assert refused.returncode == 1
        assert refused.stderr.startswith("error: HTTP 409: refused by allowed_hours")
        for output in (recorded, night.stdout, refused.stderr, json.dumps(history)):
            assert pesel not in output

    def test_rules_command_validates_a_file(self, cli_env: dict[str, str], tmp_path: Path) -> None:
        """`tarcza contact rules` prints the packaged rules and refuses a broken file naming the key path."""
        shown = ok(run(cli_env, "contact", "rules"))
        assert "valid, sha256" in shown
        assert "frequency_cap" in shown
        bad = tmp_path / "rules.yaml"
        packaged = json.loads(ok(run(cli_env, "contact", "rules", "--json")))
        assert packaged["rules"]["allowed_hours"]["hours"]["phone"] == {"start": "06:00", "end": "22:00",
                                                                        "action": None}
        bad.write_text("version: 1\nrules: {}\n", encoding="utf-8")
        result = run(cli_env, "contact", "rules", str(bad))
        assert result.returncode == 1
        assert result.stderr.startswith("error: ")
        assert "rules." in result.stderr
