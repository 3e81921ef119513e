"""``tarcza-verify``: verify a Tarcza audit export or subject archive on your own machine.

    tarcza-verify PATH [--key FILE] [--trusted-checkpoint FILE] [--known-logs FILE] [--check-events] [--json]
                  [--witness KEY ... [--min-witnesses N]]

PATH is an audit export (a directory, or the ``.tar.gz`` the server sends) or a GDPR subject
archive (``.zip``). Exit status: 0 verified with a key you trust; 3 verified only with the key
the export carries (first use, now pinned: compare it with the firm's); 1 refused (one
``error:`` line saying what disagreed); 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tarcza_verify import __version__
from tarcza_verify.cosignature import CosignerKey
from tarcza_verify.errors import VerifyError
from tarcza_verify.run import outcome_json, verify_path
from tarcza_verify.trust import ENVIRONMENT_VARIABLE, default_path, read_key_file
from tarcza_verify.unpack import DEFAULT_LIMITS, Limits


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tarcza-verify", description="Verify a Tarcza audit export (directory or .tar.gz) or GDPR subject "
        "archive (.zip) offline, against a key you trust.",
        epilog="Exit status: 0 verified with a key you trust; 3 verified only with the export's own key (first "
        "use, now pinned); 1 refused; 2 usage error.")
    parser.add_argument("path", type=Path, help="the export directory, .tar.gz or subject archive .zip")
    parser.add_argument("--key", type=Path, metavar="FILE",
                        help="the log's verifier key you got from the firm (the line `tarcza audit verifier-key` "
                        "prints); without it, the key pinned for the log, or the export's own on first use")
    parser.add_argument("--trusted-checkpoint", type=Path, metavar="FILE",
                        help="a checkpoint you saved earlier: the export must extend it (else: forked or rewritten)")
    parser.add_argument("--known-logs", type=Path, metavar="FILE",
                        help=f"the file of pinned keys (default ${ENVIRONMENT_VARIABLE}, else "
                        "~/.config/tarcza/known_logs)")
    parser.add_argument("--witness", action="append", default=[], metavar="KEY",
                        help="a witness's verifier key (name+keyid+base64, type 0x04), or a file holding one, whose "
                        "cosignature of the checkpoint counts; repeatable")
    parser.add_argument("--min-witnesses", type=int, metavar="N",
                        help="how many of the --witness keys must have cosigned the checkpoint (default: all)")
    parser.add_argument("--check-events", action="store_true",
                        help="also check that every entry of an audit export is canonical JSON of an event within "
                        "the export's filters (always done for a subject archive's log part)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--max-files", type=int, default=DEFAULT_LIMITS.max_files, help=argparse.SUPPRESS)
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_LIMITS.max_bytes, help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"tarcza-verify {__version__}")
    return parser


def _key_text(value: str) -> str:
    """A key given on the command line, or the content of the file it names."""
    path = Path(value)
    if "+" not in value and path.is_file():
        try:
            return path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            raise VerifyError(f"{value}: cannot read a key from it") from None
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the exit status."""
    args = _parser().parse_args(argv)
    try:
        key = read_key_file(args.key) if args.key is not None else None
        trusted = None
        if args.trusted_checkpoint is not None:
            try:
                trusted = args.trusted_checkpoint.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                raise VerifyError(f"{args.trusted_checkpoint}: cannot read the saved checkpoint") from None
        witnesses = [CosignerKey.from_string(_key_text(value)) for value in args.witness]
        if args.min_witnesses is not None and not 0 <= args.min_witnesses <= len({w.label for w in witnesses}):
            raise VerifyError(f"--min-witnesses {args.min_witnesses} needs at least that many distinct --witness "
                              f"keys ({len(witnesses)} given)")
        outcome = verify_path(args.path, key=key, known_logs=args.known_logs or default_path(),
                              trusted_checkpoint=trusted, check_events=args.check_events,
                              limits=Limits(args.max_files, args.max_bytes), witnesses=witnesses,
                              min_witnesses=args.min_witnesses)
    except VerifyError as exc:
        sys.stderr.write(f"error: {exc.detail}\n")
        return 1
    for line in outcome.warning():
        sys.stderr.write(line + "\n")
    sys.stdout.write((outcome_json(outcome) if args.json else outcome.summary(datetime.now(UTC))) + "\n")
    return outcome.exit_code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
