"""A writer process for the crash tests: appends from 8 threads and prints each acknowledgement.

Usage: python crash_writer.py DATABASE_URL RUN_ID (log key in TARCZA_TEST_LOG_KEY). Each acknowledged append prints
``ACK <event_id> <index>`` and flushes, so the parent knows exactly what was acknowledged
before it kills this process with SIGKILL.
"""

from __future__ import annotations

import os
import sys
import threading

from audit.checkpoint import Signer
from audit.events import Actor, ActorKind
from audit.service import AuditLog
from core.db import make_engine


def main() -> None:
    url, run_id = sys.argv[1], sys.argv[2]
    signer = Signer.from_string(os.environ["TARCZA_TEST_LOG_KEY"])
    log = AuditLog(make_engine(url), signer, checkpoint_every_entries=50, batch_max=64)
    out_lock = threading.Lock()
    actor = Actor(id="crash-writer", kind=ActorKind.SYSTEM)

    def worker(n: int) -> None:
        i = 0
        while True:
            receipt = log.record("operator.note", actor=actor, payload={"code": f"{run_id}-{n}-{i}"},
                                 idempotency_key=f"{run_id}-{n}-{i}")
            with out_lock:
                sys.stdout.write(f"ACK {receipt.event_id} {receipt.index}\n")
                sys.stdout.flush()
            i += 1

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
