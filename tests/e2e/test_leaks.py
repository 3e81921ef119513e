"""No leaks end to end: after an HTTP scenario with 200 synthetic subjects through a real ``tarcza
serve``, none of their identifiers is in clear in the data directory, the server's log output,
its temporary directory or a dump of the database, on SQLite and on PostgreSQL.

The scenario, over HTTP only (the principals are made by the operator's CLI): an API client
creates 200 subjects (Faker ``pl_PL``: names, PESEL, phone, e-mail, IBAN, ID card, address),
records a contact for each with a note holding their name, phone, e-mail and PESEL (and, for
some, another subject's phone), uploads a WAV recording for some (its metadata names the
subject), reads masked views, contact histories and searches by blind index; a DPO with TOTP
logs in, steps up with a recovery code and reveals fields (one subject at a time and in bulk),
a note as written and a recording; a few requests go wrong on purpose (a value in the wrong
field, a PESEL in a URL, a subject's name typed as the purpose of a read and of a reveal: refused,
and logged as an ``unknown`` purpose); the DPO answers GDPR access requests with archives. The
archives are what is meant to hold the identifiers: as the README says, the server streams them
and keeps none; the test checks each one offline (``tarcza gdpr verify-export``), finds the
subject's identifiers in it (a positive control on real output), and deletes it.

Then every identifier is looked for, as typed and normalised (E.164 and national phones,
lower-case e-mails, IBAN without spaces, PESEL digits, names of at least 4 letters), case-
insensitively in UTF-8 (and JSON-escaped), in: every file under the data directory (with the
SQLite WAL while the server runs, and again after it stops), the server's captured stdout and
stderr, its TMPDIR, and a dump (SQLite: ``iterdump()``; PostgreSQL: ``pg_dump``, plain format),
with the dump's hex blob literals (the audit log's entries among them) and any zip or gzip
archive decoded and scanned too.

How a match is judged, so that random bytes and encodings never pass for a leak:

* identifiers with letters or separators (e-mail, IBAN, ID card, E.164 and formatted phones,
  addresses, full names) count anywhere;
* digit-only identifiers (PESEL, national phone digits) count when no letter or digit touches
  them: hex strings of hashes and ciphertexts (PostgreSQL dumps ``bytea`` as hex) would
  otherwise hold any nine digits by chance;
* a single first or last name counts as a word: neither side may be a letter, a digit or a
  base64 character (a name is a plausible run of base64), and a name shorter than six letters
  must also sit inside printable text (a 4-letter match in kilobytes of ciphertext is chance).

The scanner is first shown to find each kind of planted identifier inside random bytes.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import random
import re
import shutil
import sqlite3
import struct
import subprocess
import wave
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import phonenumbers
import pyotp
import pytest
from faker import Faker

from vault.errors import InvalidFieldValueError
from vault.validators import normalise

if TYPE_CHECKING:
    from conftest import TarczaServer  # tests/e2e/conftest.py

SEED = 20261124
SUBJECTS = 200
RECORDINGS = 20
REVEALS = 8
BULK_REVEAL = 40
SEARCHES = 8
EXPORTS = 3
PURPOSE = "debt_collection"
PASSWORD = "e2e correct horse battery staple"
WORD_ALONE_LETTERS = 6  # a name spelled in fewer bytes must also sit inside printable text to count
THREADS = 4


# -- synthetic people ------------------------------------------------------------------------------


@dataclass
class Person:
    """A synthetic debtor's identifiers as a client would type them."""

    index: int
    first_name: str
    last_name: str
    pesel: str
    phone: str
    email: str
    iban: str
    id_card: str
    address: str
    token: str = ""

    def fields(self) -> dict[str, Any]:
        return {"first_name": self.first_name, "last_name": self.last_name, "pesel": self.pesel,
                "phone": [self.phone], "email": [self.email], "iban": [self.iban], "id_card": self.id_card,
                "address": [self.address]}


