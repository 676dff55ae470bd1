"""The loaded chunk store without a Python object per chunk or a resident copy of every text.

``DocumentStore`` keeps, per document, only what filters and build checks need (title, hash, provenance, ranges)
and where its line lies in ``documents.jsonl``; the text and analysis are read back from that line (through an open
file descriptor, so a build that removes the generation meanwhile does not break a running server) when a
document is asked for, with a small cache for the documents a question touches. ``ChunkTable`` holds chunk
offsets as NumPy columns and makes a ``Chunk`` only when one is indexed.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from tr_qa.analyse import DocAnalysis
from tr_qa.types import Chunk, DocMeta, Document, Ranges

# Parsed documents kept: a question reads the documents of ~100 candidates and 5 passages.
DOCUMENT_CACHE = 256


@dataclass(frozen=True, slots=True)  # one per document: slots keep a large corpus's entries small
class DocEntry:
    """What is kept in memory of one stored document: everything but its text and analysis."""

    id: str
    title: str
    path: str
    sha256: str
    meta: DocMeta
    pages: Ranges
    comments: Ranges
    offset: int  # byte offset of its line in documents.jsonl
    length: int  # bytes of that line
    first_sentence: int  # row of its first sentence in the sentence matrix


class DocumentStore(Mapping[str, Document]):
    """Documents by id, read back from documents.jsonl on demand (the rows were checked when it was loaded)."""

    def __init__(self, fd: int, entries: Sequence[DocEntry]) -> None:
        self._fd = fd
        self.entries = tuple(entries)
        self.position = {e.id: i for i, e in enumerate(self.entries)}
        self._cache: OrderedDict[str, tuple[Document, DocAnalysis]] = OrderedDict()
        self._lock = threading.Lock()

    def __del__(self) -> None:
        # Best effort: the descriptor is all that keeps a replaced generation's file readable.
        with contextlib.suppress(OSError, AttributeError):
            os.close(self._fd)

    def __getitem__(self, doc_id: str) -> Document:
        return self.read(doc_id)[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self.position)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.position

    def first_sentence(self, doc_id: str) -> int:
        """Row of the document's first sentence in the sentence matrix."""
        return self.entry(doc_id).first_sentence

    def entry(self, doc_id: str) -> DocEntry:
        """The in-memory part of a document (no text): KeyError if there is none with that id."""
        return self.entries[self.position[doc_id]]

    def read(self, doc_id: str) -> tuple[Document, DocAnalysis]:
        """A document and its analysis, parsed from its line (cached, least recently used first out)."""
        with self._lock:
            hit = self._cache.get(doc_id)
            if hit is not None:
                self._cache.move_to_end(doc_id)
                return hit
        e = self.entry(doc_id)
        row = json.loads(os.pread(self._fd, e.length, e.offset).decode("utf-8"))
        doc = Document(e.id, e.title, row["text"], e.path, e.sha256, e.meta, e.pages, e.comments)
        found = (doc, DocAnalysis.from_json(row["analysis"]))
        with self._lock:
            self._cache[doc_id] = found
            while len(self._cache) > DOCUMENT_CACHE:
                self._cache.popitem(last=False)
        return found


class _View(Mapping[str, object]):
    """A read-only mapping over a DocumentStore (texts or analyses), parsing on access."""

    def __init__(self, store: DocumentStore, part: int) -> None:
        self._store = store
        self._part = part

    def __getitem__(self, doc_id: str) -> object:
        found = self._store.read(doc_id)
        return found[0].text if self._part == 0 else found[1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)


def texts_of(documents: Mapping[str, Document]) -> Mapping[str, str]:
    """Document texts by id: read on demand from a DocumentStore, else taken from the Documents."""
    if isinstance(documents, DocumentStore):
        return _View(documents, 0)  # type: ignore[return-value]
    return {d.id: d.text for d in documents.values()}


def analyses_of(store: DocumentStore) -> Mapping[str, DocAnalysis]:
    """Document analyses by id, read on demand."""
    return _View(store, 1)  # type: ignore[return-value]


def metas_of(documents: Mapping[str, Document]) -> Iterator[tuple[str, DocMeta]]:
    """(id, provenance) of every document, without reading any text from a DocumentStore."""
    if isinstance(documents, DocumentStore):
        return ((e.id, e.meta) for e in documents.entries)
    return ((d.id, d.meta) for d in documents.values())


class Int8Rows:
    """Vectors stored as 8-bit integers (value × scale): indexing gives float32 rows, like a float32 matrix."""

    def __init__(self, array: np.ndarray, scale: float) -> None:
        self.array = array
        self.scale = scale
        self.shape = array.shape

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, rows: object) -> np.ndarray:
        return self.array[rows].astype(np.float32) / np.float32(self.scale)  # type: ignore[index]


class ChunkTable(Sequence[Chunk]):
    """Chunks as columns (document number, start, end); ``table[i]`` makes the Chunk with its text.

    ``sentences`` (when known) holds, per chunk, the first and past-the-last row of the sentences that start
    inside it, in the sentence matrix.
    """

    def __init__(
        self,
        doc_ids: Sequence[str],
        doc: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        texts: Mapping[str, str],
        sentences: np.ndarray | None = None,
    ) -> None:
        self.doc_ids = tuple(doc_ids)
        self.doc = doc
        self.start = start
        self.end = end
        self._texts = texts
        self.sentences = sentences

    @classmethod
    def of(cls, chunks: Sequence[Chunk], documents: Mapping[str, Document]) -> ChunkTable:
        """The columns of a sequence of chunks (returned as it is when it already is a ChunkTable)."""
        if isinstance(chunks, ChunkTable):
            return chunks
        ids = list(documents)
        number = {d: i for i, d in enumerate(ids)}
        doc = np.array([number[c.doc_id] for c in chunks], dtype=np.int32)
        start = np.array([c.start for c in chunks], dtype=np.int64)
        end = np.array([c.end for c in chunks], dtype=np.int64)
        return cls(ids, doc, start, end, texts_of(documents))

    def __len__(self) -> int:
        return len(self.doc)

    @overload
    def __getitem__(self, i: int) -> Chunk: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Chunk]: ...
    def __getitem__(self, i: int | slice) -> Chunk | Sequence[Chunk]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(f"chunk {i} out of range")
        doc_id = self.doc_ids[int(self.doc[i])]
        s, e = int(self.start[i]), int(self.end[i])
        return Chunk(doc_id, s, e, self._texts[doc_id][s:e])
