"""audit.checkpoint: the log's signer, the verifier's formats re-exported with audit errors, and the
time line of the checkpoints the log issues, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.checkpoint import (
    Checkpoint,
    Signer,
    Verifier,
    open_checkpoint,
    open_note,
    parse_checkpoint_body,
    verifier_from_string,
)
from audit.errors import CheckpointError
from audit.merkle import leaf_hash
from audit.service import AuditLog
from core.clock import FixedClock
from tests.verifier.spec_signer import SpecSigner

from .conftest import contact

# Known-answer example published with golang.org/x/mod/sumdb/note (example_test.go), the
# reference implementation of the signed-note format. Ed25519 signing is deterministic,
# so signing the text with this key must reproduce the published note byte for byte.
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
    + "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ORIGIN = "tarcza.example.pl/audit"
ROOT = leaf_hash(b"fictional root")
CHECKPOINT = Checkpoint(ORIGIN, 1234, ROOT)
# A fixed, fictional test key so that failures are reproducible.
SEED = bytes(range(32))
SIGNER = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(SEED))
VERIFIER = SIGNER.verifier()


class TestSigner:
    """Signer."""

    def test_reproduces_the_reference_signature(self) -> None:
        """Signing the Go example text with its key gives the published note byte for byte."""
        assert Signer.from_string(GO_SIGNER_KEY).sign_note(GO_TEXT) == GO_NOTE

    def test_secret_string_round_trip(self) -> None:
        """A secret key string parses and prints back unchanged, with the matching verifier."""
        signer = Signer.from_string(GO_SIGNER_KEY)
        assert signer.to_string() == GO_SIGNER_KEY
        assert signer.verifier() == Verifier.from_string(GO_VERIFIER_KEY)
        generated = Signer.generate("tarcza.example.pl/x")
        assert Signer.from_string(generated.to_string()).verifier() == generated.verifier()

    @pytest.mark.parametrize(
        "text",
        [
            "PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "PRIVATE+KEY+PeterNeumann+c74f20a3",
        ],
        ids=["no-prefix", "wrong-id", "wrong-type", "no-key"],
    )
    def test_malformed_secret_is_refused_without_echoing_it(self, text: str) -> None:
        """A bad secret key string raises CheckpointError whose message omits the key data."""
        with pytest.raises(CheckpointError) as caught:
            Signer.from_string(text)
        assert "AYEKFALV" not in str(caught.value)
        assert "AoEKFALV" not in str(caught.value)

    def test_repr_hides_the_secret(self) -> None:
        """repr shows the name and key ID but no form of the private key."""
        signer = Signer.from_string(GO_SIGNER_KEY)
        seed = base64.b64decode(GO_SIGNER_KEY.split("+", 4)[4])[1:]
        shown = repr(signer) + str(signer)
        assert "PeterNeumann" in shown
        assert "c74f20a3" in shown
        for secret in (GO_SIGNER_KEY.split("+", 4)[4], seed.hex(), base64.b64encode(seed).decode()):
            assert secret not in shown

    @pytest.mark.parametrize(
        "text", ["", "no final newline", "bell\x07\n", "carriage\r\n"],
        ids=["empty", "no-newline", "control", "carriage-return"],
    )
    def test_unsignable_text_is_refused(self, text: str) -> None:
        """Text that is empty, lacks a final newline or holds control characters is not signed."""
        with pytest.raises(CheckpointError):
            SIGNER.sign_note(text)


class TestFormatsWithAuditErrors:
    """The formats re-exported from tarcza_verify raise audit.errors.CheckpointError through audit."""

    def test_signer_writes_what_the_specification_says(self) -> None:
        """The log's signer and a signer written from the C2SP text alone produce the same note bytes."""
        spec = SpecSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(SEED))
        assert SIGNER.sign_checkpoint(CHECKPOINT) == spec.sign_checkpoint(CHECKPOINT)
        assert VERIFIER.to_string() == spec.verifier_string()

    def test_refusals_are_audit_errors(self) -> None:
        """A bad note, body or key through audit.checkpoint raises the audit package's CheckpointError."""
        stranger = Signer.generate(ORIGIN)
        with pytest.raises(CheckpointError, match="unknown key ID"):
            open_note(stranger.sign_note("text\n"), VERIFIER)
        with pytest.raises(CheckpointError, match="origin"):
            open_checkpoint(SIGNER.sign_checkpoint(CHECKPOINT), VERIFIER, origin="elsewhere.example.pl")
        with pytest.raises(CheckpointError):
            parse_checkpoint_body("no\nbody\n")
        with pytest.raises(CheckpointError):
            verifier_from_string("PeterNeumann+c74f20a3")
        assert verifier_from_string(GO_VERIFIER_KEY) == Verifier.from_string(GO_VERIFIER_KEY)


class TestIssuedCheckpoints:
    def test_checkpoint_carries_its_issue_time(self, engine, signer: Signer) -> None:  # type: ignore[no-untyped-def]
        """A checkpoint the log issues has one extension line, `time <POSIX seconds>` of its issue time."""
        when = datetime(2026, 5, 4, 3, 2, 1, 654321, tzinfo=UTC)
        log = AuditLog(engine, signer, clock=FixedClock(when), checkpoint_every_entries=10_000)
        try:
            contact(log)
            info = log.issue_checkpoint()
        finally:
            log.close()
        body = info.note.split("\n\n")[0]
        assert body.splitlines()[3:] == [f"time {int(when.timestamp())}"]
        checkpoint = open_checkpoint(info.note, signer.verifier(), origin=signer.name)
        assert checkpoint.time == 1777863721
        assert (checkpoint.size, checkpoint.root_hash) == (1, info.root_hash)
