"""C2SP signed notes, tlog-checkpoint bodies and verifier keys (Ed25519), for verifying.

Formats (c2sp.org/signed-note, c2sp.org/tlog-checkpoint, Go's golang.org/x/mod/sumdb/note):

- A checkpoint body is the origin line, the tree size in ASCII decimal without leading
  zeroes, the root hash in standard padded base64, then optional non-empty extension
  lines; every line ends with a newline. Tarcza's one extension line is the issue time,
  ``time <POSIX seconds, ASCII decimal, no leading zeroes>`` (as the tlog-cosignature
  timestamp line is spelled); a checkpoint without it (an older one) is accepted.
- A signed note is its text (ending in a newline), a blank line, then one or more
  signature lines ``"\u2014 <key name> <base64(key ID || signature)>"``. The text is split
  from the signatures at the last blank line. The whole note is valid UTF-8 without
  ASCII control characters other than newline.
- The key ID of an Ed25519 key is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``.
  A verifier key is ``"<name>+<key ID, 8 hex digits>+<base64(0x01 || public key)>"``
  (the base64 part may hold ``+`` and ``/``: split at the first two ``+`` only).

Invariants:

- A :class:`Checkpoint` is well-formed once constructed, so ``body()`` always parses back
  to an equal checkpoint.
- Opening a note fails closed with :class:`~tarcza_verify.errors.CheckpointError`: a
  malformed note, no signature by the verifier's (name, key ID), or any signature by that
  key that does not verify. Signatures by other keys (witnesses' cosignatures) are ignored.
- Key names are non-empty and hold no whitespace and no ``+``.

No I/O. The log's signer (``audit.checkpoint.Signer``) builds on this module.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Final, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tarcza_verify.errors import CheckpointError
from tarcza_verify.merkle import HASH_SIZE

__all__ = [
    "ED25519_TYPE",
    "MAX_NOTE_BYTES",
    "SIGNATURE_PREFIX",
    "TIME_PREFIX",
    "Checkpoint",
    "NoteSignature",
    "Verifier",
    "b64encode",
    "check_key_name",
    "check_note_text",
    "compute_key_id",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint_body",
    "signers_of",
    "split_key_string",
    "split_note",
    "time_line",
]

ED25519_TYPE: Final = b"\x01"
"""The C2SP signed-note signature type byte of Ed25519."""

SIGNATURE_PREFIX: Final = "\u2014 "
"""An em dash and a space start every signature line."""

TIME_PREFIX: Final = "time "
"""The extension line that carries a checkpoint's issue time: ``time <POSIX seconds>``."""

MAX_NOTE_BYTES: Final = 1 << 20
MAX_SIGNATURES: Final = 100
MAX_TREE_SIZE: Final = (1 << 64) - 1
MAX_TIME: Final = (1 << 63) - 1
KEY_ID_SIZE: Final = 4
_MIN_BODY_LINES: Final = 3  # origin, size, root hash
_KEY_ID_HEX: Final = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
_FORBIDDEN_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")
_PUBLIC_KEY_SIZE: Final = 32
_SIGNATURE_SIZE: Final = 64


# --- helpers ---------------------------------------------------------------------------


