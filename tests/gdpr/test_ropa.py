"""Tests of gdpr.ropa: the Art. 30(1) record is generated from the policy files, names what they hold,
fingerprints them, and renders in Polish and English without letting markup through."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from core.errors import ConfigurationError, InvalidInputError
from gdpr.legal_texts import LEGAL_BASES, RECIPIENTS
from gdpr.retention import DATA_CATEGORIES, DEFAULT_RETENTION_PATH
from gdpr.ropa import ROPA_FORMAT, Controller, ProcessingRecord, build_record, render_html
from gdpr.ropa_processing import DEFAULT_PROCESSING_PATH
from policies.engine import PARAMETERS_FILE, POLICY_DIR
from vault.fields import DEFAULT_CATALOGUE_PATH, load_catalogue
from vault.models import SUBJECT_KINDS

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
AUTHORISATION_PATH = POLICY_DIR / PARAMETERS_FILE
FIRM = Controller(name="Windykacja Przykład sp. z o.o.", address="ul. Przykładowa 1, 00-001 Warszawa",
                  contact="biuro@example.pl, +48 22 000 00 00", dpo_contact="iod@example.pl")


def _record(**paths: Path) -> ProcessingRecord:
    return build_record(FIRM, generated_at=NOW, **paths)


def _copy_with(tmp_path: Path, source: Path, extra: str) -> Path:
    target = tmp_path / source.name
    target.write_text(source.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return target


class TestBuildRecord:
    def test_names_every_data_category_of_the_field_catalogue(self) -> None:
        """Every data category of fields.yaml is in the record with exactly the catalogue's fields in it."""
        catalogue = load_catalogue()
        record = _record()
        by_name = {entry.name: entry for entry in record.data_categories}
        for spec in catalogue.fields.values():
            assert spec.name in by_name[spec.data_category].fields
        for name in {spec.data_category for spec in catalogue.fields.values()}:
            expected = tuple(spec.name for spec in catalogue.fields.values() if spec.data_category == name)
            assert by_name[name].fields == expected

    def test_every_purpose_of_the_policy_has_a_legal_basis(self) -> None:
        """Each purpose of authorisation.yaml appears, in order, with an English and a Polish legal basis."""
        purposes = yaml.safe_load(AUTHORISATION_PATH.read_text(encoding="utf-8"))["purposes"]
        record = _record()
        assert [p.purpose for p in record.purposes] == list(purposes)
        for entry in record.purposes:
            assert entry.description == purposes[entry.purpose]
            assert entry.legal_basis == LEGAL_BASES[entry.purpose].en
            assert entry.legal_basis_pl == LEGAL_BASES[entry.purpose].pl
            assert entry.description_pl

    def test_purpose_without_a_legal_basis_is_refused(self, tmp_path: Path) -> None:
        """A purpose added to the policy without a legal basis makes the record fail rather than leave a gap."""
        text = AUTHORISATION_PATH.read_text(encoding="utf-8").replace(
            "\npurposes:\n", "\npurposes:\n  marketing: offering other products to the subject\n", 1)
        path = tmp_path / PARAMETERS_FILE
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigurationError, match="marketing"):
            _record(purposes=path)

    def test_names_the_vaults_kinds_of_data_subject(self) -> None:
        """The categories of data subjects are the vault's subject kinds: debtors and third parties."""
        record = _record()
        assert tuple(s.kind for s in record.data_subjects) == SUBJECT_KINDS
        assert all(s.description and s.description_pl for s in record.data_subjects)

    def test_retention_covers_every_schedule_with_its_basis(self) -> None:
        """Each schedule of retention.yaml gives the record its period, starting event and basis."""
        schedules = yaml.safe_load(DEFAULT_RETENTION_PATH.read_text(encoding="utf-8"))["schedules"]
        record = _record()
        assert tuple(r.data_category for r in record.retention) == DATA_CATEGORIES
        for entry in record.retention:
            assert entry.basis == schedules[entry.data_category]["basis"]
            assert entry.starts_from == schedules[entry.data_category]["starts_from"]
        recordings = next(r for r in record.retention if r.data_category == "recordings")
        assert (recordings.period, recordings.period_pl) == ("2 years", "2 lata")

    def test_recipients_and_no_third_country_transfers(self) -> None:
        """The recipients are the GDPR service's categories, each in Polish too, and no transfer is stated."""
        record = _record()
        assert tuple(r.description for r in record.recipients) == RECIPIENTS
        assert all(r.description_pl for r in record.recipients)
        assert record.third_country_transfers == ()
        assert record.transfers_statement.startswith("None.")

    def test_security_measures_take_their_numbers_from_the_policy(self, tmp_path: Path) -> None:
        """The second-factor age stated among the measures is the one authorisation.yaml sets."""
        text = AUTHORISATION_PATH.read_text(encoding="utf-8").replace(
            "second_factor_max_age_minutes: 10", "second_factor_max_age_minutes: 7")
        path = tmp_path / PARAMETERS_FILE
        path.write_text(text, encoding="utf-8")
        [auth] = [m for m in _record(purposes=path).security_measures if m.code == "authentication"]
        assert "within the last 7 minutes" in auth.description
        assert "ostatnich 7 minut" in auth.description_pl

    def test_records_the_sha256_of_each_policy_file(self) -> None:
        """The record names the four policy files with the SHA-256 of their bytes."""
        record = _record()
        for path in (DEFAULT_CATALOGUE_PATH, AUTHORISATION_PATH, DEFAULT_RETENTION_PATH, DEFAULT_PROCESSING_PATH):
            assert record.source_sha256(path.name) == hashlib.sha256(path.read_bytes()).hexdigest()

    @pytest.mark.parametrize(("argument", "source"), [
        ("catalogue", DEFAULT_CATALOGUE_PATH), ("purposes", AUTHORISATION_PATH), ("retention", DEFAULT_RETENTION_PATH),
        ("processing", DEFAULT_PROCESSING_PATH),
    ])
    def test_changing_a_policy_file_changes_its_sha256(self, tmp_path: Path, argument: str, source: Path) -> None:
        """A change to one file's content, even a comment, changes that file's SHA-256 and no other."""
        before = _record()
        after = _record(**{argument: _copy_with(tmp_path, source, "# changed\n")})
        changed = {s.file for s in before.sources} - {s.file for s in after.sources if s in before.sources}
        assert changed == {source.name}
        assert after.source_sha256(source.name) != before.source_sha256(source.name)

    def test_unreadable_policy_file_is_a_configuration_error(self, tmp_path: Path) -> None:
        """A missing policy file is refused with ConfigurationError naming it."""
        with pytest.raises(ConfigurationError, match="cannot be read"):
            _record(retention=tmp_path / "missing.yaml")

    def test_naive_generation_time_is_refused(self) -> None:
        """generated_at must be timezone-aware."""
        with pytest.raises(InvalidInputError):
            build_record(FIRM, generated_at=datetime(2026, 11, 23, 9, 0))  # noqa: DTZ001 - naive on purpose


