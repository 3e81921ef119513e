"""Settings, read from ``TARCZA_*`` environment variables and one configuration file.

Where each setting comes from, first match wins: the ``TARCZA_*`` environment variable,
then the configuration file, then the default. The configuration file is the first of
(see :func:`find_config_file`): ``--config FILE`` (or ``TARCZA_CONFIG``), the working
directory's ``.env`` if it sets a ``TARCZA_`` variable, and the user's
``$XDG_CONFIG_HOME/tarcza/config.env`` (``~/.config/tarcza/config.env``). Relative paths in
a configuration file are relative to that file, not to the working directory, so a command
run anywhere finds the same installation.

Every setting has a default that needs no set-up: the embedded SQLite database and the
local keyfile live in the data directory (``./var``). Invariant: secrets are
``SecretStr`` and are never printed unmasked (see :meth:`Settings.masked`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ConfigurationError

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
RATE_LIMIT_OFF = ("", "off", "none")
ENV_PREFIX = "TARCZA_"
CONFIG_ENV = "TARCZA_CONFIG"
DEFAULT_DATA_DIR = Path("var")
PATH_SETTINGS = ("data_dir", "tls_cert", "tls_key", "tls_client_ca")
"""Settings holding a file or directory: relative values in a configuration file are relative to it."""


@dataclass(frozen=True)
class ConfigFile:
    """A configuration file in use: its absolute path and how it was found."""

    path: Path
    found_by: str  # "--config", "TARCZA_CONFIG", "working directory", "user config directory"


class Settings(BaseSettings):
    """The effective configuration of one Tarcza process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=None, extra="ignore",
    )

    _config_file: ConfigFile | None = PrivateAttr(None)
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Directory for the database, keys, recordings and logs.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/tarcza.db. PostgreSQL: postgresql://user@host/db.",
    )
    key_provider: Literal["local", "pkcs11"] = Field("local", description="Where key-encryption keys live.")
    keyfile_passphrase: SecretStr | None = Field(
        None, description="Optional passphrase protecting the local keyfile (scrypt).",
    )
    pkcs11_module: str | None = Field(None, description="Path to the PKCS#11 module (e.g. libsofthsm2.so).")
    pkcs11_token_label: str = Field("tarcza", description="Label of the PKCS#11 token holding the keys.")
    pkcs11_pin: SecretStr | None = Field(None, description="User PIN of the PKCS#11 token.")
    host: str = Field("127.0.0.1", description="Address the HTTP API listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the HTTP API listens on.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Minimum level logged.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: readable on a terminal, JSON lines otherwise.",
    )
    audit_origin: str | None = Field(
        None, description="Origin line of audit checkpoints; default tarcza/<installation id>.",
    )
    checkpoint_every_entries: int = Field(1000, ge=1, description="Issue a checkpoint after this many new entries.")
    checkpoint_every_seconds: float = Field(
        60.0, gt=0, description="Issue a checkpoint at least this often while the log grows.",
    )
    audit_batch_max: int = Field(1000, ge=1, le=10000, description="Most entries the sequencer commits in one batch.")
    max_recording_bytes: int = Field(
        512 * 1024 * 1024, ge=1, description="Largest recording accepted over HTTP, in bytes (413 beyond it).",
    )
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest request body accepted, in bytes (413 beyond it); recordings "
        "and uploaded audit exports have their own limits.",
    )
    max_upload_bytes: int = Field(
        512 * 1024 * 1024, ge=1024,
        description="Largest audit export accepted by POST /v1/audit/verify-export, in bytes (413 beyond it).",
    )
    max_unpacked_export_bytes: int = Field(
        1024 * 1024 * 1024, ge=1024 * 1024,
        description="Most an uploaded audit export may unpack to, in bytes, and never more than 100 times the "
        "upload (413 beyond it: a decompression bomb is refused before it is written).",
    )
    rate_limit_client: str = Field(
        "6000/minute", description="Requests per authenticated user or API client (limits notation, e.g. "
        "'6000/minute' or '100/second;6000/minute'); empty or 'off' disables.",
    )
    rate_limit_address: str = Field(
        "12000/minute", description="Requests per client address, authenticated or not; empty or 'off' disables.",
    )
    rate_limit_login: str = Field(
        "120/minute", description="Requests per client address to the login, token, step-up and TOTP-confirm "
        "endpoints; empty or 'off' disables.",
    )
    tls_cert: Path | None = Field(None, description="PEM certificate (chain) `tarcza serve` presents; enables HTTPS.")
    tls_key: Path | None = Field(None, description="PEM private key of the TLS certificate.")
    tls_key_password: SecretStr | None = Field(None, description="Password of an encrypted TLS private key.")
    tls_client_ca: Path | None = Field(
        None, description="PEM CA bundle that client certificates are verified against (mutual TLS, optional "
        "for the client; API clients bound to a certificate must present it).",
    )
    insecure_http: bool = Field(
        False, description="Allow plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).",
    )
    recording_media_types: str = Field(
        "audio/wav,audio/x-wav,audio/wave,audio/ogg,audio/mpeg,audio/mp4,audio/webm,audio/flac,audio/amr,video/mp4",
        description="Comma-separated media types a recording may have (415 for any other).",
    )
    controller_name: str = Field("(set TARCZA_CONTROLLER_NAME)",
                                 description="The firm, controller of the data (Art. 30 record).")
    controller_address: str = Field("(set TARCZA_CONTROLLER_ADDRESS)", description="The controller's address.")
    controller_contact: str = Field("(set TARCZA_CONTROLLER_CONTACT)", description="How to contact the controller.")
    dpo_contact: str | None = Field(None, description="How to contact the data protection officer.")
    db_app_role: str | None = Field(
        None, description="PostgreSQL role granted INSERT and SELECT only on the audit tables by the migration.",
    )
    # -- witnesses (ADR 0021) ------------------------------------------------------------------------
    witnesses: str = Field(
        "", description="Witnesses that cosign audit checkpoints (C2SP tlog-witness): entries separated by "
        "commas or newlines, each '<submission URL> <witness verifier key>' (signed-note vkey, type 0x04).",
    )
    witness_retry_seconds: float = Field(
        30.0, gt=0, description="How often checkpoints are submitted again to a witness that was unreachable, "
        "and how often the newest checkpoint is looked for.",
    )
    witness_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one request to a witness.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("rate_limit_client", "rate_limit_address", "rate_limit_login")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in RATE_LIMIT_OFF:
            return ""
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as '6000/minute' or '10/second;600/minute'; "
                             "empty or 'off' disables it") from None
        return value

    @field_validator("witnesses")
    @classmethod
    def _witnesses(cls, value: str) -> str:
        parse_witnesses(value)
        return value.strip()

    @property
    def witness_list(self) -> list[tuple[str, str]]:
        """``(submission URL, verifier key)`` per configured witness (keys parsed by ``audit.witness_client``)."""
        return parse_witnesses(self.witnesses)

    @cached_property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data directory; always a supported backend."""
        if not self.database_url:
            return f"sqlite:///{(self.data_dir / 'tarcza.db').as_posix()}"
        url = parse_database_url(self.database_url)
        return url.render_as_string(hide_password=False)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return parse_database_url(self.effective_database_url).get_backend_name()

    @property
    def keyfile_path(self) -> Path:
        return self.data_dir / "keys" / "kek.json"

    @property
    def log_key_path(self) -> Path:
        return self.data_dir / "keys" / "audit-log.key"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def nlp_dir(self) -> Path:
        """The local spaCy pipeline presidio runs on (a blank Polish one, written on first use; never downloaded)."""
        return self.data_dir / "nlp" / "pl_blank"

    @property
    def config_file(self) -> ConfigFile | None:
        """The configuration file these settings were read from, if any."""
        return self._config_file

    def source_of(self, name: str) -> str:
        """Where setting ``name`` came from: ``environment``, ``config file``, ``argument`` or ``default``."""
        return self._sources.get(name, "default")

    def masked(self) -> dict[str, str]:
        """Every setting as text, with secrets and database passwords masked."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "********" if value.get_secret_value() else ""
            elif value is None:
                out[name] = ""
            else:
                out[name] = str(value)
        out["database_url"] = parse_database_url(self.effective_database_url).render_as_string(hide_password=True)
        return out


