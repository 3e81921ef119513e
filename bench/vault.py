"""``tarcza bench vault``: sealing, revealing, searching and rewrapping, each next to plain SQL.

Every figure is measured through :class:`~vault.service.VaultService` itself, with the real
Cedar policies, a local keyfile and a durable audit log, in the same database as its
baseline, in the same run:

* **seal-and-store**: subjects of 10 fields per second through the bulk path
  (``create_subjects``, ``batch`` subjects per call: validation, a data key per subject
  wrapped under the KEK, 10 AES-GCM envelopes, 7 blind indexes, one audit entry per
  subject), next to INSERTs of the same plaintext rows (a subject row and one row per
  value, with an index on (field, value)) into plain tables, one transaction per batch.
  Vault and plain batches alternate, so both meet the same database as it grows; the
  fill is ``subjects`` large on both sides and is what the lookups then run against.
* **reveal**: fields revealed per second, every reveal asking for all 10 fields of a
  random subject (a policy decision, the access entry appended *and committed* before
  anything is decrypted, the data key unwrapped unless cached, 10 envelopes opened), with
  one caller and with 8 concurrent callers, next to a plain SELECT of the same subjects'
  10 plaintext rows; and through the bulk reveal (``reveal_many``, 500 distinct subjects
  per call: one Cedar batch, one audit commit for the 500 entries), next to plain SELECTs
  of the same rows 500 subjects per query.
* **lookup at ``subjects``**: p50 latency of finding a subject by PESEL through its blind
  index (HMAC of the normalised value, then the indexed query the vault runs), next to
  an indexed equality lookup on the plaintext column. The full ``search`` (a decision and
  a durable audit entry per search, then the same lookup) is reported next to the same
  baseline: on a disk where a commit costs milliseconds, that is what the commit costs.
* **rewraps**: data keys rewrapped per second by a KEK rotation (``rotate_keys``) over
  every subject, next to a plain UPDATE of as many rows of a plain key table, in
  transactions of the same size.

Synthetic values come from :func:`subject_values`, cheap and deterministic (no Faker: a
million subjects must not spend minutes generating names), and valid for every
validator: PESEL and NIP checksums, IBAN mod-97, Polish mobile numbers, RFC 2606 e-mail
domains.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, text

from audit.checkpoint import Signer
from audit.events import ActorKind
from audit.service import AuditLog
from bench.common import Progress, Result, percentile, rate, timed
from core import migrate
from core.db import make_engine, read_connection, write_connection
from identity.principal import Principal, Role
from policies.engine import CedarAuthorizer
from vault import repository
from vault.fields import load_catalogue
from vault.keys import LocalKeyfileProvider
from vault.service import NewSubject, VaultService
from vault.tokens import new_token

FIELDS: Final = ("first_name", "last_name", "pesel", "date_of_birth", "phone", "email", "iban", "address",
                 "employer", "nip")
PURPOSE: Final = "debt_collection"
CONCURRENT: Final = 8
BULK_SUBJECTS: Final = 5000
BULK_CHUNK: Final = 500
IMPORTER = Principal(id="bench-importer", kind=ActorKind.SYSTEM)
PLAIN_SUBJECTS, PLAIN_FIELDS, PLAIN_KEYS = "bench_plain_subjects", "bench_plain_fields", "bench_plain_keys"

_FIRST = ("Anna", "Jan", "Katarzyna", "Piotr", "Małgorzata", "Krzysztof", "Agnieszka", "Andrzej", "Barbara",
          "Tomasz", "Ewa", "Paweł", "Zofia", "Michał", "Joanna", "Łukasz", "Magdalena", "Grzegorz", "Elżbieta",
          "Marcin")
_LAST = ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski", "Zieliński",
         "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur", "Kwiatkowski", "Krawczyk",
         "Piotrowski", "Grabowski", "Nowakowski", "Pawłowski")
_STREETS = ("Długa", "Polna", "Leśna", "Słoneczna", "Krótka", "Szkolna", "Ogrodowa", "Lipowa", "Łąkowa",
            "Brzozowa", "Kwiatowa", "Kościuszki")
_CITIES = (("00-950", "Warszawa"), ("30-001", "Kraków"), ("90-001", "Łódź"), ("50-001", "Wrocław"),
           ("60-001", "Poznań"), ("80-001", "Gdańsk"), ("70-001", "Szczecin"), ("20-001", "Lublin"))
_PESEL_WEIGHTS: Final = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
_NIP_WEIGHTS: Final = (6, 5, 7, 2, 3, 4, 5, 6, 7)
_BORN_FROM: Final = date(1940, 1, 1)


def pesel(i: int) -> tuple[str, str]:
    """A valid, unique (for ``i`` below 200 million) PESEL and the birth date it encodes."""
    born = _BORN_FROM + timedelta(days=(i // 10_000) % 21_900)  # 1940..1999
    body = f"{born.year % 100:02d}{born.month:02d}{born.day:02d}{i % 10_000:04d}"
    check = (10 - sum(int(d) * w for d, w in zip(body, _PESEL_WEIGHTS, strict=True)) % 10) % 10
    return body + str(check), born.isoformat()


def nip(i: int) -> str:
    """A NIP with a valid checksum (the first candidate from ``i`` whose check digit is not 10)."""
    n = i * 11
    while True:
        body = f"{521 + n % 400:03d}{n // 400 % 1_000_000:06d}"
        check = sum(int(d) * w for d, w in zip(body, _NIP_WEIGHTS, strict=True)) % 11
        if check != 10:
            return body + str(check)
        n += 1


def iban(i: int) -> str:
    """A Polish IBAN (bank 10901014, account number ``i``) with valid mod-97 check digits."""
    bban = f"10901014{i:016d}"
    check = 98 - int(bban + "252100") % 97  # "PL" -> 25 21, check digits 00
    return f"PL{check:02d}{bban}"


def subject_values(i: int) -> dict[str, str]:
    """The 10 field values of synthetic subject ``i`` (unique PESEL, e-mail, phone and IBAN per ``i``)."""
    number, born = pesel(i)
    first, last = _FIRST[i % len(_FIRST)], _LAST[i // len(_FIRST) % len(_LAST)]
    postcode, city = _CITIES[i % len(_CITIES)]
    return {
        "first_name": first, "last_name": last, "pesel": number, "date_of_birth": born,
        "phone": f"+4860{i % 10_000_000:07d}", "email": f"osoba.{i}@example.com", "iban": iban(i),
        "address": f"ul. {_STREETS[i % len(_STREETS)]} {i % 200 + 1}, {postcode} {city}",
        "employer": f"{_LAST[i % len(_LAST)]} i Wspólnicy sp. z o.o.", "nip": nip(i),
    }


class _Plain:
    """The baseline: plain tables holding the same values in clear, written with raw driver SQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        blob = "BYTEA" if engine.dialect.name == "postgresql" else "BLOB"
        with engine.begin() as conn:
            for table in (PLAIN_FIELDS, PLAIN_KEYS, PLAIN_SUBJECTS):
                conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
            conn.execute(text(f"CREATE TABLE {PLAIN_SUBJECTS} (token VARCHAR(64) PRIMARY KEY, kind VARCHAR(16), "
                              "created_at VARCHAR(40))"))
            conn.execute(text(f"CREATE TABLE {PLAIN_FIELDS} (subject_token VARCHAR(64), field VARCHAR(64), "
                              "seq INTEGER, value TEXT, created_at VARCHAR(40), "
                              "PRIMARY KEY (subject_token, field, seq))"))
            conn.execute(text(f"CREATE INDEX ix_{PLAIN_FIELDS}_value ON {PLAIN_FIELDS} (field, value)"))
            conn.execute(text(f"CREATE TABLE {PLAIN_KEYS} (subject_token VARCHAR(64) PRIMARY KEY, "
                              f"kek_version INTEGER, wrapped {blob})"))

    def _sql(self, table: str, columns: int) -> str:
        return f"INSERT INTO {table} VALUES ({', '.join([self.mark] * columns)})"  # noqa: S608 - constants

    def store(self, batch: Sequence[dict[str, str]]) -> list[str]:
        """Insert a batch of subjects and their values in one transaction; their new tokens."""
        now = datetime.now(UTC).isoformat()
        tokens = [new_token() for _ in batch]
        fields = [(token, name, 0, value, now) for token, values in zip(tokens, batch, strict=True)
                  for name, value in values.items()]
        with write_connection(self.engine) as conn:
            conn.exec_driver_sql(self._sql(PLAIN_SUBJECTS, 3), [(t, "debtor", now) for t in tokens])
            conn.exec_driver_sql(self._sql(PLAIN_FIELDS, 5), fields)
        return tokens

    def select_fields(self, token: str) -> list[tuple[Any, ...]]:
        sql = (f"SELECT field, seq, value FROM {PLAIN_FIELDS} WHERE subject_token = {self.mark} "  # noqa: S608
               "ORDER BY field, seq")
        with read_connection(self.engine) as conn:
            return list(conn.exec_driver_sql(sql, (token,)).all())

    def select_fields_of(self, tokens: Sequence[str]) -> list[tuple[Any, ...]]:
        marks = ", ".join([self.mark] * len(tokens))
        sql = (f"SELECT subject_token, field, seq, value FROM {PLAIN_FIELDS} "  # noqa: S608 - constants
               f"WHERE subject_token IN ({marks}) ORDER BY subject_token, field, seq")
        with read_connection(self.engine) as conn:
            return list(conn.exec_driver_sql(sql, tuple(tokens)).all())

    def lookup(self, field: str, value: str) -> list[str]:
        sql = (f"SELECT DISTINCT subject_token FROM {PLAIN_FIELDS} "  # noqa: S608 - constants
               f"WHERE field = {self.mark} AND value = {self.mark} ORDER BY subject_token LIMIT 100")
        with read_connection(self.engine) as conn:
            return [str(t) for t in conn.exec_driver_sql(sql, (field, value)).scalars()]

    def fill_keys(self, tokens: Sequence[str], batch: int) -> None:
        for start in range(0, len(tokens), batch):
            rows = [(t, 1, os.urandom(60)) for t in tokens[start:start + batch]]
            with write_connection(self.engine) as conn:
                conn.exec_driver_sql(self._sql(PLAIN_KEYS, 3), rows)

    def update_keys(self, tokens: Sequence[str], batch: int) -> None:
        sql = (f"UPDATE {PLAIN_KEYS} SET kek_version = {self.mark}, wrapped = {self.mark} "  # noqa: S608
               f"WHERE subject_token = {self.mark}")
        for start in range(0, len(tokens), batch):
            rows = [(2, os.urandom(60), t) for t in tokens[start:start + batch]]
            with write_connection(self.engine) as conn:
                conn.exec_driver_sql(sql, rows)


