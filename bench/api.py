"""``tarcza bench api``: the running server, driven over HTTP from a second process.

A real ``tarcza serve`` (one uvicorn process, as an operator starts it) runs on a throwaway
data directory and database, seeded in-process beforehand with ``subjects`` debtors (10 sealed
fields, a consumer debt and a case each) and one API client holding the scopes an integrating
system uses (a client may reveal for a purpose without a second factor: ``scope.reveal`` in
policies/authorisation.cedar). A driver process then keeps ``connections`` keep-alive
connections busy (asyncio and httpx, closed loop) for ``seconds`` per phase, after a short
unmeasured warm-up:

* ``GET /healthz``, the cheapest route: the baseline of every figure (the framework, the
  driver and the loopback network, without the work);
* ``POST /v1/contacts``: one outbound phone attempt without a note (a dialer's typical
  record: firewall with its history, authorisation, sealing nothing, audit append and the
  contact's index row), with an ``Idempotency-Key`` as the typed client sends; notes and
  their scrubbing are ``tarcza bench contacts``;
* ``POST /v1/contacts/batch``: 500 such contacts per call, reported in events per second;
* ``GET /v1/subjects/{token}``: a masked read of every field of a random subject;
* ``POST /v1/subjects/{token}/reveal``: four fields in clear for ``debt_collection`` (the
  access entry committed before anything is decrypted);
* then an open loop: single contacts offered at half the closed-loop single-contact rate, on
  a schedule (latency counted from the scheduled send, so a stall is not hidden by waiting).

Contacts fall on Polish working days at working hours, each subject's spaced three working days
apart, so no frequency cap or cooldown refuses one: every request is expected to succeed, and
a phase with more than 0.5% failures aborts the benchmark rather than report a rate of errors.
Rate limits, where the server has them, are switched off through its environment and the
output says so. Targets (from the issue, on a 2-core machine): single contact at least 1,500
requests/s, batch at least 20,000 events/s, open-loop p99 at most 50 ms.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from bench.common import Progress, Result, percentile

BATCH_SIZE: Final = 500
FIRST_DAY: Final = date(2016, 1, 4)  # contacts fall on working days from here on
STRIDE: Final = 3  # working days between two contacts with one subject: under every cap, no cooldown
REVEAL_FIELDS: Final = ("first_name", "last_name", "pesel", "phone")
SCOPES: Final = ("contacts:write", "subjects:read-masked", "subjects:reveal")
MAX_ERROR_SHARE: Final = 0.005
WARMUP_SHARE: Final = 0.2
MAX_WARMUP_SECONDS: Final = 2.0

#: Settings that switch the server's rate limits off for the benchmark (each applied only if the
#: server's settings know it), so that the figures are the server's and not a limiter's.
RATE_LIMITS_OFF: Final[dict[str, str]] = {
    "rate_limit_client": "off", "rate_limit_address": "off", "rate_limit_login": "off",
}


class BenchError(RuntimeError):
    """The benchmark could not produce meaningful figures (server did not start, requests failed)."""


@dataclass(frozen=True)
class Person:
    token: str
    debt_id: str
    case_id: str


@dataclass(frozen=True)
class Plan:
    """What the driver process needs: where to send, as whom, about whom, and for how long."""

    url: str
    client_id: str
    client_secret: str = field(repr=False)
    people: tuple[Person, ...]
    seconds: float
    connections: int
    only_single: bool = False


@dataclass
class Phase:
    """What one phase measured: completions in the window, their latencies (ms), and failures."""

    name: str
    ok: int = 0
    items: int = 0  # events, for the batch phase
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    offered_per_s: float | None = None
    driver_cpu_share: float = 0.0  # the driver's CPU time over the phase's elapsed time: near 1, it was the limit

    @property
    def per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    def p(self, pct: float) -> float:
        return percentile(self.latencies_ms, pct)

    def check(self) -> None:
        if not self.ok:
            raise BenchError(f"phase {self.name}: no request completed in the measured window; raise --seconds")
        failed = sum(self.failures.values())
        if failed > MAX_ERROR_SHARE * max(1, failed + self.ok):
            raise BenchError(f"phase {self.name}: {failed} of {failed + self.ok} requests failed "
                             f"({', '.join(f'{k} x{v}' for k, v in sorted(self.failures.items()))})")


# -- the whole run ----------------------------------------------------------------------------------------


def run(database_url: str, *, seconds: float = 10.0, connections: int = 8, subjects: int = 1000,
        progress: Progress | None = None, profile: Path | None = None) -> tuple[list[Result], dict[str, Any]]:
    """Seed, start the server, drive it; the results and the conditions they were measured under.

    With ``profile`` the server runs under cProfile (every thread) and only the single-contact
    phase runs; the statistics are written to that file when the server stops.
    """
    say = progress or (lambda _msg: None)
    data_dir = Path(tempfile.mkdtemp(prefix="tarcza-bench-api-"))
    try:
        env, disabled = _server_env(data_dir, database_url)
        say(f"seeding {subjects} subjects with a debt and a case each")
        client_id, secret, people = _seed(env, subjects)
        with _server(env, data_dir, profile) as url:
            say(f"server up at {url}; driving it from a second process with {connections} connections, "
                f"{seconds:g} s per phase")
            plan = Plan(url, client_id, secret, tuple(people), seconds, connections, only_single=profile is not None)
            phases = _in_driver_process(plan, say)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    for phase in phases.values():
        phase.check()
    switched = ", ".join(f"TARCZA_{k.upper()}={v}" for k, v in disabled.items())
    conditions = {
        "rate_limits": (f"disabled for the benchmark: {switched}" if disabled
                        else "none: this server has no rate-limit settings"),
        "server": "one `tarcza serve` process (uvicorn), default settings otherwise" + (
            "; under cProfile" if profile else ""),
        "driver": f"a second process: asyncio + httpx, {connections} keep-alive connections, closed loop",
        "seconds_per_phase": seconds, "subjects": subjects, "batch_size": BATCH_SIZE,
        "contact": "outbound phone attempt, no note, with an Idempotency-Key",
        "open_loop_offered_per_s": round(phases["open_loop"].offered_per_s or 0, 1) if "open_loop" in phases else None,
        "driver_cpu_share": {name: round(phase.driver_cpu_share, 2) for name, phase in phases.items()},
        "figures": "indicative: the machine is shared",
    }
    return _results(phases), conditions


def _results(phases: dict[str, Phase]) -> list[Result]:
    base = phases["healthz"]
    out: list[Result] = []

    def add(name: str, phase: Phase, *, unit: str = "requests/s", target_rate: str | None = None,
            target_p99: str | None = None) -> None:
        value = phase.items_per_s if unit == "events/s" else phase.per_s
        out.append(Result(f"{name}_per_s" if unit != "events/s" else f"{name}_events_per_s", value, unit,
                          "healthz_per_s", base.per_s, higher_is_better=True, target=target_rate))
        out.append(Result(f"{name}_p50_ms", phase.p(50), "ms", "healthz_p50_ms", base.p(50), higher_is_better=False))
        out.append(Result(f"{name}_p99_ms", phase.p(99), "ms", "healthz_p99_ms", base.p(99), higher_is_better=False,
                          target=target_p99))

    add("contact", phases["single"], target_rate="value >= 1500")
    if "batch" in phases:
        add("contact_batch", phases["batch"], unit="events/s", target_rate="value >= 20000")
        add("masked_read", phases["masked"])
        add("reveal", phases["reveal"])
        add("contact_open_loop", phases["open_loop"], target_p99="value <= 50")
    return out


# -- the server ---------------------------------------------------------------------------------------------


def _server_env(data_dir: Path, database_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """The server's environment, and which rate-limit settings it switches off."""
    from core.settings import Settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_") or k.startswith("TARCZA_BENCH_")}
    env.update({"TARCZA_DATA_DIR": str(data_dir / "var"), "TARCZA_DATABASE_URL": database_url,
                "TARCZA_LOG_FORMAT": "json"})
    known = Settings.model_fields
    disabled = {name: value for name, value in RATE_LIMITS_OFF.items() if name in known}
    env.update({f"TARCZA_{name.upper()}": value for name, value in disabled.items()})
    return env, disabled


