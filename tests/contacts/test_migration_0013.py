"""Migration 0013 on SQLite and PostgreSQL: debts left unreadable by a judgment recorded on a non-judgment
kind (issue 17, defect 1) are repaired, their judgment becoming an event of the debt's history."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import create_engine, text

from contacts import repository
from contacts.debt_info import debt_infos
from contacts.limitation import ClaimKind, time_barred_on
from core import migrate

BEFORE = "0009_contact_sequence"
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
TOKEN = "sub_MigrationTest00000001"


def _debt(debt_id: str, kind: str, due: date, judgment: date | None) -> dict[str, Any]:
    return {"id": debt_id, "subject_token": TOKEN, "creditor": "Przykładowy Bank S.A.", "kind": kind,
            "consumer": True, "currency": "PLN", "amount_minor": 100_000, "due_date": due, "judgment_date": judgment,
            "assigned_on": None, "status": "open", "settled_on": None, "created_at": NOW, "updated_at": NOW}


ROWS = [
    _debt("D-broken", "general", date(2019, 3, 15), date(2023, 5, 4)),  # what POST /status left (defect 1)
    _debt("D-judgment", "judgment", date(2019, 1, 10), date(2020, 5, 4)),
    _debt("D-periodic", "judgment_periodic", date(2021, 2, 10), date(2020, 5, 4)),
    _debt("D-plain", "business", date(2021, 6, 1), None),
]


class TestMigration0013:
    def test_repairs_judgments_recorded_on_ordinary_debts(self, database_url: str) -> None:
        """Rows written before 0013, one of them the state defect 1 left (a general debt with a judgment date,
        which no read could answer), read after the migration: the judgment is an event of the history, the
        old judgment kinds are base kinds, and every limitation date is what art. 125 § 1 gives."""
        engine = create_engine(database_url)
        try:
            migrate.upgrade(engine, BEFORE)
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO vault_subjects (token, kind, status, dek_version, created_at, "
                                  "updated_at) VALUES (:t, 'debtor', 'active', 1, :now, :now)"),
                             {"t": TOKEN, "now": NOW})
                conn.execute(repository.debts.insert(), [dict(row) for row in ROWS])
            migrate.upgrade(engine)
            assert migrate.current_revision(engine) == migrate.head_revision()
            with engine.connect() as conn:
                rows = [repository.get_debt(conn, row["id"]) for row in ROWS]
                infos = {info.id: info for info in debt_infos(conn, [r for r in rows if r is not None])}
                events = repository.events_of_debts(conn, [row["id"] for row in ROWS])
        finally:
            engine.dispose()
        assert {i: d.kind for i, d in infos.items()} == {"D-broken": "general", "D-judgment": "general",
                                                         "D-periodic": "periodic", "D-plain": "business"}
        assert [(e["kind"], e["occurred_on"], e["recorded_by"]) for e in events["D-broken"]] == [
            ("judgment", date(2023, 5, 4), "migration-0013")]
        assert events["D-plain"] == []
        assert infos["D-broken"].time_barred_on == date(2030, 1, 1)  # six years from the judgment, year end
        for debt_id, kind in (("D-judgment", ClaimKind.JUDGMENT), ("D-periodic", ClaimKind.JUDGMENT_PERIODIC)):
            row = next(r for r in ROWS if r["id"] == debt_id)
            assert infos[debt_id].time_barred_on == time_barred_on(kind, row["due_date"], row["judgment_date"])
        assert infos["D-plain"].time_barred_on == date(2025, 1, 1)
