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


def test_links_leading_out_of_the_corpus_are_skipped_and_never_read(tmp_path: Path) -> None:
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    (corpus / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "private.txt").write_text("private notes\n", encoding="utf-8")
    (outside / "metadata.json").write_text(json.dumps({"a.txt": {"title": "Stolen title"}}), encoding="utf-8")
    (corpus / "a.txt").write_text("Inside\nThe real document.\n", encoding="utf-8")
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    (corpus / "sub" / "dotdot.txt").symlink_to(Path("..") / ".." / "outside" / "private.txt")
    (corpus / "linked-folder").symlink_to(outside, target_is_directory=True)
    (corpus / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    (corpus / "metadata.json").symlink_to(outside / "metadata.json")
    report = ingest(corpus)
    assert [(d.id, d.title) for d in report.documents] == [("a.txt", "Inside")]
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"passwd.txt", "dotdot.txt", "dangling.txt", "metadata.json"}
    assert all("outside the corpus folder" in r for r in reasons.values())


def test_a_link_inside_the_corpus_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Title\nBody.\n", encoding="utf-8")
    (tmp_path / "b.txt").symlink_to(tmp_path / "a.txt")
    report = ingest(tmp_path)
    assert [d.id for d in report.documents] == ["a.txt"]
    assert "a link to a.txt" in report.skipped[0].reason


def test_identical_documents_are_kept_once_under_the_first_name(tmp_path: Path) -> None:
    for name in ("c.txt", "a.txt", "sub/b.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("Same\nWords.\n", encoding="utf-8")
    (tmp_path / "d.txt").write_text("Same\nWords, but not quite.\n", encoding="utf-8")
    report = ingest(tmp_path)
    assert [d.id for d in report.documents] == ["a.txt", "d.txt"]
    assert sorted(Path(s.path).name for s in report.skipped) == ["b.txt", "c.txt"]
    assert all("the same text as a.txt, which is indexed once" in s.reason for s in report.skipped)


def test_an_empty_corpus_folder_gives_no_documents_and_the_build_refuses_it(tmp_path: Path) -> None:
    from tr_qa.config import Settings
    from tr_qa.index import build

    assert ingest(tmp_path).documents == ()
    with pytest.raises(InputError, match="no documents to index"):
        build(Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index"), progress=False)
