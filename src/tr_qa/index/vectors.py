"""The FAISS index of chunk vectors, chosen by corpus size: exact (flat) when small, IVF-SQ4 when large.

IVF with scalar-quantised codes (inverted lists over k-means cells) was chosen over HNSW and IVF-PQ by measurement
(``python -m tr_qa.bench.scale vectors 100000 --also hnsw ivf-pq``, one core): at 100,000 vectors IVF-SQ8 builds in
10 s where HNSW (32 links) takes 74 s, holds 384 bytes a vector where HNSW holds the float32 vector plus ~270 bytes
of graph (63 MB resident after load against 198 MB), and answers in 0.3 ms against 2 ms at the same recall; IVF-PQ
(48 bytes) never passes recall@10 0.4 without a re-ranking stage.

The retriever re-scores every candidate exactly from the stored float32 vectors, so what the index must do is put
the true top 10 among its top ``CANDIDATES`` (100); which cells it searches decides that, not the precision of its
codes. Measured on 100,000 real chunk embeddings, recall@10 after that re-scoring is the same with 4-bit codes as
with 8-bit ones at every nprobe (0.966 at 8 cells, 0.985 at 16), while 4-bit codes hold half the memory (192 bytes
a vector: 212 MB at a million chunks instead of 425). Indexes built as IVF-SQ8 still load.

The number of cells searched (``nprobe``) is chosen at build time: the smallest power of two whose recall@10, with
the top ``CANDIDATES`` re-scored exactly, reaches ``TARGET_RECALL`` on sample queries; it and the recall are kept in
the manifest and applied at load.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

FLAT = "flat"
IVF_SQ8 = "ivf-sq8"
IVF_SQ4 = "ivf-sq4"
IVF_KINDS = (IVF_SQ4, IVF_SQ8)
# Candidates the retriever takes from the vector index and re-scores exactly (tr_qa.retrieve.CANDIDATES).
RESCORED = 100
TARGET_RECALL = 0.95
RECALL_QUERIES = 200
RECALL_K = 10
# k-means wants ~40 training points per cell (FAISS warns below 39); more only slows training.
TRAIN_PER_LIST = 64


@dataclass(frozen=True)
class VectorIndex:
    """A built FAISS index and what the manifest records about it."""

    index: Any
    kind: str
    lists: int = 0
    nprobe: int = 0
    recall_at_10: float | None = None
    recall_queries: int = 0
    train_seconds: float = 0.0
    add_seconds: float = 0.0
    tune_seconds: float = 0.0

    def manifest(self) -> dict[str, Any]:
        """The manifest's ``vectors`` entry."""
        if self.kind == FLAT:
            return {"index": FLAT}
        return {
            "index": self.kind,
            "lists": self.lists,
            "nprobe": self.nprobe,
            "recall_at_10": self.recall_at_10,
            "recall_queries": self.recall_queries,
            "target_recall": TARGET_RECALL,
        }


def choose_kind(n: int, large_from: int) -> str:
    """The index type for ``n`` chunks: exact below ``large_from``, approximate from there."""
    return FLAT if n < large_from else IVF_SQ4


