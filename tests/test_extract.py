"""Extraction: PDF, DOCX, HTML, Markdown and text files are read by content, offsets round-trip, bad files get
a one-line reason, random bytes only ever raise ExtractError, and the seeds' own provenance is found."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import docx
import pypdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pypdf.xmp import XmpInformation
from reportlab.lib import pdfencrypt
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

import tr_qa.extract as extract_pkg
from tr_qa.extract import FORMATS, DocMeta, Extracted, ExtractError, extract, extract_bytes, page_of, sniff
from tr_qa.extract import base as extract_base
from tr_qa.extract.dates import pdf_date, to_iso
from tr_qa.extract.text import find_comments, provenance

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
PAGE_TWO_SENTENCE = "The chief inspector found blank resettlement plans in Devon."


def make_pdf(pages: list[list[str]], *, title: str = "", author: str = "", encrypt: object = None) -> bytes:
    """A PDF with one line of text per entry, page by page (reportlab)."""
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, encrypt=encrypt, invariant=True)
    if title:
        pdf.setTitle(title)
    if author:
        pdf.setAuthor(author)
    for lines in pages:
        for i, line in enumerate(lines):
            pdf.drawString(72, 720 - 16 * i, line)
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def image_only_pdf() -> bytes:
    """A 'scanned' page: one picture of text, no text layer."""
    picture = Image.new("RGB", (200, 60), "white")
    for x in range(20, 180):
        picture.putpixel((x, 30), (0, 0, 0))
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf)
    pdf.drawImage(ImageReader(picture), 72, 600, width=400, height=120)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def with_metadata(data: bytes, info: dict[str, str], xmp: dict[str, object] | None = None) -> bytes:
    """The same PDF with an Info dictionary and, optionally, an XMP packet (pypdf)."""
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    if xmp is not None:
        packet = XmpInformation.create()
        for key, value in xmp.items():
            setattr(packet, key, value)
        writer.xmp_metadata = packet
    writer.add_metadata(info)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx() -> bytes:
    """A Word document with a title, a heading, body text and a table (python-docx)."""
    document = docx.Document()
    document.core_properties.title = "Probation review"
    document.core_properties.author = "Ann Analyst"
    document.core_properties.created = dt.datetime(2018, 3, 4, 10, 0)
    document.add_heading("Findings", level=1)
    document.add_paragraph("Caseloads rose after the reforms of 2014.")
    document.add_heading("Costs", level=2)
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Bail out"
    table.cell(0, 1).text = "£42m"
    document.add_paragraph("The ministry paid another £22m.")
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


ARTICLE_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Probation firm collapses | The Daily Example</title>
<meta property="og:title" content="Probation firm collapses">
<meta property="og:site_name" content="The Daily Example">
<meta property="article:published_time" content="2019-02-22T10:15:00+00:00">
<meta name="author" content="Jane Reporter">
<link rel="canonical" href="https://news.example.org/2019/02/probation-firm-collapses">
<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [{"@type": "WebPage"},
{"@type": "NewsArticle", "headline": "Probation firm collapses", "datePublished": "2019-02-21"}]}</script>
</head><body>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience. Accept all cookies.</div>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/sport">Sport</a></li>
<li><a href="/weather">Weather</a></li></ul></nav></header>
<main><article>
<h1>Probation firm collapses</h1>
<p>A probation services provider has gone into administration after what union bosses called a disastrous
privatisation programme under former justice secretary Chris Grayling.</p>
<h2>Unions react</h2>
<p>The collapse of Working Links, which owns three Community Rehabilitation Companies, should be a wake-up call
for the Government, unions said on Friday.</p>
<p>GMB, the union for probation workers, added that private involvement in the sector was an expensive waste.</p>
</article>
<section id="comments" class="comments"><h3>Comments</h3><ol class="comment-list">
<li class="comment"><div class="comment-content"><p>We warned the ministry about this from the very first day of
the contracts and nobody listened.</p></div></li>
<li class="comment"><div class="comment-content"><p>The public are only now seeing what staff saw in 2014.</p>
</div></li></ol>
<form><textarea>Leave a reply</textarea><button>Post comment</button></form></section>
</main>
<footer><p>Copyright 2019 The Daily Example. All rights reserved. Privacy policy.</p></footer>
</body></html>"""

