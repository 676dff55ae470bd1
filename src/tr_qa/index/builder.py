"""Building an index generation: plan → embed changes → assemble → write generation.

``build`` reads the corpus, and when it differs from the live index it plans what changed (``plan_build``),
analyses and embeds only the text the index does not hold yet (``embed_changes``), puts the new generation
together in memory with its FAISS and BM25 indexes (``assemble``) and writes it beside the live one before
pointing ``CURRENT`` at it (``tr_qa.index.writer``). Each stage hands a frozen dataclass to the next.

From ``Settings.large_index_chunks`` chunks on, an index is large: its FAISS index is IVF-SQ4 (4-bit codes) with a
tuned ``nprobe`` instead of exact (``tr_qa.index.vectors``), and its sentence vectors are stored as 8-bit integers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tr_qa.analyse import Analyser, DocAnalysis
from tr_qa.chunk import chunk_document
from tr_qa.config import Settings
from tr_qa.embed import Embedder
from tr_qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, IndexWriteError, InputError
from tr_qa.index import writer
from tr_qa.index.layout import (
    FLOAT32,
    INT8,
    INT8_SCALE,
    REBUILD_HINT,
    IndexData,
    build_lock,
    expected_settings,
    mismatch,
    package_versions,
)
from tr_qa.index.lexical import build_lexical
from tr_qa.index.loader import load
from tr_qa.index.store import sha256_of
from tr_qa.index.vectors import FLAT, VectorIndex, build_vector_index, choose_kind
from tr_qa.ingest import IngestReport, Skipped, ingest
from tr_qa.types import Chunk, Document

Log = Callable[[str], None]


@dataclass(frozen=True)
class BuildReport:
    """What a build did."""

    path: Path
    documents: int
    chunks: int
    embedded_chunks: int
    reused_chunks: int
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    skipped: tuple[Skipped, ...]
    seconds: float
    rebuilt_all: bool
    unchanged: bool = field(default=False)
    # Chunks left out because an earlier chunk has exactly the same text (it is embedded and shown once).
    duplicate_chunks: int = 0
    # Bad metadata.json values and readers' notes: the documents concerned are indexed all the same.
    warnings: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class BuildPlan:
    """What a build will do: the documents, what changed since the live index, and the chunks to hold."""

    documents: tuple[Document, ...]
    old: IndexData | None
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    chunks: tuple[Chunk, ...]
    duplicate_chunks: int
    # Past Settings.large_index_chunks: approximate vector search, 8-bit sentence vectors.
    large: bool = False


@dataclass(frozen=True)
class Embedded:
    """Every document's analysis and a vector for every chunk and sentence text the new generation holds."""

    analyses: dict[str, DocAnalysis]
    chunk_vectors: dict[str, np.ndarray]
    sentence_vectors: dict[str, np.ndarray]
    new_chunks: int
    new_sentences: int


def build(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    analyser: Analyser | None = None,
    progress: bool = True,
    log: Log = lambda _msg: None,
) -> BuildReport:
    """Index the corpus folder into ``settings.index_dir``; embeds only text the index does not hold yet."""
    started = time.perf_counter()
    corpus = _read_corpus(settings.corpus_dir, log)
    embedder = embedder or Embedder(settings.threads)
    index_dir = Path(settings.index_dir)
    expected = expected_settings(settings, embedder)

    # Up to date? Decided without writing anything, so a read-only index folder can still be checked.
    old = _previous(index_dir, expected, log)
    if old is not None and _same_documents(old, corpus.documents):
        writer.tidy(index_dir, keep=old.path.name)
        n = len(old.chunks)
        dups = int(old.manifest["counts"].get("duplicate_chunks", 0))
        seconds = time.perf_counter() - started
        return BuildReport(
            index_dir, len(old.documents), n, 0, n, (), (), corpus.skipped, seconds, False, True, dups, corpus.warnings
        )
    try:
        with build_lock(index_dir):
            old = _previous(index_dir, expected, lambda _msg: None)  # another build may have finished meanwhile
            plan = plan_build(corpus.documents, old, settings)
            embedded = embed_changes(plan, embedder, analyser or Analyser(), progress, log)
            generation = assemble(plan, embedded, settings, embedder)
            _log_vector_index(generation.vector_index, log)
            gen = writer.write_generation(index_dir, generation)
            writer.remove_stale_generations(index_dir, keep=gen.name)
    except OSError as exc:
        raise IndexWriteError(
            f"cannot write the index in {index_dir} ({exc.strerror or exc}); make it writable or choose another "
            "folder with --index"
        ) from None
    return BuildReport(
        index_dir,
        len(plan.documents),
        len(plan.chunks),
        embedded.new_chunks,
        len(plan.chunks) - embedded.new_chunks,
        plan.changed,
        plan.removed,
        corpus.skipped,
        time.perf_counter() - started,
        old is None,
        duplicate_chunks=plan.duplicate_chunks,
        warnings=corpus.warnings,
    )


