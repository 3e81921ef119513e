"""Tests of vault.fields: the packaged catalogue, its validation, and the cached loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.errors import ConfigurationError
from vault.errors import InvalidFieldValueError
from vault.fields import DEFAULT_CATALOGUE_PATH, FieldCatalogue, catalogue_from_yaml, load_catalogue
from vault.masking import STRATEGIES
from vault.validators import KINDS

FIELDS = {
    "first_name",
    "last_name",
    "pesel",
    "nip",
    "regon",
    "id_card",
    "passport",
    "date_of_birth",
    "address",
    "phone",
    "email",
    "iban",
    "employer",
    "note",
    "gps",
}
BLIND_INDEXED = {"first_name", "last_name", "pesel", "nip", "regon", "id_card", "passport", "phone", "email", "iban"}
ROLES = {"admin", "dpo", "compliance_officer", "auditor", "collector", "field_agent"}


def _packaged_document() -> dict[str, Any]:
    document = yaml.safe_load(DEFAULT_CATALOGUE_PATH.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _parse(document: dict[str, Any]) -> FieldCatalogue:
    return catalogue_from_yaml(yaml.safe_dump(document), source="test")


@pytest.fixture(scope="module")
def catalogue() -> FieldCatalogue:
    return load_catalogue()


class TestPackagedCatalogue:
    def test_lists_every_field(self, catalogue: FieldCatalogue) -> None:
        """The packaged catalogue declares exactly the fifteen fields of the vault."""
        assert set(catalogue.names()) == FIELDS

    def test_blind_indexed_fields(self, catalogue: FieldCatalogue) -> None:
        """Names, identifiers, phone, e-mail and IBAN are searchable; nothing else is."""
        assert set(catalogue.blind_indexed()) == BLIND_INDEXED

    def test_roles(self, catalogue: FieldCatalogue) -> None:
        """The mask table covers the six roles."""
        assert set(catalogue.roles) == ROLES

    def test_kinds_and_masks_are_known(self, catalogue: FieldCatalogue) -> None:
        """Every field names a validator kind and a masking strategy that exist."""
        for name in catalogue.names():
            spec = catalogue.get(name)
            assert spec.name == name
            assert spec.kind in KINDS
            assert spec.mask in STRATEGIES

    def test_address_is_multi_valued(self, catalogue: FieldCatalogue) -> None:
        """A subject may hold several addresses, but one PESEL."""
        assert catalogue.get("address").multi
        assert not catalogue.get("pesel").multi

    def test_data_categories(self, catalogue: FieldCatalogue) -> None:
        """Identifiers are identification data, IBAN is financial, GPS is location, notes are notes."""
        assert {spec.name for spec in catalogue.in_category("identification")} >= {"pesel", "id_card", "passport"}
        assert catalogue.get("iban").data_category == "financial"
        assert catalogue.get("gps").data_category == "location"
        assert catalogue.get("note").data_category == "notes"
        assert catalogue.get("phone").data_category == "contact"

    def test_auditor_sees_everything_redacted(self, catalogue: FieldCatalogue) -> None:
        """The auditor's strategy is ``redacted`` for every field."""
        assert {catalogue.mask_strategy(name, "auditor") for name in catalogue.names()} == {"redacted"}

    def test_identity_documents_never_shown_whole_without_reveal(self, catalogue: FieldCatalogue) -> None:
        """No role sees a PESEL, ID card or passport number unmasked: that takes a reveal."""
        for field in ("pesel", "id_card", "passport"):
            for role in catalogue.roles:
                assert catalogue.mask_strategy(field, role) != "none"

    def test_unknown_field_is_refused(self, catalogue: FieldCatalogue) -> None:
        """``get`` of an unknown name raises InvalidFieldValueError with rule ``unknown-field``."""
        with pytest.raises(InvalidFieldValueError) as info:
            catalogue.get("shoe_size")
        assert info.value.field == "shoe_size"
        assert info.value.rule == "unknown-field"

    def test_unknown_role_gets_redacted(self, catalogue: FieldCatalogue) -> None:
        """A role outside the table is given ``redacted``."""
        assert catalogue.mask_strategy("first_name", "intern") == "redacted"


