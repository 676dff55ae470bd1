"""Arrays read from .npy files a few rows at a time (tr_qa.index.rows): the same values as loading the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tr_qa.index.rows import RowFile


def _saved(tmp_path: Path, array: np.ndarray) -> RowFile:
    np.save(tmp_path / "a.npy", array)
    return RowFile.of(np.load(tmp_path / "a.npy", mmap_mode="r"))


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int64])
def test_rows_read_by_int_slice_list_and_mask_match_the_array(tmp_path: Path, dtype) -> None:
    array = (np.arange(70 * 6) % 120).astype(dtype).reshape(70, 6)
    rows = _saved(tmp_path, array)
    assert rows.shape == (70, 6) and rows.dtype == dtype and len(rows) == 70
    np.testing.assert_array_equal(rows[5], array[5])
    np.testing.assert_array_equal(rows[-1], array[-1])
    np.testing.assert_array_equal(rows[10:20], array[10:20])
    np.testing.assert_array_equal(rows[60:90], array[60:90])
    np.testing.assert_array_equal(rows[::7], array[::7])
    picks = [69, 3, 4, 5, 3, 40, 0, -2]  # unsorted, a run, a repeat, a negative
    np.testing.assert_array_equal(rows[picks], array[picks])
    np.testing.assert_array_equal(rows[np.array([], dtype=np.int64)], array[[]])
    mask = np.zeros(70, dtype=bool)
    mask[[1, 2, 50]] = True
    np.testing.assert_array_equal(rows[mask], array[mask])
    np.testing.assert_array_equal(np.asarray(rows), array)


def test_a_one_dimensional_array_reads_ranges(tmp_path: Path) -> None:
    array = np.arange(1000, dtype=np.int32)
    rows = _saved(tmp_path, array)
    np.testing.assert_array_equal(rows[100:110], array[100:110])
    assert rows[999] == 999 and rows[[5, 1]].tolist() == [5, 1]


def test_rows_out_of_range_are_an_index_error(tmp_path: Path) -> None:
    rows = _saved(tmp_path, np.zeros((4, 2), np.float32))
    with pytest.raises(IndexError, match="row 4 out of range"):
        rows[4]
    with pytest.raises(IndexError, match="out of range"):
        rows[[0, 9]]
    with pytest.raises(IndexError, match="integers"):
        rows[np.array([0.5])]


def test_a_file_cut_short_is_an_os_error_not_short_rows(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.ones((10, 4), np.float32))
    header = np.load(tmp_path / "a.npy", mmap_mode="r")
    rows = RowFile(tmp_path / "a.npy", int(header.offset), (20, 4), np.dtype(np.float32))  # the header lies
    with pytest.raises(OSError, match="shorter than its header"):
        rows[15:20]


def test_rows_stay_readable_after_the_file_is_removed(tmp_path: Path) -> None:
    rows = _saved(tmp_path, np.arange(12, dtype=np.float32).reshape(6, 2))
    (tmp_path / "a.npy").unlink()  # a build replaced this generation while a server still answers from it
    np.testing.assert_array_equal(rows[[5]], [[10.0, 11.0]])
