"""Presidio, offline: a local blank Polish spaCy pipeline and an engine that never downloads.

Presidio's :class:`SpacyNlpEngine` downloads a model (``spacy.cli.download``) when the
model name is neither an installed package nor an existing path. Here:

- the model is always a *directory*, created on first use with
  ``spacy.blank("pl").to_disk(...)`` (no network: a blank pipeline is the tokenizer rules
  shipped with spaCy itself), written to a temporary sibling and renamed into place, so two
  processes starting at once never see half a pipeline;
- :class:`OfflineSpacyNlpEngine` replaces presidio's download hook with one that raises
  :class:`OfflineNlpError` if the directory is missing, so even a deleted directory cannot
  turn into a download;
- the e-mail recognizer checks domains against tldextract's bundled public-suffix snapshot
  (:func:`vault.detect.recognizers.offline_tld_extractor`), never the network.

The production path (:class:`vault.detect.PiiDetector`) needs none of this: it runs the
recognizers without spaCy. The presidio engine built here is the baseline it is measured
and checked against.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Final

import spacy
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import SpacyNlpEngine

from core.errors import ConfigurationError
from core.settings import Settings, load_settings
from vault.detect.recognizers import LANGUAGE, pattern_recognizers
from vault.errors import VaultError

__all__ = [
    "OfflineNlpError",
    "OfflineSpacyNlpEngine",
    "build_presidio_analyzer",
    "default_nlp_dir",
    "ensure_blank_pipeline",
]

_MARKER: Final = "config.cfg"


class OfflineNlpError(ConfigurationError, VaultError):
    """The local spaCy pipeline is missing or unusable; Tarcza never downloads one."""

    code = "nlp-pipeline-unavailable"
    title = "NLP pipeline unavailable"


def default_nlp_dir(settings: Settings | None = None) -> Path:
    """Where the blank Polish pipeline lives by default: ``<data_dir>/nlp/pl_blank`` (``Settings.nlp_dir``)."""
    return (settings or load_settings()).nlp_dir


def ensure_blank_pipeline(nlp_dir: Path) -> Path:
    """Create the blank Polish spaCy pipeline in ``nlp_dir`` unless it is already there."""
    if (nlp_dir / _MARKER).is_file():
        return nlp_dir
    nlp_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{nlp_dir.name}-", dir=nlp_dir.parent))
    try:
        spacy.blank(LANGUAGE).to_disk(staging / "pipeline")
        try:
            (staging / "pipeline").rename(nlp_dir)
        except OSError:
            if not (nlp_dir / _MARKER).is_file():  # not a concurrent creator winning the race
                raise OfflineNlpError(f"cannot create the spaCy pipeline directory {nlp_dir}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return nlp_dir


class OfflineSpacyNlpEngine(SpacyNlpEngine):
    """Presidio's spaCy engine with the model download replaced by a refusal."""

    @staticmethod
    def _download_spacy_model_if_needed(model_name: str) -> None:
        """Presidio's hook, called before ``spacy.load``: a missing directory is an error, not a download."""
        if not (Path(model_name) / _MARKER).is_file():
            raise OfflineNlpError(f"no spaCy pipeline at {model_name}; Tarcza does not download models")


def build_presidio_analyzer(nlp_dir: Path | None = None) -> AnalyzerEngine:
    """Presidio's AnalyzerEngine with Tarcza's pattern recognizers and a blank Polish pipeline.

    The baseline the fast path is measured against: same recognizers, spaCy NLP pass,
    presidio's context enhancement and duplicate removal, language ``pl``. Known values
    are passed per call as an ad-hoc :class:`~vault.detect.known_values.KnownValuesRecognizer`.
    """
    directory = ensure_blank_pipeline(nlp_dir if nlp_dir is not None else default_nlp_dir())
    engine = OfflineSpacyNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": str(directory)}])
    engine.load()
    registry = RecognizerRegistry(recognizers=pattern_recognizers(), supported_languages=[LANGUAGE])
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[LANGUAGE])
