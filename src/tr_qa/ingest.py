"""Corpus folder → Documents through ``tr_qa.extract``; a bad file is skipped with a reason, never stops the build.

Files named ``.pdf``, ``.docx``, ``.html``/``.htm``, ``.md``/``.markdown`` and ``.txt`` are read; their bytes, not
their names, decide which reader runs (except that a ``.txt`` using Markdown signs stays plain text, exactly as
written). Hidden files and folders (a leading dot) are left alone: editors and ``tr-qa add`` write their temporary
files under such names. ``metadata.json`` in the folder overrides what the files state about themselves (title,
outlet, author, published, url, kind); a value it cannot use is named in a warning and the rest of it still
applies.

Nothing outside the corpus folder is ever read: a symbolic link that leads out of it (to ``/etc/passwd``, to a
parent folder) is skipped with a warning, and links inside it are read once. A document whose text is exactly
that of an earlier one (by file name order) is skipped too, naming the one that is indexed: copies would fill
every top passage with the same text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from tr_qa.errors import InputError
from tr_qa.extract import KINDS, DocMeta, Extracted, ExtractError, extract, extract_bytes
from tr_qa.extract import text as plain_text
from tr_qa.types import Document

METADATA_FILE = "metadata.json"
METADATA_KEYS = ("title", "outlet", "author", "published", "url", "kind")
# metadata.json is read whole; a file this large is not a list of titles.
MAX_METADATA_BYTES = 5_000_000
SUFFIXES = (".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt")
TITLE_MAX_CHARS = 200
META_MAX_CHARS = 300
_URL = re.compile(r"https?://[^\s/]+\S*")

# What metadata.json says about one document: a key with a value overrides the file's own, a key set to null
# clears it (a wrong outlet guessed from the text), a key left out keeps it.
Overrides = Mapping[str, str | None]


@dataclass(frozen=True)
class Skipped:
    """A file that was not ingested (or a problem worth a warning), and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class IngestReport:
    """The documents read from a corpus folder, the files skipped, and warnings about what was read."""

    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...] = field(default_factory=tuple)
    # Bad metadata.json values and readers' notes (e.g. PDF pages without a text layer): the documents are indexed.
    warnings: tuple[Skipped, ...] = field(default_factory=tuple)


def content_hash(text: str) -> str:
    """sha256 of the decoded text: what re-indexing compares."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shorten(line: str, limit: int = TITLE_MAX_CHARS) -> str:
    """``line`` on one line, cut at ``limit`` characters with an ellipsis."""
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def title_from_text(text: str, fallback: str) -> str:
    """The first non-empty line, shortened; the fallback when there is none."""
    for line in text.splitlines():
        if line.strip():
            return shorten(line)
    return fallback


def is_document_name(name: str) -> bool:
    """Whether a file name is one the corpus reads: a supported suffix (any case) and not hidden."""
    return not name.startswith(".") and name.lower().endswith(SUFFIXES)


def inside(path: Path, root: Path) -> Path | None:
    """``path`` with every link followed, if that is a file inside ``root`` (already resolved); else None."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # a broken link or a link loop
        return None
    return real if real.is_relative_to(root) and real.is_file() else None


# ---------------------------------------------------------------------------------------------------------------
# metadata.json


def _meta_value(key: str, value: object) -> str | None:
    """One metadata.json value, checked; ValueError saying what is wrong with it."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, got {json.dumps(value)[:60]}")
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in value):
        raise ValueError(f"{key} {value[:60]!r} contains control characters")
    text = " ".join(value.split())
    if not text:
        raise ValueError(f"{key} is empty (use null to clear it)")
    if len(text) > META_MAX_CHARS:
        raise ValueError(f"{key} is {len(text)} characters long (the limit is {META_MAX_CHARS})")
    if key == "published":
        try:
            DocMeta(published=text)
        except ValueError:
            raise ValueError(f"published {text[:60]!r} is not a date YYYY-MM-DD") from None
    elif key == "kind":
        text = text.lower()
        if text not in KINDS:
            raise ValueError(f"kind {text[:60]!r} is not one of {', '.join(KINDS)}")
    elif key == "url" and not _URL.fullmatch(text):
        raise ValueError(f"url {text[:80]!r} is not an http(s) address")
    return text


def parse_metadata(data: object) -> tuple[dict[str, dict[str, str | None]], list[str]]:
    """metadata.json's content → checked overrides per document id, and one problem line per value left out."""
    if not isinstance(data, dict):
        return {}, [f"metadata ignored: expected an object of objects, got {type(data).__name__}"]
    out: dict[str, dict[str, str | None]] = {}
    problems: list[str] = []
    for doc_id, entry in data.items():
        if not isinstance(entry, dict):
            problems.append(f'{doc_id!r} ignored: expected an object like {{"title": "..."}}')
            continue
        kept: dict[str, str | None] = {}
        for key, value in entry.items():
            if key not in METADATA_KEYS:
                problems.append(f"{doc_id!r}: unknown key {key!r} ignored (known: {', '.join(METADATA_KEYS)})")
                continue
            try:
                checked = _meta_value(key, value)
            except ValueError as exc:
                problems.append(f"{doc_id!r}: {exc}; ignored")
                continue
            if key == "title" and checked is None:
                continue  # every document has a title: null keeps the file's own
            kept[key] = checked
        out[doc_id] = kept
    return out, problems


