"""The index at scale: the vector index the builder picks for N chunks measured against exact search, and a text
corpus of N chunks built from SQuAD v1.1 training paragraphs for measuring the whole pipeline.

``python -m tr_qa.bench.scale vectors 100000 1000000`` prints ``measure_vector_index`` for each size as JSON;
``python -m tr_qa.bench.scale corpus 100000 --work /tmp/scale`` writes, indexes and asks a synthetic text corpus
(``measure_corpus``). Load figures (RSS, search latency) are taken in a fresh child process, so they show what a
server holds after loading, not what generating the data left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tr_qa.config import Settings, project_root
from tr_qa.index.vectors import (
    FLAT,
    IVF_SQ4,
    IVF_SQ8,
    RECALL_K,
    TARGET_RECALL,
    VectorIndex,
    build_vector_index,
    choose_kind,
    exact_top,
    lists_for,
    recall_at,
    sample_queries,
)

GENERATED = "generated clustered unit vectors (Gaussian clusters around centres grouped in topics), not text embeddings"
SEARCH_QUERIES = 200
HNSW = "hnsw"
IVF_PQ = "ivf-pq"
BUILT = (FLAT, IVF_SQ4, IVF_SQ8)  # the kinds the builder makes (IVF-SQ8: what large indexes were before IVF-SQ4)
# The shared SQuAD v1.1 training file, beside the project folder (never copied into it).
SQUAD_TRAIN = Path("../shared/bench/squad-v1.1-train/squad11_train_rebuilt.json.xz")


def rss() -> dict[str, int]:
    """This process's resident memory in bytes: all of it, anonymous (heap) and file-backed (mapped files)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    return out


def clustered_vectors(n: int, dims: int, seed: int) -> np.ndarray:
    """``n`` unit vectors in ~√n Gaussian clusters of uneven spread around ~√n/32 topics (text embeddings cluster
    by topic, and topics overlap)."""
    rng = np.random.default_rng(seed)
    clusters = max(8, round(np.sqrt(n)))
    # Cluster centres gather around a few broad topics, so neighbouring clusters overlap as topics do.
    topics = rng.standard_normal((max(4, clusters // 32), dims)).astype(np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    centres = topics[rng.integers(0, len(topics), clusters)]
    centres = centres + rng.standard_normal((clusters, dims)).astype(np.float32) / np.sqrt(dims)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    # Spread chosen so that IVF needs as many cells as MiniLM vectors of SQuAD text do: at 3,251 chunks (57 cells)
    # both need nprobe 16 for recall@10 >= 0.95 (`measure_corpus`); tighter clusters make IVF look better than it is.
    spread = rng.uniform(1.5, 2.5, clusters).astype(np.float32)
    out = np.empty((n, dims), np.float32)
    block = 65_536
    for first in range(0, n, block):
        m = min(block, n - first)
        which = rng.integers(0, clusters, m)
        noise = rng.standard_normal((m, dims)).astype(np.float32) / np.sqrt(dims)
        part = centres[which] + spread[which, None] * noise
        out[first : first + m] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out


_PROBE = """
import json, sys, time
import numpy as np
from tr_qa.bench.scale import rss
import faiss
folder, entry = sys.argv[1], json.loads(sys.argv[2])
before = rss()
index = faiss.read_index(folder + "/faiss.index")
if "nprobe" in entry:
    faiss.extract_index_ivf(index).nprobe = entry["nprobe"]
if "ef_search" in entry:
    index.hnsw.efSearch = entry["ef_search"]
vectors = np.load(folder + "/vectors.npy", mmap_mode="r")
loaded = rss()
queries, exact = np.load(folder + "/queries.npy"), np.load(folder + "/exact.npy")
times, found = [], []
for q in queries:
    started = time.perf_counter()
    # As the retriever uses it: the top 100 candidates re-scored exactly from the stored vectors, the best k kept.
    _s, ids = index.search(q.reshape(1, -1), max(exact.shape[1], 100))
    cand = np.sort(ids[0][ids[0] >= 0])
    rescored = vectors[cand] @ q
    times.append(time.perf_counter() - started)
    found.append(cand[np.argsort(-rescored, kind="stable")[: exact.shape[1]]])
hits = sum(len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact))
print(json.dumps({"rss_before_load": before, "rss_after_load": loaded, "rss_after_search": rss(),
                  "search_p50_ms": round(1000 * float(np.median(times)), 3),
                  "search_p90_ms": round(1000 * float(np.percentile(times, 90)), 3),
                  "recall_at_10": round(hits / exact.size, 4)}))
"""


def _probe(folder: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Load an index folder in a fresh process and time single-query searches there."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one query, one thread: what a server request gets
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(folder), json.dumps(entry)], capture_output=True, text=True, env=env
    )
    if proc.returncode:
        raise RuntimeError(f"probe failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)


def _alternative(vectors: np.ndarray, kind: str, seed: int) -> VectorIndex:
    """An index the builder does not make, tuned the same way (candidates re-scored), for comparison: HNSW (32 links,
    efSearch tuned) or IVF-PQ (48 bytes a vector, nprobe tuned)."""
    import faiss

    n, dims = vectors.shape
    started = time.perf_counter()
    if kind == HNSW:
        index = faiss.IndexHNSWFlat(dims, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
    else:
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dims), dims, lists_for(n), 48, 8, faiss.METRIC_INNER_PRODUCT)
        rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n, 256 * 64), replace=False))
        index.train(np.ascontiguousarray(vectors[rows]))
    trained = time.perf_counter()
    for first in range(0, n, 65_536):
        index.add(np.ascontiguousarray(vectors[first : first + 65_536]))
    added = time.perf_counter()
    queries = sample_queries(vectors, 200, seed + 1)
    exact = exact_top(vectors, queries, RECALL_K)
    value, recall = 1, 0.0
    while value <= 1024:
        if kind == HNSW:
            index.hnsw.efSearch = max(value, RECALL_K)
        else:
            index.nprobe = min(value, index.nlist)
        recall = recall_at(index, queries, exact, vectors)
        if recall >= TARGET_RECALL or (kind != HNSW and index.nprobe == index.nlist):
            break
        value *= 2
    return VectorIndex(
        index,
        kind,
        getattr(index, "nlist", 0),
        getattr(index, "nprobe", 0),
        round(recall, 4),
        len(queries),
        trained - started,
        added - trained,
        time.perf_counter() - added,
    )


