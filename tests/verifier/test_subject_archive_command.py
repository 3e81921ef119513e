"""`tarcza gdpr verify-export ARCHIVE` pins the log's key like `tarcza audit verify`, takes `--key FILE`,
and verifies an archive re-zipped with `zip -r`, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from api.runtime import Runtime

from .conftest import server_archive, tarcza


@pytest.fixture
def archive(initialised_runtime: Runtime, tmp_path: Path) -> Path:
    return server_archive(initialised_runtime, tmp_path / "subject.zip")


@pytest.fixture
def key_file(initialised_runtime: Runtime, tmp_path: Path) -> Path:
    path = tmp_path / "log.pub"
    path.write_text(initialised_runtime.audit.verifier().to_string() + "\n", encoding="ascii")
    return path


class TestSubjectArchiveCommand:
    def test_key_file_is_accepted(self, archive: Path, key_file: Path, offline_env: dict[str, str]) -> None:
        """`--key FILE` (the file `tarcza audit verifier-key` writes) verifies a server's archive."""
        result = tarcza(offline_env, "gdpr", "verify-export", str(archive), "--key", str(key_file))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("OK: subject sub_")

    def test_archive_rezipped_with_zip_r_verifies(self, archive: Path, key_file: Path, offline_env: dict[str, str],
                                                   tmp_path: Path) -> None:
        """An archive unpacked and packed again with `zip -r` (directory entries such as `log/`, another order,
        other dates) still verifies, whether zipped from inside the folder or with the folder."""
        unpacked = tmp_path / "unpacked"
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(unpacked)
        inside = tmp_path / "inside.zip"
        subprocess.run(["zip", "-q", "-r", str(inside), "."], cwd=unpacked, check=True)
        with_folder = tmp_path / "with-folder.zip"
        subprocess.run(["zip", "-q", "-r", str(with_folder), "unpacked"], cwd=tmp_path, check=True)
        with zipfile.ZipFile(inside) as zf:
            assert "log/" in zf.namelist()
        for rezipped in (inside, with_folder):
            result = tarcza(offline_env, "gdpr", "verify-export", str(rezipped), "--key", str(key_file))
            assert result.returncode == 0, result.stderr

    def test_archive_of_another_key_is_refused_once_pinned(self, archive: Path, offline_env: dict[str, str],
                                                          initialised_runtime: Runtime, tmp_path: Path) -> None:
        """Without `--key`, the first archive pins its log's key (exit 3, loud warning); an archive whose log
        is signed by another key under the same origin is then refused."""
        first = tarcza(offline_env, "gdpr", "verify-export", str(archive))
        assert first.returncode == 3, first.stdout + first.stderr
        assert "WARNING" in first.stderr
        assert tarcza(offline_env, "gdpr", "verify-export", str(archive)).returncode == 0
        known = Path(offline_env["TARCZA_KNOWN_LOGS"])
        lines = known.read_text().splitlines()
        from audit.checkpoint import Signer

        other = Signer.generate(initialised_runtime.audit.origin).verifier().to_string()
        known.write_text("\n".join(line if line.startswith("#") else line.split(" ")[0] + " " + other
                                   for line in lines) + "\n")
        refused = tarcza(offline_env, "gdpr", "verify-export", str(archive))
        assert refused.returncode == 1
        assert "another key" in refused.stderr