MARKDOWN = """---
title: "Through the Gate: a briefing"
author: [Sam Writer, Lee Editor]
date: 2019-06-12
url: https://example.org/briefings/ttg
outlet: Probation Watch
kind: Briefing
---
# Through the Gate

Resettlement services were **rarely** effective, says the [inspectorate](https://example.org/report).

## What went wrong

- Plans were *blank*
- Staff met prisoners too late

| Year | Cost |
|------|------|
| 2016 | `£42m` |
"""


def one_line_reason(excinfo: pytest.ExceptionInfo[ExtractError]) -> str:
    reason = str(excinfo.value)
    assert reason and "\n" not in reason and len(reason) < 200
    return reason


# --- PDF ----------------------------------------------------------------------------------------------------


def test_pdf_keeps_pages_and_a_page_two_sentence_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf([["Page one is about caseloads."], ["Intro line.", PAGE_TWO_SENTENCE]]))
    got = extract(path)
    assert got.format == "pdf" and len(got.pages) == 2
    start = got.text.index(PAGE_TWO_SENTENCE)
    end = start + len(PAGE_TWO_SENTENCE)
    assert got.text[start:end] == PAGE_TWO_SENTENCE
    assert page_of(got, start) == 2 and page_of(got, end - 1) == 2
    assert page_of(got, got.text.index("caseloads")) == 1
    first, second = got.pages
    assert got.text[first[0] : first[1]] == "Page one is about caseloads."
    assert first[1] < second[0] and page_of(got, first[1]) is None  # the blank line between pages
    assert page_of(got, -1) is None and page_of(got, len(got.text)) is None


def test_pdf_xmp_metadata_wins_over_the_info_dictionary() -> None:
    data = with_metadata(
        make_pdf([["Some text."]]),
        {"/Title": "Info title", "/Author": "Info Author", "/CreationDate": "D:20170102030405Z"},
        {
            "dc_title": {"x-default": "XMP title"},
            "dc_creator": ["Xavier Author"],
            "dc_date": [dt.datetime(2018, 6, 7)],
            "dc_publisher": ["HM Inspectorate of Probation"],
        },
    )
    got = extract_bytes(data, "x.pdf")
    assert got.title == "XMP title"
    assert got.meta == DocMeta(outlet="HM Inspectorate of Probation", author="Xavier Author", published="2018-06-07")


def test_pdf_info_dictionary_is_used_without_xmp_and_placeholders_are_dropped() -> None:
    info = {"/Title": "Info title", "/Author": "Info Author", "/CreationDate": "D:20170102030405+01'00'"}
    got = extract_bytes(with_metadata(make_pdf([["Some text."]]), info), "x.pdf")
    assert (got.title, got.meta.author, got.meta.published) == ("Info title", "Info Author", "2017-01-02")
    # reportlab writes "untitled"/"anonymous" when nothing is set: those are not a title or an author
    bare = extract_bytes(make_pdf([["Some text."]]), "x.pdf")
    assert bare.title is None and bare.meta.author is None


def test_encrypted_pdf_needing_a_password_is_refused() -> None:
    data = make_pdf([["Secret text."]], encrypt=pdfencrypt.StandardEncryption("user-pw", "owner-pw"))
    with pytest.raises(ExtractError) as excinfo:
        extract_bytes(data, "secret.pdf")
    assert "encrypted PDF that needs a password" in one_line_reason(excinfo)


def test_pdf_with_only_an_owner_password_is_read() -> None:
    data = make_pdf([["Open to read."]], encrypt=pdfencrypt.StandardEncryption("", "owner-pw", canCopy=0))
    assert extract_bytes(data, "restricted.pdf").text == "Open to read."


