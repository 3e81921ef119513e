"""TOTP: RFC 6238 conformance, the acceptance window, single use of each time-step, enrolment."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from identity import totp
from identity.totp import CodeCheck

RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of the ASCII "12345678901234567890"

# RFC 6238 Appendix B, SHA1 column: (Unix time, 8-digit TOTP)
RFC6238_SHA1 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


def at(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


class TestRfc6238Vectors:
    @pytest.mark.parametrize(("unix", "expected"), RFC6238_SHA1)
    def test_pyotp_matches_appendix_b(self, unix: int, expected: str) -> None:
        """pyotp with SHA-1 and 8 digits reproduces every SHA-1 vector of RFC 6238 Appendix B."""
        assert pyotp.TOTP(RFC_SECRET, digits=8, digest="sha1", interval=30).at(unix) == expected

    @pytest.mark.parametrize(("unix", "expected"), RFC6238_SHA1)
    def test_check_code_accepts_six_digit_truncation(self, unix: int, expected: str) -> None:
        """Our 6-digit check accepts the RFC code truncated to 6 digits (HOTP truncation is mod 10^d)."""
        result = totp.check_code(RFC_SECRET, expected[-6:], at(unix), last_step=None)
        assert result == totp.CodeResult(CodeCheck.ACCEPTED, unix // 30)


class TestWindowAndReplay:
    secret = RFC_SECRET
    now = at(1234567890)

    def code(self, step_offset: int) -> str:
        return pyotp.TOTP(self.secret).at(self.now + timedelta(seconds=30 * step_offset))

    def test_adjacent_steps_are_accepted(self) -> None:
        """A code from the previous or the next 30-second step is accepted (valid_window=1)."""
        for offset in (-1, 0, 1):
            assert totp.check_code(self.secret, self.code(offset), self.now, last_step=None).outcome is \
                CodeCheck.ACCEPTED

    def test_two_steps_away_is_refused(self) -> None:
        """A code two steps away is invalid."""
        for offset in (-2, 2):
            assert totp.check_code(self.secret, self.code(offset), self.now, last_step=None).outcome is \
                CodeCheck.INVALID

    def test_totp_replay_is_refused(self) -> None:
        """A code whose step was already accepted is a replay, even inside the window."""
        first = totp.check_code(self.secret, self.code(0), self.now, last_step=None)
        assert first.outcome is CodeCheck.ACCEPTED
        again = totp.check_code(self.secret, self.code(0), self.now + timedelta(seconds=5), last_step=first.step)
        assert again.outcome is CodeCheck.REPLAYED

    def test_older_code_after_newer_is_refused(self) -> None:
        """After the next step's code was used, the current step's code no longer works."""
        newer = totp.check_code(self.secret, self.code(1), self.now, last_step=None)
        assert newer.outcome is CodeCheck.ACCEPTED
        assert totp.check_code(self.secret, self.code(0), self.now, last_step=newer.step).outcome is \
            CodeCheck.REPLAYED

    @pytest.mark.parametrize("bad", ["", "12345", "1234567", "abcdef", "12 34 5x"])
    def test_malformed_codes_are_invalid(self, bad: str) -> None:
        """Anything but six digits (spaces allowed) is invalid."""
        assert totp.check_code(self.secret, bad, self.now, last_step=None).outcome is CodeCheck.INVALID

    def test_codes_are_compared_in_constant_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The code comparison goes through hmac.compare_digest."""
        import hmac

        calls: list[tuple[bytes, bytes]] = []
        real = hmac.compare_digest

        def spy(a: bytes, b: bytes) -> bool:
            calls.append((a, b))
            return real(a, b)

        monkeypatch.setattr(hmac, "compare_digest", spy)
        code = self.code(0)
        assert totp.check_code(self.secret, code, self.now, last_step=None).outcome is CodeCheck.ACCEPTED
        assert (code.encode(), code.encode()) in calls


class TestEnrolmentArtifacts:
    def test_uri_is_a_standard_otpauth_uri(self) -> None:
        """The enrolment URI names issuer, account, SHA1, 6 digits and 30 s, and pyotp parses it back."""
        secret = totp.new_secret()
        uri = totp.provisioning_uri(secret, "jan.nowak")
        assert uri.startswith("otpauth://totp/Tarcza:jan.nowak?")
        parsed = pyotp.parse_uri(uri)
        assert (parsed.secret, parsed.digits, parsed.interval, parsed.issuer) == (secret, 6, 30, "Tarcza")
        assert "algorithm=SHA1" in uri

    def test_secret_has_160_bits(self) -> None:
        """A new secret is 32 base32 characters (160 bits), different each time."""
        a, b = totp.new_secret(), totp.new_secret()
        assert len(a) == 32
        assert a != b

    def test_qr_png_and_terminal_rendering(self) -> None:
        """The QR code comes as a PNG and as block characters for a terminal."""
        uri = totp.provisioning_uri(totp.new_secret(), "jan.nowak")
        assert totp.qr_png(uri).startswith(b"\x89PNG\r\n\x1a\n")
        text = totp.qr_terminal(uri)
        assert len(text.splitlines()) > 10
        assert "█" in text


class TestIndependentClient:
    def test_oathtool_code_is_accepted(self, oathtool: str) -> None:
        """oathtool, an independent RFC 6238 implementation, computes codes our check accepts."""
        secret = totp.new_secret()
        now = datetime(2026, 3, 2, 9, 0, 15, tzinfo=UTC)
        out = subprocess.run([oathtool, "--totp", "-b", "--now", "2026-03-02 09:00:15 UTC", secret],
                             capture_output=True, text=True, check=True, timeout=30)
        assert totp.check_code(secret, out.stdout.strip(), now, last_step=None).outcome is CodeCheck.ACCEPTED
