"""``tarcza bench audit``: appends, proofs and offline verification, each next to a same-run baseline.

* durable appends per second at batch sizes 1, 100 and 1000 and with 8 concurrent appenders,
  next to a raw INSERT of the same rows into a plain table of the same database;
* inclusion-proof latency at ``entries`` entries, next to a one-row primary-key read;
* offline verification of an export in entries per second, next to plain SHA-256 of the
  same leaf inputs.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text

from audit.checkpoint import Signer
from audit.events import Actor, ActorKind, AuditEvent, build_event
from audit.export import export_log
from audit.repository import EntryFilter, entries
from audit.service import AuditLog
from audit.verify import verify_export
from bench.common import Progress, Result, percentile, rate, timed
from core import migrate
from core.db import bulk_insert, make_engine, write_connection

ACTOR = Actor(id="bench-agent", kind=ActorKind.USER)
PLAIN_TABLE = "bench_plain_rows"


def _events(count: int, seed: int) -> list[AuditEvent]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    channels = ["phone", "sms", "email", "letter", "visit"]
    return [build_event("contact.attempted", actor=ACTOR, time=now, subject=f"sub_BENCH{rng.randrange(10**8):08d}",
                        payload={"channel": rng.choice(channels), "direction": "outbound", "agent_id": "bench-agent",
                                 "outcome": "no-answer"}) for _ in range(count)]


def _create_plain_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {PLAIN_TABLE}"))
        conn.execute(text(
            f"CREATE TABLE {PLAIN_TABLE} (idx BIGINT PRIMARY KEY, event_id VARCHAR(36), event_type VARCHAR(64), "
            "subject_token VARCHAR(64), actor_id VARCHAR(128), actor_kind VARCHAR(16), occurred_at VARCHAR(40), "
            f"leaf_input {'BYTEA' if engine.dialect.name == 'postgresql' else 'BLOB'}, "
            f"leaf_hash {'BYTEA' if engine.dialect.name == 'postgresql' else 'BLOB'})"))


class _Plain:
    """Raw INSERTs of the same rows into a plain table (the baseline), by the same bulk insert
    as the log's own (:func:`core.db.bulk_insert`: COPY on PostgreSQL, executemany on SQLite)."""

    COLUMNS = ("idx", "event_id", "event_type", "subject_token", "actor_id", "actor_kind", "occurred_at",
               "leaf_input", "leaf_hash")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counter = itertools.count()
        self.lock = threading.Lock()

    def rows(self, events: list[AuditEvent]) -> list[tuple[Any, ...]]:
        with self.lock:
            ids = [next(self.counter) for _ in events]
        out = []
        for i, e in zip(ids, events, strict=True):
            data = e.canonical()
            out.append((i, e.id, e.type, e.subject, e.actor.id, e.actor.kind.value, e.time.isoformat(), data,
                        hashlib.sha256(b"\x00" + data).digest()))
        return out

    def insert(self, events: list[AuditEvent]) -> None:
        with write_connection(self.engine) as conn:
            bulk_insert(conn, PLAIN_TABLE, self.COLUMNS, self.rows(events))


def _paired(ours: list[Any], theirs: list[Any], our_fn: Callable[[Any], object],
            their_fn: Callable[[Any], object]) -> tuple[float, float]:
    """Total seconds of ``our_fn`` over ``ours`` and ``their_fn`` over ``theirs``, taking turns
    item by item, so that a slow spell of the machine (a flush, another process) weighs on
    both sides alike."""
    t_ours = t_theirs = 0.0
    for mine, other in zip(ours, theirs, strict=True):
        started = time.perf_counter()
        our_fn(mine)
        t_ours += time.perf_counter() - started
        started = time.perf_counter()
        their_fn(other)
        t_theirs += time.perf_counter() - started
    return t_ours, t_theirs