def _seed(env: dict[str, str], subjects: int) -> tuple[str, str, list[Person]]:
    """Initialise the data directory and fill it through the services (not measured); an API client."""
    from api.auth import identity_transaction
    from api.cli.common import initialise_runtime
    from api.runtime import Runtime
    from audit.events import ActorKind
    from bench.vault import subject_values
    from contacts.debts import NewDebt
    from core.settings import load_settings
    from identity.principal import Principal
    from vault.service import NewSubject

    seeder = Principal(id="bench-seeder", kind=ActorKind.SYSTEM)
    runtime = Runtime(load_settings(data_dir=Path(env["TARCZA_DATA_DIR"]), database_url=env["TARCZA_DATABASE_URL"]))
    try:
        initialise_runtime(runtime)
        tokens: list[str] = []
        for start in range(0, subjects, 1000):
            batch = [NewSubject("debtor", subject_values(i)) for i in range(start, min(subjects, start + 1000))]
            tokens += runtime.vault.create_subjects(seeder, batch)
        people = [Person(token, f"BA-{n:07d}", f"BAC-{n:07d}") for n, token in enumerate(tokens)]
        debts = runtime.contacts.debts
        for person in people:
            debts.add(seeder, NewDebt(id=person.debt_id, subject=person.token, creditor="Przykładowy Bank S.A.",
                                      kind="general", consumer=True, amount_minor=250_000,
                                      due_date=date(2025, 5, 31)))
            debts.open_case(seeder, person.case_id, person.token, person.debt_id)
        from api.cli.identity import operator_actor

        with identity_transaction(runtime) as identity:
            issued = identity.clients.create("bench-api", SCOPES, actor=operator_actor())
        return issued.client.id, issued.secret, people
    finally:
        runtime.close()


