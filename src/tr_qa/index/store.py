"""The loaded chunk store without a Python object per chunk or a resident copy of every text.

``DocumentStore`` keeps, per document, only columns of what lookups, filters and build checks need (id, hash, the
fields filters read) and where its line lies in ``documents.jsonl``; the text, title, provenance and analysis are
read back from that line (through an open file descriptor, so a build that removes the generation meanwhile does
not break a running server) when a document is asked for, with a small cache for the documents a question touches.
``ChunkTable`` holds chunk offsets as NumPy columns and makes a ``Chunk`` only when one is indexed.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import overload

import numpy as np

from tr_qa.analyse import DocAnalysis
from tr_qa.index.columns import StringColumn, StringLookup
from tr_qa.types import Chunk, DocMeta, Document, Filters, Ranges

# Parsed documents kept: a question reads the documents of ~100 candidates and 5 passages.
DOCUMENT_CACHE = 256
SHA256_BYTES = 32
# Chunk offsets and sentence rows as 32-bit columns: an ingested document is far below 2**31 characters (the
# ingest size limit), and so is a sentence count; half the memory of 64-bit ones at a million chunks.
OFFSET = np.int32


def _filter_key(meta: DocMeta) -> DocMeta:
    """The part of a provenance that ``Filters`` look at (outlet, kind, date): shared by many documents."""
    return DocMeta(outlet=meta.outlet, kind=meta.kind, published=meta.published)


class StoreBuilder:
    """Collects what a DocumentStore keeps of each document, as it is read, into compact columns."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._sha = bytearray()
        self._offset = array("q")
        self._length = array("q")
        self._first_sentence = array("q")
        self._filter_code = array("i")
        self._filter_keys: dict[DocMeta, int] = {}

    def add(self, doc: Document, offset: int, length: int, first_sentence: int) -> None:
        """One document whose line of ``length`` bytes starts at byte ``offset``; its first sentence's row."""
        self.ids.append(doc.id)
        self._sha += bytes.fromhex(doc.sha256)
        self._offset.append(offset)
        self._length.append(length)
        self._first_sentence.append(first_sentence)
        self._filter_code.append(self._filter_keys.setdefault(_filter_key(doc.meta), len(self._filter_keys)))

    def build(self, fd: int) -> DocumentStore:
        """The store, reading texts back through ``fd`` (which it then owns)."""
        return DocumentStore(
            fd,
            StringColumn(self.ids),
            np.frombuffer(bytes(self._sha), np.uint8).reshape(-1, SHA256_BYTES),
            np.array(self._offset, np.int64),
            np.array(self._length, np.int64),
            np.array(self._first_sentence, np.int64),
            np.array(self._filter_code, np.int32),
            tuple(self._filter_keys),
        )


