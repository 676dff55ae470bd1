"""Files → text with provenance: PDF, Word .docx, HTML, Markdown and UTF-8 text, chosen by content.

``extract(path)`` (or ``extract_bytes(data, name)``) returns an ``Extracted``: the text that offsets point into,
its title, its ``DocMeta`` (outlet, author, published date, url, kind), the character ranges of its PDF pages,
headings and reader comments. Which reader runs is decided by the bytes (see ``detect.sniff``), never by the file
name alone. Anything that cannot be read raises ``ExtractError`` with a one-line reason; a reader never lets
another exception out.
"""

from __future__ import annotations

from pathlib import Path

from tr_qa.extract.base import (
    FORMATS,
    KINDS,
    MAX_FILE_BYTES,
    MAX_TEXT_CHARS,
    DocMeta,
    Extracted,
    ExtractError,
    check_text_size,
    page_of,
)
from tr_qa.extract.detect import sniff

__all__ = [
    "FORMATS",
    "KINDS",
    "MAX_FILE_BYTES",
    "MAX_TEXT_CHARS",
    "DocMeta",
    "ExtractError",
    "Extracted",
    "extract",
    "extract_bytes",
    "page_of",
    "sniff",
]


def _too_large(size: int) -> ExtractError:
    return ExtractError(f"is too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})")


def extract_bytes(data: bytes, name: str = "") -> Extracted:
    """Extract a file's content given as bytes; ``name`` only breaks ties between Markdown and plain text."""
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(len(data))
    fmt = sniff(data, name)
    if fmt == "pdf":
        from tr_qa.extract import pdf as reader
    elif fmt == "docx":
        from tr_qa.extract import docx as reader
    elif fmt == "html":
        from tr_qa.extract import html as reader
    elif fmt == "markdown":
        from tr_qa.extract import markdown as reader
    else:
        from tr_qa.extract import text as reader
    try:
        extracted = reader.read(data)
    except ExtractError:
        raise
    except RecursionError as exc:  # deeply nested markup in a hostile file
        raise ExtractError(f"is nested too deeply to read as {fmt}") from exc
    except MemoryError as exc:
        raise ExtractError(f"needs more memory to read as {fmt} than is available") from exc
    check_text_size(extracted.text)
    return extracted


def extract(path: Path | str) -> Extracted:
    """Extract one file: its size is checked before it is read, then its bytes decide the reader."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _too_large(size)
        data = path.read_bytes()
    except OSError as exc:
        raise ExtractError(f"cannot be read ({exc.strerror or type(exc).__name__})") from exc
    return extract_bytes(data, path.name)