def _threads(count: int, target: Callable[[int], None]) -> float:
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def _latencies(items: Sequence[Any], fn: Callable[[Any], object]) -> list[float]:
    out = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - started) * 1000)
    return out


def run(url: str, *, subjects: int = 20_000, batch: int = 1000, reveals: int = 1000, lookups: int = 1000,
        progress: Progress | None = None) -> list[Result]:
    """Fill the vault and the plain tables with ``subjects`` each, then measure; see the module docstring."""
    say = progress or (lambda _msg: None)
    engine = make_engine(url)
    migrate.upgrade(engine)
    plain = _Plain(engine)
    with tempfile.TemporaryDirectory(prefix="tarcza-bench-keys-") as keys_dir:
        provider = LocalKeyfileProvider.create(Path(keys_dir) / "kek.json")
        log = AuditLog(engine, Signer.generate("tarcza/bench"), checkpoint_every_entries=10**12, batch_max=1000)
        vault = VaultService(engine, provider, log, CedarAuthorizer.load(), load_catalogue())
        try:
            results, tokens, plain_tokens = _fill(vault, plain, subjects, batch, say)
            dpo = Principal(id="bench-dpo", kind=ActorKind.USER, roles=frozenset({Role.DPO}),
                            second_factor_at=datetime.now(UTC))
            results += _reveal(vault, plain, dpo, tokens, plain_tokens, reveals, say)
            results += _lookup(vault, plain, dpo, tokens, lookups, say)
            results.append(_rewrap(vault, plain, plain_tokens, batch, say))
        finally:
            log.close()
            provider.close()
            engine.dispose()
    return results


