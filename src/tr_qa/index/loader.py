"""Loading an index generation: every file checked, every failure one line naming the file (IndexCorruptError)."""

from __future__ import annotations

import json
import os
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from tr_qa.analyse import DocAnalysis
from tr_qa.config import Settings
from tr_qa.embed import Embedder
from tr_qa.errors import IndexMismatchError, IndexMissingError
from tr_qa.index.arrays import bm25_index, faiss_index, vectors
from tr_qa.index.layout import (
    CURRENT,
    FAISS,
    FLOAT32,
    FORMAT_VERSION,
    GENERATION,
    INT8,
    INT8_SCALE,
    REBUILD_HINT,
    SENTENCES,
    VECTORS,
    IndexData,
    chunk_hash,
    damaged,
    expected_settings,
    mismatch,
)
from tr_qa.index.lexical import BM25_DIR
from tr_qa.index.store import OFFSET, ChunkTable, DocumentStore, Int8Rows, StoreBuilder, analyses_of, texts_of
from tr_qa.index.vectors import FLAT, IVF_KINDS
from tr_qa.ingest import content_hash
from tr_qa.memory import release_free_memory
from tr_qa.types import DocMeta, Document

META_FIELDS = frozenset(f.name for f in fields(DocMeta))


def current_generation(index_dir: Path) -> Path:
    """The live generation folder named by ``CURRENT``."""
    pointer = Path(index_dir) / CURRENT
    if not pointer.exists():
        raise IndexMissingError(f"no index in {index_dir}: run `tr-qa index` to build it")
    try:
        name = pointer.read_bytes()[:200].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise damaged(pointer, "it is not text") from None
    except OSError as exc:
        raise damaged(pointer, f"cannot be read: {exc.strerror}") from None
    if not GENERATION.fullmatch(name):
        raise damaged(pointer, f"it names {name[:60]!r}, not a generation folder")
    gen = Path(index_dir) / name
    if not gen.is_dir():
        raise damaged(pointer, f"it names {name!r}, which does not exist")
    return gen


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise damaged(path, f"not JSON: {exc}") from None


def _row(path: Path, n: int, line: str) -> dict[str, Any] | None:
    """Line ``n`` of a JSON-lines file as an object; None for a blank line; IndexCorruptError otherwise."""
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise damaged(path, f"line {n} is not JSON: {exc}") from None
    if not isinstance(row, dict):
        raise damaged(path, f"line {n} is not an object")
    return row


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        try:
            for n, line in enumerate(fh, 1):
                row = _row(path, n, line)
                if row is not None:
                    yield n, row
        except UnicodeDecodeError as exc:
            raise damaged(path, f"not UTF-8 text ({exc.reason})") from None


def _is_int(value: object) -> bool:
    return type(value) is int


def _manifest_problem(m: dict[str, Any]) -> str | None:
    """What is wrong with the shape of a manifest (format already checked), or None."""
    model = m.get("model")
    if not isinstance(model, dict) or not all(isinstance(model.get(k), str) for k in ("id", "sha256")):
        return "model must be an object with text fields id and sha256"
    if not _is_int(model.get("dims")) or model["dims"] <= 0:
        return "model.dims must be a positive whole number"
    for key in ("chunking", "analysis", "documents", "counts"):
        if not isinstance(m.get(key), dict):
            return f"{key} must be an object"
    for doc_id, entry in m["documents"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or not _is_int(entry.get("chunks")):
            return f"documents[{doc_id!r}] must be an object with sha256 and chunks"
    for key in ("documents", "chunks", "sentences"):
        if not _is_int(m["counts"].get(key)) or m["counts"][key] < 0:
            return f"counts.{key} must be a whole number"
    if m.get("sentence_vectors") not in (FLOAT32, INT8):
        return f"sentence_vectors must be {FLOAT32!r} or {INT8!r}"
    vectors = m.get("vectors")
    if not isinstance(vectors, dict) or vectors.get("index") not in (FLAT, *IVF_KINDS):
        return f"vectors.index must be one of {', '.join(repr(k) for k in (FLAT, *IVF_KINDS))}"
    positive = all(_is_int(vectors.get(k)) and vectors[k] > 0 for k in ("lists", "nprobe"))
    if vectors["index"] in IVF_KINDS and not positive:
        return "vectors.lists and vectors.nprobe must be positive whole numbers"
    if not isinstance(m.get("files"), dict) or not isinstance(m.get("bm25"), dict):
        return "files and bm25 must be objects"
    if not isinstance(m["bm25"].get("typical_score"), float):
        return "bm25.typical_score must be a number"
    return None


def _ranges(value: object, length: int) -> tuple[tuple[int, int], ...] | None:
    """A list of [start, end] pairs inside a text of ``length`` characters, in order; None if it is not one."""
    if not isinstance(value, list):
        return None
    out: list[tuple[int, int]] = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and _is_int(item[0]) and _is_int(item[1])):
            return None
        start, end = item
        if not 0 <= start <= end <= length or (out and start < out[-1][0]):
            return None
        out.append((start, end))
    return tuple(out)


