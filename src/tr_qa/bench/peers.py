"""Peer libraries on the same chunks and questions with the same model: txtai's and Haystack's hybrid search.

Both are optional (the ``bench`` extra). A peer that is missing or fails is reported in one line, never fatal.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from tr_qa.bench.figures import Latency, PeerFigures

# Search = Callable[[query], hits]; a peer's setup returns one after indexing.
Search = Callable[[str], Any]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def one_line(exc: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def txtai_index(model: Path, texts: Sequence[str], k: int) -> Search:
    """txtai ``Embeddings(hybrid=True)`` (dense + BM25 scoring) over the texts; returns its search."""
    from txtai import Embeddings

    embeddings = Embeddings(path=str(model), hybrid=True, content=False)
    embeddings.index([(i, text, None) for i, text in enumerate(texts)])
    return lambda q: embeddings.search(q, k)


def haystack_index(model: Path, texts: Sequence[str], k: int) -> Search:
    """Haystack: in-memory BM25 and embedding retrievers joined by reciprocal rank fusion; returns its search."""
    # Set before haystack is imported: it reads this at import and would otherwise try to send usage data.
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    from haystack import Document, Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )

    options: dict[str, Any] = {"model": str(model), "progress_bar": False, "normalize_embeddings": True}
    options["local_files_only"] = True
    doc_embedder = SentenceTransformersDocumentEmbedder(**options)
    doc_embedder.warm_up()
    store = InMemoryDocumentStore()
    docs = [Document(id=str(i), content=text) for i, text in enumerate(texts)]
    store.write_documents(doc_embedder.run(docs)["documents"])
    pipe = Pipeline()
    pipe.add_component("text_embedder", SentenceTransformersTextEmbedder(**options))
    pipe.add_component("embedding", InMemoryEmbeddingRetriever(store, top_k=k))
    pipe.add_component("bm25", InMemoryBM25Retriever(store, top_k=k))
    pipe.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=k))
    pipe.connect("text_embedder.embedding", "embedding.query_embedding")
    pipe.connect("embedding", "joiner")
    pipe.connect("bm25", "joiner")
    pipe.warm_up()
    return lambda q: pipe.run({"text_embedder": {"text": q}, "bm25": {"query": q}})["joiner"]["documents"]


PEERS: dict[str, tuple[str, Callable[[Path, Sequence[str], int], Search]]] = {
    "txtai hybrid": ("txtai", txtai_index),
    "haystack hybrid": ("haystack-ai", haystack_index),
}


def measure_peer(
    name: str, model: Path, texts: Sequence[str], questions: Sequence[str], k: int, threads: int
) -> PeerFigures:
    """Index the texts with one peer (model load included) and time a search per question, after one warm-up."""
    dist, setup = PEERS[name]
    try:
        import torch
        from transformers.utils import logging as hf_logging

        torch.set_num_threads(threads)  # the same torch threads as tr-qa's own stages
        hf_logging.disable_progress_bar()  # the peers' model loads would print a bar each
        started = time.perf_counter()
        search = setup(model, texts, k)
        index_s = time.perf_counter() - started
        search("warm up")
        times = []
        for q in questions:
            started = time.perf_counter()
            search(q)
            times.append(time.perf_counter() - started)
    except Exception as exc:  # a peer is optional: any failure is reported in one line and the bench goes on
        return PeerFigures(name, _version(dist), error=one_line(exc))
    return PeerFigures(name, _version(dist), round(index_s, 3), Latency.of(times))


def measure_peers(
    model: Path, texts: Sequence[str], questions: Sequence[str], k: int, threads: int
) -> tuple[PeerFigures, ...]:
    """Every peer in turn."""
    return tuple(measure_peer(name, model, texts, questions, k, threads) for name in PEERS)
