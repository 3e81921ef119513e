"""The subject export archive: built from synthetic data with a real audit-log export, verified offline."""

from __future__ import annotations

import hashlib
import json
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from faker import Faker

from audit.checkpoint import Signer
from audit.events import Actor, ActorKind
from audit.export import export_log
from audit.repository import EntryFilter
from audit.sequencer import Receipt
from audit.service import AuditLog
from audit.verify import verify_export
from core import migrate
from core.clock import FixedClock
from core.db import make_engine
from core.errors import InvalidInputError
from gdpr.archive import ExportBuildError, build_archive
from gdpr.export import SUBJECT_EXPORT_FORMAT, ArchiveVerificationError, verify_archive
from gdpr.export_data import (
    ErasureInfo,
    ExportContact,
    ExportContents,
    ExportDebt,
    ExportRecording,
    ExportRetention,
    subject_data,
)
from gdpr.legal_texts import LEGAL_BASES, purposes_from_policy
from gdpr.redaction import redact_third_parties
from gdpr.report import render_report
from vault.detect import PiiDetector
from vault.validators import canonical_or_none

SUBJECT = "sub_EXPORTSUBJECT01"
OTHER = "sub_OTHERSUBJECT001"
AGENT = Actor(id="agent-7", kind=ActorKind.USER)
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
RECORDING = bytes(range(256)) * 300  # 76.8 kB of "audio"
RECORDING_SHA = hashlib.sha256(RECORDING).hexdigest()
POLICY = Path(__file__).resolve().parents[2] / "policies" / "authorisation.yaml"


@dataclass(frozen=True)
class Logged:
    """A small audit log's exports: the subject's entries (proofs layout) and its first three (range layout)."""

    log_dir: Path
    range_dir: Path
    signer: Signer
    contacts: tuple[Receipt, ...]
    recording: Receipt


def _contact(log: AuditLog, event_type: str, subject: str, channel: str) -> Receipt:
    return log.record(event_type, actor=AGENT, subject=subject,
                      payload={"channel": channel, "direction": "outbound", "agent_id": AGENT.id, "outcome": "ok"})


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Logged:
    base = tmp_path_factory.mktemp("audit")
    engine = make_engine(f"sqlite:///{base / 'audit.db'}")
    migrate.upgrade(engine)
    signer = Signer.generate("tarcza/test-log")
    log = AuditLog(engine, signer, clock=FixedClock(NOW), checkpoint_every_entries=10_000)
    try:
        contacts = (_contact(log, "contact.attempted", SUBJECT, "phone"),
                    _contact(log, "contact.completed", SUBJECT, "sms"),
                    _contact(log, "contact.visit", SUBJECT, "visit"))
        _contact(log, "contact.attempted", OTHER, "phone")
        recording = log.record("recording.stored", actor=AGENT, subject=SUBJECT, payload={
            "recording_id": "rec-0001", "sha256": RECORDING_SHA, "size": len(RECORDING), "media_type": "audio/wav"})
        for subject in (OTHER, SUBJECT):
            log.record("vault.access", actor=AGENT, subject=subject,
                       payload={"fields": ["phone"], "purpose": "debt_collection", "decision": "allow"})
        log.issue_checkpoint()
        export_log(log, base / "log", EntryFilter(subject=SUBJECT))
        export_log(log, base / "range", EntryFilter(subject=SUBJECT, end=3))
    finally:
        log.close()
        engine.dispose()
    return Logged(base / "log", base / "range", signer, contacts, recording)


def _fake() -> Faker:
    fake = Faker("pl_PL")
    fake.seed_instance(2026)
    return fake


def _valid_phone(fake: Faker) -> str:
    for _ in range(200):
        phone = str(fake.phone_number())
        if canonical_or_none("phone", phone) is not None:
            return phone
    raise AssertionError("Faker gave no valid Polish phone number")


