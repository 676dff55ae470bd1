"""The index at scale: the vector index chosen by size, its tuned recall, and the scale bench's own helpers."""

from __future__ import annotations

import numpy as np
import pytest

from tr_qa.bench.scale import clustered_vectors, measure_vector_index
from tr_qa.index.vectors import (
    FLAT,
    IVF_SQ4,
    IVF_SQ8,
    TARGET_RECALL,
    build_vector_index,
    choose_kind,
    exact_top,
    lists_for,
    recall_at,
    sample_queries,
)


def test_the_index_kind_follows_the_chunk_count() -> None:
    assert choose_kind(999, large_from=1000) == FLAT
    assert choose_kind(1000, large_from=1000) == IVF_SQ4
    assert lists_for(1) == 1 and lists_for(4000) == 63 and lists_for(1_000_000) == 1000


def test_generated_vectors_are_unit_length_and_reproducible() -> None:
    a, b = clustered_vectors(2000, 32, seed=3), clustered_vectors(2000, 32, seed=3)
    assert a.dtype == np.float32 and (a == b).all()
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", [IVF_SQ4, IVF_SQ8])
def test_the_tuned_nprobe_reaches_the_target_recall_on_queries_it_was_not_tuned_on(kind: str) -> None:
    import faiss

    vectors = clustered_vectors(4000, 384, seed=0)
    built = build_vector_index(vectors, kind, seed=0)
    assert built.kind == kind and built.index.ntotal == 4000 and built.lists == lists_for(4000)
    codes = faiss.ScalarQuantizer.QT_4bit if kind == IVF_SQ4 else faiss.ScalarQuantizer.QT_8bit
    assert built.index.sq.qtype == codes
    assert built.recall_at_10 is not None and built.recall_at_10 >= TARGET_RECALL
    assert 1 <= built.nprobe <= built.lists and built.index.nprobe == built.nprobe
    # Recall as the retriever gets it: the index's top 100 re-scored exactly from the vectors.
    fresh = sample_queries(vectors, 200, seed=99)
    assert recall_at(built.index, fresh, exact_top(vectors, fresh, 10), vectors) >= TARGET_RECALL
    # The smallest power of two that reaches it: half as many cells falls short (unless one cell already does).
    if built.nprobe > 1:
        built.index.nprobe = built.nprobe // 2
        queries = sample_queries(vectors, 200, seed=1)
        assert recall_at(built.index, queries, exact_top(vectors, queries, 10), vectors) < TARGET_RECALL


def test_re_scoring_the_candidates_recovers_what_4_bit_codes_blur() -> None:
    # 4-bit codes order close neighbours loosely; the exact re-scoring of the top 100 puts them back in order.
    vectors = clustered_vectors(4000, 384, seed=0)
    built = build_vector_index(vectors, IVF_SQ4, seed=0)
    built.index.nprobe = built.lists  # every cell: what is left is the codes' own error
    queries = sample_queries(vectors, 200, seed=5)
    exact = exact_top(vectors, queries, 10)
    assert recall_at(built.index, queries, exact) < recall_at(built.index, queries, exact, vectors) == 1.0


def test_a_flat_index_is_exact() -> None:
    vectors = clustered_vectors(500, 16, seed=1)
    built = build_vector_index(vectors, FLAT)
    queries = sample_queries(vectors, 50, seed=2)
    assert built.manifest() == {"index": FLAT}
    assert recall_at(built.index, queries, exact_top(vectors, queries, 10)) == 1.0


@pytest.mark.integration
def test_measure_vector_index_reports_the_chosen_index_beside_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TR_QA_LARGE_INDEX_CHUNKS", "1000")
    out = measure_vector_index(3000, dims=64, also=("hnsw",))
    assert out["chosen"] == IVF_SQ4 and "generated clustered unit vectors" in out["vectors"]
    assert out["hnsw"]["ef_search"] >= 10 and out["hnsw"]["build_recall_at_10"] >= TARGET_RECALL
    for kind in (IVF_SQ4, FLAT):
        m = out[kind]
        assert m["faiss_bytes"] > 0 and m["vectors_npy_bytes"] == 3000 * 64 * 4 + 128
        assert m["rss_after_load"]["VmRSS"] > 0 and m["search_p50_ms"] > 0
    assert out[FLAT]["recall_at_10"] == 1.0 and out[IVF_SQ4]["recall_at_10"] > 0.8
    assert out[IVF_SQ4]["faiss_bytes"] < out[FLAT]["faiss_bytes"] / 4  # 4-bit codes (and ids), not float32