def _threads(count: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run(url: str, *, singles: int = 300, batch_rounds: int = 30, concurrent: int = 2000, entries_n: int = 100_000,
        proof_samples: int = 1000, verify_n: int = 100_000, progress: Progress | None = None) -> list[Result]:
    say = progress or (lambda _msg: None)
    engine = make_engine(url)
    migrate.upgrade(engine)
    _create_plain_table(engine)
    log = AuditLog(engine, Signer.generate("tarcza/bench"), checkpoint_every_entries=10**12, batch_max=1000)
    plain = _Plain(engine)
    results: list[Result] = []
    try:
        say(f"batch size 1: {singles} appends, each its own durable commit")
        ours_1 = [[e] for e in _events(singles, 1)]
        t_log, t_raw = _paired(ours_1, [[e] for e in _events(singles, 2)],
                               lambda c: log.append(c[0]), plain.insert)
        results.append(Result("append_batch_1", rate(singles, t_log), "entries/s", "raw_insert_batch_1",
                              rate(singles, t_raw), True))
        for batch in (100, 1000):
            say(f"batch size {batch}: {batch_rounds} batches each, ours and raw taking turns")
            ours = [_events(batch, 10 + i) for i in range(batch_rounds)]
            theirs = [_events(batch, 100 + i) for i in range(batch_rounds)]
            t_log, t_raw = _paired(ours, theirs, lambda c: log.append_many([(e, None) for e in c]), plain.insert)
            results.append(Result(f"append_batch_{batch}", rate(batch * batch_rounds, t_log), "entries/s",
                                  f"raw_insert_batch_{batch}", rate(batch * batch_rounds, t_raw), True,
                                  "ratio >= 0.5"))
        say(f"8 concurrent appenders: {concurrent} single appends")
        per = concurrent // 8
        work = [_events(per, 200 + n) for n in range(8)]
        def log_worker(n: int) -> None:
            for e in work[n]:
                log.append(e)

        def raw_worker(n: int) -> None:
            for e in work[n]:
                plain.insert([e])

        t_log = timed(lambda: _threads(8, log_worker))
        work = [_events(per, 300 + n) for n in range(8)]
        t_raw = timed(lambda: _threads(8, raw_worker))
        results.append(Result("append_8_concurrent", rate(per * 8, t_log), "entries/s", "raw_insert_8_concurrent",
                              rate(per * 8, t_raw), True))

        size = log.size()
        say(f"filling the log to {entries_n:,} entries for proofs")
        while size < entries_n:
            n = min(1000, entries_n - size)
            log.append_many([(e, None) for e in _events(n, size)])
            size += n
            if size % 50_000 < 1000:
                say(f"  {size:,} entries")
        log.issue_checkpoint()  # proofs are served against checkpoints, as in a running log
        results.append(_proof_latency(log, engine, size, proof_samples))
        results.append(_verification(log, min(verify_n, size), say))
    finally:
        log.close()
        engine.dispose()
    return results


def _proof_latency(log: AuditLog, engine: Engine, size: int, samples: int) -> Result:
    rng = random.Random(6962)
    indexes = [rng.randrange(size) for _ in range(samples)]
    log.inclusion_proof(indexes[0], size)  # warm the pool
    latencies = []
    for index in indexes:
        started = time.perf_counter()
        log.inclusion_proof(index, size)
        latencies.append((time.perf_counter() - started) * 1000)
    reads = []
    stmt = select(entries.c.leaf_hash).where(entries.c.idx == text(":i"))
    with engine.connect() as conn:
        for index in indexes:
            started = time.perf_counter()
            conn.execute(stmt, {"i": index}).scalar()
            reads.append((time.perf_counter() - started) * 1000)
    return Result(f"inclusion_proof_p50_at_{size}", percentile(latencies, 50), "ms", "primary_key_read_p50",
                  percentile(reads, 50), False, "value <= 2")


def _verification(log: AuditLog, count: int, say: Progress) -> Result:
    with tempfile.TemporaryDirectory(prefix="tarcza-bench-export-") as tmp:
        out = Path(tmp) / "export"
        say(f"exporting {count:,} entries and verifying offline")
        export_log(log, out, EntryFilter(start=0, end=count))
        verified = verify_export(out)
        # Fastest of five runs on each side: the least disturbed by the rest of the machine.
        t_verify = min(timed(lambda: verify_export(out)) for _ in range(5))
        inputs = (out / "entries.jsonl").read_bytes().split(b"\n")[:-1]
        sha256 = hashlib.sha256
        t_hash = min(timed(lambda: [sha256(x).digest() for x in inputs]) for _ in range(5))
    return Result(f"offline_verify_{verified.entries}", rate(verified.entries, t_verify), "entries/s",
                  "plain_sha256_of_leaf_inputs", rate(len(inputs), t_hash), True, "ratio >= 0.3")