def _measure_kind(vectors: np.ndarray, kind: str, queries: np.ndarray, exact: np.ndarray, seed: int) -> dict:
    """Build one kind of index over ``vectors``, write it as a generation would, and probe it."""
    import faiss

    started = time.perf_counter()
    built = build_vector_index(vectors, kind, seed) if kind in BUILT else _alternative(vectors, kind, seed)
    seconds = time.perf_counter() - started
    folder = Path(tempfile.mkdtemp(prefix=f"tr-qa-scale-{kind}-"))
    try:
        faiss.write_index(built.index, str(folder / "faiss.index"))
        np.save(folder / "vectors.npy", vectors)
        np.save(folder / "queries.npy", queries)
        np.save(folder / "exact.npy", exact)
        entry = built.manifest() if kind in BUILT else {"index": kind}
        if kind == HNSW:
            entry["ef_search"] = int(built.index.hnsw.efSearch)
        elif kind == IVF_PQ:
            entry.update(lists=built.lists, nprobe=built.nprobe, recall_at_10=built.recall_at_10)
        probe = _probe(folder, entry)  # its recall_at_10: on queries apart from the build's
        return {
            "index": kind,
            "lists": entry.get("lists"),
            "nprobe": entry.get("nprobe"),
            "ef_search": entry.get("ef_search"),
            "build_recall_at_10": entry.get("recall_at_10", built.recall_at_10),
            "build_seconds": round(seconds, 2),
            "train_seconds": round(built.train_seconds, 2),
            "add_seconds": round(built.add_seconds, 2),
            "tune_seconds": round(built.tune_seconds, 2),
            "faiss_bytes": (folder / "faiss.index").stat().st_size,
            "vectors_npy_bytes": (folder / "vectors.npy").stat().st_size,
            **probe,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure_vector_index(n: int, dims: int = 384, seed: int = 0, also: tuple[str, ...] = ()) -> dict:
    """The index the builder would choose for ``n`` chunks, measured beside exact (flat) search on the same data.

    ``also`` adds other indexes (``"ivf-sq8"``, ``"hnsw"``, ``"ivf-pq"``), measured the same way.
    """
    large_from = Settings().large_index_chunks
    started = time.perf_counter()
    vectors = clustered_vectors(n, dims, seed)
    generated = time.perf_counter() - started
    # Evaluation queries are drawn apart from the ones the build tunes nprobe on (another seed).
    queries = sample_queries(vectors, SEARCH_QUERIES, seed + 7)
    exact = exact_top(vectors, queries, min(RECALL_K, n))
    chosen = choose_kind(n, large_from)
    out: dict[str, Any] = {
        "vectors": GENERATED,
        "n": n,
        "dims": dims,
        "seed": seed,
        "large_index_chunks": large_from,
        "chosen": chosen,
        "generate_seconds": round(generated, 2),
        "queries": len(queries),
        "cpu_threads": os.cpu_count(),
    }
    out[chosen] = _measure_kind(vectors, chosen, queries, exact, seed)
    for kind in (FLAT, *also):
        if kind not in out:
            out[kind] = _measure_kind(vectors, kind, queries, exact, seed)
    return out


# ---------------------------------------------------------------------------------------------------------------
# A text corpus of N chunks


_ASK = """
import json, sys, time
import numpy as np
from tr_qa.bench.scale import rss
from tr_qa.config import Settings, project_root
from tr_qa.qa import QA
questions = json.loads(sys.argv[2])
before = rss()
started = time.perf_counter()
qa = QA.load(sys.argv[1], Settings(reader_passages=0))
loaded_s, loaded = time.perf_counter() - started, rss()
qa.ask("warm up the embedder")
times = []
for q in questions:
    t = time.perf_counter()
    qa.candidates(q)
    times.append(time.perf_counter() - t)
vocabulary = getattr(qa.data.bm25, "vocab_dict", None)
held = {"document_columns": getattr(qa.data.documents, "nbytes", None),
        "bm25_vocabulary": getattr(vocabulary, "nbytes", None), "bm25_terms": len(vocabulary or ())}
print(json.dumps({"load_seconds": round(loaded_s, 2), "rss_before_load": before, "rss_after_load": loaded,
                  "rss_after_asking": rss(), "ask_p50_ms": round(1000 * float(np.median(times)), 1),
                  "ask_p95_ms": round(1000 * float(np.percentile(times, 95)), 1), "held_bytes": held,
                  "large": qa.data.large, "vectors": qa.data.manifest["vectors"]}))
"""


def measure_corpus(chunks: int, work: Path, squad_file: Path, questions: int = 50) -> dict:
    """Write a synthetic corpus of about ``chunks`` chunks, index it, and load and ask it in a fresh process.

    Asks go without the span reader (``reader_passages=0``): this measures the index, not the reader.
    """
    from tr_qa.bench.synthetic import synthetic_corpus
    from tr_qa.index import build

    corpus, index_dir = work / "corpus", work / "index"
    started = time.perf_counter()
    made = synthetic_corpus(squad_file, chunks, corpus, questions)
    files = sum(1 for _ in corpus.glob("*.txt"))
    written = time.perf_counter() - started
    settings = Settings(corpus_dir=corpus, index_dir=index_dir)
    report = build(settings, progress=False)
    loaded = measure_loaded(index_dir, list(made.questions))
    size = sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file())
    return {
        "corpus": f"SQuAD v1.1 training paragraphs, {files} files, recombined past the first pass",
        "chunks": report.chunks,
        "documents": report.documents,
        "write_seconds": round(written, 1),
        "build_seconds": round(report.seconds, 1),
        "index_bytes": size,
        **loaded,
    }


