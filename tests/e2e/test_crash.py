"""Crash safety end to end: ``tarcza serve`` killed with SIGKILL at random moments while concurrent
clients record contacts loses no acknowledged contact, on SQLite and on PostgreSQL.

Four client threads record contacts through ``POST /v1/contacts``, each contact with its own
``Idempotency-Key``, and keep every acknowledgement: the receipt of a recorded contact (event
id, log index, leaf hash) or the refusal of one the firewall blocked (event id, log index;
the refusal is in the log too). The server is killed with SIGKILL twenty times, each time a
seeded random moment after it has acknowledged some new contacts, and restarted on the same
data directory and database; what was not acknowledged is retried with the same key. At the
end every acknowledged contact is at its index with its leaf hash and its index row, each
key made exactly one entry, a retry of an acknowledged key gets the first answer, the stored
log verifies (``tarcza audit verify --db``), and an export of the whole log verifies offline
against the pinned key and is consistent with every checkpoint the clients saw during the run.

The seed is ``TARCZA_E2E_SEED`` (default below) and every kill is logged with it.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from faker import Faker
from sqlalchemy import create_engine, text

from audit.verify import verify_export

if TYPE_CHECKING:
    from conftest import TarczaServer  # tests/e2e/conftest.py

log = logging.getLogger("tarcza.e2e.crash")

SEED = int(os.environ.get("TARCZA_E2E_SEED", "20261123"))
KILLS = 20
WORKERS = 4
SUBJECTS = 6
NEW_ACKS_BEFORE_KILL = 3  # a kill comes only after the restarted server acknowledged this many contacts
MAX_KILL_DELAY = 0.4  # seconds; each kill waits a seeded uniform time up to this after that
REPLAYS = 12
DEADLINE = 60.0  # seconds for any one wait (readiness, new acknowledgements, workers finishing)
WARSAW = ZoneInfo("Europe/Warsaw")  # the debtors' time zone (the firewall's default)
CHANNELS = {"phone": "answered", "sms": "replied", "email": "replied", "messenger": "read", "letter": "delivered"}


@dataclass(frozen=True)
class Ack:
    """What the server acknowledged for one idempotency key."""

    event_id: str
    index: int
    leaf_hash: bytes | None  # a refusal names its entry but not its hash
    refused: bool
    duplicate: bool


@dataclass
class Ledger:
    """The clients' shared record: acknowledgements by key, and what went wrong."""

    acks: dict[str, Ack] = field(default_factory=dict)
    interrupted: int = 0  # requests that got no answer (the server died under them)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.acks)


@dataclass(frozen=True)
class Target:
    subject: str
    debt_id: str


def contact_body(key: str, targets: list[Target], now: datetime) -> dict[str, Any]:
    """The contact a key stands for, the same on every retry: mostly inbound contacts the firewall
    allows; every seventh an outbound call at 05:30, which it refuses (allowed_hours) and logs."""
    n = int(key.rsplit("-", 1)[1]) + int(key[1:].split("-", 1)[0]) * 7919
    target = targets[n % len(targets)]
    if n % 7 == 3:
        at = (now - timedelta(days=2)).astimezone(WARSAW).replace(hour=5, minute=30, second=0, microsecond=0)
        return {"subject": target.subject, "channel": "phone", "direction": "outbound", "agent_id": "agent-e2e",
                "started_at": at.isoformat(), "debt_id": target.debt_id, "outcome": "no_answer"}
    channel = list(CHANNELS)[n % len(CHANNELS)]
    at = now - timedelta(hours=1 + n % 48)
    return {"subject": target.subject, "channel": channel, "direction": "inbound", "agent_id": f"agent-{n % 5}",
            "started_at": at.isoformat(), "debt_id": target.debt_id, "outcome": CHANNELS[channel]}


def problem_type(response: httpx.Response) -> str:
    try:
        return str(response.json().get("type", ""))
    except ValueError:
        return ""


def answer_of(response: httpx.Response) -> Ack | None:
    """The acknowledgement in an answer (a receipt, or a refusal naming its entry); None if there is none."""
    if response.status_code not in (201, 409) or "json" not in response.headers.get("content-type", ""):
        return None
    body = response.json()
    if response.status_code == 201:
        return Ack(body["event_id"], int(body["index"]), base64.b64decode(body["leaf_hash"]), False,
                   bool(body["duplicate"]))
    if response.status_code == 409 and problem_type(response).endswith("contact-refused"):
        return Ack(body["event_id"], int(body["index"]), None, True, bool(body.get("duplicate")))
    return None


def busy(response: httpx.Response) -> bool:
    """An answer that says "try again later": throttled (429), not ready (503), or the key's first request
    still running (409 idempotency-in-progress)."""
    if response.status_code in (429, 503):
        return True
    return response.status_code == 409 and problem_type(response).endswith("idempotency-in-progress")


@dataclass
class Signals:
    up: threading.Event = field(default_factory=threading.Event)  # the server is ready: send
    stop: threading.Event = field(default_factory=threading.Event)  # finish the current key, then return
    abort: threading.Event = field(default_factory=threading.Event)  # the test is over: return at once


