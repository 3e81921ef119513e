"""What the console keeps in the server process: the audit verification running in the background,
the last verification's result, a short-lived cache of the retention dry run, and playback grants.

One :class:`ConsoleState` per :class:`~api.runtime.Runtime` (per app). Nothing here is the
record: the result of every full verification is also an ``audit.log_verified`` entry of the
audit log itself, which is where :func:`last_verification` finds it after a restart. Only the
console writes that type (the catalogue's author; the open append refuses it, ADR 0017); the
``operator.note`` codes ``audit_log_verified:...`` that earlier versions wrote are not read,
because anyone allowed to append could have written the same note. Nothing held here is
personal data: tokens, counts, codes.
"""

from __future__ import annotations

import base64
import secrets
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from api.runtime import Runtime
from audit.errors import AuditError
from audit.events import Actor, LogVerifiedPayload
from audit.repository import EntryFilter
from core.errors import TarczaError
from core.logging import get_logger

log = get_logger("tarcza.console")

VERIFIED: Final = "audit.log_verified"
RETENTION_CACHE: Final = timedelta(minutes=10)
GRANT_LIFETIME: Final = timedelta(minutes=5)
_NOTE_PAGE: Final = 500


@dataclass(frozen=True)
class Verification:
    """A full verification of the stored log: running (``ok`` None) or finished."""

    started_at: datetime
    started_by: str
    done: int = 0
    total: int = 0
    finished_at: datetime | None = None
    ok: bool | None = None
    entries: int | None = None
    checkpoints: int | None = None
    root_hash: str | None = None
    failed_index: int | None = None
    failed_what: str | None = None
    log_index: int | None = None

    @property
    def running(self) -> bool:
        return self.ok is None

    @property
    def percent(self) -> int:
        if not self.running:
            return 100
        return 0 if self.total <= 0 else min(99, self.done * 100 // self.total)

    def payload(self) -> LogVerifiedPayload:
        """The ``audit.log_verified`` payload recording this result (numbers and codes: no personal data)."""
        if self.ok:
            return LogVerifiedPayload(ok=True, entries=self.entries, checkpoints=self.checkpoints,
                                      root_hash=self.root_hash)
        return LogVerifiedPayload(ok=False, failed_what=self.failed_what or "unknown", failed_index=self.failed_index)

    def to_json(self) -> dict[str, Any]:
        return {"running": self.running, "done": self.done, "total": self.total, "percent": self.percent,
                "ok": self.ok, "entries": self.entries, "failed_index": self.failed_index,
                "failed_what": self.failed_what, "log_index": self.log_index}


@dataclass(frozen=True)
class PlaybackGrant:
    """Permission for one session to stream one recording for one purpose, for a few minutes."""

    session_id: str
    subject: str
    recording_id: str
    purpose: str
    expires_at: datetime


@dataclass
class ConsoleState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    verification: Verification | None = None  # the running one, or the last finished in this process
    last_verification: Verification | None = None
    last_loaded: bool = False
    retention: tuple[datetime, dict[str, Any]] | None = None
    grants: dict[str, PlaybackGrant] = field(default_factory=dict)


_STATES: weakref.WeakKeyDictionary[Runtime, ConsoleState] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def state_of(runtime: Runtime) -> ConsoleState:
    with _STATES_LOCK:
        found = _STATES.get(runtime)
        if found is None:
            found = _STATES[runtime] = ConsoleState()
        return found


# -- verification of the stored log ------------------------------------------------------------------


def start_verification(runtime: Runtime, actor: Actor) -> Verification:
    """Start a full verification in a background thread, unless one is running; return its state."""
    state = state_of(runtime)
    with state.lock:
        if state.verification is not None and state.verification.running:
            return state.verification
        started = Verification(started_at=runtime.clock.now(), started_by=actor.id)
        state.verification = started
    thread = threading.Thread(target=_verify, args=(runtime, actor, state), name="console-audit-verify", daemon=True)
    thread.start()
    return started


def _verify(runtime: Runtime, actor: Actor, state: ConsoleState) -> None:
    def progress(done: int, total: int) -> None:
        with state.lock:
            if state.verification is not None:
                state.verification = replace(state.verification, done=done, total=total)

    try:
        report = runtime.audit.verify_database(progress=progress, chunk=2000)
        outcome: dict[str, Any] = {"ok": True, "entries": report.entries, "checkpoints": report.checkpoints,
                                   "root_hash": base64.b64encode(report.root_hash).decode("ascii"),
                                   "done": report.entries, "total": report.entries}
    except AuditError as exc:
        outcome = {"ok": False, "failed_index": getattr(exc, "index", None),
                   "failed_what": str(getattr(exc, "what", "") or exc.code)}
    except Exception as exc:  # noqa: BLE001 - a crashed check must end as failed, not run forever
        log.error("console_verify_crashed", error=type(exc).__name__)
        outcome = {"ok": False, "failed_what": "error"}
    with state.lock:
        current = state.verification
    if current is None:  # pragma: no cover - set before the thread starts
        return
    finished = replace(current, finished_at=runtime.clock.now(), **outcome)
    try:
        receipt = runtime.audit.record(VERIFIED, actor=actor, payload=finished.payload())
        finished = replace(finished, log_index=receipt.index)
    except TarczaError as exc:
        log.error("console_verify_not_recorded", error=type(exc).__name__)
    with state.lock:
        state.verification = finished
        state.last_verification = finished
        state.last_loaded = True


def current_verification(runtime: Runtime) -> Verification | None:
    state = state_of(runtime)
    with state.lock:
        return state.verification


def last_verification(runtime: Runtime) -> Verification | None:
    """The last finished full verification: from this process, else the newest note in the log."""
    state = state_of(runtime)
    with state.lock:
        if state.last_loaded:
            return state.last_verification
    found = _from_log(runtime)
    with state.lock:
        if not state.last_loaded:
            state.last_verification, state.last_loaded = found, True
        return state.last_verification


def _from_log(runtime: Runtime) -> Verification | None:
    """The newest ``audit.log_verified`` entry as a finished verification (a type only the console writes)."""
    found: Verification | None = None
    cursor: str | None = None
    while True:
        page = runtime.audit.query(EntryFilter(event_type=VERIFIED), cursor=cursor, limit=_NOTE_PAGE)
        for entry in page.items:
            found = from_entry(entry.index, entry.event)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def from_entry(index: int, event: dict[str, Any]) -> Verification:
    """The verification an ``audit.log_verified`` entry records."""
    payload = LogVerifiedPayload.model_validate(event["payload"])
    at = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
    return Verification(started_at=at, started_by=str(event["actor"]["id"]), finished_at=at, log_index=index,
                        ok=payload.ok, entries=payload.entries, checkpoints=payload.checkpoints,
                        root_hash=payload.root_hash, failed_index=payload.failed_index,
                        failed_what=payload.failed_what)


# -- the retention dry run, cached for the dashboard -------------------------------------------------


def retention_summary(runtime: Runtime, *, refresh: bool = False,
                      compute: Callable[[], dict[str, Any]] | None = None) -> tuple[datetime, dict[str, Any]]:
    """The last dry run's summary if younger than :data:`RETENTION_CACHE`, else a new one."""
    state = state_of(runtime)
    now = runtime.clock.now()
    with state.lock:
        cached = state.retention
    if cached is not None and not refresh and now - cached[0] < RETENTION_CACHE:
        return cached
    summary = compute() if compute is not None else runtime.retention_job().dry_run().to_json(with_actions=False)
    fresh = (now, summary)
    with state.lock:
        state.retention = fresh
    return fresh


def remember_retention(runtime: Runtime, summary: dict[str, Any]) -> None:
    state = state_of(runtime)
    with state.lock:
        state.retention = (runtime.clock.now(), summary)


# -- playback grants -----------------------------------------------------------------------------------


def grant_playback(runtime: Runtime, session_id: str, subject: str, recording_id: str, purpose: str) -> str:
    """A random id the playback page's ``<audio>`` element fetches the recording with (no purpose in a URL)."""
    state = state_of(runtime)
    now = runtime.clock.now()
    grant_id = secrets.token_urlsafe(24)
    with state.lock:
        for key in [k for k, g in state.grants.items() if g.expires_at <= now]:
            del state.grants[key]
        state.grants[grant_id] = PlaybackGrant(session_id, subject, recording_id, purpose, now + GRANT_LIFETIME)
    return grant_id


def playback_grant(runtime: Runtime, grant_id: str, session_id: str | None) -> PlaybackGrant | None:
    state = state_of(runtime)
    with state.lock:
        grant = state.grants.get(grant_id)
    if grant is None or grant.session_id != session_id or grant.expires_at <= runtime.clock.now():
        return None
    return grant
