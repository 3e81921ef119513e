"""The real `tarcza debt` and `tarcza gdpr notices|recipients|breaches` commands against a `tarcza serve` started for
the test, on SQLite and PostgreSQL: a debt's history recorded and its reasoning printed, the Art. 14 notice listed
and closed, a recipient recorded, a breach recorded; a refusal is one `error:` line and exit 1. Synthetic data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from faker import Faker

from api.runtime import Runtime
from tests.contacts.test_cli import Enrol, login, ok, run


class TestDebtAndRegisterCommands:
    def test_history_reasoning_and_registers_through_the_cli(self, initialised_runtime: Runtime,
                                                              cli_env: dict[str, str], server: str, tmp_path: Path,
                                                              enrol: Enrol) -> None:
        """A collector records a bought debt and a part payment and reads the reasoning (art. 123 § 1 pkt 2); an
        impossible event is one error line; the DPO lists and closes the Art. 14 notice, records a recipient and a
        breach, and lists them."""
        fake = Faker("pl_PL")
        fake.seed_instance(1713)
        env = {**cli_env, "TARCZA_SESSION_FILE": str(tmp_path / "session")}
        login(initialised_runtime, env, server, "ola.collector", ["collector"], enrol)
        token = ok(run(env, "subject", "create", "--field", f"last_name={fake.last_name()}")).strip()
        debt = {"id": "D-CLI-17", "subject": token, "creditor": "Przykładowy Telekom S.A.", "creditor_kind": "telecom",
                "kind": "business", "consumer": True, "amount_minor": 29_900, "due_date": "2020-01-10",
                "assigned_on": (datetime.now(UTC).date() - timedelta(days=3)).isoformat()}
        assert "time-barred since 2024-01-01" in ok(run(env, "contact", "debt", "-", stdin=json.dumps(debt)))
        shown = ok(run(env, "debt", "event", "add", "D-CLI-17", "part_payment", "--on", "2022-05-04",
                       "--amount-minor", "5000", "--source", "wyciag 2022/05"))
        assert "time-barred since 2026-01-01" in shown
        assert "art. 123 § 1 pkt 2 k.c." in shown
        as_json = json.loads(ok(run(env, "debt", "show", "D-CLI-17", "--json")))
        assert as_json["limitation"]["limitation_end"] == "2025-12-31"
        refused = run(env, "debt", "event", "add", "D-CLI-17", "enforcement_ended", "--on", "2023-01-01")
        assert refused.returncode == 1
        assert refused.stderr.startswith("error: HTTP 422")
        assert "no enforcement_started is open" in refused.stderr

        login(initialised_runtime, env, server, "ewa.dpo", ["dpo"], enrol)
        [notice] = json.loads(ok(run(env, "gdpr", "notices", "list", "--subject", token, "--json")))
        assert (notice["status"], notice["due_by"]) == ("open", "one_month")
        closed = ok(run(env, "gdpr", "notices", "close", notice["id"], "--given-on",
                        datetime.now(UTC).date().isoformat(), "--channel", "letter"))
        assert "given" in closed
        ok(run(env, "gdpr", "recipients", "add", token, "debt_register", "BIG InfoMonitor S.A.",
               "--disclosed-on", "2024-01-10"))
        assert "BIG InfoMonitor S.A." in ok(run(env, "gdpr", "recipients", "show", token))
        breach = {"aware_at": datetime.now(UTC).isoformat(), "nature": ["availability"],
                  "data_categories": ["recordings"], "facts": "The recordings store was unreachable for six hours.",
                  "effects": "No recording could be played; none was lost.", "remedial_action": "Failover tested.",
                  "risk": "unlikely", "not_notified_reason": "no loss of data and no access by anyone"}
        recorded = ok(run(env, "gdpr", "breaches", "record", "-", stdin=json.dumps(breach)))
        assert "not notified: unlikely to result in a risk" in recorded
        assert recorded.split()[0] in ok(run(env, "gdpr", "breaches", "list"))