@contextmanager
def _server(env: dict[str, str], data_dir: Path, profile: Path | None) -> Iterator[str]:
    """``tarcza serve`` on a free port (under cProfile with ``profile``); its base URL until the block ends."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    command = [sys.executable, "-m", "api", "serve", "--port", str(port)]
    if profile is not None:
        command = [sys.executable, "-m", "bench.api", "profile-serve", str(profile), "--port", str(port)]
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - our command
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:  # noqa: S310 - our local server
                    if answer.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-1500:]
                    raise BenchError(f"the server did not start: {tail}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def profile_serve(out: Path, port: int, clock: str = "cpu") -> None:
    """``tarcza serve`` with every thread under cProfile (request handlers run in worker threads); the
    merged statistics are written to ``out`` when the server stops.

    ``clock``: ``cpu`` counts each thread's CPU time (where the work goes, waits left out); ``wall``
    counts elapsed time (waits for locks, the GIL and fsync included).
    """
    import cProfile
    import pstats
    import threading

    timer = time.thread_time if clock == "cpu" else time.perf_counter
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start(*_args: object) -> None:
        profiler = cProfile.Profile(timer)
        with lock:
            profiles.append(profiler)
        profiler.enable()  # replaces this hook for the thread

    def stop(*_args: object) -> None:
        raise SystemExit(0)

    # uvicorn re-raises the SIGTERM it handled once it has shut down; ours ends the process through
    # the ``finally`` below, which writes the statistics
    signal.signal(signal.SIGTERM, stop)
    threading.setprofile(start)
    main = cProfile.Profile(timer)
    profiles.append(main)
    sys.argv = ["tarcza", "serve", "--port", str(port)]
    from api.cli import _register_capabilities, app

    _register_capabilities()
    main.enable()
    try:
        app(standalone_mode=False)
    except SystemExit:
        pass
    finally:
        main.disable()
        stats = pstats.Stats(main)
        for profiler in profiles[1:]:
            profiler.disable()
            stats.add(profiler)
        stats.dump_stats(str(out))


# -- the driver process ---------------------------------------------------------------------------------------


def _in_driver_process(plan: Plan, say: Progress) -> dict[str, Phase]:
    """Run :func:`_drive` in a freshly spawned process; relay its progress lines and bring its phases back."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_driver_main, args=(plan, sender), name="tarcza-bench-driver")
    process.start()
    sender.close()
    outcome: dict[str, Phase] | str = "the driver process died"
    try:
        while True:
            kind, value = receiver.recv()
            if kind == "say":
                say(value)
                continue
            outcome = value
            break
    except EOFError:
        pass
    process.join()
    if isinstance(outcome, str):
        raise BenchError(outcome)
    return outcome


def _driver_main(plan: Plan, sender: Any) -> None:
    try:
        sender.send(("done", asyncio.run(_drive(plan, lambda message: sender.send(("say", message))))))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        sender.send(("failed", f"driver failed: {type(exc).__name__}: {exc}"))
    finally:
        sender.close()