def test_image_only_pdf_needs_ocr() -> None:
    with pytest.raises(ExtractError) as excinfo:
        extract_bytes(image_only_pdf(), "scan.pdf")
    assert "needs OCR" in one_line_reason(excinfo)


def test_a_scanned_page_among_text_pages_is_noted_not_fatal() -> None:
    writer = pypdf.PdfWriter()
    for data in (make_pdf([["Typed page."]]), image_only_pdf()):
        writer.append(pypdf.PdfReader(io.BytesIO(data)))
    out = io.BytesIO()
    writer.write(out)
    got = extract_bytes(out.getvalue(), "mixed.pdf")
    assert got.text == "Typed page." and got.pages[1][0] == got.pages[1][1]
    assert got.notes == ("pages without a text layer (scanned pages need OCR first): 2",)


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\nthis is not a pdf body", make_pdf([["Cut short."]])[:300]],
    ids=["corrupt", "truncated"],
)
def test_corrupt_or_truncated_pdf_is_refused(data: bytes) -> None:
    with pytest.raises(ExtractError) as excinfo:
        extract_bytes(data, "bad.pdf")
    assert one_line_reason(excinfo) == "is not a readable PDF (damaged, truncated or not really a PDF)"


# --- DOCX, HTML, Markdown -------------------------------------------------------------------------------------


def test_docx_paragraphs_in_order_with_headings_and_core_properties(tmp_path: Path) -> None:
    path = tmp_path / "review.docx"
    path.write_bytes(make_docx())
    got = extract(path)
    assert got.format == "docx"
    assert got.text == (
        "Findings\n\nCaseloads rose after the reforms of 2014.\n\n"
        "Costs\n\nBail out\t£42m\n\nThe ministry paid another £22m."
    )
    assert [(got.text[s:e], level) for s, e, level in got.headings] == [("Findings", 1), ("Costs", 2)]
    assert got.title == "Probation review"
    assert got.meta == DocMeta(author="Ann Analyst", published="2018-03-04")


def test_html_article_without_navigation_cookie_banner_or_comment_form() -> None:
    got = extract_bytes(ARTICLE_HTML.encode(), "page.html")
    assert got.format == "html"
    assert "Chris Grayling" in got.text and "expensive waste" in got.text
    for boilerplate in ("Sport", "Weather", "cookies", "Copyright", "Post comment", "Leave a reply"):
        assert boilerplate not in got.text
    assert [(got.text[s:e], level) for s, e, level in got.headings] == [
        ("Probation firm collapses", 1),
        ("Unions react", 2),
    ]
    comments = [got.text[s:e] for s, e in got.comments]
    assert comments == [
        "We warned the ministry about this from the very first day of the contracts and nobody listened.",
        "The public are only now seeing what staff saw in 2014.",
    ]
    assert got.comments[0][0] > got.text.index("expensive waste")  # comments follow the article
    assert got.title == "Probation firm collapses"
    assert got.meta == DocMeta(
        outlet="The Daily Example",
        author="Jane Reporter",
        published="2019-02-22",
        url="https://news.example.org/2019/02/probation-firm-collapses",
        kind="news report",
    )


def test_markdown_front_matter_is_read_and_markup_is_gone() -> None:
    got = extract_bytes(MARKDOWN.encode(), "brief.md")
    assert got.format == "markdown"
    assert got.title == "Through the Gate: a briefing"
    assert got.meta == DocMeta(
        outlet="Probation Watch",
        author="Sam Writer, Lee Editor",
        published="2019-06-12",
        url="https://example.org/briefings/ttg",
        kind="briefing",
    )
    assert got.text == (
        "Through the Gate\n\nResettlement services were rarely effective, says the inspectorate.\n\n"
        "What went wrong\n\nPlans were blank\nStaff met prisoners too late\n\nYear\tCost\n2016\t£42m"
    )
    assert [(got.text[s:e], level) for s, e, level in got.headings] == [
        ("Through the Gate", 1),
        ("What went wrong", 2),
    ]


