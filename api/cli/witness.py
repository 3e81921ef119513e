"""``tarcza witness``: run a C2SP tlog-witness that cosigns other logs' checkpoints.

A witness has its own directory (``--dir``, default ``TARCZA_WITNESS_DIR`` or ``./witness``)
with its key and its SQLite database; it never touches Tarcza's data directory or database.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from api.cli.common import console, err_console
from core.errors import ConfigurationError, InvalidInputError

if TYPE_CHECKING:
    from audit.cosignature import CosignerKey

app = typer.Typer(no_args_is_help=True,
                  help="A transparency-log witness (C2SP tlog-witness): cosigns consistent checkpoints of logs.")

DirOpt = Annotated[Path, typer.Option("--dir", envvar="TARCZA_WITNESS_DIR",
                                      help="The witness's directory (key and database).")]
DEFAULT_DIR = Path("witness")


def key_argument(value: str) -> str:
    """A key given on the command line: the path of a file holding it, or the key itself."""
    path = Path(value)
    try:
        if path.is_file():
            return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        raise InvalidInputError(f"{value}: not a readable key file") from None
    return value.strip()


def witness_keys(values: list[str], min_witnesses: int | None) -> list[CosignerKey]:
    """``--witness`` values (keys or key files) parsed; ``--min-witnesses`` checked against them."""
    from audit.cosignature import CosignerKey
    from audit.errors import CheckpointError

    keys = []
    for value in values:
        try:
            keys.append(CosignerKey.from_string(key_argument(value)))
        except CheckpointError as exc:
            raise InvalidInputError(f"--witness {value}: {exc.detail}") from None
    if min_witnesses is not None and min_witnesses > len({k.label for k in keys}):
        raise InvalidInputError(f"--min-witnesses {min_witnesses} needs at least that many distinct --witness keys "
                                f"({len(keys)} given)")
    return keys


def _home(directory: Path):  # type: ignore[no-untyped-def]  # witness.home is imported lazily
    from witness.home import WitnessHome

    return WitnessHome(directory)


@app.command("init")
def init(
    name: Annotated[str, typer.Option(help="The witness's key name, a schema-less URL such as witness.example/w1.")],
    directory: DirOpt = DEFAULT_DIR,
) -> None:
    """Create the witness directory (0700), its Ed25519 key (0600) and database; prints its verifier key."""
    home = _home(directory)
    for line in home.init(name) or ["already initialised; nothing to do"]:
        err_console.print(line, markup=False, highlight=False)  # stdout: only the key, for `> witness.pub`
    sys.stdout.write(home.cosigner().verifier().to_string() + "\n")


@app.command("verifier-key")
def verifier_key(directory: DirOpt = DEFAULT_DIR) -> None:
    """Print the witness's verifier key (signed-note vkey, type 0x04) for logs and verifiers to pin."""
    sys.stdout.write(_home(directory).cosigner().verifier().to_string() + "\n")


@app.command("add-log")
def add_log(
    key: Annotated[str, typer.Option(help="The log's verifier key, or a file holding it "
                                          "(`tarcza audit verifier-key` of that log).")],
    origin: Annotated[str | None, typer.Option(help="The log's origin line (default: the key's name).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace the key of a log already configured.")]
    = False,
    directory: DirOpt = DEFAULT_DIR,
) -> None:
    """Witness a log: its checkpoints must be signed by KEY and carry ORIGIN."""
    added = _home(directory).add_log(key_argument(key), origin, replace=replace)
    console.print(f"witnessing log {added}", markup=False, highlight=False)


@app.command("logs")
def logs(directory: DirOpt = DEFAULT_DIR) -> None:
    """List the logs witnessed, with the latest checkpoint cosigned and refusals recorded for each."""
    store = _home(directory).store()
    table = Table("origin", "log key", "latest cosigned size", "refused (inconsistent)")
    for known in store.logs():
        latest = store.latest(known.origin)
        table.add_row(known.origin, known.verifier_key, "-" if latest is None else str(latest.size),
                      str(len(store.refusals(known.origin))))
    console.print(table)


@app.command("serve")
def serve(
    directory: DirOpt = DEFAULT_DIR,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Listen port.")] = 8900,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate (chain) to serve HTTPS with.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    insecure_http: Annotated[bool, typer.Option(
        "--insecure-http", help="Allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy).")]
    = False,
) -> None:
    """Serve the C2SP tlog-witness HTTP API (POST /add-checkpoint, GET /<origin hash>/checkpoint)."""
    import uvicorn

    from api.security import is_loopback, server_tls
    from core.logging import configure_logging
    from witness.app import create_witness_app

    tls = server_tls(tls_cert, tls_key)
    if tls is None and not is_loopback(host) and not insecure_http:
        raise ConfigurationError(f"refusing plain HTTP on {host}: give --tls-cert and --tls-key, or --insecure-http "
                                 "if a TLS-terminating proxy is in front")
    witness = _home(directory).witness()
    if not witness.store.logs():
        err_console.print("warning: no log configured yet; add one with `tarcza witness add-log`",
                          markup=False, highlight=False)
    configure_logging(level="INFO", fmt="auto")
    scheme = "https" if tls else "http"
    console.print(f"witness {witness.verifier().to_string()} serving on {scheme}://{host}:{port}",
                  markup=False, highlight=False)
    web_app = create_witness_app(witness)
    if tls is None:
        uvicorn.run(web_app, host=host, port=port, log_config=None, access_log=False)
        return
    context = tls.context
    uvicorn.run(web_app, host=host, port=port, log_config=None, access_log=False,
                ssl_context_factory=lambda _config, _default: context)
