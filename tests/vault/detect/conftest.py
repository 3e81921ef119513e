"""Shared, expensive objects for the detection tests: built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault.detect import PiiDetector, PresidioDetector
from vault.detect.corpus import Note, generate

CORPUS_NOTES = 1000
CORPUS_SEED = 7


@pytest.fixture(scope="session")
def detector() -> PiiDetector:
    return PiiDetector()


@pytest.fixture(scope="session")
def nlp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nlp") / "pl_blank"


@pytest.fixture(scope="session")
def presidio(nlp_dir: Path) -> PresidioDetector:
    return PresidioDetector(nlp_dir)


@pytest.fixture(scope="session")
def corpus() -> list[Note]:
    return generate(CORPUS_NOTES, CORPUS_SEED)
