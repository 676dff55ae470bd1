"""BM25 over the chunks (bm25s): built when the index is built, saved in the generation, memory-mapped at load."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tr_qa.text import terms

BM25_DIR = "bm25"
# The files bm25s.save writes (no corpus file: the chunk store holds the texts).
BM25_FILES = (
    "params.index.json",
    "vocab.index.json",
    "data.csc.index.npy",
    "indices.csc.index.npy",
    "indptr.csc.index.npy",
)
EMPTY = "\u2205"  # stands for a chunk without content words, so every chunk is a BM25 document


@dataclass(frozen=True)
class Lexical:
    """A BM25 index of the chunks and the score of a typical one-term match (for normalising)."""

    bm25: Any
    typical_score: float


def chunk_terms(texts: Iterable[str]) -> list[list[str]]:
    """The BM25 documents: each chunk's content terms."""
    return [terms(t) or [EMPTY] for t in texts]


def build_lexical(texts: Iterable[str]) -> Lexical:
    """Index the chunk texts with BM25 and measure the typical one-term score."""
    import bm25s

    corpus = chunk_terms(texts)
    bm25 = bm25s.BM25()
    if corpus:
        bm25.index(corpus, show_progress=False)
    # BM25 score of a typical one-term match (average idf, as txtai's normaliser uses): a weak lexical match
    # stays small after normalising instead of being scaled up to 1 as a bare score/top would.
    df: dict[str, int] = {}
    for doc_terms in corpus:
        for t in set(doc_terms):
            df[t] = df.get(t, 0) + 1
    n = len(corpus)
    idf = [math.log(1 + (n - c + 0.5) / (c + 0.5)) for c in df.values()]
    return Lexical(bm25, sum(idf) / len(idf) if idf else 1.0)


def save_lexical(lexical: Lexical, folder: Path) -> None:
    """Write the BM25 arrays and vocabulary into ``folder`` (bm25s's own format)."""
    lexical.bm25.save(str(folder), show_progress=False)


def load_bm25(folder: Path) -> Any:
    """The saved BM25 index, its score arrays memory-mapped."""
    import bm25s

    return bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