@pytest.mark.parametrize(
    ("front", "reason"),
    [
        ("title: [unclosed\n", "has front matter that is not valid YAML at line 2"),
        ("title: T\nkind: podcast\n", "has front matter kind 'podcast'; use one of: news report, blog post"),
        ("date: next Tuesday\n", "has front matter 'date' that is not a full date: 'next Tuesday'"),
        ("url: ftp://example.org/x\n", "has front matter url 'ftp://example.org/x' that is not an http(s) address"),
    ],
)
def test_markdown_front_matter_that_cannot_be_used_is_named(front: str, reason: str) -> None:
    with pytest.raises(ExtractError) as excinfo:
        extract_bytes(f"---\n{front}---\n# Heading\n\nSome **text** here.\n".encode(), "x.md")
    assert one_line_reason(excinfo).startswith(reason)


# --- bad files, limits and mislabelled files ------------------------------------------------------------------


def test_zero_byte_file_is_empty(tmp_path: Path) -> None:
    (tmp_path / "empty.pdf").write_bytes(b"")
    with pytest.raises(ExtractError) as excinfo:
        extract(tmp_path / "empty.pdf")
    assert one_line_reason(excinfo) == "is empty (0 bytes)"


def test_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as f:  # a sparse file: the size is real, the disk blocks are not
        f.truncate(extract_pkg.MAX_FILE_BYTES + 1)
    with pytest.raises(ExtractError) as excinfo:
        extract(path)
    assert one_line_reason(excinfo) == f"is too large (50,000,001 bytes; the limit is {extract_pkg.MAX_FILE_BYTES:,})"


def test_bytes_over_the_cap_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_pkg, "MAX_FILE_BYTES", 100)
    with pytest.raises(ExtractError, match=r"^is too large \(101 bytes; the limit is 100\)$"):
        extract_bytes(b"x" * 101, "a.txt")


def test_text_over_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_base, "MAX_TEXT_CHARS", 20)
    for data, name in ((b"word " * 10, "a.txt"), (make_docx(), "a.docx")):
        with pytest.raises(ExtractError, match=r"^its text is too long \(\d+ characters; the limit is 20\)$"):
            extract_bytes(data, name)


@pytest.mark.parametrize(
    ("data", "name", "fmt"),
    [
        (make_pdf([["Really a PDF."]]), "notes.txt", "pdf"),
        (make_docx(), "scan.pdf", "docx"),
        (ARTICLE_HTML.encode(), "article.txt", "html"),
        (MARKDOWN.encode(), "brief.txt", "markdown"),
        (b"Just words, named like a PDF.", "fake.pdf", "text"),
    ],
)
def test_mislabelled_files_are_read_as_what_they_are(data: bytes, name: str, fmt: str) -> None:
    assert extract_bytes(data, name).format == fmt


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            bytes(range(256)) * 4,
            "looks binary (contains NUL bytes) and is not a PDF, Word, HTML, Markdown or text file",
        ),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a PNG image, not a document (a scanned page needs OCR first)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "is a legacy Office file (.doc/.xls/.ppt); save it as"),
        (b"Caf\xe9 cr\xe8me", "is not valid UTF-8 text (bad byte at offset 3); save it as UTF-8"),
        (b"PK\x03\x04not really a zip", "is a damaged ZIP/Word file"),
        (b"   \n\t ", "has no text (only whitespace)"),
        ("Probation".encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
    ],
    ids=["random-bytes", "png", "legacy-doc", "latin-1", "broken-zip", "blank", "utf-16"],
)
def test_files_that_are_not_documents_are_refused_as_pdf(data: bytes, reason: str) -> None:
    with pytest.raises(ExtractError) as excinfo:
        extract_bytes(data, "report.pdf")
    assert one_line_reason(excinfo).startswith(reason)


def test_a_zip_that_is_not_a_word_document_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("notes/readme.txt", "hello")
    with pytest.raises(ExtractError) as excinfo:
        extract_bytes(buf.getvalue(), "report.docx")
    assert one_line_reason(excinfo) == "is a ZIP archive without word/document.xml, so not a Word .docx file"


