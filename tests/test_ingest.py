"""Ingest: every document file is read through tr_qa.extract by its content; metadata.json overrides what the files
state; bad files are skipped with their name and reason, and the rest is kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reportlab.lib import pdfencrypt
from test_extract import ARTICLE_HTML, MARKDOWN, PAGE_TWO_SENTENCE, image_only_pdf, make_docx, make_pdf

import tr_qa.extract as extract_pkg
from tr_qa.errors import InputError
from tr_qa.extract import DocMeta, extract
from tr_qa.ingest import content_hash, ingest, parse_metadata

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def test_seed_corpus_reads_five_documents_with_titles_and_provenance_from_metadata() -> None:
    report = ingest(SEEDS)
    assert [d.id for d in report.documents] == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert len(report.documents) == 5 and not report.skipped and not report.warnings
    docs = {d.id: d for d in report.documents}
    assert docs["001_6c092b2caff0b2fa.txt"].title == "That NAO Report Explained 2"
    for doc in report.documents:
        assert doc.sha256 == content_hash(doc.text)
        assert doc.text == Path(doc.path).read_text(encoding="utf-8")  # text files are indexed exactly as written
    assert {d.id: (d.meta.outlet, d.meta.published, d.meta.kind) for d in report.documents} == {
        "000_c3ebf7a9a73dcbbe.txt": (None, None, None),
        "001_6c092b2caff0b2fa.txt": (None, "2016-05-03", "blog post"),
        "002_d74444fc747f437f.txt": (None, None, "news report"),
        "003_ebd9b20a7e4f4e45.txt": (None, "2017-11-25", "blog post"),
        "004_a9da44ecae937e51.txt": ("Express & Star", None, "news report"),
    }
    # The blog exports end in reader comments; their ranges travel with the document.
    assert [len(d.comments) for d in report.documents] == [0, 6, 0, 19, 0]


def bad_files(folder: Path) -> dict[str, str]:
    """Write one file of each kind that cannot be indexed; the words each one's warning must contain."""
    (folder / "locked.pdf").write_bytes(
        make_pdf([["Secret text."]], encrypt=pdfencrypt.StandardEncryption("user-pw", "owner-pw"))
    )
    (folder / "scan.pdf").write_bytes(image_only_pdf())
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf body")
    (folder / "zero.docx").write_bytes(b"")
    with (folder / "huge.txt").open("wb") as fh:  # sparse: the size is real, the disk blocks are not
        fh.truncate(extract_pkg.MAX_FILE_BYTES + 1)
    (folder / "photo.pdf").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    (folder / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (folder / "blank.md").write_text("  \n\t", encoding="utf-8")
    return {
        "locked.pdf": "encrypted PDF that needs a password",
        "scan.pdf": "needs OCR",
        "corrupt.pdf": "is not a readable PDF",
        "zero.docx": "is empty (0 bytes)",
        "huge.txt": "is too large",
        "photo.pdf": "is a PNG image",
        "latin1.txt": "is not valid UTF-8",
        "blank.md": "has no text",
    }


def test_every_format_is_read_by_content_and_each_bad_file_is_skipped_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(make_pdf([["Page one is about caseloads."], [PAGE_TWO_SENTENCE]]))
    (tmp_path / "review.docx").write_bytes(make_docx())
    (tmp_path / "article.htm").write_text(ARTICLE_HTML, encoding="utf-8")
    (tmp_path / "brief.md").write_text(MARKDOWN, encoding="utf-8")
    (tmp_path / "really-a-pdf.txt").write_bytes(make_pdf([["Mislabelled but readable."]]))
    (tmp_path / "notes.doc.bak").write_text("not a document name", encoding="utf-8")
    expected = bad_files(tmp_path)
    report = ingest(tmp_path)
    docs = {d.id: d for d in report.documents}
    assert sorted(docs) == ["article.htm", "brief.md", "really-a-pdf.txt", "report.pdf", "review.docx"]
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == set(expected)
    for name, words in expected.items():
        assert reasons[name].startswith("skipped: ") and words in reasons[name] and "\n" not in reasons[name]
    for doc in report.documents:  # what is indexed is exactly what the extractor read, offsets and all
        got = extract(tmp_path / doc.id)
        assert (doc.text, doc.pages, doc.comments) == (got.text, got.pages, got.comments)
        assert doc.sha256 == content_hash(doc.text)
    assert (
        len(docs["report.pdf"].pages) == 2 and docs["report.pdf"].page_at(docs["report.pdf"].text.index("Devon")) == 2
    )
    assert docs["really-a-pdf.txt"].pages and docs["really-a-pdf.txt"].text == "Mislabelled but readable."
    assert docs["review.docx"].title == "Probation review"
    assert docs["brief.md"].meta.kind == "briefing" and docs["brief.md"].title == "Through the Gate: a briefing"
    assert docs["article.htm"].meta.outlet == "The Daily Example"
    assert "cookies" not in docs["article.htm"].text and "Weather" not in docs["article.htm"].text
    assert docs["article.htm"].in_comments(*docs["article.htm"].comments[0])


def test_a_txt_file_with_markdown_signs_stays_plain_text_but_an_md_file_is_rendered(tmp_path: Path) -> None:
    text = "Notes on **the contract** and [the report](https://example.org/r).\n<b>Kept as written.</b>\n"
    (tmp_path / "notes.txt").write_text(text, encoding="utf-8")
    (tmp_path / "notes.md").write_text(text, encoding="utf-8")
    docs = {d.id: d for d in ingest(tmp_path).documents}
    assert docs["notes.txt"].text == text  # offsets into a text file are offsets into the file as written
    assert docs["notes.md"].text == "Notes on the contract and the report. Kept as written."


def test_pdf_pages_without_text_are_a_note_not_a_skip(tmp_path: Path) -> None:
    import io

    import pypdf

    writer = pypdf.PdfWriter()
    for data in (make_pdf([["Typed page."]]), image_only_pdf()):
        writer.append(pypdf.PdfReader(io.BytesIO(data)))
    out = io.BytesIO()
    writer.write(out)
    (tmp_path / "mixed.pdf").write_bytes(out.getvalue())
    report = ingest(tmp_path)
    assert [d.id for d in report.documents] == ["mixed.pdf"] and not report.skipped
    assert [w.reason for w in report.warnings] == ["note: pages without a text layer (scanned pages need OCR first): 2"]


def test_title_is_metadata_then_the_files_own_then_its_first_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("\n\n  Headline   here \nBody.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Tuesday\nBody.", encoding="utf-8")
    (tmp_path / "c.docx").write_bytes(make_docx())
    (tmp_path / "metadata.json").write_text(json.dumps({"b.txt": {"title": "Real title"}}), encoding="utf-8")
    titles = {d.id: d.title for d in ingest(tmp_path).documents}
    assert titles == {"a.txt": "Headline here", "b.txt": "Real title", "c.docx": "Probation review"}


def test_metadata_overrides_clears_and_names_every_bad_value(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(MARKDOWN, encoding="utf-8")
    (tmp_path / "b.txt").write_text("Plain\nBody text.\n", encoding="utf-8")
    metadata = {
        "a.md": {"outlet": "Probation Gazette", "author": None, "published": "3 May 2016", "kind": "Report"},
        "b.txt": {"url": "ftp://x.org/b", "kind": "podcast", "colour": "red", "published": "2016-02-30"},
        "gone.txt": {"title": "No such file"},
        "c.txt": "not an object",
    }
    (tmp_path / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    report = ingest(tmp_path)
    docs = {d.id: d for d in report.documents}
    # Good values win over the front matter, null clears the author, bad values leave the file's own in place.
    assert docs["a.md"].meta == DocMeta(
        outlet="Probation Gazette", author=None, published="2019-06-12", url="https://example.org/briefings/ttg",
        kind="report",
    )  # fmt: skip
    assert docs["b.txt"].meta == DocMeta()
    warnings = [w.reason for w in report.warnings]
    assert all(w.path.endswith("metadata.json") for w in report.warnings) and not report.skipped
    assert warnings == [
        "'a.md': published '3 May 2016' is not a date YYYY-MM-DD; ignored",
        "'b.txt': url 'ftp://x.org/b' is not an http(s) address; ignored",
        "'b.txt': kind 'podcast' is not one of news report, blog post, reader comment, report, briefing; ignored",
        "'b.txt': unknown key 'colour' ignored (known: title, outlet, author, published, url, kind)",
        "'b.txt': published '2016-02-30' is not a date YYYY-MM-DD; ignored",
        '\'c.txt\' ignored: expected an object like {"title": "..."}',
        "'gone.txt' names no document file in the corpus folder",
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"outlet": 42}, "outlet must be text, got 42"),
        ({"title": "   "}, "title is empty"),
        ({"author": "x" * 301}, "author is 301 characters long"),
        ({"outlet": "Bell\x07"}, "contains control characters"),
    ],
)
def test_metadata_values_are_checked(value: dict, problem: str) -> None:
    overrides, problems = parse_metadata({"a.txt": value})
    assert overrides == {"a.txt": {}} and len(problems) == 1 and problem in problems[0]


