"""Logging never writes personal data: sensitive keys are dropped and PII-looking text masked."""

from __future__ import annotations

import io
import json

import pytest
import structlog
from faker import Faker
from structlog.testing import capture_logs

from core.logging import PII_PROCESSORS, clear_of_pii_patterns, configure_logging, mask_text

fake = Faker("pl_PL")
Faker.seed(20261123)


@pytest.fixture
def redacting_capture():  # type: ignore[no-untyped-def]
    """capture_logs with the PII processors in front of the capturing processor."""
    with capture_logs(processors=list(PII_PROCESSORS)) as logs:
        yield logs


class TestRedaction:
    def test_pesel_and_email_in_arguments_are_not_logged(self, redacting_capture) -> None:  # type: ignore[no-untyped-def]
        """A log call with a PESEL and an e-mail in its arguments produces an entry without them."""
        pesel, email = fake.pesel(), fake.email()
        structlog.get_logger().info("contact", detail=f"debtor {pesel} wrote from {email}", other=[email])
        entry = redacting_capture[0]
        text = json.dumps(entry)
        assert pesel not in text
        assert email not in text
        assert "[PESEL]" in entry["detail"]
        assert "[EMAIL]" in entry["detail"]

    def test_values_under_sensitive_keys_are_removed(self, redacting_capture) -> None:  # type: ignore[no-untyped-def]
        """Values under keys such as password, pesel or token are replaced, whatever they look like."""
        structlog.get_logger().info("login", password="Tr0ub4dor&3", last_name="Kowalska", token="abc",
                                    nested={"email": "anything", "ok": 1}, subject_token="sub_123")
        entry = redacting_capture[0]
        assert entry["password"] == "[redacted]"
        assert entry["last_name"] == "[redacted]"
        assert entry["token"] == "[redacted]"
        assert entry["nested"] == {"email": "[redacted]", "ok": 1}
        assert entry["subject_token"] == "sub_123"

    @pytest.mark.parametrize("kind", ["pesel", "nip", "iban", "phone", "email", "card"])
    def test_each_kind_of_identifier_is_masked(self, kind: str) -> None:
        """PESEL, NIP, IBAN, phone numbers, e-mails and card numbers are masked inside any string."""
        for _ in range(25):
            value = {
                "pesel": fake.pesel, "nip": fake.nip, "iban": fake.iban, "phone": fake.phone_number,
                "email": fake.email, "card": lambda: fake.credit_card_number(card_type="visa16"),
            }[kind]()
            masked = mask_text(f"value: {value} end")
            assert value not in masked, (kind, masked)

    def test_ordinary_text_is_kept(self) -> None:
        """Words, short numbers and hex ids are left as they are."""
        text = "appended 42 entries in batch 7, request 3f2a9c0e5b7d4e1f8a6b2c3d4e5f6a7b"
        assert mask_text(text) == text

    def test_exception_messages_are_masked_in_rendered_output(self) -> None:
        """A traceback rendered into a JSON line has PII in the exception message masked."""
        buffer = io.StringIO()
        configure_logging(level="INFO", fmt="json", stream=buffer)
        email = fake.email()
        try:
            raise ValueError(f"bad address {email}")
        except ValueError:
            structlog.get_logger().exception("failed")
        line = buffer.getvalue().strip().splitlines()[-1]
        assert email not in line
        assert json.loads(line)["event"] == "failed"

    def test_stdlib_logging_goes_through_the_same_redaction(self) -> None:
        """Lines from third-party libraries (stdlib logging) are masked too."""
        import logging

        buffer = io.StringIO()
        configure_logging(level="INFO", fmt="json", stream=buffer)
        pesel = fake.pesel()
        logging.getLogger("thirdparty").warning("lookup for %s", pesel)
        assert pesel not in buffer.getvalue()
        assert "[PESEL]" in buffer.getvalue()


class TestGeneratedIdentifiers:
    """Ids Tarcza generates never look like personal data, so the audit log never refuses them."""

    def test_a_look_alike_is_drawn_again(self) -> None:
        """A random id that reads as a card number (Luhn-valid digits) is replaced by the next draw."""
        draws = iter(["cl_4027685108988741", "cl_3f9a06e1c2b4d8a7"])
        assert mask_text("cl_4027685108988741") != "cl_4027685108988741"
        assert clear_of_pii_patterns(lambda: next(draws)) == "cl_3f9a06e1c2b4d8a7"

    def test_every_kind_of_generated_id_is_clear(self) -> None:
        """Many fresh user ids, client ids and vault tokens: none is changed by the PII masks."""
        from identity.tokens import new_client_id, new_user_id
        from vault.tokens import RECORDING_PREFIX, new_token

        for make in (new_user_id, new_client_id, new_token, lambda: new_token(RECORDING_PREFIX)):
            for _ in range(20_000):
                value = make()
                assert mask_text(value) == value