def test_text_with_tags_stays_text_and_markdown_needs_more_than_one_sign() -> None:
    hostile = b'<img src=x onerror="alert(1)"> Quarry report\n<script>alert(2)</script>\nRead [it](javascript:x).\n'
    got = extract_bytes(hostile, "hostile.txt")
    assert got.format == "text" and got.text == hostile.decode()
    assert sniff(b"# Title\n\nPlain words.", "notes.txt") == "text"
    assert sniff(b"# Title\n\nPlain words.", "notes.md") == "markdown"
    assert sniff(b"# Title\n\nSome **bold** words.", "notes.txt") == "markdown"
    assert sniff(b"---\nThis is a rule, not front matter.\n---\nText.", "a.txt") == "text"


_PREFIXES = [
    b"",
    b"%PDF-1.7\n",
    b"PK\x03\x04",
    b"<!DOCTYPE html><html><body><p>",
    b"---\ntitle: x\n---\n",
    b"# T\n**b**",
]
_SAMPLE_PDF = make_pdf([["First page text."], [PAGE_TWO_SENTENCE]])
_SAMPLE_DOCX = make_docx()


def _check_outcome(data: bytes, name: str) -> None:
    try:
        got = extract_bytes(data, name)
    except ExtractError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(got, Extracted) and got.format in FORMATS and got.text.strip()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(_PREFIXES),
    body=st.binary(max_size=600),
    ext=st.sampled_from([".pdf", ".docx", ".html", ".md", ".txt", ""]),
)
def test_random_bytes_under_any_extension_only_raise_extract_error(prefix: bytes, body: bytes, ext: str) -> None:
    _check_outcome(prefix + body, "file" + ext)


