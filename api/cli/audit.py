"""``tarcza audit``: append, checkpoints, proofs, queries, export and verification."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from api.cli.common import console, runtime
from audit.events import Actor, ActorKind
from audit.repository import EntryFilter
from core.errors import InvalidInputError

if TYPE_CHECKING:
    from tarcza_verify.cosignature import CosignerKey

app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log: append, prove, export, verify.")


@contextmanager
def progress_bar(label: str) -> Iterator[Any]:
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")


def _operator() -> Actor:
    import getpass

    return Actor(id=f"operator:{getpass.getuser()}", kind=ActorKind.SYSTEM)


@app.command("append")
def append(
    event_type: Annotated[str, typer.Option("--type", help=(
        "An event type outside principals may author (operator.note); types only Tarcza writes are refused."))],
    payload: Annotated[str, typer.Option(help=(
        "Payload as JSON; a note's details in plain text (sealed by Tarcza under the subject's key)."))] = "{}",
    subject: Annotated[str | None, typer.Option(help="Subject token the event concerns.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Retrying with the same key appends once.")] = None,
) -> None:
    """Append one operator note (for scripts), as operator:<login>; prints the receipt as JSON."""
    from api.external_events import append_from_outside

    try:
        body = json.loads(payload)
    except ValueError:
        raise InvalidInputError("--payload is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInputError("--payload must be a JSON object")
    receipt = append_from_outside(runtime(), event_type, actor=_operator(), payload=body, subject=subject,
                                  idempotency_key=idempotency_key)
    _print_json(receipt.to_json())


@app.command("checkpoint")
def checkpoint(
    latest: Annotated[bool, typer.Option("--latest", help="Print the newest checkpoint, issue none.")] = False,
) -> None:
    """Issue a signed checkpoint of the current tree now (or print the latest) as a C2SP signed note.

    Issuing is itself logged (a `checkpoint.issued` entry); the checkpoint printed is issued after that
    entry, so it covers the whole log as it stands when the command ends, its own record included.
    """
    log = runtime().audit
    if latest:
        info = log.latest_checkpoint()
        if info is None:
            raise InvalidInputError("no checkpoint has been issued yet; run `tarcza audit checkpoint`")
    else:
        issued = log.issue_checkpoint()
        from audit.events import CheckpointIssuedPayload

        log.record("checkpoint.issued", actor=_operator(),
                   payload=CheckpointIssuedPayload(tree_size=issued.tree_size, root_hash=issued.root_hash.hex()))
        info = log.issue_checkpoint()
    sys.stdout.write(info.note)


@app.command("verifier-key")
def verifier_key() -> None:
    """Print the log's public verifier key (signed-note format) for auditors."""
    sys.stdout.write(runtime().audit.verifier().to_string() + "\n")


@app.command("prove")
def prove(
    index: Annotated[int, typer.Option(help="Leaf index of the entry.")],
    size: Annotated[int | None, typer.Option(help="Tree size (default: newest checkpoint covering it).")] = None,
) -> None:
    """Print the inclusion proof of entry INDEX (RFC 9162), hashes in base64."""
    _print_json(runtime().audit.inclusion_proof(index, size).to_json())


@app.command("consistency")
def consistency(
    from_size: Annotated[int, typer.Option("--from", help="Older tree size.")],
    to_size: Annotated[int | None, typer.Option("--to", help="Newer tree size (default: newest checkpoint).")] = None,
) -> None:
    """Print the consistency proof between two tree sizes (RFC 9162), hashes in base64."""
    _print_json(runtime().audit.consistency_proof(from_size, to_size).to_json())


def _filter(subject: str | None, event_type: str | None, actor: str | None, since: datetime | None,
            until: datetime | None, from_index: int | None, to_index: int | None) -> EntryFilter:
    from datetime import UTC

    def aware(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    return EntryFilter(subject=subject, event_type=event_type, actor=actor, since=aware(since), until=aware(until),
                       start=from_index, end=None if to_index is None else to_index + 1)


SubjectOpt = Annotated[str | None, typer.Option(help="Only entries about this subject token.")]
TypeOpt = Annotated[str | None, typer.Option("--type", help="Only this event type (or a prefix like contact.*).")]
ActorOpt = Annotated[str | None, typer.Option(help="Only entries by this actor id.")]
SinceOpt = Annotated[datetime | None, typer.Option(help="From this time (UTC unless an offset is given).")]
UntilOpt = Annotated[datetime | None, typer.Option(help="Before this time.")]
FromOpt = Annotated[int | None, typer.Option("--from-index", help="First index.")]
ToOpt = Annotated[int | None, typer.Option("--to-index", help="Last index (inclusive).")]


@app.command("events")
def events(
    subject: SubjectOpt = None, event_type: TypeOpt = None, actor: ActorOpt = None, since: SinceOpt = None,
    until: UntilOpt = None, from_index: FromOpt = None, to_index: ToOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Entries per page.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after this cursor.")] = None,
) -> None:
    """List entries (oldest first) as JSON, with a cursor for the next page."""
    page = runtime().audit.query(_filter(subject, event_type, actor, since, until, from_index, to_index),
                                 cursor=cursor, limit=limit)
    _print_json({"items": [i.to_json() for i in page.items], "next_cursor": page.next_cursor})


@app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Directory to create (must not exist or be empty).")],
    subject: SubjectOpt = None, event_type: TypeOpt = None, actor: ActorOpt = None, since: SinceOpt = None,
    until: UntilOpt = None, from_index: FromOpt = None, to_index: ToOpt = None,
) -> None:
    """Export entries with their proofs, checkpoint and verifier key for offline verification."""
    from audit.export import export_log

    with progress_bar("exporting") as update:
        summary = export_log(runtime().audit, out,
                             _filter(subject, event_type, actor, since, until, from_index, to_index), progress=update)
    console.print(f"exported {summary.entries} entries to {summary.directory} "
                  f"(checkpoint size {summary.tree_size}, root {summary.root_hash})")


