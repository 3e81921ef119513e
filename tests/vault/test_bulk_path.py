"""The vault's bulk path gives the same results as the one-value functions it stands in for:
seal_fields, BlindIndexer.compute_canonical and the driver-level inserts (on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from bench.vault import FIELDS, pesel, run, subject_values
from core import migrate
from core.db import make_engine, write_connection
from vault import repository
from vault.blind_index import BlindIndexer
from vault.envelope import new_data_key, open_field, seal_field, seal_fields
from vault.errors import VaultDecryptError
from vault.fields import load_catalogue
from vault.validators import normalise

SUBJECT = "sub_BULKPATH000000000000001"


class TestSealFields:
    @settings(max_examples=50, deadline=None)
    @given(values=st.lists(st.tuples(st.sampled_from(["pesel", "note", "email"]), st.binary(max_size=64)),
                           max_size=8), key_version=st.integers(0, 2**32 - 1))
    def test_each_envelope_opens_like_one_from_seal_field(self, values: list[tuple[str, bytes]],
                                                          key_version: int) -> None:
        """Every envelope of a bulk seal opens, for its own field only, to its own plaintext."""
        key = new_data_key()
        sealed = seal_fields(key, values, subject=SUBJECT, key_version=key_version)
        assert len(sealed) == len(values)
        for (field, plain), envelope in zip(values, sealed, strict=True):
            assert open_field(key, envelope, subject=SUBJECT, field=field) == plain
            assert len(envelope) == len(seal_field(key, plain, subject=SUBJECT, field=field,
                                                   key_version=key_version))
            other = "iban" if field != "iban" else "nip"
            with pytest.raises(VaultDecryptError):
                open_field(key, envelope, subject=SUBJECT, field=other)

    def test_nonces_are_fresh_within_a_batch(self) -> None:
        """Sealing one value many times in one batch never repeats a nonce."""
        sealed = seal_fields(new_data_key(), [("note", b"x")] * 200, subject=SUBJECT, key_version=1)
        assert len({envelope[7:19] for envelope in sealed}) == 200

    def test_malformed_arguments_are_refused(self) -> None:
        """An empty field name or subject, or a short key, is a programming error (ValueError)."""
        with pytest.raises(ValueError, match="field"):
            seal_fields(new_data_key(), [("note", b"a"), ("", b"b")], subject=SUBJECT, key_version=1)
        with pytest.raises(ValueError, match="subject"):
            seal_fields(new_data_key(), [("note", b"a")], subject="", key_version=1)
        with pytest.raises(ValueError, match="data key"):
            seal_fields(b"short", [("note", b"a")], subject=SUBJECT, key_version=1)


class TestComputeCanonical:
    def test_matches_compute_for_every_searchable_kind(self) -> None:
        """For values straight from normalise, the bulk path's index equals the defensive one."""
        indexer = BlindIndexer(bytes(range(32)))
        catalogue = load_catalogue()
        for i in range(0, 5000, 97):
            for name, raw in subject_values(i).items():
                spec = catalogue.get(name)
                if spec.blind_index:
                    value = normalise(name, spec.kind, raw)
                    assert indexer.compute_canonical(name, spec.kind, value) == indexer.compute(name, spec.kind,
                                                                                                value)


class TestBenchRun:
    def test_results_have_the_agreed_shape(self, tmp_path: Path) -> None:
        """A small run gives every figure of the issue next to its same-run baseline."""
        results = run(f"sqlite:///{tmp_path / 'bench.db'}", subjects=1000, batch=400, reveals=16, lookups=10)
        assert [r.name for r in results] == [
            "seal_and_store_1000", "reveal_fields_1_caller", "reveal_fields_8_callers", "reveal_fields_bulk_500",
            "blind_index_lookup_p50_at_1000", "search_p50_at_1000", "rewrap_1000"]
        assert all(r.value > 0 and r.baseline_value > 0 for r in results)
        assert [r.target for r in results] == ["ratio >= 0.5", "value >= 20000", "value >= 20000", "value >= 20000",
                                               "value <= 1", None, None]


class TestBenchSubjects:
    def test_synthetic_values_pass_every_validator(self) -> None:
        """The benchmark's generated subjects are valid for the vault, with 10 fields each."""
        catalogue = load_catalogue()
        for i in [*range(200), 999_999, 1_000_000, 12_345_678]:
            values = subject_values(i)
            assert tuple(values) == FIELDS
            for name, raw in values.items():
                normalise(name, catalogue.get(name).kind, raw)

    def test_pesel_is_unique_per_subject(self) -> None:
        """Lookups by PESEL find exactly one subject: the generator never repeats one."""
        numbers = [pesel(i)[0] for i in range(0, 2_000_000, 7)]
        assert len(set(numbers)) == len(numbers)


def _utc(value: datetime) -> datetime:
    """SQLite gives back naive UTC, PostgreSQL an aware time."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


class TestDriverInserts:
    def test_rows_read_back_as_written(self, engine: Engine) -> None:
        """Subjects, data keys and fields inserted in bulk read back with their bytes, NULLs and times."""
        now = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
        with write_connection(engine) as conn:
            repository.insert_subjects(conn, [{
                "token": SUBJECT, "kind": "debtor", "status": "active", "dek_version": 1, "idempotency_hash": None,
                "request_hash": b"\x00" * 32, "created_at": now, "updated_at": now, "shredded_at": None}])
            repository.insert_data_keys(conn, [{"subject_token": SUBJECT, "dek_version": 1, "kek_version": 3,
                                                "wrapped": b"\x01\x02", "created_at": now, "rewrapped_at": None}])
            repository.insert_fields(conn, [
                (SUBJECT, "phone", seq, bytes([seq]) * 40, None if seq else b"\xff" * 16, now, now)
                for seq in range(2)])
        with engine.connect() as conn:
            subject = repository.get_subject(conn, SUBJECT)
            key = repository.get_data_key(conn, SUBJECT, 1)
            fields = repository.select_fields(conn, SUBJECT)
            stored = conn.execute(select(repository.fields.c.created_at, repository.fields.c.blind_index)
                                  .order_by(repository.fields.c.seq)).all()
        assert subject is not None
        assert subject.request_hash == b"\x00" * 32
        assert key == repository.DataKeyRow(SUBJECT, 1, 3, b"\x01\x02")
        assert [(f.seq, f.envelope) for f in fields] == [(0, bytes(40)), (1, b"\x01" * 40)]
        assert [_utc(row.created_at) for row in stored] == [now, now]
        assert [None if row.blind_index is None else bytes(row.blind_index) for row in stored] == [b"\xff" * 16, None]
