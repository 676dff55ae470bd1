"""Loading an index generation: every file checked, every failure one line naming the file (IndexCorruptError)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from tr_qa.analyse import DocAnalysis
from tr_qa.config import Settings
from tr_qa.embed import Embedder
from tr_qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from tr_qa.index.layout import (
    CURRENT,
    FORMAT_VERSION,
    GENERATION,
    REBUILD_HINT,
    IndexData,
    chunk_hash,
    expected_settings,
    mismatch,
)
from tr_qa.ingest import content_hash
from tr_qa.types import Chunk, DocMeta, Document

META_FIELDS = frozenset(f.name for f in fields(DocMeta))


def _damaged(path: Path, what: str) -> IndexCorruptError:
    what = " ".join(str(what).split())[:200]
    return IndexCorruptError(f"index file {path} is damaged ({what}); {REBUILD_HINT}")


def current_generation(index_dir: Path) -> Path:
    """The live generation folder named by ``CURRENT``."""
    pointer = Path(index_dir) / CURRENT
    if not pointer.exists():
        raise IndexMissingError(f"no index in {index_dir}: run `tr-qa index` to build it")
    try:
        name = pointer.read_bytes()[:200].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _damaged(pointer, "it is not text") from None
    except OSError as exc:
        raise _damaged(pointer, f"cannot be read: {exc.strerror}") from None
    if not GENERATION.fullmatch(name):
        raise _damaged(pointer, f"it names {name[:60]!r}, not a generation folder")
    gen = Path(index_dir) / name
    if not gen.is_dir():
        raise _damaged(pointer, f"it names {name!r}, which does not exist")
    return gen


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _damaged(path, f"not JSON: {exc}") from None


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        try:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except (ValueError, RecursionError) as exc:
                    raise _damaged(path, f"line {n} is not JSON: {exc}") from None
                if not isinstance(row, dict):
                    raise _damaged(path, f"line {n} is not an object")
                yield n, row
        except UnicodeDecodeError as exc:
            raise _damaged(path, f"not UTF-8 text ({exc.reason})") from None


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
        raise _damaged(path, f"line {n} lacks text fields {', '.join(fields)}")
    text = row["text"]
    if content_hash(text) != row["sha256"]:
        raise _damaged(path, f"line {n}: the text of {row['id']!r} does not match its hash")
    try:
        analysis = DocAnalysis.from_json(row["analysis"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _damaged(path, f"line {n}: bad sentence or entity list ({type(exc).__name__})") from None
    spans = [*analysis.sentences, *((s, e) for s, e, _ in analysis.entities)]
    if any(not 0 <= s <= e <= len(text) for s, e in spans):
        raise _damaged(path, f"line {n}: a sentence or entity lies outside {row['id']!r}")
    meta = _meta(row.get("meta"))
    if meta is None:
        raise _damaged(path, f"line {n}: the provenance (meta) of {row['id']!r} is not valid")
    ranges = {key: _ranges(row.get(key), len(text)) for key in ("pages", "comments")}
    for key, found in ranges.items():
        if found is None:
            raise _damaged(path, f"line {n}: the {key} of {row['id']!r} are not ranges inside its text")
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


def _chunk(path: Path, n: int, row: dict[str, Any], documents: dict[str, Document]) -> Chunk:
    """One chunks.jsonl row, checked: its document exists, its offsets lie inside it, length and hash match."""
    doc = documents.get(row.get("doc"))  # type: ignore[arg-type]
    start, end = row.get("start"), row.get("end")
    if doc is None:
        raise _damaged(path, f"line {n} names no indexed document")
    if not (_is_int(start) and _is_int(end)) or not 0 <= start < end <= len(doc.text):  # type: ignore[operator]
        raise _damaged(path, f"line {n}: offsets {start!r}..{end!r} lie outside {doc.id!r} ({len(doc.text)} chars)")
    text = doc.text[start:end]
    # Indexes written before lengths and hashes were stored are checked for bounds only until rebuilt.
    if "len" in row and row["len"] != end - start:  # type: ignore[operator]
        raise _damaged(path, f"line {n}: the chunk of {doc.id!r} has the wrong length")
    if "sha" in row and row["sha"] != chunk_hash(text):
        raise _damaged(path, f"line {n}: the chunk of {doc.id!r} does not match its text")
    return Chunk(doc.id, start, end, text)  # type: ignore[arg-type]


def _vectors(path: Path, rows: int, dims: int) -> np.ndarray:
    """sentences.npy, checked: a finite float32 matrix of ``rows`` × ``dims``."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, MemoryError) as exc:
        raise _damaged(path, f"not a NumPy array: {exc}") from None
    if not isinstance(array, np.ndarray) or array.dtype != np.float32 or array.shape != (rows, dims):
        shape = getattr(array, "shape", "?")
        raise _damaged(path, f"expected float32 {rows}×{dims}, found {getattr(array, 'dtype', '?')} {shape}")
    if not np.isfinite(array).all():
        raise _damaged(path, "it holds values that are not finite numbers")
    return array


