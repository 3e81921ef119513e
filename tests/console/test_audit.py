"""The audit page: a search, an entry with its inclusion proof checked here too, an export, the verification."""

from __future__ import annotations

import base64
import tarfile
from pathlib import Path

from audit import merkle
from audit.checkpoint import Verifier, open_checkpoint
from audit.verify import verify_export
from tests.console.conftest import Console, Session


def _b64(text: str | None) -> bytes:
    return base64.b64decode(str(text).strip())


class TestSearchAndProof:
    def test_search_by_subject_and_type_then_an_entry_with_a_proof_that_verifies(
            self, auditor: Session, console: Console) -> None:
        """The entry page's numbers, taken from the page, verify here: signed note, then the RFC 9162 path."""
        page = auditor.page
        token = console.subjects["erasure"].token
        auditor.goto("/console/audit")
        page.fill("#subject", "sub_bad!")
        page.fill("#type", "vault.peek")
        assert auditor.submit("#audit-search button").status == 422
        assert "not a subject token" in auditor.field_error("subject")
        assert "No event type" in auditor.field_error("type")
        assert page.input_value("#subject") == "sub_bad!"

        console.runtime.audit.issue_checkpoint()  # so that the subject's entries are under a signed checkpoint
        page.fill("#subject", token)
        page.fill("#type", "contact.*")
        assert auditor.submit("#audit-search button").status == 200
        rows = page.locator("#audit-results tbody tr")
        assert rows.count() >= 1
        assert all(t.startswith("contact.") for t in page.locator("#audit-results tbody td code").all_text_contents()
                   if "." in t)
        auditor.shot("audit-search")

        rows.first.locator("a").first.click()
        page.wait_for_load_state()
        index = int(page.url.rsplit("/", 1)[1])
        assert "Verified" in str(page.text_content("#proof-status"))
        auditor.shot("audit-entry")

        leaf = _b64(page.text_content("#leaf-hash"))
        proof = [_b64(h) for h in page.locator("#proof-hashes code").all_text_contents()]
        root = _b64(page.text_content("#root-hash"))
        size = int(str(page.text_content("#proof-size")))
        event_json = console.runtime.audit.get(index)
        assert merkle.leaf_hash(_canonical(event_json.event)) == leaf
        merkle.verify_inclusion(leaf, index, size, proof, root)  # raises if the page's proof is wrong
        note = str(page.text_content("#checkpoint-note"))
        verifier = Verifier.from_string(console.runtime.audit.verifier().to_string())
        signed = open_checkpoint(note, verifier)
        assert (signed.size, signed.root_hash) == (size, root)


def _canonical(event: dict[str, object]) -> bytes:
    from audit.events import canonical_json

    return canonical_json(event)  # type: ignore[arg-type]


class TestExport:
    def test_export_of_a_range_downloads_and_verifies_offline(self, auditor: Session, console: Console,
                                                              tmp_path: Path) -> None:
        """A bad index is refused next to its field; entries 0..9 download as an export that verifies."""
        page = auditor.page
        auditor.goto("/console/audit/export")
        page.fill("#from_index", "ten")
        assert auditor.submit("#audit-export-form button").status == 422
        assert "whole number" in auditor.field_error("from_index")
        page.fill("#from_index", "0")
        page.fill("#to_index", "9")
        auditor.shot("audit-export")
        with page.expect_download() as download:
            page.click("#audit-export-form button")
        archive = tmp_path / "export.tar.gz"
        download.value.save_as(archive)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp_path, filter="data")
        checked = verify_export(tmp_path / "audit-export", trusted_key=console.runtime.audit.verifier().to_string())
        assert checked.entries == 10


class TestVerification:
    def test_full_verification_runs_in_the_background_and_its_result_is_kept(
            self, auditor: Session, console: Console) -> None:
        """Started from the page, it shows progress, ends verified, and is kept in the log and on the dashboard."""
        page = auditor.page
        auditor.goto("/console/audit/verify")
        auditor.submit("#start-verification")
        page.wait_for_selector("#verify-outcome", timeout=60_000)
        page.wait_for_function("!document.getElementById('verification')", timeout=60_000)
        outcome = str(page.text_content("#verify-outcome"))
        assert "Verified" in outcome
        auditor.shot("audit-verify")
        note_index = int(str(page.text_content("#verification-result a")).lstrip("#"))
        note = console.runtime.audit.get(note_index).event
        assert note["type"] == "audit.log_verified"
        assert note["payload"]["ok"] is True
        assert note["payload"]["entries"] > 0
        assert note["actor"]["id"] == console.people["auditor"].user_id
        auditor.goto("/console")
        assert "Verified" in str(page.text_content("#last-verification"))
        auditor.shot("dashboard-auditor")
