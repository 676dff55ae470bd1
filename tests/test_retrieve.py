"""Retrieval on a small in-memory index (hand-made vectors, no model): fusion, normalisation and merging."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from tr_qa.analyse import DocAnalysis
from tr_qa.errors import InputError
from tr_qa.index import IndexData
from tr_qa.retrieve import Retriever
from tr_qa.types import Chunk, Document

A = "Working Links ran three probation areas. It went into administration in 2019."
B = "The weather in the valley was poor that year. Farmers waited for rain."


def tiny_index(vectors: np.ndarray, chunks: tuple[Chunk, ...]) -> IndexData:
    docs = {"a.txt": Document("a.txt", "A", A), "b.txt": Document("b.txt", "B", B)}
    analyses = {"a.txt": DocAnalysis(((0, 40), (41, len(A))), ()), "b.txt": DocAnalysis(((0, 45), (46, len(B))), ())}
    vectors = vectors.astype(np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return IndexData(Path("."), {}, docs, analyses, chunks, vectors, np.zeros((4, vectors.shape[1]), np.float32), index)


def chunks_ab() -> tuple[Chunk, ...]:
    return (Chunk("a.txt", 0, len(A), A), Chunk("b.txt", 0, len(B), B))


def test_bm25_alone_ranks_by_shared_words_and_dense_alone_by_vectors() -> None:
    # The vectors point the other way from the words: each retriever must follow its own signal.
    data = tiny_index(np.array([[0.0, 1.0], [1.0, 0.0]]), chunks_ab())
    r = Retriever(data, alpha=0.5, sentence_weight=0.0)
    q = np.array([1.0, 0.0], dtype=np.float32)
    assert r.search("When did Working Links go into administration?", q, "bm25")[0].chunk == 0
    assert r.search("When did Working Links go into administration?", q, "dense")[0].chunk == 1


def test_fusion_weights_follow_alpha() -> None:
    data = tiny_index(np.array([[0.0, 1.0], [1.0, 0.0]]), chunks_ab())
    q = np.array([1.0, 0.0], dtype=np.float32)
    question = "When did Working Links go into administration?"
    lexical = Retriever(data, alpha=0.1, sentence_weight=0.0)
    lexical_heavy = lexical.search(question, q)
    dense_heavy = Retriever(data, alpha=0.9, sentence_weight=0.0).search(question, q)
    assert lexical_heavy[0].chunk == 0 and dense_heavy[0].chunk == 1
    # BM25 is scaled by min(top + typical one-term score, 6 × typical), then capped at 1 (txtai's normaliser).
    top = max(h.bm25 for h in lexical_heavy)
    scale = min(top + lexical.typical_score, 6 * lexical.typical_score)
    for hit in lexical_heavy:
        assert hit.score == pytest.approx(0.1 * hit.dense + 0.9 * min(1.0, hit.bm25 / scale), abs=1e-6)


def test_normalised_bm25_never_exceeds_one_and_no_content_words_gives_zero() -> None:
    data = tiny_index(np.eye(2), chunks_ab())
    r = Retriever(data, alpha=0.0, sentence_weight=0.0)
    hits = r.search("Working Links Working Links administration 2019", np.array([1.0, 0.0], np.float32))
    assert max(h.score for h in hits) <= 1.0
    assert all(h.score == 0.0 for h in r.search("what is the", np.array([1.0, 0.0], np.float32)))


def test_overlapping_chunks_of_one_document_merge_into_one_passage() -> None:
    chunks = (Chunk("a.txt", 0, 41, A[:41]), Chunk("a.txt", 30, len(A), A[30:]), Chunk("b.txt", 0, len(B), B))
    data = tiny_index(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), chunks)
    r = Retriever(data, alpha=1.0, sentence_weight=0.0)
    passages = r.passages(r.search("q", np.array([1.0, 0.0], np.float32)), k=5)
    assert [(p.doc_id, p.start, p.end) for p in passages] == [("a.txt", 0, len(A)), ("b.txt", 0, len(B))]
    for p in passages:
        assert data.documents[p.doc_id].text[p.start : p.end] == p.text
    assert len(r.passages(r.search("q", np.array([1.0, 0.0], np.float32)), k=1)) == 1


def test_bad_settings_and_unknown_retriever_name_the_value() -> None:
    data = tiny_index(np.eye(2), chunks_ab())
    with pytest.raises(ValueError, match=r"alpha must be between 0 and 1, got 1\.5"):
        Retriever(data, alpha=1.5, sentence_weight=0.0)
    with pytest.raises(InputError, match="retriever must be one of"):
        Retriever(data, alpha=0.5, sentence_weight=0.0).search("q", np.array([1.0, 0.0], np.float32), "sparse")


def test_the_partial_sort_for_large_indexes_picks_the_same_best_scores_in_order() -> None:
    from tr_qa.retrieve import FULL_SORT_CHUNKS, top

    scores = np.random.default_rng(0).random(FULL_SORT_CHUNKS * 3).astype(np.float32)
    assert (top(scores, 100) == np.argsort(-scores, kind="stable")[:100]).all()
    assert (top(scores[:50], 100) == np.argsort(-scores[:50], kind="stable")).all()


def test_document_frequencies_come_from_the_bm25_postings() -> None:
    data = tiny_index(np.array([[0.0, 1.0], [1.0, 0.0]]), chunks_ab())
    r = Retriever(data, alpha=0.5, sentence_weight=0.0)
    assert r.document_frequency("probation") == (1, 2)
    assert r.document_frequency("zebra") == (0, 2)