def worker(n: int, server: TarczaServer, token: str, targets: list[Target], now: datetime, ledger: Ledger,
           signals: Signals) -> None:
    """Record contacts one key after another; retry a key until it is acknowledged; finish the current key on stop."""
    up, stop = signals.up, signals.stop
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=30.0) as client:
        i = 0
        while not stop.is_set():
            key = f"w{n}-{i}"
            body = contact_body(key, targets, now)
            give_up = time.monotonic() + DEADLINE
            while not signals.abort.is_set():
                if not up.wait(timeout=DEADLINE * 2):
                    ledger.failures.append(f"{key}: the server did not come back")
                    return
                try:
                    response = client.post(f"{server.url}/v1/contacts", json=body, headers={"Idempotency-Key": key})
                except httpx.TransportError:
                    with ledger.lock:
                        ledger.interrupted += 1
                    continue
                if busy(response):  # throttled, not ready, or the key's first request still running
                    if time.monotonic() > give_up:
                        ledger.failures.append(f"{key}: still HTTP {response.status_code} after {DEADLINE:.0f} s")
                        return
                    time.sleep(min(float(response.headers.get("Retry-After") or 0.2), 5.0))
                    continue
                ack = answer_of(response)
                if ack is None:
                    ledger.failures.append(f"{key}: HTTP {response.status_code} {response.text[:300]}")
                    return
                with ledger.lock:
                    ledger.acks[key] = ack
                break
            i += 1


def wait_for(condition: Any, what: str, ledger: Ledger, server: TarczaServer) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if ledger.failures:
            pytest.fail(f"a client failed: {ledger.failures[:3]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {DEADLINE:.0f} s; server output: {server.tail()}")
        time.sleep(0.01)


def setup_client(server: TarczaServer) -> tuple[str, str]:
    """An API client made by the operator's CLI; its id and an access token from the token endpoint."""
    client_id, secret = server.add_client("e2e-crash", "contacts:write", "subjects:write", "audit:read")
    return client_id, server.client_token(client_id, secret)


def setup_targets(server: TarczaServer, token: str) -> list[Target]:
    """A few synthetic debtors, each with a debt, created over HTTP."""
    fake = Faker("pl_PL")
    fake.seed_instance(SEED)
    targets = []
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        for i in range(SUBJECTS):
            created = http.post("/v1/subjects", headers={"Idempotency-Key": f"subject-{i}"}, json={
                "kind": "debtor", "fields": {"first_name": fake.first_name(), "last_name": fake.last_name(),
                                             "pesel": fake.pesel()}})
            assert created.status_code == 201, created.text
            token_i = created.json()["token"]
            debt = http.post("/v1/debts", json={"id": f"D-E2E-{i}", "subject": token_i, "creditor": "Bank Testowy S.A.",
                                                "kind": "general", "consumer": True, "amount_minor": 100_000 + i,
                                                "due_date": "2025-06-30"})
            assert debt.status_code == 201, debt.text
            targets.append(Target(token_i, f"D-E2E-{i}"))
    return targets


def latest_checkpoint(server: TarczaServer, token: str) -> str | None:
    response = httpx.get(f"{server.url}/v1/audit/checkpoint", headers={"Authorization": f"Bearer {token}"},
                         timeout=30)
    return response.text if response.status_code == 200 else None


