"""No personal data at rest: after sealing a thousand synthetic subjects and some recordings through
the vault, no file in the data directory holds any of their identifiers in clear.

SQLite only: the property is about the files of the embedded default (database, WAL, shared
memory, blobs, keyfile, audit key, logs), which a PostgreSQL server keeps elsewhere."""

from __future__ import annotations

import io
import re
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
import structlog
from faker import Faker

from api.runtime import Runtime
from audit.events import ActorKind
from audit.service import create_log_signer
from core import migrate
from core.logging import configure_logging
from core.settings import load_settings
from identity.principal import Principal, Role
from policies.authorizer import Decision, Resource
from vault.bootstrap import build_vault, init_keys
from vault.errors import InvalidFieldValueError
from vault.service import NewSubject
from vault.validators import normalise

SUBJECTS = 1000
RECORDINGS = 5
PURPOSE = "debt_collection"
MIN_WORD_BYTES = 6  # shorter names turn up in random ciphertext by chance (3 bytes: once per 16 MiB)
OFFICER = Principal("u-officer", ActorKind.USER, frozenset({Role.COMPLIANCE_OFFICER}))


class AllowAll:
    """An authorizer that allows everything (this test is about storage, not policy)."""

    def decide(self, principal: Principal, action: str, resource: Resource, *, purpose: str | None,
               now: Any, justification: str | None = None) -> Decision:
        return Decision(True, "role")


def trie_pattern(words: Iterable[bytes]) -> re.Pattern[bytes]:
    """One regular expression matching any of ``words``, as a trie so each position costs a few steps."""
    end = -1
    trie: dict[int, Any] = {}
    for word in words:
        node = trie
        for byte in word:
            node = node.setdefault(byte, {})
        node[end] = True

    def emit(node: dict[int, Any]) -> bytes:
        branches = [re.escape(bytes([byte])) + emit(child) for byte, child in sorted(node.items()) if byte != end]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        return b"(?:" + body + b")?" if end in node else body

    return re.compile(emit(trie))


def phone_forms(e164: str) -> list[str]:
    """A phone number as E.164, national digits, and the national and international spellings."""
    number = phonenumbers.parse(e164)
    national = phonenumbers.national_significant_number(number)
    return [e164, national,
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)]


def people(count: int) -> Iterator[dict[str, Any]]:
    """Synthetic debtors with every common identifier, from a fixed seed."""
    fake = Faker("pl_PL")
    fake.seed_instance(424242)
    for _ in range(count):
        phone = ""
        while not phone:
            try:
                phone = normalise("phone", "phone", fake.phone_number())
            except InvalidFieldValueError:
                continue
        yield {"first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel(),
               "phone": [phone], "email": [fake.unique.safe_email()], "iban": [fake.iban()],
               "address": [fake.address().replace("\n", ", ")]}


def needles(person: dict[str, Any]) -> list[bytes]:
    """What must not appear: PESEL, phone in every form, e-mail, surname (UTF-8), IBAN digits."""
    out = [person["pesel"], person["email"][0], person["iban"][0], person["iban"][0][2:]]
    out += phone_forms(person["phone"][0])
    out += [person["last_name"]] if len(person["last_name"].encode()) >= MIN_WORD_BYTES else []
    return [text.encode("utf-8") for text in out]


def leaks(directory: Path, pattern: re.Pattern[bytes]) -> list[tuple[str, bytes]]:
    """Every (file, matched bytes) under ``directory``."""
    found: list[tuple[str, bytes]] = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [(str(path.relative_to(directory)), m.group(0)) for m in pattern.finditer(data)]
    return found


@pytest.fixture
def json_log_file(data_dir: Path) -> Iterator[Path]:
    """Route structlog and stdlib logging (DEBUG, JSON lines) to a file in the data directory."""
    import logging

    path = data_dir / "logs" / "tarcza.log"
    path.parent.mkdir(mode=0o700)
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with path.open("w", encoding="utf-8") as stream:
        configure_logging(level="DEBUG", fmt="json", stream=stream)
        yield path
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


class TestNoPlaintextAtRest:
    """The vault's storage (database, blobs, keys) as files on disk."""

    def test_trie_pattern_finds_every_kind_of_needle(self) -> None:
        """The scanner itself finds each kind of identifier inside arbitrary bytes (a positive control)."""
        person = next(people(1))
        pattern = trie_pattern(needles(person))
        for needle in needles(person):
            assert pattern.search(b"\x00\xff" + needle + b"\x01") is not None, needle
        assert pattern.search(b"\x00" * 64) is None

    def test_no_plaintext_at_rest(self, data_dir: Path, json_log_file: Path) -> None:
        """A thousand subjects and some recordings leave no PESEL, phone, e-mail, surname or IBAN in any file."""
        settings = load_settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'tarcza.db'}")
        runtime = Runtime(settings)
        migrate.upgrade(runtime.engine)
        keep_wal = sqlite3.connect(data_dir / "tarcza.db")  # while one connection stays, so do -wal and -shm
        keep_wal.execute("SELECT count(*) FROM sqlite_master").fetchall()
        create_log_signer(settings.log_key_path, "tarcza/test")
        assert init_keys(runtime) is not None
        vault = build_vault(runtime, authorizer=AllowAll())
        seeded = list(people(SUBJECTS))
        tokens = vault.create_subjects(OFFICER, [NewSubject("debtor", p) for p in seeded])
        for token, person in list(zip(tokens, seeded, strict=True))[:RECORDINGS]:
            spoken = " ".join([person["first_name"], person["last_name"], person["pesel"], person["email"][0],
                               person["phone"][0], person["iban"][0]]).encode("utf-8")
            vault.store_recording(OFFICER, token, io.BytesIO(b"RIFF" + spoken * 2000), "audio/wav")
        vault.update_field(OFFICER, tokens[0], "phone", seeded[1]["phone"])
        assert vault.reveal(OFFICER, tokens[1], ["pesel"], PURPOSE) == {"pesel": [seeded[1]["pesel"]]}
        assert vault.search(OFFICER, "pesel", seeded[2]["pesel"], PURPOSE) == [tokens[2]]
        vault.masked_view(OFFICER, tokens[3])
        vault.rotate_keys(batch_size=250)

        pattern = trie_pattern(needle for person in seeded for needle in needles(person))
        assert (data_dir / "tarcza.db-wal").stat().st_size > 0
        assert (data_dir / "tarcza.db-shm").exists()
        assert leaks(data_dir, pattern) == []  # while the database is open, with its WAL
        keep_wal.close()
        runtime.close()
        files = {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()}
        assert {"tarcza.db", "keys/kek.json", "keys/audit-log.key", "logs/tarcza.log"} <= files
        assert sum(1 for f in files if f.startswith("blobs/")) == RECORDINGS
        assert json_log_file.stat().st_size > 0
        assert leaks(data_dir, pattern) == []  # and once everything is closed
