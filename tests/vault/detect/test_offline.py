"""Detection never touches the network: no model download, no public-suffix list fetched."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import spacy.cli
from presidio_analyzer.nlp_engine import SpacyNlpEngine

from core.settings import Settings
from vault.detect import OfflineNlpError, default_nlp_dir, ensure_blank_pipeline
from vault.detect.offline import OfflineSpacyNlpEngine

# Runs in a fresh interpreter: every way out to the network is replaced before anything of
# Tarcza, presidio or tldextract is imported, and every attempt is counted (tldextract
# swallows connection errors and falls back to its snapshot, so raising alone proves nothing).
_SCRIPT = textwrap.dedent("""
    import json, socket, sys
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append("network")
        raise OSError("network disabled by the test")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    import spacy.cli

    def no_download(*args, **kwargs):
        attempts.append("spacy.cli.download")
        raise SystemExit("spacy.cli.download was called")

    spacy.cli.download = no_download

    from pathlib import Path
    from vault.detect import PiiDetector, PresidioDetector

    nlp_dir = Path(sys.argv[1]) / "nlp" / "pl_blank"
    note = ("Jan Kowalski, PESEL 44051401359, tel. 601 234 567, jan.kowalski@example.pl, "
            "kopia na biuro@firma.com.pl, konto PL61 1090 1014 0000 0712 1981 2874.")
    known = {"first_name": ["Jan"], "last_name": ["Kowalski"]}
    presidio = PresidioDetector(nlp_dir)
    fast = PiiDetector()
    theirs = [(f.entity_type, f.start, f.end) for f in presidio.detect(note, known)]
    ours = [(f.entity_type, f.start, f.end) for f in fast.detect(note, known)]
    print(json.dumps({"attempts": attempts, "ours": ours, "theirs": theirs,
                      "pipeline": (nlp_dir / "config.cfg").is_file()}))
""")


class TestOfflineGuarantee:
    def test_fresh_process_builds_and_detects_without_network(self, tmp_path: Path) -> None:
        """With sockets and spacy.cli.download disabled, a fresh process creates the pipeline and detects all PII."""
        cache = tmp_path / "tldextract-cache"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TLDEXTRACT_CACHE": str(cache),
               "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
        done = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path)], capture_output=True, text=True,
                              env=env, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["attempts"] == []
        assert report["pipeline"] is True
        assert [e for e, _, _ in report["ours"]] == ["NAME", "NAME", "PESEL", "PHONE", "EMAIL", "EMAIL", "IBAN"]
        assert report["theirs"] == report["ours"]
        assert not cache.exists() or not any(cache.iterdir())

    def test_missing_pipeline_is_an_error_not_a_download(self, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
        """Loading from a directory holding no pipeline raises OfflineNlpError; spacy.cli.download is not called."""
        calls: list[str] = []
        monkeypatch.setattr(spacy.cli, "download", lambda *_a, **_k: calls.append("download"))
        engine = OfflineSpacyNlpEngine(models=[{"lang_code": "pl", "model_name": str(tmp_path / "absent")}])
        with pytest.raises(OfflineNlpError):
            engine.load()
        assert calls == []

    def test_a_path_model_never_triggers_presidios_download(self, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
        """Presidio's own engine downloads only names that are neither packages nor existing paths."""
        calls: list[str] = []
        monkeypatch.setattr(spacy.cli, "download", lambda *_a, **_k: calls.append("download"))
        directory = ensure_blank_pipeline(tmp_path / "pl_blank")
        SpacyNlpEngine._download_spacy_model_if_needed(str(directory))
        assert calls == []


class TestBlankPipeline:
    def test_created_once_then_reused(self, tmp_path: Path) -> None:
        """The first call writes a loadable blank Polish pipeline; the second leaves it untouched."""
        directory = ensure_blank_pipeline(tmp_path / "nlp" / "pl_blank")
        stamp = (directory / "config.cfg").stat().st_mtime_ns
        assert ensure_blank_pipeline(directory) == directory
        assert (directory / "config.cfg").stat().st_mtime_ns == stamp
        assert spacy.load(directory).lang == "pl"
        assert [p.name for p in directory.parent.iterdir()] == ["pl_blank"]  # no staging directory left

    def test_default_directory_is_under_the_data_dir(self, tmp_path: Path) -> None:
        """By default the pipeline lives in <data_dir>/nlp/pl_blank."""
        assert default_nlp_dir(Settings(data_dir=tmp_path)) == tmp_path / "nlp" / "pl_blank"
