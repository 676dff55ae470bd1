"""Chunking: offsets always point back at the exact chunk text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tr_qa.chunk import chunk_document
from tr_qa.errors import InputError
from tr_qa.ingest import ingest
from tr_qa.types import Document

# Text built from the characters the seeds contain: nbsp, curly quotes, £, dashes, blank lines.
ALPHABET = st.sampled_from(list("abcdefghij KLMNO.,;?!\n\n\u00a0“”‘’£–—0123456789é"))


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=ALPHABET, min_size=0, max_size=3000),
    size=st.integers(min_value=50, max_value=900),
    overlap_share=st.floats(min_value=0, max_value=0.45),
)
def test_every_chunk_equals_the_document_text_at_its_offsets(text: str, size: int, overlap_share: float) -> None:
    overlap = int(size * overlap_share)
    doc = Document("d.txt", "t", text)
    chunks = chunk_document(doc, size, overlap)
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.text.strip() and len(c.text) <= size
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    # Nothing but whitespace is lost between chunks.
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)


def test_seed_chunks_keep_offsets() -> None:
    for doc in ingest(Path(__file__).resolve().parents[1] / "seeds").documents:
        for c in chunk_document(doc, 800, 200):
            assert doc.text[c.start : c.end] == c.text


@pytest.mark.parametrize(("size", "overlap"), [(10, 0), (800, 400), (800, -1)])
def test_impossible_chunk_settings_are_rejected_with_the_value(size: int, overlap: int) -> None:
    with pytest.raises(InputError, match=str(overlap if size >= 50 else size)):
        chunk_document(Document("d", "t", "text"), size, overlap)