def _log_vector_index(built: VectorIndex, log: Log) -> None:
    """Say which approximate index a large corpus got, and whether its recall reached the target."""
    if built.kind == FLAT:
        return
    entry = built.manifest()
    log(
        f"{built.index.ntotal} chunks: {built.kind} index, "
        f"{built.lists} lists, nprobe {built.nprobe}, recall@10 {built.recall_at_10} against exact search"
    )
    if built.recall_at_10 is not None and built.recall_at_10 < entry["target_recall"]:
        log(f"warning: recall@10 stays below {entry['target_recall']} even searching every list")


def _read_corpus(corpus_dir: Path, log: Log) -> IngestReport:
    """The corpus's documents, each skipped file and warning logged; InputError when nothing can be indexed."""
    corpus = ingest(corpus_dir)
    for item in (*corpus.skipped, *corpus.warnings):
        log(f"warning: {item.path}: {item.reason}")
    if not corpus.documents:
        skipped = f" ({len(corpus.skipped)} file(s) skipped, see the warnings above)" if corpus.skipped else ""
        raise InputError(f"no documents to index in {corpus_dir}: it holds no readable document files{skipped}")
    return corpus


def _previous(index_dir: Path, expected: dict[str, Any], log: Log) -> IndexData | None:
    """The current index if it can be built upon; a damaged one is reported and then rebuilt from the corpus."""
    try:
        data = load(index_dir)
    except IndexMissingError:
        return None
    except IndexCorruptError as exc:
        log(f"warning: {str(exc).removesuffix('; ' + REBUILD_HINT)}; rebuilding the index from the corpus")
        return None
    except IndexMismatchError:
        return None
    return None if mismatch(data.manifest, expected) else data


def _same_documents(old: IndexData, documents: Sequence[Document]) -> bool:
    """Whether the index holds exactly these documents, titles and provenance included."""

    def key(d: Document) -> tuple[object, ...]:
        return d.sha256, d.title, d.meta, d.pages, d.comments

    stored = old.documents
    # Hashes are held in memory: most changes are found without reading a text back.
    if len(stored) != len(documents) or any(d.id not in stored for d in documents):
        return False
    if any(sha256_of(stored, d.id) != d.sha256 for d in documents):
        return False
    return all(key(stored[d.id]) == key(d) for d in documents)


# ---------------------------------------------------------------------------------------------------------------
# The stages


def plan_build(documents: Sequence[Document], old: IndexData | None, settings: Settings) -> BuildPlan:
    """What changed since ``old`` and the chunks of the new generation (each distinct text once)."""
    old_docs = old.documents if old is not None else {}
    changed = tuple(d.id for d in documents if d.id not in old_docs or sha256_of(old_docs, d.id) != d.sha256)
    removed = tuple(sorted(set(old_docs) - {d.id for d in documents}))
    # Every document is chunked again (cheap next to embedding): which chunk of a repeated text is kept depends
    # on the whole corpus, not on what changed.
    chunks: list[Chunk] = []
    seen: set[str] = set()
    duplicates = 0
    for doc in documents:
        for c in chunk_document(doc, settings.chunk_size, settings.chunk_overlap):
            if c.text in seen:
                duplicates += 1
                continue
            seen.add(c.text)
            chunks.append(c)
    large = len(chunks) >= settings.large_index_chunks
    return BuildPlan(tuple(documents), old, changed, removed, tuple(chunks), duplicates, large)