def _chunks(data: bytes, size: int = 10_000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def make_contents(logged: Logged, **changes: Any) -> ExportContents:
    """Synthetic contents (Faker pl_PL) whose contacts and recording are the logged ones."""
    fake = _fake()
    fields = {"first_name": [fake.first_name()], "last_name": [fake.last_name()], "pesel": [fake.pesel()],
              "phone": [str(canonical_or_none("phone", _valid_phone(fake)))],
              "email": [f"{fake.user_name()}@example.com"], "address": [fake.address().replace("\n", ", ")]}
    types = ("contact.attempted", "contact.completed", "contact.visit")
    channels = ("phone", "sms", "visit")
    contacts = [ExportContact(log_index=r.index, event_id=r.event_id, event_type=t, time=NOW - timedelta(days=i),
                              channel=c, direction="outbound", outcome="ok", agent_id=AGENT.id, debt_id="debt-1",
                              note="Dłużnik obiecał wpłatę." if c == "visit" else None,
                              gps="52.229700,21.012200" if c == "visit" else None, decision="allowed")
                for i, (r, t, c) in enumerate(zip(logged.contacts, types, channels, strict=True))]
    contents = ExportContents(
        subject=SUBJECT, subject_kind="debtor", status="active", generated_at=NOW, request_id="dsr-0001",
        fields=fields, contacts=contacts,
        recordings=[ExportRecording(recording_id="rec-0001", sha256=RECORDING_SHA, size=len(RECORDING),
                                    created_at=NOW, media_type="audio/wav", duration_ms=125_000,
                                    log_index=logged.recording.index, open=lambda: _chunks(RECORDING))],
        debts=[ExportDebt(id="debt-1", creditor=fake.company(), assigned_on=date(2025, 5, 1), kind="general",
                          consumer=True, amount_minor=1_234_567, currency="PLN", due_date=date(2024, 1, 31),
                          status="open", time_barred_on=date(2030, 12, 31))],
        purposes=purposes_from_policy({"debt_collection": "collecting a debt from the subject"}),
        recipients=["Poczta Polska S.A. (letters)"],
        retention=[ExportRetention(data_category="contact", period="6 years after the debt is settled",
                                   basis="Civil Code Art. 118")],
    )
    return replace(contents, **changes)


def rewrite(src: Path, dst: Path, change: Callable[[str, bytes], bytes | None] = lambda _n, d: d, *,
            add: dict[str, bytes] | None = None, rehash: bool = False) -> Path:
    """Copy an archive, changing or dropping entries, adding some, and optionally re-hashing the manifest."""
    with zipfile.ZipFile(src) as zin:
        files = {info.filename: change(info.filename, zin.read(info.filename)) for info in zin.infolist()}
    kept = {name: data for name, data in files.items() if data is not None} | (add or {})
    if rehash:
        manifest = json.loads(kept["manifest.json"])
        for name in manifest["files"]:
            if name in kept:
                manifest["files"][name] = {"sha256": hashlib.sha256(kept[name]).hexdigest(), "size": len(kept[name])}
        kept["manifest.json"] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in kept.items():
            zout.writestr(name, data)
    return dst


def flip(position: int) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        out = bytearray(data)
        out[position] ^= 0x01
        return bytes(out)
    return change


@pytest.fixture
def archive(logged: Logged, tmp_path: Path) -> Path:
    """A signed archive of the default contents, without recordings."""
    out = tmp_path / "export.zip"
    build_archive(make_contents(logged), logged.log_dir, out, signer=logged.signer)
    return out


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector()


class TestRedactThirdParties:
    def test_own_phone_is_kept_and_third_party_pesel_redacted(self, detector: PiiDetector) -> None:
        """A note keeps the subject's own phone (spelled differently) and redacts a third party's PESEL."""
        fake = _fake()
        own_phone = _valid_phone(fake)
        own = {"phone": [str(canonical_or_none("phone", own_phone))], "pesel": [fake.pesel()]}
        other_pesel = fake.pesel()
        assert other_pesel != own["pesel"][0]
        note = f"Dłużnik podał numer {own_phone}. Sąsiad, PESEL {other_pesel}, odebrał list."
        redacted = redact_third_parties(note, own, detector)
        assert own_phone in redacted
        assert other_pesel not in redacted
        assert "[redacted: PESEL]" in redacted

    def test_own_names_and_canonical_email_are_kept(self, detector: PiiDetector) -> None:
        """The subject's own name, PESEL and e-mail (domain in other case) stay; another e-mail goes."""
        fake = _fake()
        first, last, pesel = fake.first_name(), fake.last_name(), fake.pesel()
        own = {"first_name": [first], "last_name": [last], "pesel": [pesel], "email": ["Anna.K@example.com"]}
        note = f"{first} {last} (PESEL {pesel}) pisze z Anna.K@EXAMPLE.COM, kopia do obcy.adres@example.org."
        redacted = redact_third_parties(note, own, detector)
        assert redacted == (f"{first} {last} (PESEL {pesel}) pisze z Anna.K@EXAMPLE.COM, kopia do "
                            "[redacted: EMAIL].")


class TestBuildArchive:
    def test_archive_holds_the_format_and_verifies(self, logged: Logged, archive: Path) -> None:
        """The archive lists its files in a fixed order, is 0600, and verifies against the log's key."""
        result = verify_archive(archive, trusted_key=logged.signer.verifier().to_string(), require_signature=True)
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            manifest = json.loads(zf.read("manifest.json"))
            data = json.loads(zf.read("data.json"))
        log_names = sorted(p.name for p in logged.log_dir.iterdir())
        assert names == ["data.json", "report.html", *[f"log/{n}" for n in log_names], "manifest.json",
                         "manifest.sig"]
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600
        assert (data["format"], manifest["format"], manifest["subject"]) == (SUBJECT_EXPORT_FORMAT,) * 2 + (SUBJECT,)
        assert manifest["log"]["entries"] == [r.index for r in logged.contacts] + [4, 6]
        assert manifest["log"]["checkpoint"] == (logged.log_dir / "checkpoint.txt").read_text()
        assert (result.signed, result.log_entries, result.contacts_backed, result.tree_size) == (True, 5, 3, 7)

    def test_summary_hashes_match_the_archive(self, logged: Logged, tmp_path: Path) -> None:
        """The summary gives the zip's SHA-256 and the per-file digests written to the manifest."""
        out = tmp_path / "a.zip"
        summary = build_archive(make_contents(logged), logged.log_dir, out)
        with zipfile.ZipFile(out) as zf:
            manifest = json.loads(zf.read("manifest.json"))
        assert summary.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
        assert {n: {"sha256": d.sha256, "size": d.size} for n, d in summary.files.items()} == manifest["files"]
        assert not summary.signed
        assert list(tmp_path.iterdir()) == [out]

    def test_same_contents_give_the_same_bytes(self, logged: Logged, tmp_path: Path) -> None:
        """Building twice from the same contents and log export gives byte-identical archives."""
        first = build_archive(make_contents(logged), logged.log_dir, tmp_path / "1.zip", include_recordings=True)
        second = build_archive(make_contents(logged), logged.log_dir, tmp_path / "2.zip", include_recordings=True)
        assert first.sha256 == second.sha256

    def test_recordings_are_streamed_in_when_asked(self, logged: Logged, tmp_path: Path) -> None:
        """With include_recordings the recording is in recordings/ as given, and named in data.json."""
        out = tmp_path / "r.zip"
        build_archive(make_contents(logged), logged.log_dir, out, include_recordings=True)
        with zipfile.ZipFile(out) as zf:
            assert zf.read("recordings/rec-0001.wav") == RECORDING
            assert json.loads(zf.read("data.json"))["recordings"][0]["file"] == "recordings/rec-0001.wav"
        assert verify_archive(out).recordings == 1

    def test_recording_that_differs_from_its_log_entry_is_refused(self, logged: Logged, tmp_path: Path) -> None:
        """A recording whose bytes do not match its logged SHA-256 stops the build and leaves no file."""
        contents = make_contents(logged)
        bad = replace(contents.recordings[0], open=lambda: _chunks(RECORDING[:-1] + b"\x00"))
        with pytest.raises(ExportBuildError, match="rec-0001"):
            build_archive(replace(contents, recordings=[bad]), logged.log_dir, tmp_path / "x.zip",
                          include_recordings=True)
        assert list(tmp_path.iterdir()) == []

    def test_contact_missing_from_the_log_is_refused(self, logged: Logged, tmp_path: Path) -> None:
        """A contact naming a log index the log export lacks (or with no log at all) is refused."""
        contents = make_contents(logged)
        stray = replace(contents.contacts[0], log_index=3)  # the other subject's entry: not exported
        with pytest.raises(ExportBuildError, match="log entry 3"):
            build_archive(replace(contents, contacts=[stray]), logged.log_dir, tmp_path / "x.zip")
        with pytest.raises(ExportBuildError):
            build_archive(contents, None, tmp_path / "y.zip")

    def test_range_layout_log_export_is_accepted(self, logged: Logged, tmp_path: Path) -> None:
        """A log export in the range layout backs the contacts as well as the proofs layout does."""
        contents = make_contents(logged, recordings=[])
        out = tmp_path / "range.zip"
        build_archive(contents, logged.range_dir, out)
        assert verify_archive(out).log_entries == 3

    def test_subject_without_log_entries_builds_without_log(self, logged: Logged, tmp_path: Path) -> None:
        """Contents naming no log index can be exported without a log part."""
        contents = make_contents(logged, contacts=[], recordings=[])
        out = tmp_path / "nolog.zip"
        build_archive(contents, None, out)
        result = verify_archive(out)
        assert (result.log_entries, result.tree_size) == (0, None)

    def test_shredded_subject_with_values_is_refused(self, logged: Logged, tmp_path: Path) -> None:
        """A shredded subject cannot carry field values into an export."""
        with pytest.raises(InvalidInputError):
            build_archive(make_contents(logged, status="shredded"), logged.log_dir, tmp_path / "x.zip")

    def test_unsafe_recording_id_is_refused(self, logged: Logged, tmp_path: Path) -> None:
        """A recording id that is not a plain file name never becomes a path in the archive."""
        contents = make_contents(logged)
        bad = replace(contents.recordings[0], recording_id="../../etc/passwd", log_index=None)
        with pytest.raises(InvalidInputError):
            build_archive(replace(contents, recordings=[bad]), logged.log_dir, tmp_path / "x.zip",
                          include_recordings=True)


class TestVerifyArchive:
    def test_changed_byte_of_data_json_is_named(self, archive: Path, tmp_path: Path) -> None:
        """One changed byte of data.json fails verification naming data.json."""
        bad = rewrite(archive, tmp_path / "bad.zip", lambda n, d: flip(40)(d) if n == "data.json" else d)
        with pytest.raises(ArchiveVerificationError) as caught:
            verify_archive(bad)
        assert caught.value.file == "data.json"

    def test_removed_file_is_named(self, archive: Path, tmp_path: Path) -> None:
        """A file listed in the manifest but missing from the archive fails verification, named."""
        bad = rewrite(archive, tmp_path / "bad.zip", lambda n, d: None if n == "report.html" else d)
        with pytest.raises(ArchiveVerificationError) as caught:
            verify_archive(bad)
        assert caught.value.file == "report.html"

    def test_added_file_is_named(self, archive: Path, tmp_path: Path) -> None:
        """A file in the archive that the manifest does not list fails verification, named."""
        bad = rewrite(archive, tmp_path / "bad.zip", add={"recordings/extra.wav": b"RIFF"})
        with pytest.raises(ArchiveVerificationError) as caught:
            verify_archive(bad)
        assert caught.value.file == "recordings/extra.wav"

    def test_altered_log_entry_is_named(self, archive: Path, tmp_path: Path) -> None:
        """A changed log entry fails verification naming log/entries.jsonl."""
        bad = rewrite(archive, tmp_path / "bad.zip",
                      lambda n, d: d.replace(b'"sms"', b'"tel"') if n == "log/entries.jsonl" else d)
        with pytest.raises(ArchiveVerificationError) as caught:
            verify_archive(bad)
        assert caught.value.file == "log/entries.jsonl"

    def test_log_entry_altered_with_manifest_rehashed_fails_the_proofs(self, archive: Path, tmp_path: Path) -> None:
        """Re-hashing the manifest after changing a log entry does not help: its proof no longer verifies."""
        bad = rewrite(archive, tmp_path / "bad.zip", lambda n, d: (
            d.replace(b'"sms"', b'"tel"') if n == "log/entries.jsonl" else None if n == "manifest.sig" else d),
            rehash=True)
        with pytest.raises(ArchiveVerificationError, match="entry 1") as caught:
            verify_archive(bad)
        assert caught.value.file == "log/entries.jsonl"

    def test_contact_not_in_the_log_fails_even_when_rehashed(self, archive: Path, tmp_path: Path) -> None:
        """A contact rewritten in data.json (manifest re-hashed, unsigned) is not backed by the log."""
        def change(name: str, data: bytes) -> bytes | None:
            if name == "manifest.sig":
                return None
            if name != "data.json":
                return data
            value = json.loads(data)
            value["contacts"][1]["event_type"] = "contact.received"
            return json.dumps(value).encode()

        with pytest.raises(ArchiveVerificationError, match=r"contacts\[1\]") as caught:
            verify_archive(rewrite(archive, tmp_path / "bad.zip", change, rehash=True))
        assert caught.value.file == "data.json"

    def test_signed_manifest_detects_a_consistent_rewrite(self, archive: Path, tmp_path: Path) -> None:
        """With manifest.sig, rewriting data.json and the manifest together fails on the signature."""
        bad = rewrite(archive, tmp_path / "bad.zip",
                      lambda n, d: d.replace(b"debt-1", b"debt-9") if n == "data.json" else d, rehash=True)
        with pytest.raises(ArchiveVerificationError) as caught:
            verify_archive(bad)
        assert caught.value.file == "manifest.sig"

    def test_unsigned_archive_fails_when_a_signature_is_required(self, archive: Path, tmp_path: Path) -> None:
        """An archive stripped of manifest.sig passes only if no signature is required."""
        bad = rewrite(archive, tmp_path / "bad.zip", lambda n, d: None if n == "manifest.sig" else d)
        assert not verify_archive(bad).signed
        with pytest.raises(ArchiveVerificationError) as caught:
            verify_archive(bad, require_signature=True)
        assert caught.value.file == "manifest.sig"

    def test_other_log_key_is_refused(self, archive: Path) -> None:
        """An archive whose log is not signed by the trusted key fails verification."""
        other = Signer.generate("tarcza/test-log").verifier().to_string()
        with pytest.raises(ArchiveVerificationError):
            verify_archive(archive, trusted_key=other)

    def test_not_a_zip_is_refused(self, tmp_path: Path) -> None:
        """A file that is not a zip archive fails verification, named."""
        path = tmp_path / "junk.zip"
        path.write_bytes(b"not a zip")
        with pytest.raises(ArchiveVerificationError) as caught:
            verify_archive(path)
        assert caught.value.file == "junk.zip"

    def test_embedded_log_export_verifies_on_its_own(self, archive: Path, tmp_path: Path) -> None:
        """The log/ part extracted from the archive is a complete audit export for `tarcza audit verify`."""
        target = tmp_path / "log"
        target.mkdir()
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.startswith("log/"):
                    (target / name[4:]).write_bytes(zf.read(name))
        assert verify_export(target, check_events=True).entries == 5


class TestReport:
    def test_report_has_polish_and_english_sections(self, logged: Logged) -> None:
        """The report holds a lang="pl" and a lang="en" section, with the rights and the UODO complaint."""
        report = render_report(subject_data(make_contents(logged)))
        assert '<section lang="pl"' in report
        assert '<section lang="en"' in report
        assert "Prezesa Urzędu Ochrony Danych Osobowych" in report
        assert "Personal Data Protection Office" in report
        assert re.search(r'<th scope="(col|row)"', report)

    def test_malicious_field_value_is_escaped(self, logged: Logged) -> None:
        """A field or note holding markup is shown as text: no script, no element of its own."""
        contents = make_contents(logged)
        evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
        contents = replace(contents, fields={**contents.fields, "first_name": [evil]},
                           contacts=[replace(contents.contacts[0], note=evil)])
        report = render_report(subject_data(contents))
        assert "<script" not in report.lower()
        assert "<img" not in report.lower()
        assert "&lt;script&gt;" in report

    def test_report_loads_nothing_from_outside(self, logged: Logged) -> None:
        """The report has no script, no external link or resource, and its CSS is embedded."""
        report = render_report(subject_data(make_contents(logged)))
        assert not re.search(r"<(script|link|iframe|object|embed|img)\b", report, re.IGNORECASE)
        assert not re.search(r'\b(src|href|action)\s*=\s*"(?!#)', report)
        assert "default-src 'none'" in report

    def test_shredded_subject_report_says_so(self, logged: Logged) -> None:
        """For a shredded subject the report says the data was erased and names the tombstone entry."""
        contents = make_contents(logged, status="shredded", fields={}, shredded_at=NOW,
                                 erasure=ErasureInfo(erased_at=NOW, tombstone_log_index=6))
        report = render_report(subject_data(contents))
        assert "zostały usunięte" in report
        assert "has been erased" in report


class TestPurposes:
    def test_every_policy_purpose_has_a_legal_basis(self) -> None:
        """Each purpose of policies/authorisation.yaml maps to a legal basis citing the GDPR."""
        purposes = yaml.safe_load(POLICY.read_text(encoding="utf-8"))["purposes"]
        entries = purposes_from_policy(purposes)
        assert [p.purpose for p in entries] == list(purposes)
        assert set(purposes) <= set(LEGAL_BASES)
        for entry in entries:
            assert "Art. 6(1)" in entry.legal_basis
            assert entry.legal_basis_pl is not None
            assert "art. 6 ust. 1" in entry.legal_basis_pl

    def test_purpose_without_legal_basis_is_refused(self) -> None:
        """A purpose with no legal basis in the table cannot go into an export."""
        with pytest.raises(InvalidInputError, match="marketing"):
            purposes_from_policy({"marketing": "selling things"})