def people(count: int, seed: int = SEED) -> list[Person]:
    """Synthetic debtors from a fixed seed; some e-mails and IBANs typed in other cases and spacings."""
    fake = Faker("pl_PL")
    fake.seed_instance(seed)
    out = []
    for i in range(count):
        phone = ""
        while not phone:
            candidate = fake.phone_number()
            try:
                normalise("phone", "phone", candidate)
            except InvalidFieldValueError:
                continue
            phone = candidate
        email = fake.unique.safe_email()
        iban = fake.iban()
        if i % 3 == 1:
            email = email.capitalize()
            iban = " ".join(iban[j:j + 4] for j in range(0, len(iban), 4))
        out.append(Person(i, fake.first_name(), fake.last_name(), fake.unique.pesel(), phone, email, iban,
                          fake.unique.identity_card_number(), fake.address().replace("\n", ", ")))
    return out


def note_for(person: Person, other: Person | None) -> str:
    text = (f"Rozmowa z {person.first_name} {person.last_name}. Prosi o kontakt pod numerem {person.phone} "
            f"albo mailowo: {person.email}. Podał PESEL {person.pesel} do weryfikacji.")
    if other is not None:
        text += f" Wcześniej odebrał brat dłużnika, tel. {other.phone}."
    return text


def wav_for(person: Person, rng: random.Random) -> bytes:
    """A small 8 kHz mono WAV of noise, with a LIST/INFO chunk naming the subject (metadata in clear)."""
    pcm = io.BytesIO()
    with wave.open(pcm, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(rng.getrandbits(8) for _ in range(1600)))
    data = bytearray(pcm.getvalue())
    title = f"Rozmowa: {person.first_name} {person.last_name}, PESEL {person.pesel}, tel. {person.phone}".encode()
    title += b"\x00" * (1 + len(title) % 2)  # NUL-terminated, padded to an even size
    info = b"INFO" + b"INAM" + struct.pack("<I", len(title)) + title
    data += b"LIST" + struct.pack("<I", len(info)) + info
    data[4:8] = struct.pack("<I", len(data) - 8)
    return bytes(data)


# -- the scanner -----------------------------------------------------------------------------------

_UPPER_TO_LOWER = [(c.encode(), c.lower().encode()) for c in "ĄĆĘŁŃÓŚŹŻ"]
_B64_OR_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=_-")
_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX_BLOB = re.compile(rb"(?:X'|\\\\x)((?:[0-9a-fA-F]{2}){8,})")
_PRINTABLE_RUN = re.compile(rb"(?:[\t\n\r\x20-\x7e]|[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2})+")


def fold(data: bytes) -> bytes:
    """Case-fold bytes for matching: ASCII and the Polish letters in UTF-8 (each keeps its length)."""
    data = data.lower()
    for upper, lower in _UPPER_TO_LOWER:
        data = data.replace(upper, lower)
    return data


@dataclass(frozen=True)
class Needle:
    """One form of one identifier: ``rule`` is exact, number or word (see the module docstring)."""

    value: bytes  # folded
    rule: str
    who: int
    what: str


def spellings(text: str) -> set[bytes]:
    """UTF-8, and JSON-escaped as ``json.dumps`` writes non-ASCII text (``\\u0142``), in upper and lower case."""
    out = {text.encode()}
    for variant in (text, text.lower(), text.upper()):
        out.add(json.dumps(variant)[1:-1].encode())
    return out


def needles(person: Person) -> list[Needle]:
    """Every form of the person's identifiers that must not be found in clear."""
    number = phonenumbers.parse(normalise("phone", "phone", person.phone))
    national = phonenumbers.national_significant_number(number)
    iban = person.iban.replace(" ", "")
    exact = {"phone": [person.phone, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
                       phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
                       phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)],
             "email": [person.email], "iban": [person.iban, iban, " ".join(iban[i:i + 4] for i in range(0, 28, 4)),
                                               iban[2:]],
             "id_card": [person.id_card, f"{person.id_card[:3]} {person.id_card[3:]}"],
             "address": [person.address, person.address.split(",")[0]],
             "name": [f"{person.first_name} {person.last_name}", f"{person.last_name} {person.first_name}"]}
    out = [Needle(fold(s), "exact", person.index, what) for what, forms in exact.items() for form in forms
           for s in spellings(form)]
    out += [Needle(digits.encode(), "number", person.index, what)
            for what, digits in (("pesel", person.pesel), ("phone", national))]
    out += [Needle(fold(s), "word", person.index, what)
            for what, name in (("first_name", person.first_name), ("last_name", person.last_name))
            if sum(c.isalpha() for c in name) >= 4 for s in spellings(name)]
    return out


