"""Crash safety: a writer killed with SIGKILL mid-append loses no acknowledged entry, many times over."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, text

from audit.checkpoint import Signer
from audit.service import AuditLog

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = 6


def _run_and_kill(database_url: str, run_id: str, rng: random.Random, signer: Signer) -> dict[str, int]:
    """Start the writer, let it append for a random while, SIGKILL it; return what it acknowledged."""
    env = dict(os.environ)
    env["TARCZA_TEST_LOG_KEY"] = signer.to_string()
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, str(WRITER), database_url, run_id], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, b"")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 30
    while not any(line.startswith(b"ACK") for line in list(lines)) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.05, 0.6))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    reader.join(timeout=30)
    acked: dict[str, int] = {}
    for line in lines:
        parts = line.decode().split()
        if len(parts) == 3 and parts[0] == "ACK" and line.endswith(b"\n"):
            acked[parts[1]] = int(parts[2])
    return acked


class TestCrashSafety:
    def test_sigkill_loses_no_acknowledged_entry(self, engine: Engine, database_url: str, signer: Signer) -> None:
        """Killed with SIGKILL six times mid-append, the writer loses nothing it acknowledged and the log verifies."""
        rng = random.Random(20261123)
        all_acked: dict[str, int] = {}
        for run in range(KILLS):
            acked = _run_and_kill(database_url, f"run{run}", rng, signer)
            assert acked, f"run {run}: the writer acknowledged nothing before it was killed"
            all_acked.update(acked)
            with engine.connect() as conn:
                stored = {str(e): int(i) for e, i in conn.execute(text("SELECT event_id, idx FROM audit_entries"))}
            missing = {e: i for e, i in all_acked.items() if stored.get(e) != i}
            assert not missing, f"run {run}: acknowledged entries lost or moved: {list(missing.items())[:5]}"
        log = AuditLog(engine, signer)
        try:
            report = log.verify_database()
            assert report.entries >= len(all_acked)
        finally:
            log.close()
