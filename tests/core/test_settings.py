"""Settings: defaults that need no set-up, TARCZA_ variables, .env, one-line errors, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigurationError
from core.settings import Settings, load_settings


class TestSettings:
    def test_defaults_need_no_setup(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """Without any variable the data directory is ./var and the database SQLite inside it."""
        monkeypatch.chdir(tmp_path)
        for key in list(__import__("os").environ):
            if key.startswith("TARCZA_"):
                monkeypatch.delenv(key)
        s = Settings()
        assert s.data_dir == Path("var")
        assert s.effective_database_url == "sqlite:///var/tarcza.db"
        assert (s.key_provider, s.host, s.port) == ("local", "127.0.0.1", 8000)

    def test_environment_variables_use_the_prefix(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """TARCZA_DATA_DIR and TARCZA_PORT override the defaults."""
        monkeypatch.setenv("TARCZA_DATA_DIR", "/srv/tarcza")
        monkeypatch.setenv("TARCZA_PORT", "9001")
        s = Settings()
        assert s.data_dir == Path("/srv/tarcza")
        assert s.port == 9001
        assert s.effective_database_url == "sqlite:////srv/tarcza/tarcza.db"

    def test_dotenv_file_is_read(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """A .env file in the working directory supplies settings."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("TARCZA_HOST", raising=False)
        (tmp_path / ".env").write_text("TARCZA_HOST=0.0.0.0\n")
        assert Settings().host == "0.0.0.0"  # noqa: S104 - value under test, nothing listens

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
