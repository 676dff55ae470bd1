"""BM25 over the chunks (bm25s): built when the index is built, saved in the generation, its postings read from the
files at question time (only the terms a question has)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tr_qa.index.columns import Vocabulary
from tr_qa.index.rows import RowFile
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
    df: dict[str, int] = {}
    for doc_terms in corpus:
        for t in set(doc_terms):
            df[t] = df.get(t, 0) + 1
    return Lexical(bm25, typical_score(df.values(), len(corpus)))


def typical_score(document_frequencies: Iterable[int], n: int) -> float:
    """BM25 score of a typical one-term match in ``n`` chunks: the average idf over the vocabulary.

    As txtai's normaliser uses it: a weak lexical match stays small after normalising instead of being scaled up to 1
    as a bare score/top would.
    """
    idf = [math.log(1 + (n - c + 0.5) / (c + 0.5)) for c in document_frequencies]
    return sum(idf) / len(idf) if idf else 1.0


def save_lexical(lexical: Lexical, folder: Path) -> None:
    """Write the BM25 arrays and vocabulary into ``folder`` (bm25s's own format)."""
    lexical.bm25.save(str(folder), show_progress=False)


class SavedBM25:
    """A saved BM25 index, as a question uses it: the vocabulary and each term's posting range in memory, the postings
    (chunk numbers and their precomputed scores) read from the files for the terms asked about.

    Scores are bm25s's own: its saved matrix summed term by term in the same order (``BM25.get_scores``).
    """

    def __init__(
        self,
        vocab_dict: Mapping[str, int],
        indptr: np.ndarray,
        data: RowFile | np.ndarray,
        indices: RowFile | np.ndarray,
        num_docs: int,
        dtype: np.dtype,
    ) -> None:
        self.vocab_dict = vocab_dict
        # The part of bm25s's ``scores`` the retriever reads (a term's document frequency comes from indptr).
        self.scores = {"indptr": indptr, "num_docs": num_docs}
        self._data = data
        self._indices = indices
        self._dtype = dtype

    def get_scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every chunk for these terms (a repeated term counts again; unknown terms add nothing)."""
        indptr, n = self.scores["indptr"], self.scores["num_docs"]
        scores = np.zeros(n, dtype=self._dtype)
        for term in query_tokens:
            token = self.vocab_dict.get(term)
            if token is None:
                continue
            start, end = int(indptr[token]), int(indptr[token + 1])
            if end > start:
                scores[self._indices[start:end]] += self._data[start:end]
        return scores


def load_bm25(folder: Path) -> SavedBM25:
    """The saved BM25 index: its vocabulary held compactly, its postings read from the files as questions need."""
    import bm25s

    bm25 = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
    # bm25s keeps the vocabulary as a dict (and its ids again as a set): ~130 bytes a term in Python objects, tens of
    # MB for a large collection. Term ids run 0 … n-1, so a compact column with a lookup holds the same mapping.
    vocabulary = Vocabulary.of(bm25.vocab_dict) or bm25.vocab_dict
    arrays = bm25.scores

    def rows(name: str) -> RowFile | np.ndarray:
        return RowFile.of(arrays[name]) if isinstance(arrays[name], np.memmap) else arrays[name]

    indptr, n = np.array(arrays["indptr"]), int(arrays["num_docs"])
    return SavedBM25(vocabulary, indptr, rows("data"), rows("indices"), n, np.dtype(bm25.dtype))
