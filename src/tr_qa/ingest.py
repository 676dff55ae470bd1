"""Corpus folder → Documents; a bad file is skipped with a reason, never stops the build."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
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


def read_metadata(corpus_dir: Path) -> tuple[dict[str, dict[str, str]], list[Skipped]]:
    """Titles named in ``metadata.json`` ({"file.txt": {"title": ...}}); a bad file is reported, not fatal."""
    path = corpus_dir / METADATA_FILE
    if not path.is_file():
        return {}, []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise ValueError("expected an object of objects")
    except (ValueError, UnicodeDecodeError) as exc:
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


def ingest(corpus_dir: Path) -> IngestReport:
    """Read every ``.txt`` under the folder (recursively); the path relative to it is the document id."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise InputError(f"corpus folder does not exist: {corpus_dir}")
    metadata, skipped = read_metadata(corpus_dir)
    documents: list[Document] = []
    for path in sorted(corpus_dir.rglob("*.txt")):
        if not path.is_file():
            continue
        doc_id = path.relative_to(corpus_dir).as_posix()
        title = metadata.get(doc_id, {}).get("title")
        try:
            documents.append(load_document(path, doc_id, title if isinstance(title, str) else None))
        except InputError as exc:
            skipped.append(Skipped(str(path), f"skipped: {exc}"))
        except OSError as exc:
            skipped.append(Skipped(str(path), f"skipped: cannot read ({exc.strerror})"))
    return IngestReport(tuple(documents), tuple(skipped))
