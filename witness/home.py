"""A witness's directory: its signing key (``witness.key``, 0600) and its database (``witness.db``).

The directory is created 0700 by ``tarcza witness init`` and holds nothing of Tarcza's own;
a witness is run by someone other than the log's operator, on another machine.
"""

from __future__ import annotations

from pathlib import Path

from audit.checkpoint import Verifier
from audit.cosignature import Cosigner
from audit.errors import CheckpointError
from core.clock import SYSTEM_CLOCK, Clock
from core.errors import ConfigurationError, InvalidInputError
from core.files import create_private_file
from witness.service import Witness
from witness.storage import WitnessStore


class WitnessHome:
    """Paths and set-up of one witness directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def key_path(self) -> Path:
        return self.directory / "witness.key"

    @property
    def db_path(self) -> Path:
        return self.directory / "witness.db"

    def init(self, name: str) -> list[str]:
        """Create the directory, the key (named ``name``) and the database; what exists is kept."""
        lines: list[str] = []
        if not self.directory.exists():
            self.directory.mkdir(parents=True, mode=0o700)
            lines.append(f"created witness directory {self.directory} (0700)")
        if not self.key_path.exists():
            try:
                cosigner = Cosigner.generate(name)
            except CheckpointError as exc:
                raise InvalidInputError(f"--name: {exc.detail}") from None
            create_private_file(self.key_path, cosigner.to_string() + "\n")
            lines.append(f"created witness key {self.key_path} (0600) named {name}")
        elif self.cosigner().name != name:
            raise ConfigurationError(f"{self.key_path} already holds the key of witness {self.cosigner().name!r}; "
                                     "it is never overwritten")
        if not self.db_path.exists():
            WitnessStore.create(self.db_path)
            lines.append(f"created witness database {self.db_path}")
        return lines

    def cosigner(self) -> Cosigner:
        path = self.key_path
        if not path.is_file():
            raise ConfigurationError(f"witness key {path} is missing; run `tarcza witness init`")
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigurationError(f"witness key {path} has permissions {mode:o}; expected 600")
        try:
            return Cosigner.from_string(path.read_text(encoding="ascii"))
        except (CheckpointError, UnicodeDecodeError):
            raise ConfigurationError(f"witness key {path} is not a cosigner private key") from None

    def store(self) -> WitnessStore:
        return WitnessStore.open(self.db_path)

    def witness(self, clock: Clock = SYSTEM_CLOCK) -> Witness:
        return Witness(self.store(), self.cosigner(), clock)

    def add_log(self, verifier_key: str, origin: str | None, *, replace: bool, clock: Clock = SYSTEM_CLOCK) -> str:
        """Configure a log by its verifier key (origin: the key's name unless given); returns the origin."""
        try:
            verifier = Verifier.from_string(verifier_key.strip())
        except CheckpointError as exc:
            raise InvalidInputError(f"log key: {exc.detail}") from None
        origin = origin or verifier.name
        if not origin or "\n" in origin or any(ord(ch) < 0x20 for ch in origin):
            raise InvalidInputError("--origin must be one non-empty line")
        self.store().add_log(origin, verifier.to_string(), now=clock.now(), replace=replace)
        return origin