class TestController:
    def test_blank_name_is_refused(self) -> None:
        """A controller without a name cannot head a record."""
        with pytest.raises(InvalidInputError, match="name"):
            Controller(name="  ", address="ul. Przykładowa 1", contact="biuro@example.pl")

    def test_data_protection_officer_is_optional(self) -> None:
        """A firm that appointed no DPO still gets a record, which says so."""
        firm = Controller(name="Mała Firma", address="ul. Krótka 2", contact="biuro@example.pl")
        html = render_html(build_record(firm, generated_at=NOW))
        assert "nie wyznaczono" in html
        assert "not appointed" in html


class TestToJson:
    def test_document_has_its_format_and_is_stable(self) -> None:
        """Two records built from the same files at the same time serialise to the same bytes."""
        first, second = _record().to_json(), _record().to_json()
        assert first["format"] == ROPA_FORMAT
        assert first["generated_at"] == "2026-11-23T09:00:00.000000Z"
        assert json.dumps(first, sort_keys=False) == json.dumps(second, sort_keys=False)

    def test_document_lists_every_section_of_article_30(self) -> None:
        """The document holds the controller, purposes, subjects, data, recipients, transfers, joint controllers,
        retention, measures, the Art. 30(2) record, the registers and sources."""
        document = _record().to_json()
        assert list(document) == ["format", "generated_at", "controller", "purposes", "data_subjects",
                                  "data_categories", "recipients", "transfers", "joint_controllers", "retention",
                                  "retention_rules", "retention_rules_pl", "security_measures", "processor_record",
                                  "registers", "sources"]
        assert document["controller"]["dpo_contact"] == "iod@example.pl"
        assert document["transfers"]["third_countries"] == []


