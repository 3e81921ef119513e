"""The runtime's key provider follows a keyfile rotated by another process (ADR 0022): two runtimes on one
installation, real keyfiles, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.keyreload import ReloadingKeyProvider
from api.runtime import Runtime
from audit.events import ActorKind
from core.settings import Settings
from identity.principal import SYSTEM, Principal, Role
from vault.bootstrap import open_key_provider
from vault.errors import KeyProviderError
from vault.keys import LocalKeyfileProvider

AAD = b"tarcza/subject/sub_test"


def officer(runtime: Runtime) -> Principal:
    """A compliance officer (sees names in clear) whose second factor was just verified."""
    return Principal("u-officer", ActorKind.USER, frozenset({Role.COMPLIANCE_OFFICER}),
                     second_factor_at=runtime.clock.now())
DATA_KEY = bytes(range(32))


@pytest.fixture
def keyfile(data_dir: Path) -> Path:
    path = data_dir / "kek.json"
    LocalKeyfileProvider.create(path).close()
    return path


class TestReloadingKeyProvider:
    def test_follows_a_rotation_by_another_process(self, keyfile: Path) -> None:
        """After another holder of the keyfile adds a version and retires the old one, this provider wraps under
        the new version and unwraps what the other wrapped, without being reopened by hand."""
        ours = ReloadingKeyProvider(lambda: LocalKeyfileProvider.open(keyfile), keyfile)
        theirs = ReloadingKeyProvider(lambda: LocalKeyfileProvider.open(keyfile), keyfile)
        assert ours.current_version() == 1
        assert theirs.create_version() == 2
        version, wrapped = theirs.wrap(DATA_KEY, aad=AAD)
        theirs.retire_version(1)
        assert ours.wrap(DATA_KEY, aad=AAD)[0] == 2
        assert ours.unwrap(version, wrapped, aad=AAD) == DATA_KEY
        assert ours.versions() == [2]
        assert theirs.reloads == 0  # its own rotation needs no reload
        ours.close()
        theirs.close()

    def test_unwrap_of_a_newer_version_reloads_once(self, keyfile: Path) -> None:
        """Asked to unwrap under a version newer than it holds, the provider reopens the keyfile once even if the
        file looks unchanged."""
        ours = ReloadingKeyProvider(lambda: LocalKeyfileProvider.open(keyfile), keyfile)
        with LocalKeyfileProvider.open(keyfile) as theirs:
            theirs.create_version()
            version, wrapped = theirs.wrap(DATA_KEY, aad=AAD)
        ours._stamp = ours._stat()  # as if the change escaped the stat
        assert ours.unwrap(version, wrapped, aad=AAD) == DATA_KEY
        assert ours.reloads == 1
        with pytest.raises(KeyProviderError):
            ours.unwrap(7, wrapped, aad=AAD)  # a version nobody has: refused, after one more reload at most
        ours.close()

    def test_a_failed_reload_keeps_the_working_keys(self, keyfile: Path) -> None:
        """A keyfile that no longer opens (here: a passphrase added that this process does not know) leaves the
        provider working with the keys it holds."""
        ours = ReloadingKeyProvider(lambda: LocalKeyfileProvider.open(keyfile), keyfile)
        version, wrapped = ours.wrap(DATA_KEY, aad=AAD)
        keyfile.unlink()
        LocalKeyfileProvider.create(keyfile, "hasło, którego ten proces nie zna").close()
        assert ours.unwrap(version, wrapped, aad=AAD) == DATA_KEY
        assert ours.reloads == 0
        ours.close()


class TestRuntimeFollowsRotation:
    def test_second_runtime_creates_and_reads_after_a_rotation_by_the_first(
            self, initialised_runtime: Runtime, settings: Settings) -> None:
        """A runtime that opened the keys before another runtime rotated them creates subjects and reads existing
        ones afterwards (it used to be refused as 'older than the newest key rotation')."""
        first = initialised_runtime
        second = Runtime(settings)
        try:
            early = first.vault.create_subject(SYSTEM, "debtor", {"first_name": "Zofia"})
            second.vault.create_subject(SYSTEM, "debtor", {"first_name": "Irena"})  # its keys are open
            report = first.vault.rotate_keys(batch_size=50)
            assert (report.from_version, report.to_version) == (1, 2)
            later = second.vault.create_subject(SYSTEM, "debtor", {"first_name": "Halina"})
            second.vault.keys.forget(early)  # not from its cache: unwrapped under version 2
            assert second.vault.masked_view(officer(second), early, ["first_name"]) == {"first_name": ["Zofia"]}
            assert second.vault.masked_view(officer(second), later, ["first_name"]) == {"first_name": ["Halina"]}
            with open_key_provider(settings) as fresh:
                assert fresh.versions() == [2]
        finally:
            second.close()
