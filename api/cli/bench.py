"""``tarcza bench AREA``: measure an area next to a baseline from the same run; table or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import console, err_console
from bench.common import DEFAULT_PG_ADMIN, Result, bench_database, report

app = typer.Typer(no_args_is_help=True, help="Benchmarks: each figure next to a baseline measured in the same run.")

Backend = Annotated[str, typer.Option(help="sqlite or postgresql (a throwaway database either way).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
PgAdmin = Annotated[str, typer.Option(help="PostgreSQL URL used to create the throwaway database.")]


def _emit(area: str, backend: str, results: list[Result], as_json: bool,
          conditions: dict[str, object] | None = None) -> None:
    if as_json:
        extra = {"conditions": conditions} if conditions else {}
        sys.stdout.write(json.dumps({**report(area, backend, results), **extra}) + "\n")
        return
    table = Table(title=f"tarcza bench {area} ({backend})")
    for column in ("measure", "value", "unit", "baseline", "baseline value", "ratio", "target", "met"):
        table.add_column(column, justify="right" if column not in ("measure", "baseline", "unit") else "left")
    for r in results:
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[r.met]
        table.add_row(r.name, f"{r.value:,.2f}", r.unit, r.baseline_name, f"{r.baseline_value:,.2f}",
                      f"{r.ratio:.3f}", r.target or "-", met)
    console.print(table)
    for key, value in (conditions or {}).items():
        console.print(f"{key}: {value}", markup=False, highlight=False)


def _check_backend(backend: str) -> None:
    if backend not in ("sqlite", "postgresql"):
        from core.errors import InvalidInputError

        raise InvalidInputError(f"--backend must be sqlite or postgresql, not {backend!r}")


@app.command("audit")
def bench_audit(
    backend: Backend = "sqlite", as_json: AsJson = False, pg_admin_url: PgAdmin = DEFAULT_PG_ADMIN,
    entries: Annotated[int, typer.Option(help="Log size for the proof latency (the issue's full size: 1000000).",
                                         min=1000)] = 100_000,
    verify_entries: Annotated[int, typer.Option(help="Entries exported and verified offline.", min=100)] = 100_000,
    singles: Annotated[int, typer.Option(help="Appends measured at batch size 1.", min=10)] = 300,
) -> None:
    """Durable appends (batch 1/100/1000, 8 concurrent), proof latency, offline verification."""
    from bench import audit

    _check_backend(backend)
    with bench_database(backend, pg_admin_url) as url:
        results = audit.run(url, entries_n=entries, verify_n=verify_entries, singles=singles,
                            progress=None if as_json else (lambda m: err_console.print(m, style="dim")))
    _emit("audit", backend, results, as_json)


@app.command("vault")
def bench_vault(
    backend: Backend = "sqlite", as_json: AsJson = False, pg_admin_url: PgAdmin = DEFAULT_PG_ADMIN,
    subjects: Annotated[int, typer.Option(
        help="Subjects sealed (10 fields each) and searched among (the issue's full size: 1000000).",
        min=1000)] = 20_000,
    reveals: Annotated[int, typer.Option(help="Reveals of 10 fields, with 1 and with 8 callers.", min=10)] = 1000,
    lookups: Annotated[int, typer.Option(help="Lookups by PESEL for the latency percentiles.", min=10)] = 1000,
    batch: Annotated[int, typer.Option(help="Subjects per bulk create and keys per rewrap transaction.",
                                       min=1, max=10_000)] = 1000,
) -> None:
    """Seal-and-store, reveal, blind-index lookup and KEK rewrap rates, each next to plain SQL."""
    from bench import vault

    _check_backend(backend)
    with bench_database(backend, pg_admin_url) as url:
        results = vault.run(url, subjects=subjects, reveals=reveals, lookups=lookups, batch=batch,
                            progress=None if as_json else (lambda m: err_console.print(m, style="dim")))
    _emit("vault", backend, results, as_json)


@app.command("policies")
def bench_policies(
    backend: Backend = "sqlite", as_json: AsJson = False,
    size: Annotated[list[int] | None, typer.Option(
        help="Decisions per measured run; repeat for several sizes (default 1000 and 10000).", min=1)] = None,
) -> None:
    """Cedar decisions per second (whole decide, and Cedar alone) next to a plain Python role check."""
    from bench import policies

    _check_backend(backend)
    _emit("policies", backend, policies.results(backend, tuple(size or (1_000, 10_000))), as_json)


@app.command("contacts")
def bench_contacts(
    backend: Backend = "sqlite", as_json: AsJson = False, pg_admin_url: PgAdmin = DEFAULT_PG_ADMIN,
    contacts: Annotated[int, typer.Option(help="Contacts recorded through the whole path (and bare appends).",
                                          min=100)] = 2000,
    subjects: Annotated[int, typer.Option(help="Subjects the contacts are about.", min=10)] = 500,
    notes: Annotated[int, typer.Option(help="Synthetic notes scrubbed by both detectors (at least 1000 for "
                                            "the issue's figures).", min=50)] = 1000,
) -> None:
    """Recorded contacts/s next to bare audit appends; scrubbed notes/s, recall and precision next to presidio."""
    from bench import contacts as bench_contacts_module

    _check_backend(backend)
    with bench_database(backend, pg_admin_url) as url:
        results = bench_contacts_module.run(url, contacts=contacts, subjects=subjects, notes=notes,
                                            progress=None if as_json else (lambda m: err_console.print(m, style="dim")))
    _emit("contacts", backend, results, as_json)


@app.command("gdpr")
def bench_gdpr(
    backend: Backend = "sqlite", as_json: AsJson = False, pg_admin_url: PgAdmin = DEFAULT_PG_ADMIN,
    subjects: Annotated[int, typer.Option(help="Subjects in the vault (the issue's full size: 100000).",
                                          min=100)] = 10_000,
    events: Annotated[int, typer.Option(help="Contact events in the log (the issue's full size: 1000000).",
                                        min=100)] = 100_000,
) -> None:
    """Export of one subject, erasure per subject, retention dry run and run, each next to a plain baseline."""
    from bench import gdpr as bench_gdpr_module

    _check_backend(backend)
    with bench_database(backend, pg_admin_url) as url:
        results = bench_gdpr_module.run(url, subjects=subjects, events=events,
                                        progress=None if as_json else (lambda m: err_console.print(m, style="dim")))
    _emit("gdpr", backend, results, as_json)


@app.command("api")
def bench_api(
    backend: Backend = "sqlite", as_json: AsJson = False, pg_admin_url: PgAdmin = DEFAULT_PG_ADMIN,
    seconds: Annotated[float, typer.Option(help="Measured seconds per phase (after a short warm-up).",
                                           min=0.2)] = 10.0,
    connections: Annotated[int, typer.Option(help="Concurrent keep-alive connections of the driver.",
                                             min=1, max=256)] = 8,
    subjects: Annotated[int, typer.Option(help="Debtors seeded (each with a debt and a case).", min=10)] = 1000,
    profile: Annotated[Path | None, typer.Option(help=(
        "Run the server under cProfile (every thread, CPU time; TARCZA_BENCH_PROFILE_CLOCK=wall for elapsed "
        "time) and write its statistics here; only the single-contact "
        "phase runs, and its figures are slowed by the profiler."), dir_okay=False)] = None,
) -> None:
    """A running `tarcza serve` driven over HTTP from a second process: contacts (single, batch), masked
    reads and reveals per second with p50/p99, an open loop at half the single-contact rate, next to
    GET /healthz at the same concurrency."""
    from bench import api as bench_api_module

    _check_backend(backend)
    with bench_database(backend, pg_admin_url) as url:
        results, conditions = bench_api_module.run(
            url, seconds=seconds, connections=connections, subjects=subjects, profile=profile,
            progress=None if as_json else (lambda m: err_console.print(m, style="dim", markup=False)))
    _emit("api", backend, results, as_json, conditions)