@pytest.mark.integration
def test_a_replicated_index_loads_and_holds_each_source_chunk_once_per_copy(seed_settings, tmp_path) -> None:
    from tr_qa.bench.replicate import replicate_index
    from tr_qa.index import load
    from tr_qa.index.lexical import build_lexical

    source = load(seed_settings.index_dir)
    made = replicate_index(seed_settings.index_dir, 3 * len(source.chunks) - 1, tmp_path / "index")
    assert made["copies"] == 3 and made["chunks"] == 3 * len(source.chunks)
    copy = load(tmp_path / "index")  # the loader checks every hash, offset and count against the manifest
    assert len(copy.documents) == 3 * len(source.documents) and copy.manifest["replicated"]["copies"] == 3
    n = len(source.chunks)
    for i in (0, n // 2, n - 1):
        c = source.chunks[i]
        for k in range(3):
            again = copy.chunks[k * n + i]
            assert again.doc_id == f"copy{k:02d}/{c.doc_id}" and (again.start, again.end, again.text) == (
                c.start,
                c.end,
                c.text,
            )
    # Copies keep their source's vectors near (not equal: the vector index must see distinct points) and unit length.
    cosine = np.einsum("ij,ij->i", copy.chunk_vectors[n : 2 * n], source.chunk_vectors[:n])
    assert (cosine > 0.99).all() and (cosine < 1.0 - 1e-6).any()
    assert np.allclose(np.linalg.norm(copy.chunk_vectors[:], axis=1), 1.0, atol=1e-4)
    # BM25 is what the builder would make of the repeated chunks; copies of a chunk score alike.
    fresh = build_lexical(c.text for c in copy.chunks)
    assert copy.manifest["bm25"]["typical_score"] == pytest.approx(fresh.typical_score, rel=1e-9)
    q = ["probation", "officers"]
    scores = copy.bm25.get_scores(q)
    np.testing.assert_allclose(scores, fresh.bm25.get_scores(q), rtol=1e-6)
    np.testing.assert_allclose(scores[n : 2 * n], scores[:n], rtol=1e-6)


@pytest.mark.parametrize("share", [0.5, 0.1])
def test_a_filtered_search_finds_the_nearest_passing_chunks_inside_the_index(share: float) -> None:
    from tr_qa.index.vectors import allowed_set, search_within

    n = 60_000
    vectors = clustered_vectors(n, 64, seed=0)
    built = build_vector_index(vectors, IVF_SQ4, seed=0)
    ids = np.sort(np.random.default_rng(3).choice(n, int(n * share), replace=False))
    allowed = allowed_set(ids, n, built.index)
    assert allowed.selector is not None  # many pass: searched inside the index, their vectors never all read
    passing, hits = set(ids.tolist()), 0
    queries = sample_queries(vectors, 50, seed=4)
    for q in queries:
        found = search_within(built.index, q, allowed, 100)
        assert len(found) == 100 and set(found.tolist()) <= passing
        best = ids[np.argsort(-(vectors[ids] @ q), kind="stable")[:10]]
        rescored = found[np.argsort(-(vectors[found] @ q), kind="stable")[:10]]
        hits += len(set(best.tolist()) & set(rescored.tolist()))
    assert hits / (10 * len(queries)) >= TARGET_RECALL


def test_few_passing_chunks_or_an_exact_index_are_scored_one_by_one() -> None:
    from tr_qa.index.vectors import EXACT_FILTERED, allowed_set

    vectors = clustered_vectors(6000, 32, seed=0)
    ivf = build_vector_index(vectors, IVF_SQ4, seed=0).index
    few = np.arange(EXACT_FILTERED)
    assert allowed_set(few, 6000, ivf).selector is None
    assert allowed_set(np.arange(5000), 6000, build_vector_index(vectors, FLAT).index).selector is None
    many = allowed_set(np.arange(5000), 6000, ivf)
    assert many.selector is not None and many.bitmap is not None
    assert many.selector.is_member(4999) and not many.selector.is_member(5000)  # the bit order FAISS reads