KeyOpt = Annotated[Path | None, typer.Option(
    "--key", help="Your own copy of the log's verifier key (the line `tarcza audit verifier-key` prints). Without "
    "it: the key pinned for the log in the known-logs file, or on first use the export's own (pinned, loud "
    "warning, exit 3).")]
KnownLogsOpt = Annotated[Path | None, typer.Option(
    "--known-logs", help="The file of pinned log keys (default: $TARCZA_KNOWN_LOGS, else "
    "~/.config/tarcza/known_logs).")]


def run_verification(path: Path, *, key: Path | None, known_logs: Path | None, trusted_checkpoint: Path | None,
                     check_events: bool, label: str, witnesses: Sequence[CosignerKey] = (),
                     min_witnesses: int | None = None) -> None:
    """Verify ``path`` as `tarcza-verify` does (same checks, same pinning, same output and exit status)."""
    from datetime import UTC, datetime

    from audit.errors import from_verifier
    from tarcza_verify import run, trust
    from tarcza_verify.errors import VerifyError

    try:
        verifier = trust.read_key_file(key) if key is not None else None
        saved = None
        if trusted_checkpoint is not None:
            try:
                saved = trusted_checkpoint.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                raise InvalidInputError(f"{trusted_checkpoint}: cannot read the saved checkpoint") from None
        with progress_bar(label) as update:
            outcome = run.verify_path(path, key=verifier, known_logs=known_logs or trust.default_path(),
                                      trusted_checkpoint=saved, check_events=check_events, progress=update,
                                      witnesses=witnesses, min_witnesses=min_witnesses)
    except VerifyError as exc:
        raise from_verifier(exc) from None
    for line in outcome.warning():
        sys.stderr.write(line + "\n")
    sys.stdout.write(outcome.summary(datetime.now(UTC)) + "\n")
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


@app.command("verify")
def verify(
    path: Annotated[Path | None, typer.Argument(
        help="An export to verify offline: its directory, or the .tar.gz the server sends.")] = None,
    db: Annotated[bool, typer.Option("--db", help="Verify the whole stored log instead.")] = False,
    trusted_checkpoint: Annotated[Path | None, typer.Option(
        help="A checkpoint you kept earlier: the export must extend it (else: forked or rewritten).")] = None,
    key: KeyOpt = None,
    known_logs: KnownLogsOpt = None,
    check_events: Annotated[bool, typer.Option(
        help="Also check every entry is canonical JSON of an event within the export's filters.")] = False,
    witness: Annotated[list[str] | None, typer.Option(
        help="A witness verifier key (or a file holding one) whose cosignature counts; repeatable.")] = None,
    min_witnesses: Annotated[int | None, typer.Option(
        min=0, help="How many of the --witness keys must have cosigned the checkpoint (default: all).")] = None,
) -> None:
    """Verify an export offline (no database, no secret; exit 0, or 3 on a key's first use), or with --db the
    whole stored log."""
    if db == (path is not None):
        raise InvalidInputError("give either an export (directory or .tar.gz) or --db")
    from api.cli.witness import witness_keys

    witnesses = witness_keys(witness or [], min_witnesses)
    if db:
        with progress_bar("verifying log") as update:
            report = runtime().audit.verify_database(progress=update)
        console.print(f"OK: {report.entries} entries, {report.nodes} nodes and {report.checkpoints} checkpoints "
                      f"verify; root {report.to_json()['root_hash']}")
        return
    assert path is not None  # noqa: S101 - narrowed by the check above
    run_verification(path, key=key, known_logs=known_logs, trusted_checkpoint=trusted_checkpoint,
                     check_events=check_events, label="verifying export", witnesses=witnesses,
                     min_witnesses=min_witnesses)
