"""Settings: defaults that need no set-up, TARCZA_ variables, configuration files, one-line errors, masking."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.errors import ConfigurationError
from core.settings import Settings, find_config_file, load_settings, user_config_path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TARCZA_ variable, an empty user config directory, and an empty working directory (returned)."""
    for key in list(os.environ):
        if key.startswith("TARCZA_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


class TestSettings:
    def test_defaults_need_no_setup(self, clean_env: Path) -> None:
        """Without any variable or file the data directory is ./var and the database SQLite inside it."""
        s = load_settings()
        assert s.data_dir == Path("var")
        assert s.effective_database_url == "sqlite:///var/tarcza.db"
        assert (s.key_provider, s.host, s.port) == ("local", "127.0.0.1", 8000)
        assert s.config_file is None
        assert s.source_of("data_dir") == "default"

    def test_environment_variables_use_the_prefix(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """TARCZA_DATA_DIR and TARCZA_PORT override the defaults."""
        monkeypatch.setenv("TARCZA_DATA_DIR", "/srv/tarcza")
        monkeypatch.setenv("TARCZA_PORT", "9001")
        s = Settings()
        assert s.data_dir == Path("/srv/tarcza")
        assert s.port == 9001
        assert s.effective_database_url == "sqlite:////srv/tarcza/tarcza.db"

    def test_dotenv_file_is_read(self, clean_env: Path) -> None:
        """A .env file in the working directory supplies settings."""
        (clean_env / ".env").write_text("TARCZA_HOST=0.0.0.0\n")
        assert load_settings().host == "0.0.0.0"  # noqa: S104 - value under test, nothing listens

    @pytest.mark.parametrize(("url", "fragment"), [
        ("mysql://u@h/db", "unsupported backend 'mysql'"),
        ("not a url", "not a valid database URL"),
        ("postgresql+psycopg2://u@h/db", "psycopg (3) driver"),
        ("sqlite://", "needs a file path"),
        ("postgresql://u@h", "names no PostgreSQL database"),
    ])
    def test_bad_database_url_is_a_one_line_error(self, url: str, fragment: str) -> None:
        """An unusable TARCZA_DATABASE_URL raises ConfigurationError with one line naming the problem."""
        with pytest.raises(ConfigurationError) as info:
            load_settings(database_url=url)
        assert fragment in info.value.detail
        assert "\n" not in info.value.detail

    def test_invalid_value_names_the_variable(self) -> None:
        """A port out of range names TARCZA_PORT."""
        with pytest.raises(ConfigurationError, match="TARCZA_PORT"):
            load_settings(port=70000)

    def test_postgresql_url_gets_the_psycopg_driver(self) -> None:
        """postgresql:// URLs are run with psycopg 3."""
        s = load_settings(database_url="postgresql://tarcza@db.example/tarcza")
        assert s.effective_database_url.startswith("postgresql+psycopg://")
        assert s.backend == "postgresql"

    def test_masked_hides_secrets_and_passwords(self) -> None:
        """config show's view masks SecretStr values and the database password."""
        s = load_settings(database_url="postgresql://tarcza:hunter2secret@db.example/tarcza",
                          pkcs11_pin="123456", keyfile_passphrase="correct horse")
        shown = " ".join(s.masked().values())
        for secret in ("hunter2secret", "123456", "correct horse"):
            assert secret not in shown
        assert s.masked()["pkcs11_pin"] == "********"


class TestConfigFile:
    """Where the settings come from: environment, then one configuration file, then defaults."""

    def test_relative_paths_are_relative_to_the_file(self, clean_env: Path, tmp_path: Path) -> None:
        """A config file's relative data directory, TLS paths and SQLite URL are taken from the file's directory."""
        etc = tmp_path / "etc" / "tarcza"
        etc.mkdir(parents=True)
        (etc / "tarcza.env").write_text("TARCZA_DATA_DIR=../../srv/var\nTARCZA_TLS_CERT=tls/cert.pem\n"
                                        "TARCZA_DATABASE_URL=sqlite:///db/tarcza.db\n")
        s = load_settings(config=etc / "tarcza.env")
        assert s.data_dir == etc / "../../srv/var"
        assert s.data_dir.resolve() == tmp_path / "srv" / "var"
        assert s.tls_cert == etc / "tls" / "cert.pem"
        assert s.effective_database_url == f"sqlite:///{etc / 'db' / 'tarcza.db'}"
        assert s.config_file is not None
        assert (s.config_file.path, s.config_file.found_by) == (etc / "tarcza.env", "--config")

    def test_environment_wins_over_the_file_and_the_file_over_defaults(
            self, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A TARCZA_ variable overrides the same setting in the file; each setting says where it came from."""
        (clean_env / ".env").write_text("TARCZA_PORT=9100\nTARCZA_HOST=127.0.0.2\n")
        monkeypatch.setenv("TARCZA_PORT", "9200")
        s = load_settings(log_level="DEBUG")
        assert (s.port, s.host) == (9200, "127.0.0.2")
        assert [s.source_of(n) for n in ("port", "host", "log_level", "data_dir")] == [
            "environment", "config file", "argument", "default"]

    def test_search_order(self, clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """--config, then TARCZA_CONFIG, then ./.env (only if it sets a TARCZA_ variable), then the user's file."""
        user = user_config_path()
        assert user == tmp_path / "xdg" / "tarcza" / "config.env"
        assert find_config_file() is None
        user.parent.mkdir(parents=True)
        user.write_text("TARCZA_PORT=9001\n")
        (clean_env / ".env").write_text("UNRELATED=1\n")  # another tool's .env is not ours
        assert load_settings().port == 9001
        assert load_settings().config_file.found_by == "user config directory"  # type: ignore[union-attr]
        (clean_env / ".env").write_text("TARCZA_PORT=9002\n")
        assert load_settings().port == 9002
        named = tmp_path / "named.env"
        named.write_text("TARCZA_PORT=9003\n")
        monkeypatch.setenv("TARCZA_CONFIG", str(named))
        assert load_settings().port == 9003
        explicit = tmp_path / "explicit.env"
        explicit.write_text("TARCZA_PORT=9004\n")
        assert load_settings(config=explicit).port == 9004

    def test_a_named_file_must_exist(self, clean_env: Path, tmp_path: Path) -> None:
        """--config naming a missing file is a one-line error naming it, not a silent fallback."""
        with pytest.raises(ConfigurationError, match=r"missing\.env") as info:
            load_settings(config=tmp_path / "missing.env")
        assert "\n" not in info.value.detail

    def test_an_invalid_value_names_the_file(self, clean_env: Path) -> None:
        """A bad value in the config file names the variable and the file it is in."""
        (clean_env / ".env").write_text("TARCZA_PORT=99999\n")
        with pytest.raises(ConfigurationError, match=r"TARCZA_PORT \(in .*\.env\)"):
            load_settings()
