"""`tarcza audit ...` end to end through the real command, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from core.db import make_engine

TARCZA = [sys.executable, "-m", "api"]


def tarcza(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TARCZA, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def ok(env: dict[str, str], *args: str) -> str:
    result = tarcza(env, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


class TestAuditCommands:
    def test_append_prove_export_verify(self, cli_env: dict[str, str], tmp_path: Path) -> None:
        """An operator appends, checkpoints, proves, exports and verifies; a changed export byte fails."""
        ok(cli_env, "init")
        payload = json.dumps({"code": "backup_restored"})
        first = json.loads(ok(cli_env, "audit", "append", "--type", "operator.note", "--payload", payload,
                              "--idempotency-key", "c-1"))
        again = json.loads(ok(cli_env, "audit", "append", "--type", "operator.note", "--payload", payload,
                              "--idempotency-key", "c-1"))
        assert (first["index"], again["index"], again["duplicate"]) == (0, 0, True)
        for i in range(4):
            ok(cli_env, "audit", "append", "--type", "operator.note", "--payload", json.dumps({"code": f"n{i}"}))
        trusted = tmp_path / "trusted.txt"
        trusted.write_text(ok(cli_env, "audit", "checkpoint"))
        ok(cli_env, "audit", "append", "--type", "operator.note", "--payload", '{"code": "after"}')
        proof = json.loads(ok(cli_env, "audit", "prove", "--index", "2"))
        assert proof["index"] == 2
        assert proof["checkpoint"].startswith(proof["checkpoint"].splitlines()[0])
        consistency = json.loads(ok(cli_env, "audit", "consistency", "--from", "3", "--to", "5"))
        assert (consistency["size1"], consistency["size2"]) == (3, 5)
        page = json.loads(ok(cli_env, "audit", "events", "--type", "operator.note", "--limit", "1"))
        assert [e["index"] for e in page["items"]] == [0]
        assert page["items"][0]["event"]["actor"]["id"].startswith("operator:")
        key = tmp_path / "verifier.key"
        key.write_text(ok(cli_env, "audit", "verifier-key"))

        out = tmp_path / "export"
        ok(cli_env, "audit", "export", "--out", str(out))
        verified = ok(cli_env, "audit", "verify", str(out), "--trusted-checkpoint", str(trusted), "--key", str(key))
        assert verified.startswith("OK: 7 entries")
        assert "consistent with trusted checkpoint of size 6" in verified  # it covers its own checkpoint.issued
        assert ok(cli_env, "audit", "verify", "--db").startswith("OK: 7 entries")

        entries = out / "entries.jsonl"
        lines = entries.read_bytes().split(b"\n")
        lines[3] = lines[3].replace(b'"code":"n2"', b'"code":"n9"')
        entries.write_bytes(b"\n".join(lines))
        failed = tarcza(cli_env, "audit", "verify", str(out))
        assert failed.returncode == 1
        assert failed.stderr.startswith("error: entry 3: leaf hash")

    def test_verify_db_names_the_tampered_entry(self, cli_env: dict[str, str], database_url: str) -> None:
        """`audit verify --db` exits 1 and names the first tampered entry."""
        ok(cli_env, "init")
        for i in range(6):
            ok(cli_env, "audit", "append", "--type", "operator.note", "--payload", json.dumps({"code": f"n{i}"}))
        engine = make_engine(database_url)
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(text("DROP TRIGGER audit_entries_no_update"))
            else:
                conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only"))
            conn.execute(text("UPDATE audit_entries SET leaf_hash = :h WHERE idx = 4"), {"h": bytes(32)})
        engine.dispose()
        result = tarcza(cli_env, "audit", "verify", "--db")
        assert result.returncode == 1
        assert "entry 4" in result.stderr

    def test_plaintext_pii_is_refused_without_echo(self, cli_env: dict[str, str]) -> None:
        """Appending an event with an e-mail in a plain field fails with one line that does not repeat it."""
        ok(cli_env, "init")
        email = "jan.nowak@example.pl"
        result = tarcza(cli_env, "audit", "append", "--type", "operator.note", "--payload",
                        json.dumps({"code": email}))
        assert result.returncode == 1
        assert email not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1

    def test_verify_needs_no_database(self, tmp_path: Path, cli_env: dict[str, str]) -> None:
        """Offline verification runs with no data directory and no database configured."""
        import os

        ok(cli_env, "init")
        ok(cli_env, "audit", "append", "--type", "operator.note", "--payload", '{"code": "x"}')
        out = tmp_path / "e"
        ok(cli_env, "audit", "export", "--out", str(out))
        bare = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
        bare["TARCZA_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
        bare["TARCZA_DATA_DIR"] = str(tmp_path / "does-not-exist")
        bare["TARCZA_KNOWN_LOGS"] = str(tmp_path / "known_logs")
        first = tarcza(bare, "audit", "verify", str(out))
        assert first.returncode == 3, first.stderr  # the key's first use: pinned, flagged
        assert ok(bare, "audit", "verify", str(out)).startswith("OK: 1 entries")
