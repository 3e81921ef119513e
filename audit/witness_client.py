"""The log's side of C2SP tlog-witness: submit each new checkpoint to the configured witnesses,
in the background, and keep the cosignatures they return.

For each witness (``TARCZA_WITNESSES``: submission URL and verifier key) a background thread
submits the newest checkpoint the witness has not cosigned, with the consistency proof from the
size the witness last cosigned (the newest size stored for it, else 0). A 409 names the size the
witness holds; the submission is repeated from there (at most :data:`MAX_CONFLICTS` times a
round). A witness that is down, slow or answering 5xx delays nothing: appends and checkpoints
never wait for it, and it is tried again every ``TARCZA_WITNESS_RETRY_SECONDS`` and at every new
checkpoint. A refusal (400, 403, 404, 422, or a 200 without a valid cosignature by its key) is
logged as an error and not repeated for that checkpoint: a witness that says the log is
inconsistent is the alarm this exists for.

Invariants: a cosignature is stored only if it verifies under the configured key over the
checkpoint's stored note; a cosignature by any other key in a response is ignored. Each witness's
cosigned-checkpoint age is a Prometheus gauge, ``tarcza_witness_checkpoint_age_seconds``
(``+Inf`` until its first cosignature).
"""

from __future__ import annotations

import base64
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import Counter, Gauge

from audit import cosignature_store, repository
from audit.cosignature import CosignatureError, CosignerKey, verify_cosignatures
from audit.errors import CheckpointError
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection, write_connection
from core.errors import ConfigurationError
from core.logging import get_logger

if TYPE_CHECKING:
    from audit.service import AuditLog, CheckpointInfo

log = get_logger(__name__)

MAX_CONFLICTS: Final = 3
MAX_RESPONSE_BYTES: Final = 64 * 1024
SIZE_CONTENT_TYPE: Final = "text/x.tlog.size"

WITNESS_AGE = Gauge("tarcza_witness_checkpoint_age_seconds",
                    "Age of the newest audit checkpoint cosigned by each witness (+Inf before the first)",
                    ["witness"])
WITNESS_SUBMISSIONS = Counter("tarcza_witness_submissions_total",
                              "Checkpoint submissions to witnesses, by outcome", ["witness", "outcome"])


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness as the log is configured with it: submission URL and pinned verifier key."""

    url: str
    key: CosignerKey


def configured_witnesses(pairs: Sequence[tuple[str, str]]) -> list[WitnessEndpoint]:
    """Parse ``(URL, verifier key)`` pairs; :class:`ConfigurationError` naming a bad key."""
    out = []
    for url, text in pairs:
        try:
            out.append(WitnessEndpoint(url.rstrip("/"), CosignerKey.from_string(text)))
        except CheckpointError as exc:
            raise ConfigurationError(f"TARCZA_WITNESSES: witness {url}: {exc.detail}") from None
    return out


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    """The add-checkpoint request body: ``old <size>``, one base64 proof hash a line, a blank line, the note."""
    lines = [f"old {old_size}", *(base64.b64encode(p).decode("ascii") for p in proof)]
    return ("".join(line + "\n" for line in lines) + "\n" + note).encode("utf-8")


# -- one submission ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a witness answered: ``cosigned`` (body: signature lines), ``conflict`` (its size),
    ``refused`` (status, detail) or ``unreachable`` (detail)."""

    outcome: str
    status: int = 0
    body: str = ""
    size: int = 0


def submit(endpoint: WitnessEndpoint, old_size: int, proof: Sequence[bytes], note: str,
           timeout: float) -> Answer:
    """POST one add-checkpoint request; never raises for what the witness or the network does."""
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in the settings
        endpoint.url + "/add-checkpoint", data=format_add_checkpoint(old_size, proof, note), method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "tarcza-log"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - as above
            return Answer("cosigned", response.status, _read(response))
    except urllib.error.HTTPError as exc:
        text = _read(exc)
        if exc.code == 409:
            content_type = (exc.headers.get("Content-Type") or "").split(";")[0].strip()
            size_text = text[:-1] if text.endswith("\n") else ""
            if content_type == SIZE_CONTENT_TYPE and size_text.isdigit():
                return Answer("conflict", 409, text, int(size_text))
            return Answer("refused", 409, "409 without a tree size in text/x.tlog.size")
        if exc.code >= 500:
            return Answer("unreachable", exc.code, f"HTTP {exc.code}")
        return Answer("refused", exc.code, text[:300])
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Answer("unreachable", 0, type(exc).__name__)


def _read(response: object) -> str:
    reader = getattr(response, "read", None)
    if reader is None:
        return ""
    try:
        return bytes(reader(MAX_RESPONSE_BYTES)).decode("utf-8", errors="replace")
    except OSError:
        return ""


