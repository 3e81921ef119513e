"""examples/record_contact.py, run as an integrator runs it, against a real ``tarcza serve`` with a
client made by ``tarcza client add``: it records a contact once per call id and reports a refusal."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

from faker import Faker

from tarcza_client import Debt, NewSubject, TarczaClient
from tests.client.conftest import Server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "record_contact.py"


def run_example(server: Server, client_id: str, secret: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**server.env, "TARCZA_URL": server.url, "TARCZA_CLIENT_ID": client_id, "TARCZA_CLIENT_SECRET": secret}
    return subprocess.run([sys.executable, str(EXAMPLE), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


class TestRecordContactExample:
    def test_records_once_per_call_id_and_reports_a_refusal(self, sqlite_server: Server,
                                                            credentials: tuple[str, str]) -> None:
        """The example prints the receipt (exit 0); the same call id again is the same event, marked a retry;
        a call at 03:00 exits 2 naming allowed_hours; the secret is never printed."""
        fake = Faker("pl_PL")
        fake.seed_instance(8)
        with TarczaClient(sqlite_server.url, *credentials) as tarcza:
            token = tarcza.create_subject(NewSubject(kind="debtor", fields={"last_name": fake.last_name()}))
            debt = tarcza.add_debt(Debt(id=f"D-{uuid.uuid4().hex[:12]}", subject=token, creditor="Przykładowy Bank",
                                        kind="general", consumer=True, amount_minor=50_000,
                                        due_date=date(2025, 9, 30)))
        client_id, secret = sqlite_server.add_client("dialer-example", "contacts:write")
        call = [token, "--debt-id", debt.id, "--call-id", f"dialer-{uuid.uuid4().hex}", "--at",
                "2026-11-17T10:00:00+01:00"]

        first = run_example(sqlite_server, client_id, secret, *call)
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith("recorded: event ")
        assert "retry" not in first.stdout
        again = run_example(sqlite_server, client_id, secret, *call)
        assert again.returncode == 0, again.stderr
        assert again.stdout.split(",")[0] == first.stdout.split(",")[0]
        assert "(a retry" in again.stdout

        refused = run_example(sqlite_server, client_id, secret, token, "--at", "2026-11-17T03:00:00+01:00")
        assert refused.returncode == 2
        assert refused.stderr.startswith("refused by allowed_hours:")
        for done in (first, again, refused):
            assert secret not in done.stdout + done.stderr