def _fill(vault: VaultService, plain: _Plain, subjects: int, batch: int,
          say: Progress) -> tuple[list[Result], list[str], list[str]]:
    say(f"seal-and-store: {subjects:,} subjects of {len(FIELDS)} fields, batches of {batch}, "
        "alternating with plain INSERTs")
    tokens: list[str] = []
    plain_tokens: list[str] = []
    t_vault = t_plain = 0.0
    report_every = max(batch, subjects // 20)
    for start in range(0, subjects, batch):
        values = [subject_values(i) for i in range(start, min(subjects, start + batch))]
        items = [NewSubject("debtor", v) for v in values]
        started = time.perf_counter()
        tokens += vault.create_subjects(IMPORTER, items)
        middle = time.perf_counter()
        plain_tokens += plain.store(values)
        t_vault += middle - started
        t_plain += time.perf_counter() - middle
        if len(tokens) % report_every < batch:
            say(f"  {len(tokens):,} subjects ({rate(len(tokens), t_vault):,.0f}/s sealed, "
                f"{rate(len(tokens), t_plain):,.0f}/s plain)")
    result = Result(f"seal_and_store_{subjects}", rate(subjects, t_vault), "subjects/s",
                    "plain_insert_same_rows", rate(subjects, t_plain), True, "ratio >= 0.5")
    return [result], tokens, plain_tokens


def _reveal(vault: VaultService, plain: _Plain, dpo: Principal, tokens: list[str], plain_tokens: list[str],
            reveals: int, say: Progress) -> list[Result]:
    rng = random.Random(20)
    picks = [rng.randrange(len(tokens)) for _ in range(reveals)]
    ours = [tokens[i] for i in picks]
    theirs = [plain_tokens[i] for i in picks]
    fields = list(FIELDS)
    vault.reveal(dpo, ours[0], fields, PURPOSE)  # warm the pool, the policies and the sequencer
    plain.select_fields(theirs[0])
    say(f"reveal: {reveals:,} reveals of {len(fields)} fields, one caller")
    count = reveals * len(fields)
    t_vault = sum(_latencies(ours, lambda t: vault.reveal(dpo, t, fields, PURPOSE))) / 1000
    t_plain = sum(_latencies(theirs, plain.select_fields)) / 1000
    out = [Result("reveal_fields_1_caller", rate(count, t_vault), "fields/s", "plain_select_same_fields",
                  rate(count, t_plain), True, "value >= 20000")]
    say(f"reveal: {reveals:,} reveals of {len(fields)} fields, {CONCURRENT} concurrent callers")

    def reveal_part(n: int) -> None:
        for t in ours[n::CONCURRENT]:
            vault.reveal(dpo, t, fields, PURPOSE)

    def select_part(n: int) -> None:
        for t in theirs[n::CONCURRENT]:
            plain.select_fields(t)

    t_vault = _threads(CONCURRENT, reveal_part)
    t_plain = _threads(CONCURRENT, select_part)
    out.append(Result(f"reveal_fields_{CONCURRENT}_callers", rate(count, t_vault), "fields/s",
                      f"plain_select_same_fields_{CONCURRENT}_callers", rate(count, t_plain), True,
                      "value >= 20000"))

    chosen = rng.sample(range(len(tokens)), min(len(tokens), BULK_SUBJECTS))
    ours_bulk = [tokens[i] for i in chosen]
    theirs_bulk = [plain_tokens[i] for i in chosen]
    say(f"bulk reveal: {len(chosen):,} subjects of {len(fields)} fields, {BULK_CHUNK} per call")
    started = time.perf_counter()
    revealed = 0
    for start in range(0, len(ours_bulk), BULK_CHUNK):
        for result in vault.reveal_many(dpo, ours_bulk[start:start + BULK_CHUNK], fields, PURPOSE):
            revealed += sum(len(values) for values in (result.fields or {}).values())
    t_vault = time.perf_counter() - started
    t_plain = timed(lambda: [plain.select_fields_of(theirs_bulk[i:i + BULK_CHUNK])
                             for i in range(0, len(theirs_bulk), BULK_CHUNK)])
    out.append(Result(f"reveal_fields_bulk_{BULK_CHUNK}", rate(revealed, t_vault), "fields/s",
                      f"plain_select_same_fields_{BULK_CHUNK}_subjects_per_query",
                      rate(len(chosen) * len(fields), t_plain), True, "value >= 20000"))
    return out


def _lookup(vault: VaultService, plain: _Plain, dpo: Principal, tokens: list[str], lookups: int,
            say: Progress) -> list[Result]:
    size = len(tokens)
    rng = random.Random(6238)
    picks = [rng.randrange(size) for _ in range(lookups)]
    values = [pesel(i)[0] for i in picks]
    say(f"lookup by PESEL at {size:,} subjects: {lookups:,} blind-index lookups, searches and plain lookups")

    def blind_lookup(value: str) -> list[str]:
        index = vault.sealer.blind_index("pesel", value)
        with read_connection(vault.engine) as conn:
            return repository.tokens_by_blind_index(conn, "pesel", index, 100)

    for i, value in zip(picks[:20], values[:20], strict=True):  # correctness, and warming the caches
        if blind_lookup(value) != [tokens[i]] or len(plain.lookup("pesel", value)) != 1:
            raise RuntimeError(f"lookup of subject {i} by PESEL found the wrong subjects")
    lookup_ms = _latencies(values, blind_lookup)
    plain_ms = _latencies(values, lambda v: plain.lookup("pesel", v))
    search_ms = _latencies(values, lambda v: vault.search(dpo, "pesel", v, PURPOSE))
    baseline = percentile(plain_ms, 50)
    return [
        Result(f"blind_index_lookup_p50_at_{size}", percentile(lookup_ms, 50), "ms", "plain_indexed_lookup_p50",
               baseline, False, "value <= 1"),
        Result(f"search_p50_at_{size}", percentile(search_ms, 50), "ms", "plain_indexed_lookup_p50", baseline,
               False),
    ]


def _rewrap(vault: VaultService, plain: _Plain, plain_tokens: list[str], batch: int, say: Progress) -> Result:
    say(f"rewrap: rotating the KEK over {len(plain_tokens):,} data keys, batches of {batch}")
    plain.fill_keys(plain_tokens, batch)
    started = time.perf_counter()
    report = vault.rotate_keys(batch_size=batch)
    t_vault = time.perf_counter() - started
    say(f"plain: updating {len(plain_tokens):,} rows, batches of {batch}")
    started = time.perf_counter()
    plain.update_keys(plain_tokens, batch)
    t_plain = time.perf_counter() - started
    return Result(f"rewrap_{report.rewrapped}", rate(report.rewrapped, t_vault), "keys/s", "plain_update_same_rows",
                  rate(len(plain_tokens), t_plain), True)
