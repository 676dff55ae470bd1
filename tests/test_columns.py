"""Compact string columns and their lookup (tr_qa.index.columns): what a large index keeps per document."""

from __future__ import annotations

import pytest

from tr_qa.index.columns import StringColumn, StringLookup, Vocabulary

VALUES = ["napo.txt", "blog/ünïcode – dash.md", "", "a/b/c.html", "napo.txt.bak"]


def test_a_column_gives_back_each_string_by_row_slice_and_iteration() -> None:
    column = StringColumn(VALUES)
    assert len(column) == len(VALUES) and list(column) == VALUES
    assert [column[i] for i in range(len(VALUES))] == VALUES and column[-1] == VALUES[-1]
    assert column[1:3] == VALUES[1:3]
    with pytest.raises(IndexError, match="row 5 out of range"):
        column[5]
    assert len(StringColumn([])) == 0 and list(StringColumn([])) == []
    # The strings live in one buffer: its size is their UTF-8 bytes plus an 8-byte offset each.
    assert column.nbytes == sum(len(v.encode()) for v in VALUES) + 8 * len(VALUES)


def test_lookup_finds_each_value_and_nothing_else() -> None:
    lookup = StringLookup(StringColumn(VALUES))
    assert [lookup.find(v) for v in VALUES] == list(range(len(VALUES)))
    assert lookup.find("napo") is None and lookup.find(3) is None and lookup.find(None) is None
    assert lookup.repeated() is None


def test_lookup_compares_values_when_hashes_collide() -> None:
    lookup = StringLookup(StringColumn(VALUES), hash_of=lambda v: len(v) % 2)  # many collisions
    assert [lookup.find(v) for v in VALUES] == list(range(len(VALUES)))
    assert lookup.find("zz") is None and lookup.repeated() is None


@pytest.mark.parametrize("hash_of", [hash, lambda v: 0], ids=["python-hash", "all-collide"])
def test_lookup_names_a_repeated_value(hash_of) -> None:
    lookup = StringLookup(StringColumn(["x", "a", "b", "a"]), hash_of=hash_of)
    assert lookup.repeated() == "a" and lookup.find("a") in (1, 3)


def test_a_vocabulary_maps_terms_to_their_ids_like_the_dict_it_replaces() -> None:
    mapping = {"probation": 2, "crc": 0, "napo": 1, "ünïon": 3}
    vocabulary = Vocabulary.of(mapping)
    assert vocabulary is not None and dict(vocabulary) == mapping and len(vocabulary) == 4
    assert "napo" in vocabulary and "nap" not in vocabulary and vocabulary.get("nap") is None
    assert list(vocabulary) == ["crc", "napo", "probation", "ünïon"]  # id order
    with pytest.raises(KeyError):
        vocabulary["nap"]


@pytest.mark.parametrize(
    "mapping", [{"a": 0, "b": 2}, {"a": 0, "b": 0}, {"a": 1}, {"a": "0"}], ids=["gap", "shared", "offset", "text"]
)
def test_a_vocabulary_is_only_made_from_ids_0_to_n(mapping) -> None:
    assert Vocabulary.of(mapping) is None
