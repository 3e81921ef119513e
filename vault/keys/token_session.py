"""One logged-in PKCS#11 session per (module, token) in this process, shared by every provider on it."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
from typing import Final

import pkcs11
from pkcs11 import exceptions as p11

from vault.errors import KeyProviderError

# Errors after which the shared session is presumed dead and is reopened once.
SESSION_LOST: Final[tuple[type[p11.PKCS11Error], ...]] = (
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.DeviceRemoved,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.UserNotLoggedIn,
)


class SharedTokenSession:
    """One logged-in read-write session per (module, token) in this process.

    PKCS#11 login state belongs to the application, not to a session: a second
    ``C_Login`` fails and any ``C_Logout`` logs every session out. So all providers for
    the same token share one session, used under one lock, and the last to close it
    logs out.
    """

    def __init__(self, module_path: str, token_label: str) -> None:
        self.module_path = module_path
        self.token_label = token_label
        self.lock = threading.RLock()
        self.users = 0
        self._session: pkcs11.Session | None = None
        self._pin_digest: bytes | None = None

    def session(self, pin: str) -> pkcs11.Session:
        """The open session, opening (and logging in with ``pin``) if needed. Hold ``lock``."""
        digest = hashlib.sha256(pin.encode("utf-8")).digest()
        if self._session is not None:
            if self._pin_digest is None or not hmac.compare_digest(digest, self._pin_digest):
                raise KeyProviderError(f"wrong PIN for PKCS#11 token {self.token_label!r}")
            return self._session
        label = self.token_label
        try:
            library = pkcs11.lib(self.module_path)
            token = library.get_token(token_label=label)
            self._session = token.open(rw=True, user_pin=pin)
        except p11.NoSuchToken:
            raise KeyProviderError(f"no PKCS#11 token labelled {label!r}") from None
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
            raise KeyProviderError(f"wrong PIN for PKCS#11 token {label!r}") from None
        except p11.PinLocked:
            raise KeyProviderError(f"the PIN of PKCS#11 token {label!r} is locked") from None
        except (p11.PKCS11Error, OSError) as exc:
            raise KeyProviderError(
                f"cannot open a session on PKCS#11 token {label!r} "
                f"({type(exc).__name__}) with module {self.module_path}"
            ) from None
        self._pin_digest = digest
        return self._session

    def drop(self) -> None:
        """Forget the session (closing it if possible). Hold ``lock``."""
        session, self._session, self._pin_digest = self._session, None, None
        if session is not None:
            with contextlib.suppress(p11.PKCS11Error):
                session.close()


SHARED_SESSIONS: dict[tuple[str, str], SharedTokenSession] = {}
SHARED_SESSIONS_LOCK = threading.Lock()