@settings(max_examples=60, deadline=None)
@given(
    sample=st.sampled_from([_SAMPLE_PDF, _SAMPLE_DOCX]),
    cut=st.integers(min_value=0, max_value=4000),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=4000), st.integers(0, 255)), max_size=8),
)
def test_damaged_real_files_only_raise_extract_error(sample: bytes, cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(sample[: max(cut, 8)] if cut < len(sample) else sample)
    for position, value in flips:
        data[position % len(data)] = value
    _check_outcome(bytes(data), "damaged.pdf")


# --- text provenance and the seeds -------------------------------------------------------------------------------


def test_seed_provenance_and_reader_comments_are_found() -> None:
    titles = {name: entry["title"] for name, entry in json.loads((SEEDS / "metadata.json").read_text()).items()}
    found = {}
    for path in sorted(SEEDS.glob("*.txt")):
        got = extract(path)
        assert got.format == "text" and got.text == path.read_text(encoding="utf-8")  # offsets stay as indexed
        found[path.name] = got
        if got.title is not None:
            assert got.title == titles[path.name]
    meta = {name: (g.meta.outlet, g.meta.published) for name, g in found.items()}
    assert meta == {
        "000_c3ebf7a9a73dcbbe.txt": (None, None),
        "001_6c092b2caff0b2fa.txt": (None, "2016-05-03"),
        "002_d74444fc747f437f.txt": (None, None),
        "003_ebd9b20a7e4f4e45.txt": (None, "2017-11-25"),
        "004_a9da44ecae937e51.txt": ("Express & Star", None),
    }
    assert [found[n].title is not None for n in sorted(found)] == [False, True, False, True, True]
    counts = {name: len(g.comments) for name, g in found.items()}
    assert counts == {name: n for name, n in zip(sorted(found), [0, 6, 0, 19, 0], strict=True)}
    nao = found["001_6c092b2caff0b2fa.txt"]
    first, last = (nao.text[s:e] for s, e in (nao.comments[0], nao.comments[-1]))
    assert first.startswith("How is data ever going to be accurate") and first.endswith("NO SUCH THING has occurred.")
    assert last.startswith("The shit hit the fan when TR") and last.endswith("smell the stench.")
    assert nao.comments[0][0] > nao.text.index("did not comment when approached")
    blog = found["003_ebd9b20a7e4f4e45.txt"]
    comments = [blog.text[s:e] for s, e in blog.comments]
    assert comments[0].startswith("There was a time a PO") and comments[1].startswith("Not a guess 10.14!")
    assert comments[-1].startswith("Responding to Julian Le Vay")
    assert all("I later worked for two outsourcing companies" not in c for c in comments)  # the quoted blog


def test_text_provenance_reads_bylines_source_lines_and_published_lines() -> None:
    text = "Daily Example News\nCouncil backs probation hub plan\nBy Jane Smith, Home Affairs Editor\n"
    text += "Published 12:30, 4 March 2019\n\nThe council voted for the hub on Monday.\n"
    meta, title = provenance(text)
    assert meta == DocMeta(outlet="Daily Example News", author="Jane Smith", published="2019-03-04")
    assert title == "Council backs probation hub plan"
    meta, title = provenance("Source: The Independent\n\nA body sentence that is long enough to be prose.\n")
    assert meta.outlet == "The Independent" and title is None
    # a short title above a subtitle is not an outlet: no masthead word in it
    meta, title = provenance("Probation Reform\nWhy the plan is failing staff and offenders\n\nBody text here.\n")
    assert meta.outlet is None and title == "Probation Reform"


def test_comment_sections_under_a_heading_and_lists_inside_articles() -> None:
    article = "Headline\n\n" + "Body sentence of the article. " * 20 + "\n\n"
    text = article + "3 Comments\n\nFirst reader says the plan failed.\nReply\n\nSecond reader agrees.\n"
    assert [text[s:e] for s, e in find_comments(text)] == [
        "First reader says the plan failed.",
        "Second reader agrees.",
    ]
    listed = article + "  1. A numbered point in the article.\n\n  2. Another point.\n\nThe article goes on here.\n"
    assert find_comments(listed) == ()
    closed = article + "Sorry, we are not accepting comments on this article.\n"
    assert find_comments(closed) == ()
    subheading = article + "Responses\n\nThe ministry responded in a statement on Friday.\n"
    assert find_comments(subheading) == ()


# --- dates and the dataclasses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fuzzy", "iso"),
    [
        ("Tuesday, 3 May 2016", False, "2016-05-03"),
        ("03/05/2016", False, "2016-05-03"),  # day first
        ("2016-05-03", False, "2016-05-03"),  # ISO stays year-month-day
        ("2019-02-22T23:15:00-05:00", False, "2019-02-22"),
        (dt.date(2018, 1, 2), False, "2018-01-02"),
        ("May 2016", False, None),  # no day: not filled in from a default
        ("3 May", False, None),
        ("That NAO Report Explained 2", True, None),
        ("Published on 3 May 2016 at 10:15", True, "2016-05-03"),
        ("Report of the 3 May 2016 hearing", True, None),  # a headline mentioning a date is not a dateline
    ],
)
def test_dates(value: object, fuzzy: bool, iso: str | None) -> None:
    assert to_iso(value, fuzzy=fuzzy) == iso


def test_pdf_date_strings() -> None:
    assert pdf_date("D:20160503120000+01'00'") == "2016-05-03"
    assert pdf_date("D:2016") is None and pdf_date(None) is None


def test_dataclasses_validate_and_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match="'3 May 2016'"):
        DocMeta(published="3 May 2016")
    with pytest.raises(ValueError, match="'podcast'"):
        DocMeta(kind="podcast")
    with pytest.raises(ValueError, match=r"comments range \(0, 9\) is not inside the text \(0-3\)"):
        Extracted(text="abc", title=None, meta=DocMeta(), format="text", comments=((0, 9),))
    with pytest.raises(ValueError, match="'odt'"):
        Extracted(text="abc", title=None, meta=DocMeta(), format="odt")


def test_code_names_with_double_underscores_do_not_make_text_markdown() -> None:
    from tr_qa.extract.detect import sniff

    code_like = b"x = window.__xss; y = window.__xss + 1; see [link](http://a)\n"
    assert sniff(code_like, "notes.txt") == "text"
    assert sniff(b"# Title\n\nSome __bold__ words and [a link](http://x).\n", "notes") == "markdown"