def _check_utf8(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CheckpointError(f"{what} is not valid UTF-8") from None


def _check_line(value: str, what: str) -> None:
    """A line's content: non-empty, UTF-8, no newline and no other control character."""
    if not value:
        raise CheckpointError(f"{what} is empty")
    _check_utf8(value, what)
    if "\n" in value or _FORBIDDEN_CONTROL.search(value):
        raise CheckpointError(f"{what} contains a control character")


def check_key_name(name: str) -> None:
    """A key name: non-empty, UTF-8, no whitespace, no control character, no ``+``."""
    if not isinstance(name, str) or not name:
        raise CheckpointError("key name is empty")
    _check_utf8(name, "key name")
    if any(ch.isspace() for ch in name) or _FORBIDDEN_CONTROL.search(name):
        raise CheckpointError(f"key name {name!r} contains whitespace or a control character")
    if "+" in name:
        raise CheckpointError(f"key name {name!r} contains '+'")


def check_note_text(text: str) -> None:
    """A note's text: ends with a newline, UTF-8, no control character other than newline."""
    if not text.endswith("\n"):
        raise CheckpointError("note text must end with a newline")
    _check_utf8(text, "note text")
    if _FORBIDDEN_CONTROL.search(text):
        raise CheckpointError("note text contains a control character")


def b64encode(raw: bytes) -> str:
    """Standard padded base64 (RFC 4648 section 4)."""
    return base64.b64encode(raw).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard padded base64: only its alphabet, and only the canonical encoding."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError:
        raise CheckpointError(f"{what} is not standard base64") from None
    if b64encode(raw) != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw


def split_key_string(text: str, kind: str, form: str) -> tuple[str, str, bytes]:
    """Split ``"<name>+<key ID hex>+<base64 key data>"`` at its first two ``+``, checking each part.

    Error messages name ``kind`` and ``form``, never the key data.
    """
    name, _, rest = text.partition("+")
    key_id_hex, sep, key_b64 = rest.partition("+")
    if not sep:
        raise CheckpointError(f"{kind} key is not of the form {form}")
    check_key_name(name)
    if not _KEY_ID_HEX.fullmatch(key_id_hex):
        raise CheckpointError(f"{kind} key ID is not 8 hexadecimal digits")
    return name, key_id_hex, _b64decode(key_b64, f"{kind} key data")


def compute_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key ID of an Ed25519 key: ``SHA-256(name || 0x0A || 0x01 || key)[:4]``."""
    check_key_name(name)
    material = name.encode("utf-8") + b"\n" + ED25519_TYPE + public_key.public_bytes_raw()
    return hashlib.sha256(material).digest()[:KEY_ID_SIZE]


def time_line(seconds: int) -> str:
    """The extension line of a checkpoint issued at ``seconds`` after the POSIX epoch."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= MAX_TIME:
        raise CheckpointError("a checkpoint's time is a whole number of seconds since 1970, not negative")
    return f"{TIME_PREFIX}{seconds}"


# --- checkpoint body -------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, root hash and extension lines (the time line among them)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extensions", tuple(self.extensions))
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError("tree size is not an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"tree size {self.size} is not between 0 and {MAX_TREE_SIZE}")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"root hash is not {HASH_SIZE} bytes")
        for number, extension in enumerate(self.extensions):
            if not isinstance(extension, str):
                raise CheckpointError(f"extension line {number} is not text")
            _check_line(extension, f"extension line {number}")
        times = [line for line in self.extensions if line.startswith(TIME_PREFIX)]
        if len(times) > 1:
            raise CheckpointError("checkpoint has more than one time line")
        if times and (not _DECIMAL.fullmatch(times[0][len(TIME_PREFIX):])
                      or int(times[0][len(TIME_PREFIX):]) > MAX_TIME):
            raise CheckpointError("checkpoint time line is not 'time <seconds since 1970>'")

    @property
    def time(self) -> int | None:
        """When the log issued it (POSIX seconds), from its time line; None for a checkpoint without one."""
        for line in self.extensions:
            if line.startswith(TIME_PREFIX):
                return int(line[len(TIME_PREFIX):])
        return None

    def body(self) -> str:
        """The note text: one line each for origin, size, root hash and every extension."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Parse a checkpoint body, refusing anything :meth:`Checkpoint.body` would not emit."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint body does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < _MIN_BODY_LINES:
        raise CheckpointError(f"checkpoint body has {len(lines)} lines, needs at least {_MIN_BODY_LINES}")
    origin, size_line, root_line, *extensions = lines
    if not _DECIMAL.fullmatch(size_line):
        raise CheckpointError("tree size is not a decimal number without leading zeroes")
    root_hash = _b64decode(root_line, "root hash")
    return Checkpoint(origin, int(size_line), root_hash, tuple(extensions))


# --- keys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if not isinstance(self.public_key, Ed25519PublicKey):
            raise CheckpointError("verifier key is not an Ed25519 public key")
        if not isinstance(self.key_id, bytes) or len(self.key_id) != KEY_ID_SIZE:
            raise CheckpointError(f"key ID is not {KEY_ID_SIZE} bytes")
        expected = compute_key_id(self.name, self.public_key)
        if self.key_id != expected:
            raise CheckpointError(f"key ID {self.key_id.hex()} does not match the key (expected {expected.hex()})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Verifier):
            return NotImplemented
        return self.to_string() == other.to_string()

    def __hash__(self) -> int:
        return hash(self.to_string())

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> Self:
        """The verifier of ``public_key`` under ``name``, key ID computed."""
        return cls(name, compute_key_id(name, public_key), public_key)

    @classmethod
    def from_string(cls, text: str) -> Self:
        """Parse ``"<name>+<key ID hex>+<base64(0x01 || public key)>"``."""
        name, key_id_hex, key_data = split_key_string(text, "verifier", "name+keyid+keydata")
        if key_data[:1] != ED25519_TYPE:
            raise CheckpointError("verifier key is not an Ed25519 key (type byte 0x01)")
        if len(key_data) != 1 + _PUBLIC_KEY_SIZE:
            raise CheckpointError(f"verifier key is not {_PUBLIC_KEY_SIZE} bytes")
        try:
            public_key = Ed25519PublicKey.from_public_bytes(key_data[1:])
        except ValueError:
            raise CheckpointError("verifier key is not a valid Ed25519 public key") from None
        return cls(name, bytes.fromhex(key_id_hex), public_key)

    def to_string(self) -> str:
        """The verifier key string ``"<name>+<key ID hex>+<base64(0x01 || public key)>"``."""
        return f"{self.name}+{self.key_id.hex()}+{b64encode(ED25519_TYPE + self.public_key.public_bytes_raw())}"

    @property
    def label(self) -> str:
        """``<name>+<key ID hex>``: how messages name the key."""
        return f"{self.name}+{self.key_id.hex()}"


# --- opening ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note, not yet verified: key name, 4-byte key ID, signature bytes."""

    name: str
    key_id: bytes
    signature: bytes


def _ed25519_verifies(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != _SIGNATURE_SIZE:
        return False
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """A note's text and its signature lines, none verified; CheckpointError if malformed.

    For verifiers of other signature types over the same note (witness cosignatures,
    :mod:`tarcza_verify.cosignature`), which must parse notes exactly as :func:`open_note` does.
    """
    _check_utf8(note, "note")
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise CheckpointError(f"malformed note: larger than {MAX_NOTE_BYTES} bytes")
    if _FORBIDDEN_CONTROL.search(note):
        raise CheckpointError("malformed note: contains a control character")
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed note: no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise CheckpointError("malformed note: no signature lines, or no final newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    signatures: list[NoteSignature] = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError(f"malformed note: signature line {number} does not start with an em dash")
        name, sep, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not sep or " " in encoded:
            raise CheckpointError(f"malformed note: signature line {number} is not '\u2014 name signature'")
        check_key_name(name)
        raw = _b64decode(encoded, f"signature {number}")
        if len(raw) <= KEY_ID_SIZE:
            raise CheckpointError(f"malformed note: signature {number} is too short")
        signatures.append(NoteSignature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]))
    return text, signatures


def signers_of(note: str) -> list[str]:
    """``<name>+<key ID hex>`` of every signature line of ``note`` (not verified): for messages."""
    _, signatures = split_note(note)
    return [f"{line.name}+{line.key_id.hex()}" for line in signatures]


def open_note(note: str, verifier: Verifier) -> str:
    """Return the text of ``note`` once a signature by ``verifier`` checks out.

    Signatures by other keys (another name, or the same name with another key ID) are
    ignored; at least one signature by the verifier's key must verify, and any of its
    signatures that does not verify rejects the whole note.
    """
    text, signatures = split_note(note)
    message = text.encode("utf-8")
    verified = False
    for line in signatures:
        if line.name != verifier.name or line.key_id != verifier.key_id:
            continue
        if not _ed25519_verifies(verifier.public_key, line.signature, message):
            raise CheckpointError(f"bad signature by key {verifier.label}")
        verified = True
    if verified:
        return text
    same_name = sorted({line.key_id.hex() for line in signatures if line.name == verifier.name})
    if same_name:
        raise CheckpointError(
            f"unknown key ID: note is signed by {verifier.name} with key ID(s) {', '.join(same_name)}, "
            f"not {verifier.key_id.hex()}")
    names = sorted({line.name for line in signatures})
    raise CheckpointError(
        f"unknown key name: note has no signature by {verifier.name} "
        f"(signed by {', '.join(repr(name) for name in names)})")


def open_checkpoint(note: str, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint, parse its body, and check its origin if one is given."""
    checkpoint = parse_checkpoint_body(open_note(note, verifier))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}")
    return checkpoint
