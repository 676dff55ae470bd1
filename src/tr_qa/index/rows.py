"""Arrays in .npy files read with plain reads, a few rows at a time, instead of memory-mapped.

A question reads a few hundred scattered rows of a million-row matrix. Memory-mapped, each row touched can bring a
whole page-cache folio (up to megabytes on current kernels, whatever ``madvise`` says) into the process's resident
set, which then grows towards the file's size as questions come. Read with ``os.pread``, the rows go through the
page cache all the same (shared by every process serving the generation) and the process holds only what it asked
for. The descriptor keeps a generation's file readable after a build removes it, as the document store's does.
"""

from __future__ import annotations

import contextlib
import operator
import os
from pathlib import Path
from typing import Any

import numpy as np


class RowFile:
    """A 1-D or 2-D array stored in a .npy file; indexing (an int, a slice, or integer rows) reads those rows."""

    def __init__(self, path: Path, offset: int, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path = path
        self.offset = offset
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.ndim = len(shape)
        self._row_shape = shape[1:]
        self._row_bytes = int(self.dtype.itemsize * int(np.prod(self._row_shape, dtype=np.int64)))
        self._fd = os.open(path, os.O_RDONLY)

    @classmethod
    def of(cls, memmap: np.memmap) -> RowFile:
        """The same data as a memory-mapped .npy array, read with plain reads instead."""
        if memmap.filename is None or not memmap.flags.c_contiguous:
            raise ValueError("only a whole, C-ordered memory-mapped .npy array can be read as rows")
        return cls(Path(memmap.filename), int(memmap.offset), tuple(memmap.shape), memmap.dtype)

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.close(self._fd)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start`` to ``stop`` (past the last), in one read."""
        n = max(0, stop - start)
        want = n * self._row_bytes
        data = os.pread(self._fd, want, self.offset + start * self._row_bytes) if want else b""
        if len(data) != want:
            raise OSError(f"{self.path} is shorter than its header says")
        return np.frombuffer(data, dtype=self.dtype).reshape((n, *self._row_shape))

    def __getitem__(self, key: Any) -> np.ndarray:
        n = len(self)
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return self.read(start, stop)
            return self.take(np.arange(start, stop, step))
        if isinstance(key, (int, np.integer)):
            i = operator.index(key)
            if not -n <= i < n:
                raise IndexError(f"row {i} out of range ({n} rows)")
            return self.read(i % n, i % n + 1)[0]
        rows = np.asarray(key)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return self.take(rows)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The given rows (integers, any order, repeats allowed), reading each run of consecutive rows at once."""
        rows = np.asarray(rows)
        if rows.size and not np.issubdtype(rows.dtype, np.integer):
            raise IndexError(f"rows must be integers, not {rows.dtype}")
        rows = rows.astype(np.int64).ravel()
        n = len(self)
        if rows.size and (rows.min() < -n or rows.max() >= n):
            raise IndexError(f"a row is out of range ({n} rows)")
        rows = np.where(rows < 0, rows + n, rows)
        if rows.size and rows[-1] - rows[0] == rows.size - 1 and (np.diff(rows) == 1).all():
            return self.read(int(rows[0]), int(rows[-1]) + 1)  # one run in order: the common case, one read
        unique, inverse = np.unique(rows, return_inverse=True)
        runs = np.split(unique, np.flatnonzero(np.diff(unique) != 1) + 1) if unique.size else []
        out = np.empty((len(unique), *self._row_shape), dtype=self.dtype)
        at = 0
        for run in runs:
            out[at : at + len(run)] = self.read(int(run[0]), int(run[-1]) + 1)
            at += len(run)
        return out[inverse]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self.read(0, len(self))
        return whole if dtype is None else whole.astype(dtype)
