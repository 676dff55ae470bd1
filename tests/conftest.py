"""Shared fixtures: one real index of the seed corpus per test session (real model, real FAISS)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tr_qa.config import Settings
from tr_qa.embed import Embedder

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The bundled MiniLM, loaded once for the whole session."""
    return Embedder(threads=2)


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """Settings pointing at a fresh copy of seeds/ and an index built from it."""
    from tr_qa.index import build

    base = tmp_path_factory.mktemp("seed")
    corpus = base / "corpus"
    shutil.copytree(SEEDS, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=base / "index")
    build(settings, embedder=embedder, progress=False)
    return settings


@pytest.fixture(scope="session")
def seed_qa(seed_settings: Settings, embedder: Embedder):
    """A QA facade over the seed index."""
    from tr_qa.qa import QA

    return QA.load(settings=seed_settings, embedder=embedder)
