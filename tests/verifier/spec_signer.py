"""A note signer written from the C2SP signed-note text alone, independent of Tarcza's `Signer`.

The verifier's tests sign with it, so that what they check does not come from the code
under test; tests/audit/test_checkpoint.py checks that the log's signer writes the same bytes.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tarcza_verify.note import Checkpoint, Verifier


class SpecSigner:
    """Ed25519 note signatures: ``— <name> base64(key ID || signature over the text)``."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = name
        self._key = private_key
        raw = private_key.public_key().public_bytes_raw()
        self.key_id = hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()[:4]

    @classmethod
    def generate(cls, name: str) -> SpecSigner:
        return cls(name, Ed25519PrivateKey.generate())

    def verifier_string(self) -> str:
        encoded = base64.b64encode(b"\x01" + self._key.public_key().public_bytes_raw()).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verifier(self) -> Verifier:
        return Verifier.from_string(self.verifier_string())

    def sign_note(self, text: str) -> str:
        signature = self._key.sign(text.encode("utf-8"))
        return f"{text}\n\u2014 {self.name} {base64.b64encode(self.key_id + signature).decode()}\n"

    def sign_checkpoint(self, checkpoint: Checkpoint) -> str:
        return self.sign_note(checkpoint.body())
