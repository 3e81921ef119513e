"""Fixtures for the vault tests: a throwaway SoftHSM2 token and every kind of KeyProvider.

SoftHSM2 reads ``SOFTHSM2_CONF`` when the library is initialised (``C_Initialize``), and
python-pkcs11 keeps one initialised handle per library path for the whole process. So
the token fixture is session-scoped: it writes a private configuration whose token
directory is a temporary directory, sets ``SOFTHSM2_CONF``, creates one token with
``softhsm2-util`` and only then loads the library (re-initialising it if something in
this process had loaded it before under another configuration). Tests share the token
and keep apart by using a key-label prefix of their own.

Without SoftHSM2 the PKCS#11 tests are skipped, except with ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pkcs11
import pytest

from vault.keys import KeyProvider, LocalKeyfileProvider, MemoryKeyProvider, Pkcs11KeyProvider

SOFTHSM_MODULE_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
PROVIDER_KINDS = ("memory", "local", "local-passphrase", "pkcs11")
TEST_PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class SoftHsmToken:
    """A token in a private SoftHSM2 token directory."""

    module_path: str
    label: str
    pin: str
    so_pin: str

    def provider(self, prefix: str | None = None, **kwargs: bool) -> Pkcs11KeyProvider:
        """A provider on this token, with a fresh key-label prefix unless one is given."""
        prefix = prefix or f"test-{uuid.uuid4().hex[:12]}"
        return Pkcs11KeyProvider(self.module_path, self.label, self.pin, prefix, **kwargs)


def _softhsm_unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"SoftHSM2 is required in CI but unavailable: {reason}")
    pytest.skip(f"SoftHSM2 unavailable: {reason}")


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    """A freshly initialised SoftHSM2 token for this test session."""
    module = next((path for path in SOFTHSM_MODULE_PATHS if Path(path).exists()), None)
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        _softhsm_unavailable("install the softhsm2 package (libsofthsm2.so and softhsm2-util)")
    directory = tmp_path_factory.mktemp("softhsm")
    token_dir = directory / "tokens"
    token_dir.mkdir(mode=0o700)
    config = directory / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    token = SoftHsmToken(
        module_path=os.path.realpath(module),
        label=f"tarcza-{uuid.uuid4().hex[:8]}",
        pin="314159",
        so_pin="271828",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(config))
        command = [util, "--init-token", "--free", "--label", token.label]
        command += ["--pin", token.pin, "--so-pin", token.so_pin]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            _softhsm_unavailable(f"softhsm2-util --init-token failed: {result.stderr.strip()}")
        library = pkcs11.lib(token.module_path)
        if token.label not in {t.label for t in library.get_tokens()}:
            library.reinitialize()  # loaded earlier under another SOFTHSM2_CONF
        yield token


@pytest.fixture(params=PROVIDER_KINDS)
def key_provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyProvider]:
    """Each KeyProvider implementation in turn, fresh for the test."""
    kind = request.param
    provider: KeyProvider
    if kind == "memory":
        provider = MemoryKeyProvider()
    elif kind == "local":
        provider = LocalKeyfileProvider.create(tmp_path / "tarcza.keys")
    elif kind == "local-passphrase":
        provider = LocalKeyfileProvider.create(tmp_path / "tarcza.keys", TEST_PASSPHRASE)
    else:
        token: SoftHsmToken = request.getfixturevalue("softhsm_token")
        provider = token.provider()
    with provider:
        yield provider