def parse_witnesses(raw: str) -> list[tuple[str, str]]:
    """Split ``TARCZA_WITNESSES`` into ``(URL, verifier key)`` pairs; ValueError naming the bad entry."""
    out: list[tuple[str, str]] = []
    for number, entry in enumerate(re.split(r"[,\n]", raw), start=1):
        parts = entry.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ValueError(f"witness entry {number} is not '<URL> <verifier key>'")
        url, key = parts
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ValueError(f"witness entry {number}: {url!r} is not an http(s) URL")
        if key.count("+") < 2:
            raise ValueError(f"witness entry {number}: the key is not a signed-note verifier key (name+id+key)")
        out.append((url.rstrip("/"), key))
    if len({key for _, key in out}) != len(out):
        raise ValueError("the same witness key is configured twice")
    return out


def parse_database_url(raw: str) -> URL:
    """Parse and check a database URL; raise :class:`ConfigurationError` with one line if unusable."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigurationError(
            "TARCZA_DATABASE_URL is not a valid database URL (expected e.g. sqlite:///var/tarcza.db "
            "or postgresql://user@host/dbname)"
        ) from None
    backend = url.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigurationError(
            f"TARCZA_DATABASE_URL uses unsupported backend {backend!r}; supported: {', '.join(SUPPORTED_BACKENDS)}"
        )
    if backend == "postgresql" and url.get_driver_name() in ("psycopg2", "pg8000", "asyncpg", "psycopg2cffi"):
        raise ConfigurationError("TARCZA_DATABASE_URL: use the psycopg (3) driver, e.g. postgresql+psycopg://...")
    if backend == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
        if not url.database:
            raise ConfigurationError("TARCZA_DATABASE_URL names no PostgreSQL database")
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise ConfigurationError("TARCZA_DATABASE_URL: SQLite needs a file path (an in-memory database loses the log)")
    return url


def user_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/tarcza/config.env``, or ``~/.config/tarcza/config.env`` (XDG base directories)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"  # the spec ignores relative
    return root / "tarcza" / "config.env"


def _read_env_file(path: Path) -> dict[str, str]:
    """The ``TARCZA_*`` assignments of a dotenv file, names upper-cased; one-line error if unreadable."""
    from dotenv import dotenv_values

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigurationError(f"configuration file {path} cannot be read: {reason}") from None
    from io import StringIO

    values = dotenv_values(stream=StringIO(text))
    return {key.upper(): value for key, value in values.items()
            if value is not None and key.upper().startswith(ENV_PREFIX)}


def find_config_file(explicit: Path | None = None, *, cwd: Path | None = None,
                     environ: Mapping[str, str] | None = None) -> ConfigFile | None:
    """The configuration file to read: ``explicit`` (``--config``), ``TARCZA_CONFIG``, the working
    directory's ``.env`` if it sets a ``TARCZA_`` variable, the user's config file; or None.

    A file named explicitly must exist; the others are used only if they exist.
    """
    env = os.environ if environ is None else environ
    here = Path.cwd() if cwd is None else cwd
    named = [(explicit, "--config"), (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None, CONFIG_ENV)]
    for path, how in named:
        if path is not None:
            path = (here / path.expanduser()).resolve()
            if not path.is_file():
                raise ConfigurationError(f"configuration file {path} ({how}) does not exist or is not a file")
            return ConfigFile(path, how)
    dotenv = here / ".env"
    if dotenv.is_file() and _read_env_file(dotenv):
        return ConfigFile(dotenv.resolve(), "working directory")
    user = user_config_path(env)
    if user.is_file():
        return ConfigFile(user.resolve(), "user config directory")
    return None


def _relative_to(base: Path, name: str, value: str) -> str:
    """A configuration file's value with a relative path made relative to the file's directory."""
    if name in PATH_SETTINGS:
        path = Path(value).expanduser()
        return value if not value or path.is_absolute() else str(base / path)
    if name == "database_url" and value.startswith("sqlite:"):
        try:
            url = make_url(value)
        except ArgumentError:
            return value  # parse_database_url names the problem
        if url.database and url.database != ":memory:" and not Path(url.database).is_absolute():
            return url.set(database=str(base / url.database)).render_as_string(hide_password=False)
    return value


def _file_settings(config: ConfigFile, env: Mapping[str, str]) -> dict[str, str]:
    """The settings a configuration file gives that the environment does not override."""
    fields = {name.upper(): name for name in Settings.model_fields}
    in_env = {key.upper() for key in env}
    out: dict[str, str] = {}
    for key, value in _read_env_file(config.path).items():
        name = fields.get(key.removeprefix(ENV_PREFIX))
        if name is not None and key not in in_env:
            out[name] = _relative_to(config.path.parent, name, value)
    return out


def load_settings(*, config: Path | None = None, discover: bool = True, **overrides: Any) -> Settings:
    """Read the settings; turn pydantic's validation errors into a one-line ConfigurationError.

    ``overrides`` win over everything; then the environment, then the configuration file
    (``config``, else found by :func:`find_config_file` unless ``discover`` is false), then
    the defaults. The result knows where each setting came from (:meth:`Settings.source_of`).
    """
    from pydantic import ValidationError

    env = os.environ
    found = find_config_file(config) if (discover or config is not None) else None
    from_file = _file_settings(found, env) if found is not None else {}
    in_env = {key.upper() for key in env}
    sources = {name: "environment" for name in Settings.model_fields if f"{ENV_PREFIX}{name.upper()}" in in_env}
    sources.update(dict.fromkeys(from_file, "config file"))
    sources.update(dict.fromkeys(overrides, "argument"))
    try:
        settings = Settings(**{**from_file, **overrides})
        _ = settings.effective_database_url
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        where = f" (in {found.path})" if found is not None and loc in from_file else ""
        raise ConfigurationError(f"setting TARCZA_{loc.upper()}{where}: {first['msg']}") from None
    settings._config_file = found
    settings._sources = sources
    return settings
