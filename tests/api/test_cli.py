"""The real ``tarcza`` command, run as a subprocess: init, serve, db, config and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core import migrate
from core.db import make_engine
from tests.serving import free_port

TARCZA = [sys.executable, "-m", "api"]


def run(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TARCZA, *args], env=env, capture_output=True, text=True, timeout=120, cwd=cwd,
                          check=False)


class TestInit:
    def test_init_twice_is_harmless(self, cli_env: dict[str, str], data_dir: Path, database_url: str) -> None:
        """The second init changes nothing and says so; the schema is current."""
        first = run(cli_env, "init")
        assert first.returncode == 0, first.stderr
        assert "database migrated" in first.stdout
        second = run(cli_env, "init")
        assert second.returncode == 0, second.stderr
        assert "database migrated" not in second.stdout
        assert migrate.is_current(make_engine(database_url))
        assert (data_dir.stat().st_mode & 0o777) == 0o700

    def test_init_creates_private_data_directory(self, tmp_path: Path) -> None:
        """A missing data directory is created with 0700 permissions and a private database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
        env["TARCZA_DATA_DIR"] = str(tmp_path / "fresh")
        result = run(env, "init")
        assert result.returncode == 0, result.stderr
        assert ((tmp_path / "fresh").stat().st_mode & 0o777) == 0o700
        assert ((tmp_path / "fresh" / "tarcza.db").stat().st_mode & 0o077) == 0

    def test_db_upgrade_brings_older_schema_to_head(self, cli_env: dict[str, str], database_url: str,
                                                     data_dir: Path) -> None:
        """A database at an older migration is upgraded by `tarcza db upgrade`."""
        keys_only = {**cli_env, "TARCZA_DATABASE_URL": f"sqlite:///{data_dir / 'keys-only.db'}"}
        assert run(keys_only, "init").returncode == 0  # the installation's keys; its database stays old
        migrate.upgrade(make_engine(database_url), "0001_foundation")
        result = run(cli_env, "db", "upgrade")
        assert result.returncode == 0, result.stderr
        assert migrate.is_current(make_engine(database_url))
        assert migrate.head_revision() in run(cli_env, "db", "current").stdout


class TestErrors:
    @pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql://nobody@127.0.0.1:1/none", "::nonsense::"])
    def test_wrong_database_url_is_one_line(self, tmp_path: Path, url: str) -> None:
        """A wrong TARCZA_DATABASE_URL gives one error line, no traceback, and a non-zero exit."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
        env.update({"TARCZA_DATA_DIR": str(tmp_path / "d"), "TARCZA_DATABASE_URL": url})
        result = run(env, "init")
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("error: ")
        assert "Traceback" not in result.stderr

    @pytest.mark.parametrize("make_bad", ["file", "under-file"])
    def test_unusable_data_directory_is_one_line(self, tmp_path: Path, make_bad: str) -> None:
        """A data directory that is a file (or below one) gives one error line and exit 1."""
        blocker = tmp_path / "blocker"
        blocker.write_text("")
        target = blocker if make_bad == "file" else blocker / "var"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
        env["TARCZA_DATA_DIR"] = str(target)
        result = run(env, "init")
        assert result.returncode == 1
        assert result.stderr.startswith("error: data directory")
        assert len(result.stderr.strip().splitlines()) == 1


class TestInformation:
    def test_version(self) -> None:
        """--version prints the package version."""
        import core

        result = run(dict(os.environ), "--version")
        assert result.stdout.strip() == f"tarcza {core.__version__}"

    def test_config_show_masks_secrets(self, tmp_path: Path) -> None:
        """config show lists every setting and hides passwords and PINs."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
        env.update({"TARCZA_DATABASE_URL": "postgresql://app:s3cretpw@db.example/tarcza",
                    "TARCZA_PKCS11_PIN": "987654", "COLUMNS": "200"})
        result = run(env, "config", "show")
        assert result.returncode == 0, result.stderr
        assert "s3cretpw" not in result.stdout
        assert "987654" not in result.stdout
        assert "TARCZA_DATABASE_URL" in result.stdout
        assert "db.example" in result.stdout


class TestServe:
    def test_init_then_serve_answers_healthz(self, tmp_path: Path) -> None:
        """`tarcza init` then `tarcza serve` (what `make run` does) answers /healthz and /readyz with 200."""
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
        env.update({"TARCZA_DATA_DIR": str(tmp_path / "var"), "TARCZA_PORT": str(port)})
        assert run(env, "init").returncode == 0
        proc = subprocess.Popen([*TARCZA, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            status = None
            while time.monotonic() < deadline and status is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                        status = resp.status
                except OSError:
                    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                    time.sleep(0.2)
            assert status == 200
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
                assert resp.status == 200
        finally:
            proc.terminate()
            proc.wait(timeout=20)