def read_metadata(corpus_dir: Path) -> tuple[dict[str, dict[str, str | None]], list[Skipped]]:
    """The overrides in ``metadata.json`` and warnings naming each value that cannot be used; never fatal."""
    path = corpus_dir / METADATA_FILE
    if not path.is_file() and not path.is_symlink():
        return {}, []
    real = inside(path, corpus_dir.resolve())
    if real is None:
        return {}, [Skipped(str(path), "metadata ignored: it links outside the corpus folder")]
    try:
        if real.stat().st_size > MAX_METADATA_BYTES:
            raise ValueError(f"it is larger than {MAX_METADATA_BYTES:,} bytes")
        data = json.loads(real.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError, OSError) as exc:
        return {}, [Skipped(str(path), f"metadata ignored: {' '.join(str(exc).split())[:200]}")]
    overrides, problems = parse_metadata(data)
    return overrides, [Skipped(str(path), p) for p in problems]


def apply_overrides(meta: DocMeta, overrides: Overrides) -> DocMeta:
    """``meta`` with the fields ``overrides`` names replaced (a None value clears the field)."""
    fields = {k: v for k, v in overrides.items() if k in {f.name for f in dataclasses.fields(DocMeta)}}
    return replace(meta, **fields)


# ---------------------------------------------------------------------------------------------------------------
# Documents


def _as_named(got: Extracted, name: str, data: Callable[[], bytes]) -> Extracted:
    # A .txt file is plain text even when it uses Markdown signs (two are enough for the sniffer): rendering it
    # would rewrite its words, and the offsets shown for a text file have always been offsets into the file as
    # written. Other formats (a PDF or a whole HTML page saved as .txt) are still read as what they are.
    if got.format == "markdown" and name.lower().endswith(".txt"):
        return plain_text.read(data())
    return got


def read_bytes(data: bytes, name: str) -> Extracted:
    """A document given as bytes, read as ingest reads a file of that name; ExtractError saying why not."""
    return _as_named(extract_bytes(data, name), name, lambda: data)


def read_file(path: Path) -> Extracted:
    """One document file, read by its content (``tr_qa.extract``; a .txt stays plain text); ExtractError if not."""

    def again() -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ExtractError(f"cannot be read ({exc.strerror or type(exc).__name__})") from exc

    return _as_named(extract(path), path.name, again)


def load_document(path: Path, doc_id: str, overrides: Overrides | None = None) -> tuple[Document, tuple[str, ...]]:
    """Read one file as a Document, and the reader's notes about it; ExtractError saying why it cannot be used.

    The title is metadata.json's, else the one the file states, else its first non-empty line.
    """
    overrides = overrides or {}
    got = read_file(path)
    title = shorten(overrides.get("title") or got.title or "") or title_from_text(got.text, doc_id)
    doc = Document(
        id=doc_id,
        title=title,
        text=got.text,
        path=str(path),
        sha256=content_hash(got.text),
        meta=apply_overrides(got.meta, overrides),
        pages=got.pages,
        comments=got.comments,
    )
    return doc, got.notes


def corpus_files(corpus_dir: Path) -> Iterator[tuple[str, Path | None]]:
    """(document id, real path) of every document file under the folder, in id order; the path is None when the
    file is a link that leads outside the folder (or nowhere). Linked and hidden folders are not entered."""
    root = corpus_dir.resolve()
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(corpus_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [(name, Path(folder) / name) for name in files if is_document_name(name)]
    for _name, path in sorted(found, key=lambda item: item[1].relative_to(corpus_dir).as_posix()):
        yield path.relative_to(corpus_dir).as_posix(), inside(path, root)


def ingest(corpus_dir: Path) -> IngestReport:
    """Read every document file under the folder (recursively); the path relative to it is the document id."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise InputError(f"corpus folder does not exist: {corpus_dir}")
    metadata, warnings = read_metadata(corpus_dir)
    documents: list[Document] = []
    skipped: list[Skipped] = []
    first_with: dict[str, str] = {}  # content hash → the document id indexed for it
    read: set[Path] = set()
    seen_ids: set[str] = set()
    for doc_id, real in corpus_files(corpus_dir):
        seen_ids.add(doc_id)
        path = corpus_dir / doc_id
        if real is None:
            skipped.append(Skipped(str(path), "skipped: it links outside the corpus folder (or to nothing)"))
            continue
        try:
            doc, notes = load_document(real, doc_id, metadata.get(doc_id))
        except ExtractError as exc:
            skipped.append(Skipped(str(path), f"skipped: {exc}"))
            continue
        if doc.sha256 in first_with:
            same = first_with[doc.sha256]
            why = "a link to" if real in read else "the same text as"
            skipped.append(Skipped(str(path), f"skipped: {why} {same}, which is indexed once under that name"))
            continue
        first_with[doc.sha256] = doc_id
        read.add(real)
        documents.append(replace(doc, path=str(path)))
        warnings += [Skipped(str(path), f"note: {note}") for note in notes]
    for doc_id in sorted(set(metadata) - seen_ids):
        warnings.append(
            Skipped(str(corpus_dir / METADATA_FILE), f"{doc_id!r} names no document file in the corpus folder")
        )
    return IngestReport(tuple(documents), tuple(skipped), tuple(warnings))
