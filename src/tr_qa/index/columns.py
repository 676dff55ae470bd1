"""Compact columns for per-document data of a large index: strings in one buffer, and a lookup by value.

A million Python ``str`` objects cost ~80 bytes each before they hold a character, and a dict of them another ~100;
a loaded index keeps per-document values in these instead (a few bytes over the text itself).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import overload

import numpy as np


class StringColumn(Sequence[str]):
    """Strings stored as one UTF-8 buffer and their end offsets; ``column[i]`` decodes the i-th."""

    def __init__(self, values: Iterable[str]) -> None:
        encoded = [v.encode("utf-8") for v in values]
        self._ends = np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), dtype=np.int64)
        self._buffer = b"".join(encoded)

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = operator.index(i)
        n = len(self._ends)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"row {i} out of range ({n} rows)")
        start = int(self._ends[i - 1]) if i else 0
        return self._buffer[start : int(self._ends[i])].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        start = 0
        for end in self._ends.tolist():
            yield self._buffer[start:end].decode("utf-8")
            start = end

    @property
    def nbytes(self) -> int:
        """Bytes held: the buffer and the offsets."""
        return len(self._buffer) + self._ends.nbytes


class StringLookup:
    """The row of a value in a StringColumn: sorted 64-bit hashes searched, then the candidate rows compared.

    Python's string hash is salted per process, which is fine here: the table is built in the process that uses it.
    """

    def __init__(self, column: StringColumn, hash_of: Callable[[str], int] = hash) -> None:
        self._column = column
        self._hash = hash_of
        hashes = np.fromiter((hash_of(v) for v in column), np.int64, len(column))
        self._order = np.argsort(hashes, kind="stable").astype(np.int32 if len(column) < 2**31 else np.int64)
        self._hashes = hashes[self._order]

    def find(self, value: object) -> int | None:
        """The first row holding ``value``, or None."""
        if not isinstance(value, str):
            return None
        h = self._hash(value)
        lo = int(np.searchsorted(self._hashes, h, side="left"))
        hi = int(np.searchsorted(self._hashes, h, side="right"))
        for j in range(lo, hi):
            row = int(self._order[j])
            if self._column[row] == value:
                return row
        return None

    def repeated(self) -> str | None:
        """A value held by more than one row, or None when every value is distinct."""
        same = np.flatnonzero(self._hashes[1:] == self._hashes[:-1])
        for j in same.tolist():
            a, b = self._column[int(self._order[j])], self._column[int(self._order[j + 1])]
            if a == b:
                return a
            # A hash collision between different values: a longer run of equal hashes is compared pairwise.
            run = [self._column[int(r)] for r in self._order[self._hashes == self._hashes[j]]]
            if len(set(run)) < len(run):
                return next(v for v in run if run.count(v) > 1)
        return None

    @property
    def nbytes(self) -> int:
        """Bytes held by the hash table (the column is counted on its own)."""
        return self._order.nbytes + self._hashes.nbytes


class Vocabulary(Mapping[str, int]):
    """Term → id for the ids 0 … n-1, held as a StringColumn in id order and its lookup (in place of a dict)."""

    def __init__(self, terms: StringColumn) -> None:
        self.terms = terms
        self._lookup = StringLookup(terms)

    @classmethod
    def of(cls, mapping: Mapping[str, int]) -> Vocabulary | None:
        """The same mapping, compact; None unless its ids are exactly 0 … n-1, one per term."""
        n = len(mapping)
        terms: list[str | None] = [None] * n
        for term, i in mapping.items():
            if not isinstance(i, int) or not 0 <= i < n or terms[i] is not None:
                return None
            terms[i] = term
        return cls(StringColumn(terms))  # type: ignore[arg-type]  # every slot was filled: n distinct ids

    def __getitem__(self, term: str) -> int:
        row = self._lookup.find(term)
        if row is None:
            raise KeyError(term)
        return row

    def __contains__(self, term: object) -> bool:
        return self._lookup.find(term) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    @property
    def nbytes(self) -> int:
        """Bytes held: the terms and their lookup."""
        return self.terms.nbytes + self._lookup.nbytes
