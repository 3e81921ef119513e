"""TOTP (RFC 6238) as authenticator apps implement it: SHA-1, 6 digits, 30-second steps.

Pure functions, no storage. :func:`check_code` accepts the current step and one step
either side (``VALID_WINDOW``), but only a step newer than the last one accepted for the
user, so a code is accepted once (a replay, or an older code after a newer one, is
refused). Codes are compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hmac
import io
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import quote

import pyotp
import qrcode

DIGITS = 6
PERIOD = 30
ALGORITHM = "SHA1"
VALID_WINDOW = 1
ISSUER = "Tarcza"
_CODE = re.compile(r"^\d{6}$")


def new_secret() -> str:
    """A fresh 160-bit secret in base32 (the size RFC 4226 recommends for SHA-1)."""
    return pyotp.random_base32(length=32)


def totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD, digest="sha1", issuer=ISSUER)


def provisioning_uri(secret: str, account: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads from the QR code."""
    label = quote(f"{ISSUER}:{account}", safe=":@")
    return (f"otpauth://totp/{label}?secret={secret}&issuer={ISSUER}"
            f"&algorithm={ALGORITHM}&digits={DIGITS}&period={PERIOD}")


def qr_png(uri: str) -> bytes:
    image = qrcode.make(uri, border=2)
    buf = io.BytesIO()
    image.save(buf)
    return buf.getvalue()


def qr_terminal(uri: str) -> str:
    """The QR code drawn with block characters, for a terminal."""
    code = qrcode.QRCode(border=1, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(uri)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // PERIOD


def normalise_code(code: str) -> str:
    return code.replace(" ", "").strip()


class CodeCheck(StrEnum):
    ACCEPTED = "accepted"
    REPLAYED = "replayed"
    INVALID = "invalid"


@dataclass(frozen=True)
class CodeResult:
    outcome: CodeCheck
    step: int | None = None


def check_code(secret: str, code: str, now: datetime, *, last_step: int | None) -> CodeResult:
    """Check ``code`` at ``now`` against the steps around it; a step at or before ``last_step`` is a replay."""
    code = normalise_code(code)
    if not _CODE.match(code):
        return CodeResult(CodeCheck.INVALID)
    generator = totp(secret)
    current = time_step(now)
    replayed = False
    for step in (current, current - 1, current + 1):
        if step < 0:
            continue
        if hmac.compare_digest(generator.generate_otp(step).encode(), code.encode()):
            if last_step is not None and step <= last_step:
                replayed = True
                continue
            return CodeResult(CodeCheck.ACCEPTED, step)
    return CodeResult(CodeCheck.REPLAYED if replayed else CodeCheck.INVALID)