def trie_regex(words: Iterable[bytes]) -> re.Pattern[bytes]:
    """One regular expression matching any of ``words`` (longest first at each position), built as a trie."""
    root: dict[int, Any] = {}
    for word in words:
        node = root
        for byte in word:
            node = node.setdefault(byte, {})
        node[-1] = {}

    def emit(node: dict[int, Any]) -> bytes:
        branches = [re.escape(bytes([b])) + emit(child) for b, child in sorted(node.items()) if b != -1]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        return b"(?:" + body + b")?" if -1 in node else body

    return re.compile(emit(root))


@dataclass(frozen=True)
class Hit:
    source: str
    offset: int
    needle: Needle
    found: bytes

    def __str__(self) -> str:
        return f"{self.source}@{self.offset}: subject {self.needle.who} {self.needle.what} {self.found!r}"


class Scanner:
    """Finds the needles in bytes, by the rules of the module docstring."""

    def __init__(self, items: Iterable[Needle]) -> None:
        self.by_value: dict[bytes, list[Needle]] = {}
        for n in items:
            self.by_value.setdefault(n.value, []).append(n)
        self.pattern = trie_regex(self.by_value)

    def scan(self, data: bytes, source: str) -> list[Hit]:
        folded = fold(data)
        hits = []
        for m in self.pattern.finditer(folded):
            for needle in self.by_value[m.group(0)]:
                if self._counts(folded, m.start(), m.end(), needle):
                    hits.append(Hit(source, m.start(), needle, data[m.start():m.end()]))
                    break
        return hits

    def scan_all(self, data: bytes, source: str) -> list[Hit]:
        """``data`` itself and every archive in it, unpacked (see :func:`unpacked`)."""
        return self.scan(data, source) + [hit for label, inner in unpacked(data, source)
                                          for hit in self.scan(inner, label)]

    def scan_tree(self, root: Path, label: str) -> list[Hit]:
        return [hit for path in sorted(root.rglob("*")) if path.is_file()
                for hit in self.scan_all(path.read_bytes(), f"{label}/{path.relative_to(root).as_posix()}")]

    @staticmethod
    def _counts(data: bytes, start: int, end: int, needle: Needle) -> bool:
        if needle.rule == "exact":
            return True
        before = data[start - 1] if start > 0 else None
        after = data[end] if end < len(data) else None
        if needle.rule == "number":
            return before not in _ALNUM and after not in _ALNUM
        if before in _B64_OR_WORD or after in _B64_OR_WORD or (before or 0) >= 0x80 or (after or 0) >= 0x80:
            return False
        if len(needle.value) >= WORD_ALONE_LETTERS:
            return True
        lo, hi = max(0, start - 32), min(len(data), end + 32)
        return any(r.start() <= start and r.end() >= end and r.end() - r.start() >= end - start + 6
                   for r in _PRINTABLE_RUN.finditer(data, lo, hi))