def lists_for(n: int) -> int:
    """IVF cells for ``n`` vectors: about √n (a cell then holds about √n vectors), and enough points to train."""
    return max(1, min(round(math.sqrt(n)), n // 39))


def sample_queries(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Query-like unit vectors: stored vectors moved about 45° off (a question is near, not on, its passage)."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(vectors), size=min(count, len(vectors)), replace=False))
    base = np.asarray(vectors[rows], dtype=np.float32)
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    queries = base + noise
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of the exact top ``k`` inner products for each query (brute force over ``vectors``)."""
    import faiss

    _scores, ids = faiss.knn(queries, np.ascontiguousarray(vectors, dtype=np.float32), k, faiss.METRIC_INNER_PRODUCT)
    return ids


def recall_at(index: Any, queries: np.ndarray, exact: np.ndarray, vectors: np.ndarray | None = None) -> float:
    """Share of the exact top-k found by ``index``'s top-k, averaged over the queries.

    With ``vectors``, as the retriever uses the index: its top ``RESCORED`` re-scored exactly, then the top k taken.
    """
    k = exact.shape[1]
    _scores, found = index.search(queries, k if vectors is None else max(k, RESCORED))
    if vectors is not None:
        ranked = []
        for q, row in zip(queries, found, strict=True):
            ids = np.sort(row[row >= 0])
            scores = np.asarray(vectors[ids], dtype=np.float32) @ q
            ranked.append(ids[np.argsort(-scores, kind="stable")[:k]])
        found = ranked
    hits = sum(len(set(f[f >= 0].tolist()) & set(e.tolist())) for f, e in zip(found, exact, strict=True))
    return hits / exact.size


def build_vector_index(vectors: np.ndarray, kind: str, seed: int = 0) -> VectorIndex:
    """A FAISS inner-product index of ``vectors`` of the given kind; an IVF one trained and its nprobe tuned."""
    import faiss

    n, dims = vectors.shape
    if kind == FLAT:
        flat = faiss.IndexFlatIP(dims)
        started = time.perf_counter()
        if n:
            flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return VectorIndex(flat, FLAT, add_seconds=time.perf_counter() - started)
    if kind not in IVF_KINDS:
        raise ValueError(f"unknown vector index kind {kind!r}")
    lists = lists_for(n)
    quantizer = faiss.IndexFlatIP(dims)
    codes = faiss.ScalarQuantizer.QT_4bit if kind == IVF_SQ4 else faiss.ScalarQuantizer.QT_8bit
    index = faiss.IndexIVFScalarQuantizer(quantizer, dims, lists, codes, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.min_points_per_centroid = 1  # lists_for keeps >= 39 points a cell wherever the corpus has them
    rng = np.random.default_rng(seed)
    train_rows = np.sort(rng.choice(n, size=min(n, lists * TRAIN_PER_LIST), replace=False))
    started = time.perf_counter()
    index.train(np.ascontiguousarray(vectors[train_rows], dtype=np.float32))
    trained = time.perf_counter()
    block = 65_536  # add in blocks: a memory-mapped matrix is never copied whole
    for first in range(0, n, block):
        index.add(np.ascontiguousarray(vectors[first : first + block], dtype=np.float32))
    added = time.perf_counter()
    nprobe, recall, queries = tune_nprobe(index, vectors, lists, seed)
    return VectorIndex(
        index,
        kind,
        lists,
        nprobe,
        recall,
        queries,
        trained - started,
        added - trained,
        time.perf_counter() - added,
    )


def tune_nprobe(index: Any, vectors: np.ndarray, lists: int, seed: int) -> tuple[int, float, int]:
    """The smallest power-of-two nprobe (or all cells) whose recall@10 (candidates re-scored exactly) reaches the
    target, that recall, and how many queries measured it."""
    queries = sample_queries(vectors, RECALL_QUERIES, seed + 1)
    exact = exact_top(vectors, queries, min(RECALL_K, len(vectors)))
    nprobe = 1
    while True:
        index.nprobe = min(nprobe, lists)
        recall = recall_at(index, queries, exact, vectors)
        if recall >= TARGET_RECALL or index.nprobe == lists:
            return int(index.nprobe), round(recall, 4), len(queries)
        nprobe *= 2


def apply_search_parameters(index: Any, entry: dict[str, Any]) -> None:
    """Set the search parameter the build chose (IVF nprobe) on a loaded index."""
    if entry.get("index") in IVF_KINDS:
        index.nprobe = int(entry["nprobe"])


# While at most this many chunks pass a filter, their vectors are all read and scored: exact, and a few MB at most.
EXACT_FILTERED = 4096


@dataclass(frozen=True)
class Allowed:
    """The chunks a filter lets through: their ids, and (for an approximate index) a bitmap FAISS searches within."""

    ids: np.ndarray
    bitmap: np.ndarray | None = None
    selector: Any = None


def allowed_set(ids: np.ndarray, n: int, index: Any) -> Allowed:
    """What a filtered search needs of the passing chunk ids (``n`` chunks in all)."""
    import faiss

    if len(ids) <= EXACT_FILTERED or not isinstance(index, faiss.IndexIVF):
        return Allowed(ids)
    mask = np.zeros(n, dtype=bool)
    mask[ids] = True
    # FAISS reads bit i of the bitmap as byte i // 8, bit i % 8: little-endian bit order. The array must outlive
    # the selector, which only points at it.
    bitmap = np.packbits(mask, bitorder="little")
    return Allowed(ids, bitmap, faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap)))


def search_within(index: Any, query: np.ndarray, allowed: Allowed, limit: int) -> np.ndarray:
    """Up to ``limit`` ids among ``allowed`` (one with a selector) nearest ``query``, searched inside the IVF index.

    The fewer chunks pass, the more cells are probed (``nprobe`` ÷ the share that passes, at most all of them), so
    about as many passing vectors are looked at as an unfiltered search looks at, and no passing vector is read
    from disk to find them.
    """
    import faiss

    ivf = faiss.extract_index_ivf(index)
    share = len(allowed.ids) / max(1, index.ntotal)
    nprobe = min(ivf.nlist, max(ivf.nprobe, math.ceil(ivf.nprobe / share)))
    params = faiss.SearchParametersIVF(sel=allowed.selector, nprobe=nprobe)
    _scores, found = index.search(query.reshape(1, -1).astype(np.float32), limit, params=params)
    return found[0][found[0] >= 0].astype(np.int64)