def _faiss(path: Path, rows: int, dims: int) -> tuple[Any, np.ndarray]:
    """faiss.index, checked: inner-product vectors of ``dims``, one per chunk, all finite."""
    import faiss

    try:
        index = faiss.read_index(str(path))
    except (RuntimeError, MemoryError) as exc:
        lines = str(exc).strip().splitlines()
        raise _damaged(path, f"FAISS cannot read it: {lines[-1] if lines else type(exc).__name__}") from None
    if index.d != dims or index.ntotal != rows or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise _damaged(path, f"expected {rows} inner-product vectors of {dims}, found {index.ntotal} of {index.d}")
    vectors = index.reconstruct_n(0, rows) if rows else np.zeros((0, dims), np.float32)
    if not np.isfinite(vectors).all():
        raise _damaged(path, "it holds values that are not finite numbers")
    return index, vectors


def _load_generation(gen: Path, settings: Settings | None, embedder: Embedder | None) -> IndexData:
    manifest_path = gen / "manifest.json"
    manifest = _read_json(manifest_path)
    if not isinstance(manifest, dict):
        raise _damaged(manifest_path, f"it holds {type(manifest).__name__}, not an object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format {manifest.get('format_version')!r} is not {FORMAT_VERSION}; {REBUILD_HINT}"
        )
    problem = _manifest_problem(manifest)
    if problem:
        raise _damaged(manifest_path, problem)
    if settings is not None:
        problem = mismatch(manifest, expected_settings(settings, embedder or Embedder(settings.threads)))
        if problem:
            raise IndexMismatchError(f"{problem}; {REBUILD_HINT}")
    dims = manifest["model"]["dims"]

    documents: dict[str, Document] = {}
    analyses: dict[str, DocAnalysis] = {}
    docs_path = gen / "documents.jsonl"
    for n, row in _read_jsonl(docs_path):
        doc, analysis = _document(docs_path, n, row)
        if doc.id in documents:
            raise _damaged(docs_path, f"line {n} repeats document {doc.id!r}")
        documents[doc.id], analyses[doc.id] = doc, analysis
    listed = manifest["documents"]
    if set(listed) != set(documents) or any(listed[d]["sha256"] != documents[d].sha256 for d in documents):
        raise _damaged(manifest_path, "its document list differs from documents.jsonl")

    chunks_path = gen / "chunks.jsonl"
    chunks = tuple(_chunk(chunks_path, n, row, documents) for n, row in _read_jsonl(chunks_path))
    per_doc: dict[str, int] = {}
    for c in chunks:
        per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
    if any(listed[d]["chunks"] != per_doc.get(d, 0) for d in documents):
        raise _damaged(manifest_path, "its chunk counts differ from chunks.jsonl")
    n_sent = sum(len(a.sentences) for a in analyses.values())
    counts = manifest["counts"]
    if (counts["documents"], counts["chunks"], counts["sentences"]) != (len(documents), len(chunks), n_sent):
        raise _damaged(manifest_path, "its counts differ from the files")

    sentence_vectors = _vectors(gen / "sentences.npy", n_sent, dims)
    faiss_index, chunk_vectors = _faiss(gen / "faiss.index", len(chunks), dims)
    return IndexData(gen, manifest, documents, analyses, chunks, chunk_vectors, sentence_vectors, faiss_index)


def load(index_dir: Path, settings: Settings | None = None, embedder: Embedder | None = None) -> IndexData:
    """Load the live index; raise a one-line error if it is missing, damaged or built differently.

    Reads only: it works on a read-only index folder.
    """
    return _load(Path(index_dir), settings, embedder, retry=True)


def _load(index_dir: Path, settings: Settings | None, embedder: Embedder | None, retry: bool) -> IndexData:
    gen = current_generation(index_dir)
    try:
        return _load_generation(gen, settings, embedder)
    except OSError as exc:
        # A build may have swapped generations and removed this one while it was being read: read the new one.
        if retry and isinstance(exc, FileNotFoundError) and current_generation(index_dir) != gen:
            return _load(index_dir, settings, embedder, retry=False)
        name = Path(exc.filename).name if exc.filename else gen.name
        raise _damaged(gen / name, exc.strerror or type(exc).__name__) from None