def unpacked(data: bytes, source: str) -> Iterator[tuple[str, bytes]]:
    """What ``data`` holds in another encoding, decoded: the blob literals of a dump written as hex (SQLite's
    ``X'7B22...'``, PostgreSQL's ``\\x7b22...``: the audit log's entries are such blobs), and the members of
    zip and gzip archives (``data`` itself or a decoded blob), recursively. Compressed or hex-encoded, an
    identifier would pass unseen; an export archive kept in the database would be just that."""
    blobs = [(source, data)] if data.startswith((b"PK\x03\x04", b"\x1f\x8b")) else []
    for m in _HEX_BLOB.finditer(data):
        digits = m.group(1)
        blob = bytes.fromhex(digits[:len(digits) // 2 * 2].decode("ascii"))
        label = f"{source}@{m.start()}(hex)"
        yield label, blob
        if blob.startswith((b"PK\x03\x04", b"\x1f\x8b")):
            blobs.append((label, blob))
    for label, blob in blobs:
        try:
            with zipfile.ZipFile(io.BytesIO(blob)) as zf:
                members = [(f"{label}!{name}", zf.read(name)) for name in zf.namelist()]
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError):
            try:
                members = [(f"{label}!gunzip", gzip.decompress(blob))]
            except (zlib.error, EOFError, ValueError, OSError):
                continue
        for name, inner in members:
            yield name, inner
            yield from unpacked(inner, name)


# -- HTTP ------------------------------------------------------------------------------------------


def expect(response: httpx.Response, status: int) -> Any:
    where = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == status, f"{where}: {response.status_code} {response.text[:500]}"
    content_type = response.headers.get("content-type", "")
    return response.json() if "json" in content_type else response.content


@dataclass
class Principals:
    client: httpx.Client
    dpo: httpx.Client
    recovery_codes: list[str]


def principals(server: TarczaServer) -> Principals:
    """An API client (subjects, contacts, masked reads) and a DPO with TOTP, made by the operator's CLI."""
    token = server.client_token(*server.add_client("e2e-crm", "subjects:write", "subjects:read-masked",
                                                   "contacts:write"))
    server.cli("user", "add", "e2e-dpo", "--role", "dpo", "--password-stdin", stdin=PASSWORD + "\n")
    started = server.cli("user", "enroll-totp", "e2e-dpo", "--start-only")
    secret = re.search(r"secret \(for manual entry\): ([A-Z2-7]+)", started)
    assert secret is not None, "enroll-totp printed no secret"
    totp, confirmed_at = pyotp.TOTP(secret.group(1)), datetime.now(UTC)
    confirmed = server.cli("user", "enroll-totp", "e2e-dpo", "--code", totp.at(confirmed_at))
    codes = [line.strip() for line in confirmed.splitlines() if line.startswith("  ") and line.strip()]
    assert len(codes) >= 2, "no recovery codes printed"
    login = expect(httpx.post(f"{server.url}/v1/auth/login", timeout=30, json={
        "username": "e2e-dpo", "password": PASSWORD, "totp_code": totp.at(confirmed_at + timedelta(seconds=30))}),
        200)
    assert login["second_factor"] is True
    return Principals(
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60),
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {login['access_token']}"}, timeout=60),
        codes)


