"""Build, update and load the index directory: FAISS vectors + chunk store + manifest, written atomically.

Layout: ``index/CURRENT`` names the live generation folder ``index/gen-<time>/`` holding ``faiss.index`` (exact
below ``Settings.large_index_chunks`` chunks, IVF-SQ4 with a tuned nprobe from there: ``tr_qa.index.vectors``),
``vectors.npy`` (the chunk vectors, rows read as asked for: ``tr_qa.index.rows``), ``bm25/`` (the BM25 index,
postings read likewise),
``documents.jsonl`` (text, title, hash, provenance, page and comment ranges, sentences, entities; read back a line
at a time: ``tr_qa.index.store``), ``chunks.jsonl`` (offsets, length and a short hash of each chunk's text),
``sentences.npy`` (a vector for every sentence: float32, or 8-bit in a large index) and ``manifest.json``.
A build writes a new generation and then replaces ``CURRENT`` with ``os.replace``, so a build killed at any moment
leaves the previous index usable; the next build removes what such a kill left behind.

``load`` (``tr_qa.index.loader``) trusts nothing it reads: the pointer, the manifest's shape, every array's shape
and dtype, every document's hash, provenance and ranges and every chunk's offsets, length and hash are checked,
and any failure is one line naming the file. ``build`` (``tr_qa.index.builder``) treats a damaged index as no
index and rebuilds it from the corpus. Only new text is embedded: vectors are reused by the text they embed, and
text that occurs twice (identical documents, repeated chunks) is embedded once and indexed once. What the files
hold and when an index can be reused is defined in ``tr_qa.index.layout``.
"""

from __future__ import annotations

from tr_qa.index.builder import BuildReport, build
from tr_qa.index.layout import (
    CURRENT,
    FORMAT_VERSION,
    LOCK,
    REBUILD_HINT,
    IndexData,
    build_lock,
    chunk_hash,
    expected_settings,
    mismatch,
    package_versions,
)
from tr_qa.index.loader import current_generation, load

__all__ = [
    "CURRENT",
    "FORMAT_VERSION",
    "LOCK",
    "REBUILD_HINT",
    "BuildReport",
    "IndexData",
    "build",
    "build_lock",
    "chunk_hash",
    "current_generation",
    "expected_settings",
    "load",
    "mismatch",
    "package_versions",
]
