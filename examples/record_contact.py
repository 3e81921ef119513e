"""Record a phone call with a debtor in Tarcza and print the receipt.

    export TARCZA_URL=https://tarcza.example.pl
    export TARCZA_CLIENT_ID=cl_...            # from `tarcza client add dialer --scope contacts:write`
    export TARCZA_CLIENT_SECRET=tzc_...       # shown once by that command; keep it in your secret store
    python examples/record_contact.py sub_... --debt-id D-2024-000123 --call-id dialer-7781

Your system holds only the subject's token; Tarcza holds the person. The call id of your dialer
is the idempotency key: if your system retries after a crash, the contact is still recorded once.
Exit status: 0 recorded, 2 refused by the contact policy, 1 any other error.
"""

# An example script prints what happened:
# ruff: noqa: T201

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime

from tarcza_client import Contact, ContactRefusedError, ProblemError, TarczaClient, TransportError


def main() -> int:
    parser = argparse.ArgumentParser(description="Record a phone call with a debtor in Tarcza.")
    parser.add_argument("subject", help="the debtor's subject token (sub_...)")
    parser.add_argument("--debt-id", help="the debt the call was about")
    parser.add_argument("--call-id", help="your dialer's id of the call (used as the idempotency key)")
    parser.add_argument("--at", type=datetime.fromisoformat, default=datetime.now(UTC),
                        help="when the call started, ISO 8601 with an offset (default: now)")
    args = parser.parse_args()

    contact = Contact(subject=args.subject, channel="phone", direction="outbound", agent_id="dialer",
                      started_at=args.at, debt_id=args.debt_id, outcome="no_answer")
    with TarczaClient(os.environ["TARCZA_URL"], os.environ["TARCZA_CLIENT_ID"],
                      os.environ["TARCZA_CLIENT_SECRET"]) as tarcza:
        try:
            receipt = tarcza.record_contact(contact, idempotency_key=args.call_id)
        except ContactRefusedError as refused:  # the contact policy said no; the refusal is in the audit log
            for rule in refused.rules:
                print(f"refused by {rule['rule']}: {rule['message']}", file=sys.stderr)
            return 2
        except ProblemError as problem:  # any other answer in problem details: 401, 403, 404, 422, ...
            print(f"error {problem.status} {problem.title}: {problem.detail} (request id {problem.request_id})",
                  file=sys.stderr)
            return 1
        except TransportError as failure:  # no answer, even after the client's retries
            print(f"Tarcza unreachable: {failure}", file=sys.stderr)
            return 1
    print(f"recorded: event {receipt.event_id}, log index {receipt.index}, leaf hash {receipt.leaf_hash}"
          + (" (a retry: recorded earlier)" if receipt.duplicate else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