class TestRenderHtml:
    def test_page_has_a_polish_and_an_english_section(self) -> None:
        """The page holds one section per language, each with its own headings."""
        html = render_html(_record())
        assert '<section lang="pl" id="pl"' in html
        assert '<section lang="en" id="en"' in html
        assert "Rejestr czynności przetwarzania" in html
        assert "Record of processing activities" in html
        assert "Kategorie osób, których dane dotyczą" in html
        assert "Categories of data subjects" in html

    def test_malicious_controller_name_is_escaped(self) -> None:
        """Markup in the controller's name is shown as text, never interpreted."""
        firm = Controller(name='<script>alert("x")</script><img src=x onerror=alert(1)>', address="ul. A 1",
                          contact="biuro@example.pl")
        html = render_html(build_record(firm, generated_at=NOW))
        assert "<script" not in html
        assert "<img" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html

    def test_page_loads_nothing_from_outside(self) -> None:
        """No script, no external stylesheet or image: the page stands alone."""
        html = render_html(_record())
        assert "<script" not in html
        assert "<link" not in html
        assert "src=" not in html
        assert "default-src 'none'" in html

    def test_page_shows_every_file_hash(self) -> None:
        """Each policy file's SHA-256 is printed on the page."""
        record = _record()
        html = render_html(record)
        for source in record.sources:
            assert source.sha256 in html


PROCESSING_WITH_TRANSFER = """version: 1
third_country_transfers:
  - recipient: "Przykładowa Chmura Inc."
    country: "United States"
    data_categories: [contact, notes]
    safeguard: "standard contractual clauses (Commission Implementing Decision (EU) 2021/914)"
    article: "Art. 46(2)(c)"
joint_controllers:
  - name: "Przykładowy Fundusz NSFIZ"
    subject_matter: "collection of the receivables the fund bought, serviced by the firm"
    arrangement: "Art. 26 arrangement: the firm answers data subject requests"
processor_processing:
  - {code: contact, en: "contacting the controller's debtors", pl: "kontakt z dłużnikami administratora"}
"""
REGISTERS = {
    "recipients": [{"kind": "debt_register", "name": "BIG InfoMonitor S.A.", "subjects": 3}],
    "notices": {"open": 2, "overdue": 1, "given": 5, "exempt": 0},
    "notifications": {"pending": 1, "notified": 4, "impossible": 0, "disproportionate": 0},
    "processor_for": [{"controller": "Przykładowy Bank S.A.", "debts": 12}],
}


class TestTransfersJointControllersAndProcessorRecord:
    def test_transfers_joint_controllers_and_the_art_30_2_record(self, tmp_path: Path) -> None:
        """GDPR Art. 30(1)(e) with Art. 46, Art. 26 and Art. 30(2): a transfer with its safeguard, a joint controller
        with the arrangement, and the record of processing done for a creditor as processor appear in the document and
        in both languages of the page; the registers' facts (Art. 14 notices, Art. 19 recipients) are in it too."""
        path = tmp_path / "processing.yaml"
        path.write_text(PROCESSING_WITH_TRANSFER, encoding="utf-8")
        built = build_record(FIRM, generated_at=NOW, processing=path, registers=REGISTERS)
        document = built.to_json()
        assert document["transfers"]["third_countries"][0]["article"] == "Art. 46(2)(c)"
        assert not document["transfers"]["statement"].startswith("None")
        assert document["joint_controllers"][0]["name"] == "Przykładowy Fundusz NSFIZ"
        assert document["processor_record"]["controllers"] == [{"controller": "Przykładowy Bank S.A.", "debts": 12}]
        assert document["registers"]["notices"]["overdue"] == 1
        assert document["registers"]["recipients"][0]["name"] == "BIG InfoMonitor S.A."
        page = render_html(built)
        for text in ("Przykładowa Chmura Inc.", "Art. 46(2)(c)", "Przykładowy Fundusz NSFIZ", "Przykładowy Bank S.A.",
                     "BIG InfoMonitor S.A.", "art. 30 ust. 2", "Art. 30(2)", "art. 14", "Art. 14"):
            assert text in page, text

    def test_transfer_without_its_safeguard_article_is_refused(self, tmp_path: Path) -> None:
        """A transfer must name the article of its safeguard; a file that does not is a configuration error."""
        path = tmp_path / "processing.yaml"
        path.write_text(PROCESSING_WITH_TRANSFER.replace('article: "Art. 46(2)(c)"', 'article: "contract"'),
                        encoding="utf-8")
        with pytest.raises(ConfigurationError, match="third_country_transfers"):
            _record(processing=path)