def run_scenario(server: TarczaServer, crowd: list[Person], archive_dir: Path, scanner: Scanner) -> None:
    """Everything of the module docstring's scenario, over HTTP; archives checked and deleted."""
    who = principals(server)
    api, dpo = who.client, who.dpo
    rng = random.Random(SEED)

    def create(person: Person) -> None:
        created = expect(api.post("/v1/subjects", json={"kind": "debtor", "fields": person.fields()},
                                  headers={"Idempotency-Key": f"subject-{person.index}"}), 201)
        person.token = created["token"]

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(create, crowd))
    assert len({p.token for p in crowd}) == SUBJECTS

    now = datetime.now(UTC)

    def contact(person: Person) -> dict[str, Any]:
        other = crowd[(person.index + 1) % SUBJECTS] if person.index % 4 == 0 else None
        return {"subject": person.token, "channel": "phone", "direction": "inbound", "agent_id": "agent-e2e",
                "started_at": (now - timedelta(hours=2, minutes=person.index)).isoformat(), "outcome": "answered",
                "notes": note_for(person, other)}

    half = SUBJECTS // 2

    def record(person: Person) -> str:
        receipt = expect(api.post("/v1/contacts", json=contact(person),
                                  headers={"Idempotency-Key": f"contact-{person.index}"}), 201)
        assert receipt["pii_found"] >= 3, receipt
        return str(receipt["event_id"])

    with ThreadPoolExecutor(THREADS) as pool:
        event_ids = list(pool.map(record, crowd[:half]))
    for start in range(half, SUBJECTS, 50):
        batch = expect(api.post("/v1/contacts/batch", json={"contacts": [contact(p) for p in crowd[start:start + 50]]},
                                headers={"Idempotency-Key": f"batch-{start}"}), 200)
        assert all("receipt" in r for r in batch["results"]), batch["results"][:2]

    recordings: dict[int, tuple[str, bytes]] = {}
    for person in crowd[:RECORDINGS]:
        audio = wav_for(person, rng)
        stored = expect(api.post(f"/v1/subjects/{person.token}/recordings", params={"announced": "true"}, content=audio,
                                 headers={"Content-Type": "audio/wav", "Idempotency-Key": f"rec-{person.index}"}), 201)
        recordings[person.index] = (stored["recording_id"], audio)

    for person in crowd[:SEARCHES]:
        masked = expect(api.get(f"/v1/subjects/{person.token}"), 200)
        assert person.pesel not in json.dumps(masked)
        expect(api.get(f"/v1/subjects/{person.token}/contacts"), 200)
        for field, value in (("pesel", person.pesel), ("phone", person.phone), ("email", person.email.upper())):
            found = expect(api.post("/v1/subjects/search", json={"field": field, "value": value, "purpose": PURPOSE}),
                           200)
            assert found["subjects"] == [person.token], field

    # Requests that go wrong must not echo or log what they carried.
    victim = crowd[-1]
    wrong = api.put(f"/v1/subjects/{victim.token}/fields/phone", json={"values": [victim.email]})
    assert wrong.status_code == 422
    assert victim.email.lower() not in wrong.text.lower()
    assert api.get(f"/v1/contacts/{victim.pesel}").status_code in (404, 422)
    # ... nor keep what a client typed where a purpose of the catalogue belongs (the log keeps it forever).
    plain = next(p for p in reversed(crowd) if (p.first_name + p.last_name).isascii())  # fits a purpose's pattern
    typed = f"{plain.first_name}.{plain.last_name}".lower()
    assert api.get(f"/v1/subjects/{plain.token}", params={"purpose": typed}).status_code == 403

    # The DPO steps up (a recovery code as the second factor) and reveals.
    expect(dpo.post("/v1/auth/step-up", json={"recovery_code": who.recovery_codes[0]}), 200)
    for person in crowd[:REVEALS]:
        shown = expect(dpo.post(
            f"/v1/subjects/{person.token}/reveal", headers={"Idempotency-Key": f"reveal-{person.index}"},
            json={"fields": ["pesel", "phone", "email", "iban", "id_card", "address", "last_name"],
                  "purpose": PURPOSE}), 200)
        assert shown["fields"]["pesel"] == [person.pesel]
        assert [e.lower() for e in shown["fields"]["email"]] == [person.email.lower()]
    refused = dpo.post(f"/v1/subjects/{plain.token}/reveal",
                       json={"fields": ["pesel"], "purpose": plain.last_name.lower()})
    assert refused.status_code == 403
    assert refused.json()["rule"] == "purpose"
    logged = expect(dpo.get("/v1/audit/events", params={"subject": plain.token, "type": "vault.access"}), 200)
    denials = [e["event"]["payload"] for e in logged["items"] if e["event"]["payload"]["decision"] == "deny"]
    assert [(d["action"], d["purpose"]) for d in denials] == [("read_masked", "unknown"), ("reveal", "unknown")]
    bulk = expect(dpo.post("/v1/subjects/reveal", headers={"Idempotency-Key": "bulk-reveal"}, json={
        "subjects": [p.token for p in crowd[:BULK_REVEAL]], "fields": ["pesel", "first_name"], "purpose": PURPOSE}),
        200)
    assert [r["fields"]["pesel"] for r in bulk["results"]] == [[p.pesel] for p in crowd[:BULK_REVEAL]]
    for person, event_id in list(zip(crowd, event_ids, strict=False))[:2]:
        full = expect(dpo.get(f"/v1/contacts/{event_id}", params={"view": "full", "purpose": PURPOSE}), 200)
        assert full["notes"] == contact(person)["notes"]
    for index, (recording_id, audio) in list(recordings.items())[:2]:
        played = expect(dpo.get(f"/v1/subjects/{crowd[index].token}/recordings/{recording_id}",
                                params={"purpose": PURPOSE}), 200)
        assert played == audio

    # GDPR access requests answered with archives; each checked offline, shown to hold the subject's
    # identifiers (what it is for), and deleted: the server keeps none.
    received_on = (now - timedelta(days=1)).date().isoformat()
    key_file = server.tmp_dir / "log.pub"  # the auditor's own copy of the log's key
    key_file.write_text(server.cli("audit", "verifier-key"), encoding="ascii")
    for n, person in enumerate(crowd[:EXPORTS]):
        request = expect(dpo.post("/v1/gdpr/requests", headers={"Idempotency-Key": f"dsr-{n}"}, json={
            "subject": person.token, "kind": "access", "received_on": received_on, "channel": "letter"}), 201)
        expect(dpo.post(f"/v1/gdpr/requests/{request['id']}/verify", json={"method": "id_document"}), 200)
        archive = archive_dir / f"export-{n}.zip"
        fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(expect(dpo.post(f"/v1/gdpr/requests/{request['id']}/export",
                                      headers={"Idempotency-Key": f"export-{n}"},
                                      params={"recordings": str(n == 0).lower()}), 200))
        checked = server.cli("gdpr", "verify-export", str(archive), "--key", str(key_file))
        assert checked.startswith(f"OK: subject {person.token}"), checked
        held = {hit.needle.what for hit in scanner.scan_tree(archive_dir, "received") if hit.needle.who == person.index}
        assert {"pesel", "email", "phone", "iban", "id_card", "last_name"} <= held, held
        archive.unlink()
    api.close()
    dpo.close()