class Contacts:
    """Contact bodies the firewall allows, numbered: contact ``n`` is about subject ``n % len(people)``,
    on that subject's ``n // len(people)``-th slot of working days, three working days apart."""

    def __init__(self, people: tuple[Person, ...]) -> None:
        from zoneinfo import ZoneInfo

        self.people = people
        self.zone = ZoneInfo("Europe/Warsaw")
        self.days: list[date] = []
        self.next = 0
        self.last_day = datetime.now(UTC).date() + timedelta(days=300)

    def _day(self, slot: int) -> date:
        from contacts.calendar import is_working_day

        day = self.days[-1] + timedelta(days=1) if self.days else FIRST_DAY
        while len(self.days) <= slot:
            if is_working_day(day):
                self.days.append(day)
            day += timedelta(days=1)
        if self.days[slot] > self.last_day:
            raise BenchError("the run outlasted the calendar of allowed contacts: raise --subjects")
        return self.days[slot]

    def take(self, count: int = 1) -> list[dict[str, Any]]:
        out = []
        for n in range(self.next, self.next + count):
            person = self.people[n % len(self.people)]
            day = self._day(n // len(self.people) * STRIDE)
            at = datetime(day.year, day.month, day.day, 9 + n * 7919 % 8, n * 104_729 % 60, tzinfo=self.zone)
            out.append({"subject": person.token, "channel": "phone", "direction": "outbound",
                        "agent_id": "bench-dialer", "started_at": at.isoformat(), "debt_id": person.debt_id,
                        "case_id": person.case_id, "outcome": "no_answer"})
        self.next += count
        return out


Request = tuple[str, str, bytes | None, dict[str, str]]


async def _drive(plan: Plan, say: Callable[[str], None]) -> dict[str, Phase]:
    import httpx

    contacts = Contacts(plan.people)
    rng = random.Random(2026)
    limits = httpx.Limits(max_connections=plan.connections * 4, max_keepalive_connections=plan.connections * 4)
    async with httpx.AsyncClient(base_url=plan.url, limits=limits, timeout=60) as http:
        async def token() -> dict[str, str]:
            answer = await http.post("/v1/oauth/token", data={"grant_type": "client_credentials"},
                                     auth=(plan.client_id, plan.client_secret))
            answer.raise_for_status()
            return {"Authorization": f"Bearer {answer.json()['access_token']}", "Content-Type": "application/json"}

        def healthz() -> Request:
            return "GET", "/healthz", None, {}

        def single(headers: dict[str, str]) -> Callable[[], Request]:
            def make() -> Request:
                [body] = contacts.take()
                key = f"bench-c-{contacts.next}"
                return "POST", "/v1/contacts", json.dumps(body).encode(), {**headers, "Idempotency-Key": key}
            return make

        def batch(headers: dict[str, str]) -> Callable[[], Request]:
            def make() -> Request:
                body = {"contacts": contacts.take(BATCH_SIZE)}
                key = f"bench-b-{contacts.next}"
                return "POST", "/v1/contacts/batch", json.dumps(body).encode(), {**headers, "Idempotency-Key": key}
            return make

        def masked(headers: dict[str, str]) -> Callable[[], Request]:
            def make() -> Request:
                return "GET", f"/v1/subjects/{rng.choice(plan.people).token}", None, headers
            return make

        def reveal(headers: dict[str, str]) -> Callable[[], Request]:
            body = json.dumps({"fields": list(REVEAL_FIELDS), "purpose": "debt_collection"}).encode()

            def make() -> Request:
                return "POST", f"/v1/subjects/{rng.choice(plan.people).token}/reveal", body, headers
            return make

        phases: dict[str, Phase] = {}
        phases["healthz"] = await _closed_loop(http, "healthz", healthz, plan, say)
        phases["single"] = await _closed_loop(http, "single", single(await token()), plan, say, expect=201)
        if plan.only_single:
            return phases
        phases["batch"] = await _closed_loop(http, "batch", batch(await token()), plan, say, items=BATCH_SIZE)
        phases["masked"] = await _closed_loop(http, "masked", masked(await token()), plan, say)
        phases["reveal"] = await _closed_loop(http, "reveal", reveal(await token()), plan, say)
        rate = phases["single"].per_s / 2
        phases["open_loop"] = await _open_loop(http, single(await token()), rate, plan, say)
        return phases


def _failure(status: int, body: bytes) -> str:
    match = re.search(rb'"type"\s*:\s*"([^"]+)"', body[:2000])
    return f"{status} {match.group(1).decode(errors='replace') if match else ''}".strip()


async def _send(http: Any, request: Request) -> tuple[int, bytes]:
    method, path, body, headers = request
    answer = await http.request(method, path, content=body, headers=headers)
    return int(answer.status_code), bytes(answer.content)


def _count(phase: Phase, status: int, body: bytes, expect: int, items: int) -> bool:
    if status != expect:
        phase.failures[_failure(status, body)] = phase.failures.get(_failure(status, body), 0) + 1
        return False
    if items:
        recorded = body.count(b'"receipt"')
        phase.items += recorded
        if recorded != items:
            phase.failures["batch item refused"] = phase.failures.get("batch item refused", 0) + items - recorded
    return True


async def _closed_loop(http: Any, name: str, make: Callable[[], Request], plan: Plan,
                       say: Callable[[str], None], *, expect: int = 200, items: int = 0) -> Phase:
    """``connections`` workers, each sending its next request as soon as the last is answered."""
    phase = Phase(name, seconds=plan.seconds)
    await _send(http, make())  # the first request of a kind loads what it needs: not measured
    warmup = min(MAX_WARMUP_SECONDS, plan.seconds * WARMUP_SHARE)
    began = time.perf_counter()
    window = (began + warmup, began + warmup + plan.seconds)

    async def worker() -> None:
        while True:
            sent = time.perf_counter()
            if sent >= window[1]:
                return
            try:
                status, body = await _send(http, make())
            except Exception as exc:  # noqa: BLE001 - a network failure is counted, not fatal
                status, body = 0, type(exc).__name__.encode()
            done = time.perf_counter()
            if window[0] <= done < window[1]:
                counted = _count(phase, status, body, expect, items) if status else False
                if not status:
                    phase.failures[body.decode()] = phase.failures.get(body.decode(), 0) + 1
                if counted:
                    phase.ok += 1
                    phase.latencies_ms.append((done - sent) * 1000)

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(plan.connections)))
    phase.driver_cpu_share = (time.process_time() - cpu) / (time.perf_counter() - began)
    say(f"{name}: {phase.per_s:,.0f} requests/s" + (f", {phase.items_per_s:,.0f} events/s" if items else "")
        + f", p50 {phase.p(50):.1f} ms, p99 {phase.p(99):.1f} ms")
    return phase


