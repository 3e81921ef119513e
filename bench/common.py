"""What every benchmark shares: results with their same-run baseline, throwaway databases, timing.

A benchmark is not a test: it measures and reports; whether a target is met is shown, never
asserted. Each result carries the baseline measured in the same run on the same machine.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

DEFAULT_PG_ADMIN = os.environ.get("TARCZA_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Result:
    """One measured figure next to its baseline.

    ``target`` is the issue's target, as a ratio to the baseline (``ratio >= 0.5``) or as an
    absolute bound on the value (``value <= 2``, in ``unit``).
    """

    name: str
    value: float
    unit: str
    baseline_name: str
    baseline_value: float
    higher_is_better: bool
    target: str | None = None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline_value if self.baseline_value else float("nan")

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        subject, op, bound = self.target.split()
        value = self.ratio if subject == "ratio" else self.value
        return value >= float(bound) if op == ">=" else value <= float(bound)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": round(self.value, 4), "unit": self.unit,
                "baseline_name": self.baseline_name, "baseline_value": round(self.baseline_value, 4),
                "ratio": round(self.ratio, 4), "target": self.target, "higher_is_better": self.higher_is_better}


def report(area: str, backend: str, results: list[Result]) -> dict[str, Any]:
    return {"area": area, "backend": backend, "results": [r.to_json() for r in results]}


@contextmanager
def bench_database(backend: str, pg_admin_url: str = DEFAULT_PG_ADMIN) -> Iterator[str]:
    """A throwaway database URL: SQLite in a temporary directory, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        directory = tempfile.mkdtemp(prefix="tarcza-bench-")
        try:
            yield f"sqlite:///{directory}/bench.db"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    import psycopg
    from psycopg import sql

    name = f"tarcza_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(pg_admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        from core.errors import DatabaseUnavailableError

        first_line = str(exc).splitlines()[0]
        raise DatabaseUnavailableError(f"cannot reach PostgreSQL for the benchmark: {first_line}") from None
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"{pg_admin_url.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    if pct == 50:
        return statistics.median(values)
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]