# -- dumps -----------------------------------------------------------------------------------------


def database_dump(server: TarczaServer, out: Path) -> bytes:
    """The database as text: SQLite's ``iterdump()``, or ``pg_dump`` (plain format) of the throwaway database."""
    if server.backend == "sqlite":
        conn = sqlite3.connect(f"file:{server.data_dir / 'tarcza.db'}?mode=ro", uri=True)
        try:
            return "\n".join(conn.iterdump()).encode()
        finally:
            conn.close()
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pg_dump is required in CI (the PostgreSQL client tools)")
        pytest.skip("pg_dump is not installed")
    url = server.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    subprocess.run([pg_dump, "--format=plain", "--no-owner", f"--file={out}", url], check=True, timeout=120)
    return out.read_bytes()


# -- the tests -------------------------------------------------------------------------------------


def planted(person: Person) -> Iterator[tuple[str, bytes]]:
    """Each kind of identifier of ``person`` as a leak would show it, in random bytes around it."""
    noise = random.Random(7)
    pad = bytes(noise.getrandbits(8) for _ in range(4096))
    national = phonenumbers.format_number(phonenumbers.parse(normalise("phone", "phone", person.phone)),
                                          phonenumbers.PhoneNumberFormat.NATIONAL)
    yield "pesel", pad + b'{"pesel": "' + person.pesel.encode() + b'"}' + pad
    yield "phone", pad + b"\x00tel. " + national.encode() + b"\n" + pad
    yield "email", pad + person.email.upper().encode() + pad
    yield "iban", pad + person.iban.replace(" ", "").encode() + pad
    yield "id_card", pad + person.id_card.lower().encode() + pad
    yield "address", pad + json.dumps({"a": person.address}).encode() + pad
    yield "last_name", pad + f"INSERT INTO t VALUES('{person.last_name.upper()}',1);".encode() + pad
    yield "first_name", pad + f'{{"msg": "hello {person.first_name.lower()}!"}}'.encode() + pad
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.json", json.dumps({"fields": {"pesel": [person.pesel], "first_name": person.first_name}}))
    yield "pesel", b"INSERT INTO answers VALUES(X'" + archive.getvalue().hex().upper().encode() + b"');\n"
    yield "email", gzip.compress(pad + person.email.encode() + pad)