@pytest.mark.slow
class TestCrashSafety:
    """``tarcza serve`` killed with SIGKILL under concurrent clients."""

    def test_sigkill_loses_no_acknowledged_contact(self, tarcza_server: TarczaServer, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
        """Killed twenty times at seeded random moments mid-traffic and restarted, the server loses no contact
        it acknowledged, makes one entry per idempotency key, and its log verifies and stays consistent."""
        caplog.set_level(logging.INFO, logger=log.name)  # the seed and every kill, shown if the test fails
        server = tarcza_server
        server.env.update({"TARCZA_CHECKPOINT_EVERY_ENTRIES": "64", "TARCZA_CHECKPOINT_EVERY_SECONDS": "1"})
        rng = random.Random(SEED)
        log.info("crash test on %s: seed %d (TARCZA_E2E_SEED), %d kills", server.backend, SEED, KILLS)
        server.start()
        client_id, token = setup_client(server)
        targets = setup_targets(server, token)
        verifier_key = httpx.get(f"{server.url}/v1/audit/verifier-key", headers={"Authorization": f"Bearer {token}"},
                                 timeout=30).text
        checkpoints: list[str] = []

        ledger, signals, now = Ledger(), Signals(), datetime.now(UTC)
        up = signals.up
        threads = [threading.Thread(target=worker, args=(n, server, token, targets, now, ledger, signals), daemon=True)
                   for n in range(WORKERS)]
        up.set()
        for t in threads:
            t.start()
        try:
            for kill in range(KILLS):
                if kill:
                    server.start()
                    up.set()
                note = latest_checkpoint(server, token)
                if note is not None:
                    checkpoints.append(note)
                before = ledger.count()
                wait_for(lambda before=before: ledger.count() >= before + NEW_ACKS_BEFORE_KILL,
                         "the restarted server acknowledged no new contact", ledger, server)
                delay = rng.uniform(0.0, MAX_KILL_DELAY)
                time.sleep(delay)  # the random moment of the kill, not a wait for anything
                up.clear()
                server.kill()
                log.info("seed %d kill %d/%d after %.3f s: %d acknowledged, %d requests interrupted so far",
                         SEED, kill + 1, KILLS, delay, ledger.count(), ledger.interrupted)
            server.start()
            up.set()
            signals.stop.set()  # each client finishes the key it is on (retrying it until acknowledged), then stops
            for t in threads:
                t.join(timeout=DEADLINE)
            assert not any(t.is_alive() for t in threads), "a client did not finish"
        finally:
            signals.stop.set()
            signals.abort.set()
            up.set()
        assert not ledger.failures, ledger.failures[:5]
        acks = dict(ledger.acks)
        assert len(acks) >= KILLS * NEW_ACKS_BEFORE_KILL
        assert ledger.interrupted > 0, "no request was ever in flight when the server was killed"
        assert any(a.refused for a in acks.values()), "no contact was refused"
        assert not all(a.refused for a in acks.values()), "every contact was refused"

        # A retry of an acknowledged key, after all the crashes, gets the first answer and records nothing.
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            for key in rng.sample(sorted(acks), REPLAYS):
                again = answer_of(http.post("/v1/contacts", json=contact_body(key, targets, now),
                                            headers={"Idempotency-Key": key}))
                first = acks[key]
                assert again is not None, key
                assert again.duplicate, key
                assert (again.event_id, again.index, again.refused) == (first.event_id, first.index, first.refused), key
                if first.leaf_hash is not None:
                    assert again.leaf_hash == first.leaf_hash, key
        note = latest_checkpoint(server, token)
        if note is not None:
            checkpoints.append(note)
        server.stop()
        log.info("seed %d: %d contacts acknowledged (%d refusals, %d first acknowledged on a retry as duplicates), "
                 "%d interrupted requests, %d checkpoints seen", SEED, len(acks), sum(a.refused for a in acks.values()),
                 sum(a.duplicate for a in acks.values()), ledger.interrupted, len(checkpoints))

        # Every acknowledged contact is where its receipt put it, indexed; each key made exactly one entry.
        engine = create_engine(server.database_url)
        try:
            with engine.connect() as conn:
                entries = {int(r.idx): r for r in conn.execute(text(
                    "SELECT idx, event_id, leaf_hash, idempotency_key, event_type, actor_id FROM audit_entries"))}
                indexed = {str(r.id): int(r.log_index) for r in conn.execute(text(
                    "SELECT id, log_index FROM contact_events"))}
        finally:
            engine.dispose()
        lost = {k: a for k, a in acks.items() if a.index not in entries or str(entries[a.index].event_id) != a.event_id
                or (a.leaf_hash is not None and bytes(entries[a.index].leaf_hash) != a.leaf_hash)}
        assert not lost, f"seed {SEED}: acknowledged contacts lost or moved: {list(lost.items())[:5]}"
        unindexed = {k: a for k, a in acks.items() if indexed.get(a.event_id) != a.index}
        assert not unindexed, f"seed {SEED}: acknowledged contacts without their index row: {list(unindexed)[:5]}"
        prefix = f"contact:{client_id}:"
        keys = Counter(str(e.idempotency_key)[len(prefix):] for e in entries.values()
                       if str(e.idempotency_key or "").startswith(prefix))
        assert set(keys) == set(acks), f"seed {SEED}: keys logged but never acknowledged: {set(keys) - set(acks)}"
        assert max(keys.values()) == 1
        logged = [e for e in entries.values() if e.actor_id == client_id and e.event_type.startswith("contact.")]
        assert len(logged) == len(acks), f"seed {SEED}: {len(logged)} contacts logged for {len(acks)} keys"
        assert sorted(entries) == list(range(len(entries)))

        # The stored log verifies, and an export of all of it verifies offline, consistent with every checkpoint seen.
        verified = server.cli("audit", "verify", "--db")
        assert verified.startswith(f"OK: {len(entries)} entries"), verified
        export = tmp_path / "log-export"
        server.cli("audit", "export", "--out", str(export))
        key_file, first_seen = tmp_path / "log.pub", tmp_path / "first-checkpoint.txt"
        key_file.write_text(verifier_key, encoding="ascii")
        assert len(checkpoints) >= KILLS // 2, f"only {len(checkpoints)} checkpoints were issued during the run"
        first_seen.write_text(checkpoints[0], encoding="utf-8")
        offline = server.cli("audit", "verify", str(export), "--key", str(key_file), "--trusted-checkpoint",
                             str(first_seen))
        assert offline.startswith(f"OK: {len(entries)} entries"), offline
        assert "consistent with trusted checkpoint" in offline, offline
        sizes = set()
        for note in checkpoints:
            result = verify_export(export, trusted_key=verifier_key, trusted_checkpoint=note)
            assert result.tree_size == len(entries)
            sizes.add(result.trusted_size)
        assert len(sizes) > 1, "every checkpoint seen had the same size"
