"""Loading the binary files of a generation (vectors, FAISS index, BM25), each checked; failures name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tr_qa.index.layout import damaged, file_digest
from tr_qa.index.lexical import BM25_DIR, BM25_FILES, load_bm25
from tr_qa.index.rows import RowFile
from tr_qa.index.vectors import FLAT, IVF_SQ4, IVF_SQ8, apply_search_parameters


def _npy_header(path: Path, rows: int, dims: int, dtype: type = np.float32) -> np.ndarray:
    """A ``rows`` × ``dims`` .npy file of ``dtype`` opened memory-mapped (its header checked, no data read)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False) if rows else np.load(path, allow_pickle=False)
    except (ValueError, EOFError, MemoryError) as exc:
        raise damaged(path, f"not a NumPy array: {exc}") from None
    if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != (rows, dims):
        shape = getattr(array, "shape", "?")
        want = np.dtype(dtype).name
        raise damaged(path, f"expected {want} {rows}×{dims}, found {getattr(array, 'dtype', '?')} {shape}")
    return array


def _check_finite(path: Path, array: np.ndarray) -> None:
    """Every value finite; a memory-mapped file is read in blocks with plain reads, so its pages stay unmapped."""
    if not isinstance(array, np.memmap):
        finite = bool(np.isfinite(array).all())
    else:
        row_bytes = array.shape[1] * 4
        rows_per_block = max(1, (16 << 20) // row_bytes)
        finite = True
        with path.open("rb") as fh:
            fh.seek(array.offset)
            for _ in range(0, array.shape[0], rows_per_block):
                block = np.frombuffer(fh.read(rows_per_block * row_bytes), dtype=np.float32)
                if not np.isfinite(block).all():
                    finite = False
                    break
    if not finite:
        raise damaged(path, "it holds values that are not finite numbers")


def vectors(path: Path, rows: int, dims: int, dtype: type = np.float32) -> np.ndarray | RowFile:
    """A ``rows`` × ``dims`` matrix of ``dtype`` (finite, when float), its rows read from the file as asked for."""
    array = _npy_header(path, rows, dims, dtype)
    if dtype == np.float32:
        _check_finite(path, array)
    return RowFile.of(array) if isinstance(array, np.memmap) else array


def faiss_index(path: Path, rows: int, dims: int, entry: dict[str, Any]) -> Any:
    """faiss.index, checked: the kind the manifest names, inner-product vectors of ``dims``, one per chunk."""
    import faiss

    try:
        index = faiss.read_index(str(path))
    except (RuntimeError, MemoryError) as exc:
        lines = str(exc).strip().splitlines()
        raise damaged(path, f"FAISS cannot read it: {lines[-1] if lines else type(exc).__name__}") from None
    if index.d != dims or index.ntotal != rows or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise damaged(path, f"expected {rows} inner-product vectors of {dims}, found {index.ntotal} of {index.d}")
    kinds = {FLAT: faiss.IndexFlatIP, IVF_SQ8: faiss.IndexIVFScalarQuantizer, IVF_SQ4: faiss.IndexIVFScalarQuantizer}
    if not isinstance(index, kinds[entry["index"]]):
        raise damaged(path, f"the manifest names a {entry['index']} index, found {type(index).__name__}")
    if entry["index"] in (IVF_SQ8, IVF_SQ4):
        codes = {IVF_SQ8: faiss.ScalarQuantizer.QT_8bit, IVF_SQ4: faiss.ScalarQuantizer.QT_4bit}[entry["index"]]
        if index.sq.qtype != codes:
            raise damaged(path, f"the manifest names a {entry['index']} index, found other codes")
    if entry["index"] in (IVF_SQ8, IVF_SQ4) and index.nlist != entry["lists"]:
        raise damaged(path, f"the manifest names {entry['lists']} lists, found {index.nlist}")
    apply_search_parameters(index, entry)
    return index


def bm25_index(folder: Path, rows: int, manifest_path: Path, files: dict[str, Any]) -> Any:
    """bm25/, checked against the sizes and hashes the manifest holds, then loaded (postings read as asked for)."""
    for name in BM25_FILES:
        path = folder / name
        want = files.get(f"{BM25_DIR}/{name}")
        if not isinstance(want, dict):
            raise damaged(manifest_path, f"files lacks {BM25_DIR}/{name}")
        if path.stat().st_size != want.get("bytes") or file_digest(path) != want.get("blake2b"):
            raise damaged(path, "its size or contents differ from what the manifest records")
    try:
        bm25 = load_bm25(folder)
    except (ValueError, KeyError, TypeError, EOFError) as exc:
        raise damaged(folder / BM25_FILES[0], f"bm25s cannot read it: {type(exc).__name__}") from None
    if bm25.scores.get("num_docs") != rows:
        raise damaged(folder / BM25_FILES[0], f"it indexes {bm25.scores.get('num_docs')} chunks, not {rows}")
    return bm25
