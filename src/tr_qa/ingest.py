"""Corpus folder → Documents; a bad file is skipped with a reason, never stops the build.

Nothing outside the corpus folder is ever read: a symbolic link that leads out of it (to ``/etc/passwd``, to a
parent folder) is skipped with a warning, and links inside it are read once. A document whose text is exactly
that of an earlier one (by file name order) is skipped too, naming the one that is indexed: copies would fill
every top passage with the same text.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from tr_qa.errors import InputError
from tr_qa.types import Document

METADATA_FILE = "metadata.json"
MAX_DOC_BYTES = 20_000_000
TITLE_MAX_CHARS = 200


@dataclass(frozen=True)
class Skipped:
    """A file that was not ingested, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class IngestReport:
    """The documents read from a corpus folder and the files skipped."""

    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...] = field(default_factory=tuple)


def content_hash(text: str) -> str:
    """sha256 of the decoded text: what re-indexing compares."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decode(data: bytes) -> str:
    """Decode UTF-8 (a BOM is dropped); raise InputError for empty, binary or undecodable bytes."""
    if b"\x00" in data[:8192]:
        raise InputError("looks binary (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"is not valid UTF-8 (byte {exc.start})") from exc
    if not text.strip():
        raise InputError("is empty")
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f")
    if controls > max(8, len(text) // 100):
        raise InputError("looks binary (many control characters)")
    return text


def title_from_text(text: str, fallback: str) -> str:
    """The first non-empty line, shortened; the fallback when there is none."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= TITLE_MAX_CHARS else line[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    return fallback


def inside(path: Path, root: Path) -> Path | None:
    """``path`` with every link followed, if that is a file inside ``root`` (already resolved); else None."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # a broken link or a link loop
        return None
    return real if real.is_relative_to(root) and real.is_file() else None


def read_metadata(corpus_dir: Path) -> tuple[dict[str, dict[str, str]], list[Skipped]]:
    """Titles named in ``metadata.json`` ({"file.txt": {"title": ...}}); a bad file is reported, not fatal."""
    path = corpus_dir / METADATA_FILE
    if not path.is_file() and not path.is_symlink():
        return {}, []
    real = inside(path, corpus_dir.resolve())
    if real is None:
        return {}, [Skipped(str(path), "metadata ignored: it links outside the corpus folder")]
    try:
        data = json.loads(real.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise ValueError("expected an object of objects")
    except (ValueError, UnicodeDecodeError, RecursionError, OSError) as exc:
        return {}, [Skipped(str(path), f"metadata ignored: {exc}")]
    return data, []


def load_document(path: Path, doc_id: str, title: str | None = None) -> Document:
    """Read one text file as a Document; raise InputError saying why it cannot be used."""
    size = path.stat().st_size
    if size > MAX_DOC_BYTES:
        raise InputError(f"is too large ({size:,} bytes; the limit is {MAX_DOC_BYTES:,})")
    text = decode(path.read_bytes())
    return Document(
        id=doc_id,
        title=title or title_from_text(text, doc_id),
        text=text,
        path=str(path),
        sha256=content_hash(text),
    )


def corpus_files(corpus_dir: Path) -> Iterator[tuple[str, Path | None]]:
    """(document id, real path) of every ``.txt`` under the folder, in id order; the path is None when the file
    is a link that leads outside the folder (or nowhere). Linked folders are not entered."""
    root = corpus_dir.resolve()
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(corpus_dir, followlinks=False):
        dirs.sort()
        found += [(name, Path(folder) / name) for name in files if name.endswith(".txt")]
    for _name, path in sorted(found, key=lambda item: item[1].relative_to(corpus_dir).as_posix()):
        yield path.relative_to(corpus_dir).as_posix(), inside(path, root)


def ingest(corpus_dir: Path) -> IngestReport:
    """Read every ``.txt`` under the folder (recursively); the path relative to it is the document id."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise InputError(f"corpus folder does not exist: {corpus_dir}")
    metadata, skipped = read_metadata(corpus_dir)
    documents: list[Document] = []
    first_with: dict[str, str] = {}  # content hash → the document id indexed for it
    read: set[Path] = set()
    for doc_id, real in corpus_files(corpus_dir):
        path = corpus_dir / doc_id
        if real is None:
            skipped.append(Skipped(str(path), "skipped: it links outside the corpus folder (or to nothing)"))
            continue
        title = metadata.get(doc_id, {}).get("title")
        try:
            doc = load_document(real, doc_id, title if isinstance(title, str) else None)
        except InputError as exc:
            skipped.append(Skipped(str(path), f"skipped: {exc}"))
            continue
        except OSError as exc:
            skipped.append(Skipped(str(path), f"skipped: cannot read ({exc.strerror})"))
            continue
        if doc.sha256 in first_with:
            same = first_with[doc.sha256]
            why = "a link to" if real in read else "the same text as"
            skipped.append(Skipped(str(path), f"skipped: {why} {same}, which is indexed once under that name"))
            continue
        first_with[doc.sha256] = doc_id
        read.add(real)
        documents.append(replace(doc, path=str(path)))
    return IngestReport(tuple(documents), tuple(skipped))