def test_broken_metadata_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Title\nBody.", encoding="utf-8")
    (tmp_path / "metadata.json").write_text("{not json", encoding="utf-8")
    report = ingest(tmp_path)
    assert [d.title for d in report.documents] == ["Title"]
    assert report.warnings[0].reason.startswith("metadata ignored: Expecting property name")


def test_utf8_bom_is_dropped_subfolders_give_path_ids_and_hidden_files_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.txt").write_bytes("\ufeffPound £5 “quoted”".encode())
    (tmp_path / ".x.txt.tmp123.txt").write_text("a half-written copy\n", encoding="utf-8")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "y.txt").write_text("an editor's backup\n", encoding="utf-8")
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
    (outside / "private.pdf").write_bytes(make_pdf([["Private report."]]))
    (outside / "metadata.json").write_text(json.dumps({"a.txt": {"title": "Stolen title"}}), encoding="utf-8")
    (corpus / "a.txt").write_text("Inside\nThe real document.\n", encoding="utf-8")
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    (corpus / "sub" / "dotdot.txt").symlink_to(Path("..") / ".." / "outside" / "private.txt")
    (corpus / "report.pdf").symlink_to(outside / "private.pdf")
    (corpus / "linked-folder").symlink_to(outside, target_is_directory=True)
    (corpus / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    (corpus / "metadata.json").symlink_to(outside / "metadata.json")
    report = ingest(corpus)
    assert [(d.id, d.title) for d in report.documents] == [("a.txt", "Inside")]
    reasons = {Path(s.path).name: s.reason for s in (*report.skipped, *report.warnings)}
    assert set(reasons) == {"passwd.txt", "dotdot.txt", "report.pdf", "dangling.txt", "metadata.json"}
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
    # The same text in another format is the same document too.
    (tmp_path / "e.md").write_text("Same\nWords.\n", encoding="utf-8")
    report = ingest(tmp_path)
    assert [d.id for d in report.documents] == ["a.txt", "d.txt"]
    assert sorted(Path(s.path).name for s in report.skipped) == ["b.txt", "c.txt", "e.md"]
    assert all("the same text as a.txt, which is indexed once" in s.reason for s in report.skipped)


def test_an_empty_corpus_folder_gives_no_documents_and_the_build_refuses_it(tmp_path: Path) -> None:
    from tr_qa.config import Settings
    from tr_qa.index import build

    assert ingest(tmp_path).documents == ()
    with pytest.raises(InputError, match="no documents to index"):
        build(Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index"), progress=False)