def embed_changes(plan: BuildPlan, embedder: Embedder, analyser: Analyser, progress: bool, log: Log) -> Embedded:
    """Analyse the new or changed documents and embed only the chunk and sentence texts no vector exists for."""
    old = plan.old
    fresh = [d for d in plan.documents if d.id in plan.changed]
    analysed = dict(zip([d.id for d in fresh], analyser.analyse([d.text for d in fresh]), strict=True))
    analyses: dict[str, DocAnalysis] = {}
    for d in plan.documents:
        if d.id in analysed:
            analyses[d.id] = analysed[d.id]
        else:  # unchanged text: its analysis is still right
            assert old is not None
            analyses[d.id] = old.analyses[d.id]

    # Vectors already computed, by the exact text they embed: reused whatever document the text is in now.
    chunk_vectors: dict[str, np.ndarray] = {}
    sentence_vectors: dict[str, np.ndarray] = {}
    if old is not None:
        chunk_vectors = {c.text: old.chunk_vectors[i] for i, c in enumerate(old.chunks)}
    if old is not None:
        row = 0
        for doc_id, old_analysis in old.analyses.items():
            text = old.documents[doc_id].text
            for s, e in old_analysis.sentences:
                sentence_vectors.setdefault(text[s:e], old.sentence_vectors[row])
                row += 1

    sentence_texts = [d.text[s:e] for d in plan.documents for s, e in analyses[d.id].sentences]
    new_chunks = list(dict.fromkeys(c.text for c in plan.chunks if c.text not in chunk_vectors))
    new_sentences = list(dict.fromkeys(t for t in sentence_texts if t not in sentence_vectors))
    if new_chunks or new_sentences:
        log(
            f"embedding {len(new_chunks)} chunks and {len(new_sentences)} sentences "
            f"of {len(fresh)} new or changed documents"
        )
    # One call for both: an embedder on Ray starts (and loads the model into) a pool of workers per call.
    fresh_vectors = embedder.encode(new_chunks + new_sentences, progress=progress)
    chunk_vectors.update(zip(new_chunks, fresh_vectors[: len(new_chunks)], strict=True))
    sentence_vectors.update(zip(new_sentences, fresh_vectors[len(new_chunks) :], strict=True))
    return Embedded(analyses, chunk_vectors, sentence_vectors, len(new_chunks), len(new_sentences))


def assemble(plan: BuildPlan, embedded: Embedded, settings: Settings, embedder: Embedder) -> writer.Generation:
    """The new generation: chunk and sentence matrices in store order, the FAISS and BM25 indexes over the chunks,
    and the manifest describing them."""
    dims = embedder.dims
    vectors = np.zeros((len(plan.chunks), dims), np.float32)
    for i, c in enumerate(plan.chunks):
        vectors[i] = embedded.chunk_vectors[c.text]
    texts = [d.text[s:e] for d in plan.documents for s, e in embedded.analyses[d.id].sentences]
    sentences = np.zeros((len(texts), dims), np.float32)
    for i, t in enumerate(texts):
        sentences[i] = embedded.sentence_vectors[t]
    if plan.large:  # a quarter of the space: a large corpus has ~7 sentences a chunk
        sentences = np.clip(np.rint(sentences * INT8_SCALE), -127, 127).astype(np.int8)
    vector_index = build_vector_index(vectors, choose_kind(len(vectors), settings.large_index_chunks))
    lexical = build_lexical(c.text for c in plan.chunks)

    per_doc: dict[str, int] = {}
    for c in plan.chunks:
        per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
    expected = expected_settings(settings, embedder)
    manifest = {
        **expected,
        "model": {**expected["model"], "dims": dims, "max_seq_length": int(embedder.model.max_seq_length)},
        "retrieval": {
            "default": settings.retriever,
            "hybrid_alpha": settings.hybrid_alpha,
            "dense_sentence_weight": settings.dense_sentence_weight,
        },
        "documents": {
            d.id: {"sha256": d.sha256, "title": d.title, "chunks": per_doc.get(d.id, 0)} for d in plan.documents
        },
        "counts": {
            "documents": len(plan.documents),
            "chunks": len(plan.chunks),
            "sentences": len(texts),
            "duplicate_chunks": plan.duplicate_chunks,
        },
        "vectors": vector_index.manifest(),
        "sentence_vectors": INT8 if plan.large else FLOAT32,
        "bm25": {"typical_score": float(lexical.typical_score)},
        # How this generation's new vectors were computed (the rest were reused from the one before it).
        "embedded": {
            **embedder.provenance(),
            "new_chunks": embedded.new_chunks,
            "new_sentences": embedded.new_sentences,
        },
        "packages": package_versions(),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return writer.Generation(
        manifest, plan.documents, embedded.analyses, plan.chunks, vectors, sentences, vector_index, lexical
    )