def measure_loaded(index_dir: Path, questions: list[str]) -> dict[str, Any]:
    """Load an index and ask ``questions`` (no span reader) in a fresh process: load time, RSS, ask latency."""
    proc = subprocess.run(
        [sys.executable, "-c", _ASK, str(index_dir), json.dumps(questions)], capture_output=True, text=True
    )
    if proc.returncode:
        raise RuntimeError(f"asking failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``vectors N...`` or ``corpus N --work DIR``; prints JSON."""
    parser = argparse.ArgumentParser(prog="python -m tr_qa.bench.scale", description=__doc__)
    parser.add_argument("what", choices=("vectors", "corpus"))
    parser.add_argument("sizes", type=int, nargs="+")
    parser.add_argument("--work", type=Path, help="folder for the corpus and its index (corpus)")
    parser.add_argument("--squad", type=Path, help="SQuAD v1.1 training file (corpus)")
    others = (IVF_SQ8, HNSW, IVF_PQ)
    parser.add_argument("--also", nargs="*", default=[], choices=others, help="more indexes to compare")
    args = parser.parse_args(argv)
    for n in args.sizes:
        if args.what == "vectors":
            result = measure_vector_index(n, also=tuple(args.also))
        else:
            work = args.work or Path(tempfile.mkdtemp(prefix="tr-qa-scale-corpus-"))
            result = measure_corpus(n, work / str(n), args.squad or (project_root() / SQUAD_TRAIN).resolve())
        print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()
