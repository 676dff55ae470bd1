"""The index at scale: the vector index chosen by size, its tuned recall, and the scale bench's own helpers."""

from __future__ import annotations

import numpy as np
import pytest

from tr_qa.bench.scale import clustered_vectors, measure_vector_index
from tr_qa.index.vectors import (
    FLAT,
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
    assert choose_kind(1000, large_from=1000) == IVF_SQ8
    assert lists_for(1) == 1 and lists_for(4000) == 63 and lists_for(1_000_000) == 1000


def test_generated_vectors_are_unit_length_and_reproducible() -> None:
    a, b = clustered_vectors(2000, 32, seed=3), clustered_vectors(2000, 32, seed=3)
    assert a.dtype == np.float32 and (a == b).all()
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_the_tuned_nprobe_reaches_the_target_recall_on_queries_it_was_not_tuned_on() -> None:
    vectors = clustered_vectors(4000, 384, seed=0)
    built = build_vector_index(vectors, IVF_SQ8, seed=0)
    assert built.kind == IVF_SQ8 and built.index.ntotal == 4000 and built.lists == lists_for(4000)
    assert built.recall_at_10 is not None and built.recall_at_10 >= TARGET_RECALL
    assert 1 <= built.nprobe <= built.lists and built.index.nprobe == built.nprobe
    fresh = sample_queries(vectors, 200, seed=99)
    assert recall_at(built.index, fresh, exact_top(vectors, fresh, 10)) >= TARGET_RECALL
    # The smallest power of two that reaches it: half as many cells falls short (unless one cell already does).
    if built.nprobe > 1:
        built.index.nprobe = built.nprobe // 2
        queries = sample_queries(vectors, 200, seed=1)
        assert recall_at(built.index, queries, exact_top(vectors, queries, 10)) < TARGET_RECALL


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
    assert out["chosen"] == IVF_SQ8 and "generated clustered unit vectors" in out["vectors"]
    assert out["hnsw"]["ef_search"] >= 10 and out["hnsw"]["build_recall_at_10"] >= TARGET_RECALL
    for kind in (IVF_SQ8, FLAT):
        m = out[kind]
        assert m["faiss_bytes"] > 0 and m["vectors_npy_bytes"] == 3000 * 64 * 4 + 128
        assert m["rss_after_load"]["VmRSS"] > 0 and m["search_p50_ms"] > 0
    assert out[FLAT]["recall_at_10"] == 1.0 and out[IVF_SQ8]["recall_at_10"] > 0.8
    assert out[IVF_SQ8]["faiss_bytes"] < out[FLAT]["faiss_bytes"]  # 8-bit codes, not float32