# -- the background collector --------------------------------------------------------------------


@dataclass
class _State:
    known_size: int | None = None  # the size the witness holds, as last learnt
    refused_size: int | None = None  # the checkpoint it refused (not submitted again)
    issued_at: float | None = None  # POSIX time the newest checkpoint it cosigned was issued


class CosignatureCollector:
    """Submits new checkpoints to every witness on a background thread and stores their cosignatures."""

    def __init__(self, audit: AuditLog, witnesses: Sequence[WitnessEndpoint], *, clock: Clock = SYSTEM_CLOCK,
                 retry_seconds: float = 30.0, timeout: float = 10.0) -> None:
        self.audit = audit
        self.witnesses = list(witnesses)
        self.clock = clock
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self._states = {w.key.label: _State() for w in self.witnesses}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for w in self.witnesses:
            WITNESS_AGE.labels(w.key.label).set_function(self._age_of(w.key.label))

    def start(self) -> None:
        """Start the background thread (idempotent); it runs a first round at once."""
        if self._thread is not None or not self.witnesses:
            return
        self._thread = threading.Thread(target=self._run, name="tarcza-witness-client", daemon=True)
        self._thread.start()
        self.audit.checkpoint_listeners.append(self.notify)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)

    def notify(self, _checkpoint: CheckpointInfo | None = None) -> None:
        """A new checkpoint exists: wake the thread (never blocks the caller)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep going; the log says why
                log.error("witness_round_failed", error=type(exc).__name__)
            self._wake.wait(self.retry_seconds)

    def run_once(self) -> None:
        """One round: bring every witness up to the newest checkpoint, as far as it answers."""
        for endpoint in self.witnesses:
            if self._stop.is_set():
                return
            self._catch_up(endpoint)

    def _catch_up(self, endpoint: WitnessEndpoint) -> None:
        label = endpoint.key.label
        state = self._states[label]
        with read_connection(self.audit.engine) as conn:
            latest = repository.latest_checkpoint(conn)
            progress = cosignature_store.newest_cosigned(conn, endpoint.key)
        if progress is not None:
            state.issued_at = progress.issued_at.timestamp()
            state.known_size = max(state.known_size or 0, progress.tree_size)
        if latest is None or (progress is not None and progress.tree_size >= latest.tree_size):
            return
        size, note = int(latest.tree_size), str(latest.note)
        if state.refused_size == size:
            return
        old = state.known_size or 0
        for _ in range(MAX_CONFLICTS):
            if old > size:  # it holds a newer checkpoint than our newest: wait for ours to catch up
                log.warning("witness_ahead_of_log", witness=label, tree_size=size, witness_size=old)
                return
            proof = [] if old in (0, size) else self.audit.consistency_proof(old, size).proof
            answer = submit(endpoint, old, proof, note, self.timeout)
            WITNESS_SUBMISSIONS.labels(label, answer.outcome).inc()
            if answer.outcome == "conflict":
                old = answer.size
                state.known_size = old
                continue
            if answer.outcome == "unreachable":
                log.warning("witness_unreachable", witness=label, tree_size=size, reason=answer.body)
                return
            if answer.outcome == "cosigned":
                self._store(endpoint, state, latest, answer.body)
                return
            state.refused_size = size
            log.error("witness_refused_checkpoint", witness=label, tree_size=size, old_size=old,
                      status=answer.status, detail=answer.body)
            return
        log.warning("witness_conflicts_repeated", witness=label, tree_size=size, old_size=old)

    def _store(self, endpoint: WitnessEndpoint, state: _State, latest: Any, lines: str) -> None:
        label = endpoint.key.label
        size, note = int(latest.tree_size), str(latest.note)
        try:
            found = verify_cosignatures(note + lines, [endpoint.key])
        except (CosignatureError, CheckpointError) as exc:
            found, reason = [], exc.detail
        else:
            reason = "no cosignature by its key in the answer"
        if not found:
            state.refused_size = size
            WITNESS_SUBMISSIONS.labels(label, "bad-cosignature").inc()
            log.error("witness_bad_cosignature", witness=label, tree_size=size, reason=reason)
            return
        with write_connection(self.audit.engine) as conn:
            cosignature_store.insert_cosignature(conn, size, found[0], self.clock.now())
        state.known_size = size
        state.issued_at = latest.issued_at.timestamp()
        log.info("witness_cosigned_checkpoint", witness=label, tree_size=size, time=found[0].timestamp)

    def _age_of(self, label: str) -> Callable[[], float]:
        """The gauge's function for one witness: seconds since its newest cosigned checkpoint was issued."""

        def age() -> float:
            issued = self._states[label].issued_at
            return math.inf if issued is None else max(0.0, self.clock.now().timestamp() - issued)

        return age