class TestLeakScanner:
    """The scanner itself: it must be able to fail."""

    def test_finds_planted_identifiers_in_random_bytes(self, tmp_path: Path) -> None:
        """Every kind of identifier, planted in a scratch file among random bytes in another case or spelling, is
        found; the same random bytes alone, and the subject's identifiers inside base64 or hex, are not."""
        crowd = people(12)
        scanner = Scanner(n for p in crowd for n in needles(p))
        short = next(p for p in crowd if sum(c.isalpha() for c in p.first_name) < WORD_ALONE_LETTERS)
        for what, data in planted(short):
            scratch = tmp_path / f"scratch-{what}.bin"
            scratch.write_bytes(data)
            found = {(h.needle.who, h.needle.what) for h in scanner.scan_tree(tmp_path, "scratch")}
            assert (short.index, what) in found, what
            scratch.unlink()
        noise = random.Random(8)
        pad = bytes(noise.getrandbits(8) for _ in range(1 << 16))
        encoded = base64.b64encode(pad[:999]).replace(b"A", short.first_name.encode()) + pad[:64].hex().encode() \
            + short.pesel.encode() + b"0"
        assert scanner.scan(pad + encoded, "noise") == []


@pytest.mark.slow
class TestNoLeaksEndToEnd:
    """A real ``tarcza serve`` after a 200-subject HTTP scenario."""

    def test_no_identifier_in_clear_anywhere(self, tarcza_server: TarczaServer, tmp_path: Path) -> None:
        """No identifier of 200 subjects is in clear in the data directory (WAL included), the server's log
        output, its temporary directory or a database dump; the exports held them and are gone."""
        server = tarcza_server
        server.env["TARCZA_LOG_LEVEL"] = "DEBUG"  # the most the server ever logs
        crowd = people(SUBJECTS)
        scanner = Scanner(n for p in crowd for n in needles(p))
        scratch = tmp_path / "planted"  # the scanner can fail, on these very needles
        scratch.mkdir()
        kinds = set()
        for n, (what, data) in enumerate(planted(crowd[0])):
            (scratch / f"{n}.bin").write_bytes(data)
            kinds.add(what)
        assert {h.needle.what for h in scanner.scan_tree(scratch, "planted") if h.needle.who == 0} == kinds
        shutil.rmtree(scratch)
        archives = tmp_path / "received"
        archives.mkdir(mode=0o700)
        server.start()
        run_scenario(server, crowd, archives, scanner)

        hits: list[Hit] = []
        if server.backend == "sqlite":
            assert (server.data_dir / "tarcza.db-wal").exists(), "the running server has no WAL to scan"
            hits += scanner.scan_tree(server.data_dir, "data-dir (running)")
        server.stop()
        assert server.output.stat().st_size > 0
        files = {p.relative_to(server.data_dir).as_posix() for p in server.data_dir.rglob("*") if p.is_file()}
        assert sum(f.startswith("blobs/") for f in files) == RECORDINGS
        hits += scanner.scan_tree(server.data_dir, "data-dir")
        hits += scanner.scan_all(server.output.read_bytes(), "server output")
        hits += scanner.scan_tree(server.tmp_dir, "server TMPDIR")
        dump = database_dump(server, tmp_path / "dump.sql")
        assert b"audit_entries" in dump
        hits += scanner.scan_all(dump, f"{server.backend} dump")
        assert not list(server.tmp_dir.rglob("*.zip")), "the server kept an export archive"
        assert not list(archives.iterdir())
        assert hits == [], "identifiers in clear:\n" + "\n".join(str(h) for h in hits[:40])
