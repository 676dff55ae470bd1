"""Document → Chunks with character offsets back into the document (langchain-text-splitters)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from tr_qa.errors import InputError
from tr_qa.types import Chunk, Document

if TYPE_CHECKING:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

SPLITTER_NAME = "langchain_text_splitters.RecursiveCharacterTextSplitter"
# Paragraphs first, then lines, sentences, words: chunks end at natural boundaries where they can.
SEPARATORS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", "")


@lru_cache(maxsize=8)
def _splitter(size: int, overlap: int) -> RecursiveCharacterTextSplitter:
    # Imported here: it costs ~0.2 s (langchain-core, pydantic models) that only building an index needs.
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=overlap,
        separators=list(SEPARATORS),
        keep_separator="end",
        strip_whitespace=True,
    )


def validate_chunking(size: int, overlap: int) -> None:
    """Reject chunk settings that cannot work, naming the bad value."""
    if not 50 <= size <= 20_000:
        raise InputError(f"chunk size must be between 50 and 20000 characters, got {size}")
    if not 0 <= overlap < size // 2:
        raise InputError(f"chunk overlap must be between 0 and half the chunk size ({size // 2}), got {overlap}")


def chunk_document(doc: Document, size: int, overlap: int) -> list[Chunk]:
    """Split one document; every chunk satisfies ``doc.text[chunk.start:chunk.end] == chunk.text``."""
    validate_chunking(size, overlap)
    chunks: list[Chunk] = []
    cursor = 0
    for piece in _splitter(size, overlap).split_text(doc.text):
        if not piece.strip():
            continue
        # The splitter returns substrings in document order, so each one is found at or after the last start.
        start = doc.text.find(piece, cursor)
        if start < 0:
            start = doc.text.find(piece)
        if start < 0:  # pragma: no cover - the splitter only ever returns substrings
            raise AssertionError(f"chunk not found in {doc.id}")
        chunks.append(Chunk(doc_id=doc.id, start=start, end=start + len(piece), text=piece))
        cursor = start + 1
    return chunks