class DocumentStore(Mapping[str, Document]):
    """Documents by id, read back from documents.jsonl on demand (the rows were checked when it was loaded).

    Per document it keeps only columns: the id (in one string buffer with a hash lookup), the content hash as
    bytes, where its line lies, the row of its first sentence, and a code for the outlet, kind and date that
    filters look at. Title, provenance and ranges come back with the text, from the line.
    """

    def __init__(
        self,
        fd: int,
        ids: StringColumn,
        sha256: np.ndarray,
        offset: np.ndarray,
        length: np.ndarray,
        first_sentence: np.ndarray,
        filter_code: np.ndarray,
        filter_keys: tuple[DocMeta, ...],
    ) -> None:
        self._fd = fd
        self.ids = ids
        self._lookup = StringLookup(ids)
        self._sha256 = sha256
        self._offset = offset
        self._length = length
        self._first_sentence = first_sentence
        self._filter_code = filter_code
        self._filter_keys = filter_keys
        self._cache: OrderedDict[str, tuple[Document, DocAnalysis]] = OrderedDict()
        self._lock = threading.Lock()

    def __del__(self) -> None:
        # Best effort: the descriptor is all that keeps a replaced generation's file readable.
        with contextlib.suppress(OSError, AttributeError):
            os.close(self._fd)

    def __getitem__(self, doc_id: str) -> Document:
        return self.read(doc_id)[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, doc_id: object) -> bool:
        return self._lookup.find(doc_id) is not None

    def row_of(self, doc_id: object) -> int | None:
        """The document's row (its number in store order), or None if there is none with that id."""
        return self._lookup.find(doc_id)

    def _row(self, doc_id: str) -> int:
        row = self._lookup.find(doc_id)
        if row is None:
            raise KeyError(doc_id)
        return row

    def repeated_id(self) -> str | None:
        """An id held by more than one row (a damaged file), or None."""
        return self._lookup.repeated()

    def first_sentence(self, doc_id: str) -> int:
        """Row of the document's first sentence in the sentence matrix."""
        return int(self._first_sentence[self._row(doc_id)])

    def first_sentence_at(self, row: int) -> int:
        """Row, in the sentence matrix, of the first sentence of the document in store row ``row``."""
        return int(self._first_sentence[row])

    def sha256(self, doc_id: str) -> str:
        """The document's content hash (hex), without reading its text."""
        return self.sha256_at(self._row(doc_id))

    def sha256_at(self, row: int) -> str:
        """The content hash (hex) of the document in store row ``row``."""
        return self._sha256[row].tobytes().hex()

    def passing(self, filters: Filters) -> np.ndarray:
        """Rows of the documents whose outlet, kind and date pass ``filters``."""
        codes = [i for i, key in enumerate(self._filter_keys) if filters.matches(key)]
        return np.flatnonzero(np.isin(self._filter_code, np.array(codes, dtype=np.int32))).astype(np.int32)

    @property
    def nbytes(self) -> int:
        """Bytes the per-document columns hold (not the cache of parsed documents)."""
        arrays = (self._sha256, self._offset, self._length, self._first_sentence, self._filter_code)
        return self.ids.nbytes + self._lookup.nbytes + sum(a.nbytes for a in arrays)

    def read(self, doc_id: str) -> tuple[Document, DocAnalysis]:
        """A document and its analysis, parsed from its line (cached, least recently used first out)."""
        with self._lock:
            hit = self._cache.get(doc_id)
            if hit is not None:
                self._cache.move_to_end(doc_id)
                return hit
        i = self._row(doc_id)
        row = json.loads(os.pread(self._fd, int(self._length[i]), int(self._offset[i])).decode("utf-8"))
        doc = Document(
            doc_id,
            row["title"],
            row["text"],
            row.get("path", ""),
            self.sha256_at(i),
            DocMeta(**row["meta"]),
            _ranges(row.get("pages")),
            _ranges(row.get("comments")),
        )
        found = (doc, DocAnalysis.from_json(row["analysis"]))
        with self._lock:
            self._cache[doc_id] = found
            while len(self._cache) > DOCUMENT_CACHE:
                self._cache.popitem(last=False)
        return found


def _ranges(value: list[list[int]] | None) -> Ranges:
    """Stored ranges (checked when the index was loaded) as tuples."""
    return tuple((int(s), int(e)) for s, e in value or ())


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


def passing_rows(documents: Mapping[str, Document], filters: Filters) -> np.ndarray:
    """Rows (positions in iteration order) of the documents whose provenance passes ``filters``."""
    if isinstance(documents, DocumentStore):
        return documents.passing(filters)
    return np.array([i for i, d in enumerate(documents.values()) if filters.matches(d.meta)], dtype=np.int32)


def sha256_of(documents: Mapping[str, Document], doc_id: str) -> str:
    """A document's content hash, without reading its text from a DocumentStore."""
    if isinstance(documents, DocumentStore):
        return documents.sha256(doc_id)
    return documents[doc_id].sha256


def ids_by_hash(documents: Mapping[str, Document]) -> dict[str, str]:
    """Content hash → document id of every document (the last one wins for a repeated text)."""
    if isinstance(documents, DocumentStore):
        return {documents.sha256_at(i): doc_id for i, doc_id in enumerate(documents.ids)}
    return {d.sha256: d.id for d in documents.values()}


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
        # A store's id column is shared as it is; anything else is copied once.
        self.doc_ids: Sequence[str] = doc_ids if isinstance(doc_ids, StringColumn) else tuple(doc_ids)
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
        start = np.array([c.start for c in chunks], dtype=OFFSET)
        end = np.array([c.end for c in chunks], dtype=OFFSET)
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
