"""Ingest: every .txt is a document named by its file; bad files are skipped with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tr_qa.errors import InputError
from tr_qa.ingest import content_hash, ingest


def test_seed_corpus_reads_five_documents_with_titles_from_metadata() -> None:
    seeds = Path(__file__).resolve().parents[1] / "seeds"
    report = ingest(seeds)
    assert [d.id for d in report.documents] == sorted(p.name for p in seeds.glob("*.txt"))
    assert len(report.documents) == 5 and not report.skipped
    titles = {d.id: d.title for d in report.documents}
    assert titles["001_6c092b2caff0b2fa.txt"] == "That NAO Report Explained 2"
    for doc in report.documents:
        assert doc.sha256 == content_hash(doc.text)
        assert doc.text == Path(doc.path).read_text(encoding="utf-8")


def test_bad_files_are_skipped_with_their_name_and_the_rest_is_kept(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Probation was part-privatised in 2014.\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n\t", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "notes.md").write_text("not a .txt file", encoding="utf-8")
    report = ingest(tmp_path)
    assert [d.id for d in report.documents] == ["good.txt"]
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"empty.txt", "binary.txt", "latin1.txt"}
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]


def test_title_is_first_non_empty_line_unless_metadata_names_one(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("\n\n  Headline   here \nBody.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Tuesday\nBody.", encoding="utf-8")
    (tmp_path / "metadata.json").write_text(json.dumps({"b.txt": {"title": "Real title"}}), encoding="utf-8")
    titles = {d.id: d.title for d in ingest(tmp_path).documents}
    assert titles == {"a.txt": "Headline here", "b.txt": "Real title"}


def test_broken_metadata_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Title\nBody.", encoding="utf-8")
    (tmp_path / "metadata.json").write_text("{not json", encoding="utf-8")
    report = ingest(tmp_path)
    assert [d.title for d in report.documents] == ["Title"]
    assert "metadata ignored" in report.skipped[0].reason


def test_utf8_bom_is_dropped_and_subfolders_give_path_ids(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.txt").write_bytes("\ufeffPound £5 “quoted”".encode())
    [doc] = ingest(tmp_path).documents
    assert doc.id == "sub/x.txt" and doc.text == "Pound £5 “quoted”"


def test_missing_corpus_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        ingest(tmp_path / "nope")