async def _open_loop(http: Any, make: Callable[[], Request], rate: float, plan: Plan,
                     say: Callable[[str], None]) -> Phase:
    """Requests offered at ``rate`` per second on a fixed schedule, whatever the answers take; latency is
    counted from the scheduled send (no coordinated omission)."""
    phase = Phase("open_loop", seconds=plan.seconds, offered_per_s=rate)
    if rate <= 0:
        return phase
    warmup = min(MAX_WARMUP_SECONDS, plan.seconds * WARMUP_SHARE)
    began = time.perf_counter()
    window = (began + warmup, began + warmup + plan.seconds)
    tasks: list[asyncio.Task[None]] = []

    async def one(scheduled: float, request: Request) -> None:
        try:
            status, body = await _send(http, request)
        except Exception as exc:  # noqa: BLE001 - a network failure is counted, not fatal
            status, body = 0, type(exc).__name__.encode()
        done = time.perf_counter()
        if window[0] <= scheduled < window[1]:
            if status and _count(phase, status, body, 201, 0):
                phase.ok += 1
                phase.latencies_ms.append((done - scheduled) * 1000)
            elif not status:
                phase.failures[body.decode()] = phase.failures.get(body.decode(), 0) + 1

    cpu = time.process_time()
    n = 0
    while True:
        scheduled = began + n / rate
        if scheduled >= window[1]:
            break
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, make())))
        n += 1
    await asyncio.gather(*tasks)
    phase.driver_cpu_share = (time.process_time() - cpu) / (time.perf_counter() - began)
    say(f"open loop at {rate:,.0f} offered/s: {phase.per_s:,.0f} answered/s, p50 {phase.p(50):.1f} ms, "
        f"p99 {phase.p(99):.1f} ms")
    return phase


def _main(argv: list[str]) -> None:
    """``python -m bench.api profile-serve OUT --port P`` (used by ``tarcza bench api --profile``);
    ``TARCZA_BENCH_PROFILE_CLOCK=wall`` profiles elapsed time instead of CPU time."""
    if len(argv) != 4 or argv[0] != "profile-serve" or argv[2] != "--port":
        raise SystemExit("usage: python -m bench.api profile-serve OUT --port PORT")
    os.umask(0o077)
    profile_serve(Path(argv[1]), int(argv[3]), os.environ.get("TARCZA_BENCH_PROFILE_CLOCK", "cpu"))


if __name__ == "__main__":
    _main(sys.argv[1:])


__all__ = ["BenchError", "run"]
