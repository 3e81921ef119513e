"""`tarcza audit verify DIR` pins the log's key and says what disagreed, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

from audit import merkle
from audit.checkpoint import Checkpoint

from .conftest import ORIGIN, Exported, forge_export, tarcza


class TestPinnedVerification:
    def test_resigned_export_without_a_pin_is_flagged(self, exported: Exported, offline_env: dict[str, str],
                                                      tmp_path: Path) -> None:
        """With no key given and none pinned, an export signed by another installation is not a plain OK:
        a loud warning names the key taken from the export, and the exit status is 3, not 0."""
        forged = forge_export(ORIGIN, tmp_path / "forged")
        result = tarcza(offline_env, "audit", "verify", str(forged))
        assert result.returncode == 3, result.stdout + result.stderr
        assert "WARNING" in result.stderr
        assert "first use" in result.stderr
        assert (forged / "verifier.key").read_text().strip() in result.stderr

    def test_resigned_export_is_refused_once_the_key_is_pinned(self, exported: Exported,
                                                               offline_env: dict[str, str], tmp_path: Path) -> None:
        """After a genuine export pinned the log's key, an export re-signed under the same origin is refused
        as signed by another key, and the pin is not replaced."""
        first = tarcza(offline_env, "audit", "verify", str(exported.directory))
        assert first.returncode == 3, first.stderr
        assert tarcza(offline_env, "audit", "verify", str(exported.directory)).returncode == 0
        forged = forge_export(ORIGIN, tmp_path / "forged")
        result = tarcza(offline_env, "audit", "verify", str(forged))
        assert result.returncode == 1
        assert result.stderr.startswith("error: ")
        assert "another key" in result.stderr
        assert exported.log.verifier().to_string() in Path(offline_env["TARCZA_KNOWN_LOGS"]).read_text()

    def test_resigned_export_is_refused_with_a_key_file(self, exported: Exported, offline_env: dict[str, str],
                                                        tmp_path: Path) -> None:
        """`--key FILE` with the auditor's own copy of the key refuses a re-signed export."""
        forged = forge_export(ORIGIN, tmp_path / "forged")
        result = tarcza(offline_env, "audit", "verify", str(forged), "--key", str(exported.key_file))
        assert result.returncode == 1
        assert "another key" in result.stderr
        ok = tarcza(offline_env, "audit", "verify", str(exported.directory), "--key", str(exported.key_file))
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.startswith("OK: 40 entries")

    def test_unlisted_file_is_refused(self, exported: Exported, offline_env: dict[str, str]) -> None:
        """A file the signed manifest does not list makes the export fail, naming the file."""
        (exported.directory / "notes.txt").write_text("added later")
        result = tarcza(offline_env, "audit", "verify", str(exported.directory), "--key", str(exported.key_file))
        assert result.returncode == 1
        assert "notes.txt" in result.stderr
        assert "not listed" in result.stderr

    def test_fork_is_named_as_a_fork(self, exported: Exported, offline_env: dict[str, str],
                                     tmp_path: Path) -> None:
        """A saved checkpoint the export is not consistent with is reported as a forked or rewritten log,
        with the saved checkpoint's size and root, not as a proof that 'does not lead to root1'."""
        log = exported.log
        fork_root = merkle.leaf_hash(b"another history")
        saved = tmp_path / "saved.txt"
        saved.write_text(log.signer.sign_checkpoint(Checkpoint(log.origin, 10, fork_root)))
        result = tarcza(offline_env, "audit", "verify", str(exported.directory), "--key", str(exported.key_file),
                        "--trusted-checkpoint", str(saved))
        assert result.returncode == 1
        assert "your saved checkpoint (size 10, root " in result.stderr
        assert "forked or rewritten" in result.stderr
        assert "root1" not in result.stderr
        copy = tmp_path / "copy"
        shutil.copytree(exported.directory, copy)
        saved.write_text(exported.first_checkpoint)
        good = tarcza(offline_env, "audit", "verify", str(copy), "--key", str(exported.key_file),
                      "--trusted-checkpoint", str(saved))
        assert good.returncode == 0, good.stderr
