"""Which key to verify an export with: the one given, the one pinned for its log, or (once) its own.

A log's key is never taken from the data it verifies without saying so. The known-logs file
works like SSH's ``known_hosts``: one line per log, ``<origin> <verifier key>``, ``#`` starts a
comment. Its place is ``$TARCZA_KNOWN_LOGS``, else ``$XDG_CONFIG_HOME/tarcza/known_logs``
(``~/.config/tarcza/known_logs``; ``%APPDATA%\\tarcza\\known_logs`` on Windows).

Rules (:func:`decide`):

- a key given with ``--key`` must agree with the pin for its origin, if any, and the export
  must carry that key; the file is only read (a command given its key writes nothing);
- without ``--key``, the pinned key is used, and an export carrying another key is refused
  ("signed by another key"): a pin never changes by itself; the auditor edits the file;
- without ``--key`` and without a pin, the export's own key is used *and flagged*: the
  caller warns loudly and exits 3, and the key is pinned once the export verifies.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from tarcza_verify.errors import CheckpointError, KeyTrustError, VerifyError
from tarcza_verify.note import Verifier

__all__ = ["ENVIRONMENT_VARIABLE", "KnownLogs", "TrustDecision", "decide", "default_path", "read_key_file"]

ENVIRONMENT_VARIABLE: Final = "TARCZA_KNOWN_LOGS"
KeySource = Literal["given", "pinned", "first-use"]
_HEADER: Final = ("# Tarcza logs whose keys you trust: <origin> <verifier key>, one per line (like known_hosts).\n"
                  "# A changed key is refused; if a log's key really changed, replace its line here.\n")


def default_path(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the known-logs file is unless a command is told otherwise."""
    if environ.get(ENVIRONMENT_VARIABLE):
        return Path(environ[ENVIRONMENT_VARIABLE])
    if sys.platform == "win32" and environ.get("APPDATA"):
        return Path(environ["APPDATA"]) / "tarcza" / "known_logs"
    base = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "tarcza" / "known_logs"


def read_key_file(path: Path) -> Verifier:
    """The verifier key in ``path`` (as ``tarcza audit verifier-key`` prints it: one line)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        raise KeyTrustError(f"{path}: cannot read a verifier key from it") from None
    try:
        return Verifier.from_string(text)
    except CheckpointError as exc:
        raise KeyTrustError(f"{path}: not a verifier key (name+keyid+base64): {exc.detail}") from None


@dataclass(frozen=True)
class KnownLogs:
    """The pinned keys, by origin, and the file they live in."""

    path: Path
    keys: Mapping[str, Verifier]

    @classmethod
    def load(cls, path: Path) -> KnownLogs:
        """Read ``path``; a missing file pins nothing."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path, {})
        except (OSError, UnicodeDecodeError):
            raise VerifyError(f"{path}: the known-logs file cannot be read") from None
        keys: dict[str, Verifier] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            origin, _, key = line.partition(" ")
            try:
                verifier = Verifier.from_string(key.strip())
            except CheckpointError:
                raise VerifyError(f"{path} line {number}: not '<origin> <verifier key>'") from None
            if origin in keys and keys[origin] != verifier:
                raise VerifyError(f"{path} line {number}: a second, different key for {origin}")
            keys[origin] = verifier
        return cls(path, keys)

    def pin(self, origin: str, key: Verifier) -> KnownLogs:
        """Add ``origin``'s key to the file (created 0600 in a 0700 folder, replaced atomically)."""
        if not origin or any(ch.isspace() for ch in origin):
            raise VerifyError(f"origin {origin!r} cannot be pinned (empty, or it holds whitespace)")
        try:
            old = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            old = _HEADER
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".known_logs.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(old if old.endswith("\n") else old + "\n")
                fh.write(f"{origin} {key.to_string()}\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return KnownLogs(self.path, {**self.keys, origin: key})


@dataclass(frozen=True)
class TrustDecision:
    """The key to verify with, where it came from, and whether it is to be pinned once the export verifies."""

    key: Verifier
    source: KeySource
    pin: bool

    @property
    def flagged(self) -> bool:
        """True when the key is the export's own, trusted on first use: nothing yet ties it to the firm."""
        return self.source == "first-use"


def decide(origin: str, carried: Verifier | None, known: KnownLogs, given: Verifier | None = None) -> TrustDecision:
    """The key to verify an export of ``origin`` with (see the module's rules)."""
    pinned = known.keys.get(origin)
    where = str(known.path)
    if given is not None:
        if pinned is not None and pinned != given:
            raise KeyTrustError(
                f"the key you gave for {origin} ({given.label}) is not the one pinned in {where} ({pinned.label}); "
                f"if the log's key really changed, replace the line for {origin} there")
        if carried is not None and carried != given:
            raise KeyTrustError(_resigned(origin, carried, given, "the key you gave"))
        return TrustDecision(given, "given", pin=False)
    if pinned is not None:
        if carried is not None and carried != pinned:
            raise KeyTrustError(_resigned(origin, carried, pinned, f"the key pinned in {where}") +
                                f"; if the firm announced a new key, replace the line for {origin} there")
        return TrustDecision(pinned, "pinned", pin=False)
    if carried is None:
        raise KeyTrustError(f"the export carries no usable key and none is pinned for {origin}: give one with --key")
    return TrustDecision(carried, "first-use", pin=True)


def _resigned(origin: str, carried: Verifier, trusted: Verifier, which: str) -> str:
    return (f"this export of {origin} is signed by another key ({carried.label}) than {which} ({trusted.label}): "
            "it was re-signed by another installation, or the log's key changed")
