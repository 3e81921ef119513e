"""One installation wherever you stand: the real ``tarcza`` command run from other directories, on
SQLite and PostgreSQL. A command uses the installation its configuration names, or refuses with one
line naming the directory; only ``tarcza init`` creates an installation, ``serve`` never does."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving import free_port

TARCZA = [sys.executable, "-m", "api"]


def bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment without any TARCZA_ variable and with an empty user config directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
    env.update({"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "COLUMNS": "200", **extra})
    return env


def run(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TARCZA, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def installation(cli_env: dict[str, str], data_dir: Path, tmp_path: Path) -> Path:
    """An installation made by `tarcza init` (for the test's backend); its data directory."""
    done = run(cli_env, "init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return data_dir


class TestAnotherDirectory:
    def test_without_configuration_a_command_refuses_and_creates_nothing(self, tmp_path: Path) -> None:
        """`tarcza audit checkpoint` where there is no ./var refuses in one line naming that directory."""
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        line = one_error_line(run(bare_env(tmp_path), "audit", "checkpoint", cwd=elsewhere))
        assert f"no Tarcza installation at {elsewhere / 'var'}" in line
        assert "`tarcza init`" in line
        assert tree(elsewhere) == []

    def test_the_user_config_names_the_installation(self, installation: Path, database_url: str,
                                                    tmp_path: Path) -> None:
        """With the data directory (relative to the file) and database in the user's config file, a command
        run anywhere uses that installation and says so on stderr."""
        config = tmp_path / "xdg" / "tarcza" / "config.env"
        config.parent.mkdir(parents=True)
        config.write_text(f"TARCZA_DATA_DIR={os.path.relpath(installation, config.parent)}\n"
                          f"TARCZA_DATABASE_URL={database_url}\n")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        env = bare_env(tmp_path)
        origin = run(env, "audit", "verifier-key", cwd=elsewhere)
        assert origin.returncode == 0, origin.stderr
        assert origin.stderr.strip() == f"using the installation in {installation} (TARCZA_DATA_DIR in {config})"
        expected = subprocess.run([*TARCZA, "audit", "verifier-key"], env={**env, "TARCZA_DATA_DIR": str(installation),
                                  "TARCZA_DATABASE_URL": database_url}, capture_output=True, text=True, check=True,
                                  timeout=120).stdout
        assert origin.stdout == expected
        assert tree(elsewhere) == []

    def test_config_option_names_the_installation(self, installation: Path, database_url: str,
                                                  tmp_path: Path) -> None:
        """`tarcza --config FILE` uses the installation in that file; `config show` says where each setting came
        from."""
        config = tmp_path / "site.env"
        config.write_text(f"TARCZA_DATA_DIR={installation.name}\nTARCZA_DATABASE_URL={database_url}\n"
                          "TARCZA_PORT=8123\n")
        assert installation.parent == tmp_path  # so the relative TARCZA_DATA_DIR above is the installation
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        env = bare_env(tmp_path, TARCZA_LOG_LEVEL="debug")
        shown = run(env, "--config", str(config), "config", "show", "--json", cwd=elsewhere)
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        assert report["config_file"] == {"path": str(config), "found_by": "--config"}
        assert report["data_dir"] == str(installation)
        assert report["installation"] is True
        sources = {row["setting"]: (row["value"], row["source"]) for row in report["settings"]}
        assert sources["port"] == ("8123", "config file")
        assert sources["log_level"] == ("DEBUG", "environment")
        assert sources["host"] == ("127.0.0.1", "default")
        users = run(env, "--config", str(config), "user", "list", "--json", cwd=elsewhere)
        assert users.returncode == 0, users.stderr
        assert json.loads(users.stdout) == []


class TestOnlyInitCreates:
    def test_serve_refuses_a_directory_that_is_not_an_installation(self, tmp_path: Path) -> None:
        """`tarcza serve` on a missing or empty data directory exits 1 naming it and creates no key or database."""
        empty = tmp_path / "empty"
        empty.mkdir(mode=0o700)
        for target in (tmp_path / "missing", empty):
            env = bare_env(tmp_path, TARCZA_DATA_DIR=str(target), TARCZA_PORT=str(free_port()))
            line = one_error_line(run(env, "serve", cwd=tmp_path))
            assert f"no Tarcza installation at {target}" in line
            assert "`tarcza init`" in line
        assert not (tmp_path / "missing").exists()
        assert tree(empty) == []

    def test_serve_refuses_a_database_without_the_schema(self, installation: Path, cli_env: dict[str, str],
                                                         tmp_path: Path) -> None:
        """`tarcza serve` with the installation's keys but a missing or empty database refuses instead of creating
        the file or a schema."""
        missing = tmp_path / "missing.db"
        env = {**cli_env, "TARCZA_DATABASE_URL": f"sqlite:///{missing}", "TARCZA_PORT": str(free_port())}
        assert f"its database {missing} does not exist" in one_error_line(run(env, "serve", cwd=tmp_path))
        assert not missing.exists()
        empty = tmp_path / "empty.db"
        empty.touch()  # an empty file is an empty SQLite database
        env["TARCZA_DATABASE_URL"] = f"sqlite:///{empty}"
        line = one_error_line(run(env, "serve", cwd=tmp_path))
        assert "has no Tarcza schema" in line
        assert "`tarcza init`" in line
        with sqlite3.connect(empty) as conn:
            assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []

    def test_init_refuses_new_keys_for_another_installations_database(
            self, installation: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
        """`tarcza init` in another directory with the same database refuses to create keys for that database."""
        other = tmp_path / "other"
        other.mkdir()
        env = {**cli_env, "TARCZA_DATA_DIR": str(other / "var")}
        line = one_error_line(run(env, "init", cwd=other))
        assert "refusing to create new keys" in line
        assert "already belongs to installation" in line
        assert not (other / "var" / "keys").exists()
        again = run(cli_env, "init", cwd=other)  # the installation's own directory is fine, twice
        assert again.returncode == 0, again.stderr
        assert "nothing to do" in again.stdout