class TestLoadCatalogue:
    def test_default_is_cached(self) -> None:
        """Loading the packaged catalogue twice returns the same object."""
        assert load_catalogue() is load_catalogue()

    def test_loads_from_a_given_path(self, tmp_path: Path) -> None:
        """A catalogue at another path loads and validates the same way."""
        path = tmp_path / "fields.yaml"
        path.write_text(DEFAULT_CATALOGUE_PATH.read_text(encoding="utf-8"), encoding="utf-8")
        assert load_catalogue(path).names() == load_catalogue().names()

    def test_missing_file_is_a_configuration_error(self, tmp_path: Path) -> None:
        """A catalogue path that does not exist raises ConfigurationError."""
        with pytest.raises(ConfigurationError, match="cannot be read"):
            load_catalogue(tmp_path / "absent.yaml")

    def test_catalogue_is_frozen(self, catalogue: FieldCatalogue) -> None:
        """A loaded catalogue and its specs cannot be reassigned."""
        with pytest.raises(ValueError, match="frozen"):
            catalogue.get("pesel").blind_index = False  # type: ignore[misc]


class TestCatalogueValidation:
    def test_duplicate_keys_are_refused(self) -> None:
        """A field listed twice is an error, not a silent override."""
        text = DEFAULT_CATALOGUE_PATH.read_text(encoding="utf-8")
        line = next(ln for ln in text.splitlines() if ln.strip().startswith("pesel:"))
        with pytest.raises(ConfigurationError, match="duplicate key"):
            catalogue_from_yaml(text.replace(line, line + "\n" + line, 1))

    def test_unknown_kind_is_refused(self) -> None:
        """A field whose kind has no validator is refused."""
        document = _packaged_document()
        document["fields"]["pesel"]["kind"] = "ssn"
        with pytest.raises(ConfigurationError, match="unknown kind"):
            _parse(document)

    def test_unknown_mask_strategy_is_refused(self) -> None:
        """A field mask, or a table entry, naming no strategy is refused."""
        document = _packaged_document()
        document["fields"]["pesel"]["mask"] = "rot13"
        with pytest.raises(ConfigurationError, match="unknown mask strategy"):
            _parse(document)
        document = _packaged_document()
        document["masks"]["pesel"]["collector"] = "rot13"
        with pytest.raises(ConfigurationError, match="unknown strategy"):
            _parse(document)

    def test_unknown_data_category_is_refused(self) -> None:
        """Only the declared data categories are accepted."""
        document = _packaged_document()
        document["fields"]["pesel"]["data_category"] = "misc"
        with pytest.raises(ConfigurationError, match="data_category"):
            _parse(document)

    def test_mask_table_must_cover_every_role(self) -> None:
        """A field whose mask entries miss a role is refused (no silent default)."""
        document = _packaged_document()
        del document["masks"]["phone"]["collector"]
        with pytest.raises(ConfigurationError, match="missing roles"):
            _parse(document)

    def test_mask_table_must_cover_every_field(self) -> None:
        """A field without mask entries, or entries for a field that does not exist, is refused."""
        document = _packaged_document()
        del document["masks"]["gps"]
        with pytest.raises(ConfigurationError, match="missing"):
            _parse(document)
        document = _packaged_document()
        document["masks"]["shoe_size"] = dict.fromkeys(ROLES, "redacted")
        with pytest.raises(ConfigurationError, match="extra"):
            _parse(document)

    def test_unexpected_keys_are_refused(self) -> None:
        """A misspelt attribute (``blind_idx``) is refused rather than ignored."""
        document = _packaged_document()
        document["fields"]["pesel"]["blind_idx"] = True
        with pytest.raises(ConfigurationError, match="blind_idx"):
            _parse(document)

    def test_booleans_must_be_booleans(self) -> None:
        """``blind_index: "no"`` (a string) is refused, not read as true."""
        document = _packaged_document()
        document["fields"]["pesel"]["blind_index"] = "no"
        with pytest.raises(ConfigurationError, match="blind_index"):
            _parse(document)

    def test_version_is_required(self) -> None:
        """A catalogue without ``version: 1`` is refused."""
        document = _packaged_document()
        document["version"] = 2
        with pytest.raises(ConfigurationError, match="version"):
            _parse(document)

    def test_declared_name_must_match_key(self) -> None:
        """A spec whose ``name`` differs from its key is refused."""
        document = _packaged_document()
        document["fields"]["pesel"]["name"] = "nip"
        with pytest.raises(ConfigurationError, match="another name"):
            _parse(document)

    def test_invalid_yaml_is_a_configuration_error(self) -> None:
        """Text that is not YAML raises ConfigurationError naming the source."""
        with pytest.raises(ConfigurationError, match=r"broken\.yaml"):
            catalogue_from_yaml("fields: [unclosed", source="broken.yaml")
