"""`tarcza demo seed` end to end through the real command, on SQLite and PostgreSQL: counts, a log
that verifies, an idempotent re-run, and no generated identifier in clear in any file."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import text

from api.demo_data import DemoPerson, demo_people
from core.db import make_engine

TARCZA = [sys.executable, "-m", "api"]
SUBJECTS, RECORDINGS = 30, 3


def ok(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([*TARCZA, *args], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def counts(database_url: str) -> dict[str, Any]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            kinds = dict(conn.execute(text("SELECT kind, count(*) FROM vault_subjects GROUP BY kind")).all())
            types = dict(conn.execute(text(
                "SELECT event_type, count(*) FROM audit_entries WHERE actor_id = 'demo-seeder' GROUP BY event_type"
            )).all())
            recordings = conn.execute(text("SELECT count(*) FROM vault_recordings")).scalar_one()
            contacts = [bytes(row[0]) for row in conn.execute(text(
                "SELECT leaf_input FROM audit_entries WHERE event_type LIKE 'contact.%' "
                "AND event_type != 'contact.blocked' ORDER BY idx"))]
    finally:
        engine.dispose()
    return {"kinds": kinds, "types": types, "recordings": recordings, "contacts": contacts}


def phone_forms(raw: str) -> list[str]:
    number = phonenumbers.parse(raw, "PL")
    return [raw, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
            phonenumbers.national_significant_number(number),
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)]


def needles(people: list[DemoPerson]) -> set[bytes]:
    """Every PESEL, e-mail and phone (in each spelling), and every note and GPS position, as UTF-8."""
    out: set[str] = set()
    for person in people:
        out.add(person.pesel)
        out.update(person.emails)
        for phone in person.phones:
            out.update(phone_forms(phone))
        for contact in person.contacts:
            out.update(x for x in (contact.note, contact.gps) if x)
    return {n.encode() for n in out}


class TestDemoSeed:
    def test_seed_verify_rerun_and_nothing_in_clear(self, cli_env: dict[str, str], database_url: str,
                                                    backend: str, data_dir: Path) -> None:
        """30 subjects, their contacts and 3 recordings are stored sealed; the log verifies; a re-run adds nothing."""
        people = demo_people(0, 0, SUBJECTS)
        ok(cli_env, "init")  # demo seed, like every command but init, needs an installation
        summary = json.loads(ok(cli_env, "demo", "seed", "--subjects", str(SUBJECTS), "--recordings",
                                str(RECORDINGS), "--batch", "7", "--json"))
        contacts = sum(len(p.contacts) for p in people)
        third = sum(p.kind == "third_party" for p in people)
        debts = sum(len(p.debts) for p in people)
        first = counts(database_url)
        blocked = first["types"].get("contact.blocked", 0)
        assert summary | {"seconds": 0} == {
            "subjects": SUBJECTS, "new_subjects": SUBJECTS, "third_parties": third, "debts": debts,
            "events": contacts, "new_events": contacts, "refused": blocked, "recordings": RECORDINGS,
            "new_recordings": RECORDINGS, "seconds": 0}
        assert first["kinds"] == {"debtor": SUBJECTS - third, "third_party": third}
        assert first["recordings"] == RECORDINGS
        assert first["types"]["vault.subject_created"] == SUBJECTS
        assert first["types"]["recording.stored"] == RECORDINGS
        assert first["types"]["debt.recorded"] == debts
        assert first["types"]["case.opened"] == SUBJECTS - third
        recorded = sum(first["types"].get(t, 0) for t in (
            "contact.attempted", "contact.completed", "contact.received", "contact.visit"))
        assert recorded + blocked == contacts
        assert 0 < blocked < contacts / 3  # the demonstration breaks the rules now and then, not mostly
        events = [json.loads(leaf) for leaf in first["contacts"]]
        sealed = [e["payload"][k] for e in events for k in ("notes", "notes_original", "gps") if k in e["payload"]]
        assert sealed
        assert all(len(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) > 28 for s in sealed)
        assert sum(e["payload"].get("pii_found", 0) for e in events) > 0
        assert ok(cli_env, "audit", "verify", "--db").startswith("OK: ")

        again = json.loads(ok(cli_env, "demo", "seed", "--subjects", str(SUBJECTS), "--recordings",
                              str(RECORDINGS), "--json"))
        assert (again["new_subjects"], again["new_events"], again["new_recordings"]) == (0, 0, 0)
        assert again["refused"] == blocked
        second = counts(database_url)
        assert (second["kinds"], second["types"], second["recordings"]) == (
            first["kinds"], first["types"], first["recordings"])
        assert ok(cli_env, "audit", "verify", "--db").startswith("OK: ")

        if backend == "sqlite":
            found = needles(people)
            assert len(found) > 4 * SUBJECTS
            files = [p for p in data_dir.rglob("*") if p.is_file()]
            assert sum(1 for p in files if "blobs" in p.parts) == RECORDINGS
            leaks = [(p.name, n) for p in files for n in found if n in p.read_bytes()]
            assert leaks == []