def _meta(value: object) -> DocMeta | None:
    """A stored DocMeta (an object of text-or-null fields that DocMeta accepts), or None if it is not one."""
    if not isinstance(value, dict) or set(value) - META_FIELDS:
        return None
    if not all(v is None or isinstance(v, str) for v in value.values()):
        return None
    try:
        return DocMeta(**value)
    except ValueError:
        return None


def _document(path: Path, n: int, row: dict[str, Any]) -> tuple[Document, DocAnalysis]:
    """One documents.jsonl row, checked: types, content hash, provenance, and every range inside the text."""
    fields = ("id", "title", "text", "sha256")
    if not all(isinstance(row.get(k), str) for k in fields) or not isinstance(row.get("path", ""), str):
        raise damaged(path, f"line {n} lacks text fields {', '.join(fields)}")
    text = row["text"]
    if content_hash(text) != row["sha256"]:
        raise damaged(path, f"line {n}: the text of {row['id']!r} does not match its hash")
    try:
        analysis = DocAnalysis.from_json(row["analysis"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise damaged(path, f"line {n}: bad sentence or entity list ({type(exc).__name__})") from None
    spans = [*analysis.sentences, *((s, e) for s, e, _ in analysis.entities)]
    if any(not 0 <= s <= e <= len(text) for s, e in spans):
        raise damaged(path, f"line {n}: a sentence or entity lies outside {row['id']!r}")
    meta = _meta(row.get("meta"))
    if meta is None:
        raise damaged(path, f"line {n}: the provenance (meta) of {row['id']!r} is not valid")
    ranges = {key: _ranges(row.get(key), len(text)) for key in ("pages", "comments")}
    for key, found in ranges.items():
        if found is None:
            raise damaged(path, f"line {n}: the {key} of {row['id']!r} are not ranges inside its text")
    doc = Document(
        row["id"],
        row["title"],
        text,
        row.get("path", ""),
        row["sha256"],
        meta=meta,
        pages=ranges["pages"] or (),
        comments=ranges["comments"] or (),
    )
    return doc, analysis


class _ChunkColumns:
    """chunks.jsonl rows, each checked against its document's text (offsets inside it, length, hash), collected as
    columns with the rows of the sentences that start inside each chunk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.doc = array("i")
        self.starts = array("q")
        self.ends = array("q")
        self.rows = array("q")

    def add(self, n: int, row: dict[str, Any], position: int, text: str, analysis: DocAnalysis, first: int) -> None:
        """Check line ``n`` (a chunk of the document in store row ``position``) and keep it."""
        start, end = row.get("start"), row.get("end")
        if not (_is_int(start) and _is_int(end)) or not 0 <= start < end <= len(text):  # type: ignore[operator]
            raise damaged(
                self.path, f"line {n}: offsets {start!r}..{end!r} lie outside {row['doc']!r} ({len(text)} chars)"
            )
        if row.get("len") != end - start:  # type: ignore[operator]
            raise damaged(self.path, f"line {n}: the chunk of {row['doc']!r} has the wrong length")
        if row.get("sha") != chunk_hash(text[start:end]):  # type: ignore[index]
            raise damaged(self.path, f"line {n}: the chunk of {row['doc']!r} does not match its text")
        self.doc.append(position)
        self.starts.append(start)  # type: ignore[arg-type]
        self.ends.append(end)  # type: ignore[arg-type]
        sentence_starts = [s for s, _ in analysis.sentences]
        self.rows.extend((first + bisect_left(sentence_starts, start), first + bisect_left(sentence_starts, end)))

    def table(self, documents: DocumentStore) -> ChunkTable:
        """The chunk table over ``documents``."""
        return ChunkTable(
            documents.ids,
            np.array(self.doc, dtype=np.int32),
            _column(self.starts),
            _column(self.ends),
            texts_of(documents),
            _column(self.rows).reshape(-1, 2),
        )


def _documents(path: Path, chunks_path: Path) -> tuple[DocumentStore, int, _ChunkColumns | None]:
    """documents.jsonl, every row checked, kept as a DocumentStore (no texts held), and its sentence count.

    chunks.jsonl is read alongside: the builder writes chunks in document order, so each document's chunks are
    checked while its text is at hand, and no document is parsed twice. The chunk columns come back when every chunk
    row was taken that way; None when the file is in another order (or damaged), to be read on its own.
    """
    columns = StoreBuilder()
    chunk_rows = _read_jsonl(chunks_path)
    chunks = _ChunkColumns(chunks_path)
    pending = next(chunk_rows, None)
    sentences = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        with os.fdopen(os.dup(fd), "rb") as fh:
            offset = 0
            for n, raw in enumerate(fh, 1):
                line_offset, offset = offset, offset + len(raw)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise damaged(path, f"not UTF-8 text ({exc.reason})") from None
                row = _row(path, n, line)
                if row is None:
                    continue
                doc, analysis = _document(path, n, row)
                position = len(columns.ids)
                columns.add(doc, line_offset, len(raw), sentences)
                while pending is not None and pending[1].get("doc") == doc.id:
                    chunks.add(pending[0], pending[1], position, doc.text, analysis, sentences)
                    pending = next(chunk_rows, None)
                sentences += len(analysis.sentences)
        store = columns.build(fd)
    except BaseException:
        os.close(fd)
        raise
    finally:
        chunk_rows.close()
    repeated = store.repeated_id()
    if repeated is not None:
        raise damaged(path, f"document {repeated!r} appears on more than one line")
    return store, sentences, chunks if pending is None else None


def _column(values: Sequence[int] | array[int]) -> np.ndarray:
    """Offsets or rows as 32-bit integers when they fit (they do but in a corpus of billions), else 64-bit."""
    fits = not len(values) or max(values) < 2**31
    return np.array(values, dtype=OFFSET if fits else np.int64)


def _chunks(path: Path, documents: DocumentStore) -> ChunkTable:
    """chunks.jsonl in any order, checked row by row against the documents read back from the store."""
    chunks = _ChunkColumns(path)
    for n, row in _read_jsonl(path):
        position = documents.row_of(row.get("doc"))
        if position is None:
            raise damaged(path, f"line {n} names no indexed document")
        found, analysis = documents.read(row["doc"])
        chunks.add(n, row, position, found.text, analysis, documents.first_sentence_at(position))
    return chunks.table(documents)


def _load_generation(gen: Path, settings: Settings | None, embedder: Embedder | None) -> IndexData:
    manifest_path = gen / "manifest.json"
    manifest = _read_json(manifest_path)
    if not isinstance(manifest, dict):
        raise damaged(manifest_path, f"it holds {type(manifest).__name__}, not an object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format {manifest.get('format_version')!r} is not {FORMAT_VERSION}; {REBUILD_HINT}"
        )
    problem = _manifest_problem(manifest)
    if problem:
        raise damaged(manifest_path, problem)
    if settings is not None:
        problem = mismatch(manifest, expected_settings(settings, embedder or Embedder(settings.threads)))
        if problem:
            raise IndexMismatchError(f"{problem}; {REBUILD_HINT}")
    dims = manifest["model"]["dims"]

    docs_path, chunks_path = gen / "documents.jsonl", gen / "chunks.jsonl"
    documents, n_sent, in_order = _documents(docs_path, chunks_path)
    listed = manifest["documents"]
    if len(listed) != len(documents) or any(
        listed.get(doc_id, {}).get("sha256") != documents.sha256_at(i) for i, doc_id in enumerate(documents.ids)
    ):
        raise damaged(manifest_path, "its document list differs from documents.jsonl")

    chunks = in_order.table(documents) if in_order is not None else _chunks(chunks_path, documents)
    per_doc = np.bincount(chunks.doc, minlength=len(documents))
    if any(listed[doc_id]["chunks"] != n for doc_id, n in zip(documents.ids, per_doc.tolist(), strict=True)):
        raise damaged(manifest_path, "its chunk counts differ from chunks.jsonl")
    counts = manifest["counts"]
    if (counts["documents"], counts["chunks"], counts["sentences"]) != (len(documents), len(chunks), n_sent):
        raise damaged(manifest_path, "its counts differ from the files")

    chunk_vectors = vectors(gen / VECTORS, len(chunks), dims)
    if manifest["sentence_vectors"] == INT8:
        sentence_vectors: Any = Int8Rows(vectors(gen / SENTENCES, n_sent, dims, np.int8), INT8_SCALE)
    else:
        sentence_vectors = vectors(gen / SENTENCES, n_sent, dims)
    # The per-document list (hashes, titles, chunk counts) was only needed for the checks above: a million-chunk
    # index holds it as hundreds of MB of small Python objects. Counts come from the chunk table instead.
    del listed
    manifest = {key: value for key, value in manifest.items() if key != "documents"}
    ann = faiss_index(gen / FAISS, len(chunks), dims, manifest["vectors"])
    bm25 = bm25_index(gen / BM25_DIR, len(chunks), manifest_path, manifest["files"])
    return IndexData(
        gen, manifest, documents, analyses_of(documents), chunks, chunk_vectors, sentence_vectors, ann, bm25
    )


def load(index_dir: Path, settings: Settings | None = None, embedder: Embedder | None = None) -> IndexData:
    """Load the live index; raise a one-line error if it is missing, damaged or built differently.

    Reads only: it works on a read-only index folder.
    """
    return _load(Path(index_dir), settings, embedder, retry=True)


def _load(index_dir: Path, settings: Settings | None, embedder: Embedder | None, retry: bool) -> IndexData:
    gen = current_generation(index_dir)
    try:
        data = _load_generation(gen, settings, embedder)
        release_free_memory()
        return data
    except OSError as exc:
        # A build may have swapped generations and removed this one while it was being read: read the new one.
        if retry and isinstance(exc, FileNotFoundError) and current_generation(index_dir) != gen:
            return _load(index_dir, settings, embedder, retry=False)
        # Files inside the generation (bm25/ is a folder of its own) are named by their path under it.
        path = Path(exc.filename) if exc.filename else gen
        named = path if path.is_relative_to(gen) else gen / path.name
        raise damaged(named, exc.strerror or type(exc).__name__) from None
