"""Checkpoints of the audit log: the log's Ed25519 signer, and the C2SP formats it writes.

The formats themselves (signed notes, tlog-checkpoint bodies with the ``time`` extension
line, verifier keys) and everything that verifies them are the standalone verifier's
(:mod:`tarcza_verify.note`), re-exported here so that the server and auditors run one
copy (ADR 0019). This module adds :class:`Signer`, which only the log holds.

Invariants:

- Everything :class:`Signer` emits opens with :func:`open_note` under its
  :meth:`Signer.verifier`; a checkpoint body it signs parses back to an equal checkpoint.
- A :class:`Signer` never shows its private key in ``repr`` and never puts secret
  material in an error message.
- Through this module, refusals are :class:`audit.errors.CheckpointError`: :func:`open_note`,
  :func:`open_checkpoint`, :func:`parse_checkpoint_body`, :func:`split_note` and
  :meth:`Verifier.from_string`. Constructing a :class:`Checkpoint` from bad values raises the
  verifier's own ``tarcza_verify.errors.CheckpointError``: the log builds checkpoints from its
  own data only.

Only this module touches signing primitives in ``audit/`` (with ``audit.cosignature`` for
witnesses); it performs no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.errors import CheckpointError, from_verifier
from tarcza_verify import note as _note
from tarcza_verify.errors import VerifyError
from tarcza_verify.note import (
    ED25519_TYPE,
    MAX_NOTE_BYTES,
    SIGNATURE_PREFIX,
    Checkpoint,
    NoteSignature,
    b64encode,
    check_key_name,
    check_note_text,
    compute_key_id,
    split_key_string,
    time_line,
)

__all__ = [
    "SIGNATURE_PREFIX",
    "Checkpoint",
    "NoteSignature",
    "Signer",
    "Verifier",
    "compute_key_id",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint_body",
    "split_note",
    "time_line",
    "verifier_from_string",
]

_PRIVATE_PREFIX: Final = "PRIVATE+KEY+"
_SEED_SIZE: Final = 32
_b64encode = b64encode  # the name the witness package imports
_check_name = check_key_name
_split_key_string = split_key_string


@contextmanager
def _as_audit_errors() -> Iterator[None]:
    try:
        yield
    except VerifyError as exc:
        raise from_verifier(exc) from None


class Verifier(_note.Verifier):
    """The verifier's :class:`tarcza_verify.note.Verifier`, parsing with audit errors."""

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> Self:
        """The key of ``public_key`` under ``name``, key ID computed; :class:`CheckpointError` for a bad name."""
        with _as_audit_errors():
            return super().from_public_key(name, public_key)

    @classmethod
    def from_string(cls, text: str) -> Self:
        """Parse ``"<name>+<key ID hex>+<base64(0x01 || public key)>"``; :class:`CheckpointError` if not."""
        with _as_audit_errors():
            return super().from_string(text)


def open_note(note: str, verifier: _note.Verifier) -> str:
    """:func:`tarcza_verify.note.open_note`, raising :class:`audit.errors.CheckpointError`."""
    with _as_audit_errors():
        return _note.open_note(note, verifier)


def open_checkpoint(note: str, verifier: _note.Verifier, origin: str | None = None) -> Checkpoint:
    """:func:`tarcza_verify.note.open_checkpoint`, raising :class:`audit.errors.CheckpointError`."""
    with _as_audit_errors():
        return _note.open_checkpoint(note, verifier, origin)


def parse_checkpoint_body(text: str) -> Checkpoint:
    """:func:`tarcza_verify.note.parse_checkpoint_body`, raising :class:`audit.errors.CheckpointError`."""
    with _as_audit_errors():
        return _note.parse_checkpoint_body(text)


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """:func:`tarcza_verify.note.split_note` (text and unverified signature lines), with audit errors."""
    with _as_audit_errors():
        return _note.split_note(note)


def verifier_from_string(text: str) -> Verifier:
    """:meth:`Verifier.from_string`, raising :class:`audit.errors.CheckpointError`."""
    return Verifier.from_string(text)


class Signer:
    """A named Ed25519 private key that signs notes and checkpoints.

    Holds a secret: ``repr`` shows only the name and key ID.
    """

    __slots__ = ("_key_id", "_name", "_private_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        with _as_audit_errors():
            check_key_name(name)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise CheckpointError("signer key is not an Ed25519 private key")
        self._name = name
        self._private_key = private_key
        self._key_id = compute_key_id(name, private_key.public_key())

    def __repr__(self) -> str:
        return f"Signer(name={self._name!r}, key_id={self._key_id.hex()!r})"

    @property
    def name(self) -> str:
        """The key name that signature lines carry."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID."""
        return self._key_id

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_string(cls, secret_key: str) -> Signer:
        """Parse ``"PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || seed)>"``.

        Error messages never repeat the secret.
        """
        if not secret_key.startswith(_PRIVATE_PREFIX):
            raise CheckpointError("signer key does not start with PRIVATE+KEY+")
        with _as_audit_errors():
            name, key_id_hex, key_data = split_key_string(secret_key[len(_PRIVATE_PREFIX):], "signer",
                                                          "PRIVATE+KEY+name+keyid+keydata")
        if key_data[:1] != ED25519_TYPE or len(key_data) != 1 + _SEED_SIZE:
            raise CheckpointError("signer key data is not an Ed25519 seed (0x01 and 32 bytes)")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(key_data[1:]))
        if signer.key_id != bytes.fromhex(key_id_hex):
            raise CheckpointError(f"signer key ID {key_id_hex} does not match the key")
        return signer

    def to_string(self) -> str:
        """The secret key string. Treat it as a secret."""
        key_data = ED25519_TYPE + self._private_key.private_bytes_raw()
        return f"{_PRIVATE_PREFIX}{self._name}+{self._key_id.hex()}+{b64encode(key_data)}"

    def verifier(self) -> Verifier:
        """The matching public verifier."""
        return Verifier(self._name, self._key_id, self._private_key.public_key())

    def sign_note(self, text: str) -> str:
        """The signed note: ``text``, a blank line and this key's signature line.

        ``text`` must be non-empty, end with a newline and hold no control character
        other than newline.
        """
        with _as_audit_errors():
            check_note_text(text)
        signature = self._private_key.sign(text.encode("utf-8"))
        line = f"{SIGNATURE_PREFIX}{self._name} {b64encode(self._key_id + signature)}\n"
        note = f"{text}\n{line}"
        if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
            raise CheckpointError(f"signed note would exceed {MAX_NOTE_BYTES} bytes")
        return note

    def sign_checkpoint(self, checkpoint: Checkpoint) -> str:
        """The signed note of ``checkpoint``'s body."""
        return self.sign_note(checkpoint.body())
