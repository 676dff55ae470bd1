"""Your own documents: PDF, Word, HTML and Markdown through the real pipeline (extract → ingest → index → answer),
with provenance, pages and reader comments in the answers, filters, and `tr-qa add`, `remove` and `list`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_extract import ARTICLE_HTML, MARKDOWN, PAGE_TWO_SENTENCE, make_docx, make_pdf
from test_ingest import bad_files

from tr_qa.config import Settings
from tr_qa.embed import Embedder
from tr_qa.errors import InputError
from tr_qa.extract import extract
from tr_qa.types import DocMeta, Document, Filters, Passage, Result, Span

INSPECTION_PAGES = [
    [
        "Report on probation services in the South West, published by the inspectorate.",
        "Inspectors visited offices in Exeter, Plymouth and Torquay over six weeks in spring.",
        "They read the case records of 240 people under supervision and interviewed 85 staff.",
        "Caseloads averaged 62 people for each probation officer, far above the target of 40.",
        "Almost half of the officers said they had not received the training they needed.",
        "Managers told inspectors that vacancies had been left open to meet budget savings.",
        "Risk assessments were late or missing in a third of the cases that inspectors read.",
        "Contact with people on licence was often by telephone rather than face to face.",
        "Victims were rarely told about changes to the supervision of the person who hurt them.",
        "Partnership work with housing providers had stopped when the contract changed hands.",
        "The provider said it had recruited twelve new officers since the inspection began.",
        "Staff morale was described as low, and sickness absence had doubled in two years.",
    ],
    [
        "Through the Gate resettlement services were examined in two prisons in the region.",
        PAGE_TWO_SENTENCE,
        "Only one in five prisoners released had an address to go to on their first night.",
        "The inspectorate made nine recommendations, the first of them to cut caseloads.",
    ],
]
_MORE_PARAGRAPHS = [
    "The company had run probation in Wales since 2015 and employed about six hundred staff across its three areas.",
    "Inspectors had rated its work with people released from prison as inadequate in two reports last year.",
    "The Ministry of Justice said arrangements were in place to keep supervising offenders without interruption.",
    "A spokesperson added that staff would transfer to the new provider on their existing terms and conditions.",
    "Napo, the probation union, said the collapse showed that the reforms had failed and called for an inquiry.",
    "Labour said it would bring probation back into public ownership if it won the next general election.",
]
_MORE_COMMENTS = [
    "I worked for a community rehabilitation company for three years and saw caseloads double while training was "
    "cut to almost nothing, so none of this surprises me at all.",
    "My brother was supervised by phone once a month after his release and nobody ever checked whether he had "
    "somewhere safe to live, which is exactly what the inspectors describe.",
    "The taxpayer has now paid twice: once for the contracts and again for the rescue, and still no minister has "
    "answered for the decision to split the service in 2014.",
]
# The test article, long enough that its reader comments fill chunks of their own.
LONG_ARTICLE_HTML = ARTICLE_HTML.replace(
    "<p>GMB, the union", "".join(f"<p>{p}</p>\n" for p in _MORE_PARAGRAPHS) + "<p>GMB, the union"
).replace(
    '<ol class="comment-list">',
    '<ol class="comment-list">'
    + "".join(f'<li class="comment"><div class="comment-content"><p>{c}</p></div></li>\n' for c in _MORE_COMMENTS),
)
INSPECTION_META = {"outlet": "HM Inspectorate of Probation", "kind": "report", "published": "2019-11-20"}
GOOD = ["article.html", "brief.md", "inspection.pdf", "review.docx"]


def write_documents(folder: Path) -> None:
    """The four good documents of the tests, one per format."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inspection.pdf").write_bytes(make_pdf(INSPECTION_PAGES))
    (folder / "review.docx").write_bytes(make_docx())
    (folder / "article.html").write_text(LONG_ARTICLE_HTML, encoding="utf-8")
    (folder / "brief.md").write_text(MARKDOWN, encoding="utf-8")


# --- no model needed ---------------------------------------------------------------------------------------------


def test_passage_json_gains_meta_page_and_from_comment_and_keeps_every_old_key() -> None:
    span = Span("a.pdf", 3, 5, "xy", "sentence", 0.5)
    meta = DocMeta(outlet="The Daily Example", kind="news report")
    d = Passage("a.pdf", "T", 0, 10, "0123456789", 0.25, (span,), meta=meta, page=2, from_comment=True).to_dict()
    old = {"doc": "a.pdf", "title": "T", "start": 0, "end": 10, "text": "0123456789", "score": 0.25}
    assert {k: d[k] for k in old} == old and d["highlights"] == [
        {"start": 3, "end": 5, "kind": "sentence", "score": 0.5}
    ]
    assert d["meta"] == {
        "outlet": "The Daily Example",
        "author": None,
        "published": None,
        "url": None,
        "kind": "news report",
    }
    assert (d["page"], d["from_comment"]) == (2, True)
    plain = Passage("a.txt", "T", 0, 1, "0", 0.1).to_dict()
    assert (plain["page"], plain["from_comment"], set(plain["meta"].values())) == (None, False, {None})
    assert json.loads(json.dumps(Result("q", True, None, (Passage("a", "T", 0, 1, "0", 0.1),)).to_dict()))


def test_document_pages_and_comments() -> None:
    doc = Document("d.pdf", "T", "page one\n\npage two and a comment", pages=((0, 8), (10, 18)), comments=((19, 33),))
    assert [doc.page_at(i) for i in (0, 7, 8, 9, 10, 17, 18, 40, -1)] == [1, 1, None, None, 2, 2, None, None, None]
    assert doc.in_comments(19, 33) and doc.in_comments(15, 33) and not doc.in_comments(0, 25)
    assert Document("d.txt", "T", "text").page_at(0) is None and not Document("d.txt", "T", "text").in_comments(0, 4)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"kind": "podcast"}, "filter kind must be one of news report, blog post"),
        ({"published_from": "2019-02-30"}, "filter published_from must be a date YYYY-MM-DD, got '2019-02-30'"),
        ({"published_to": "22/02/2019"}, "filter published_to must be a date YYYY-MM-DD, got '22/02/2019'"),
        ({"published_from": "2019-03-01", "published_to": "2019-01-01"}, "published_from 2019-03-01 is after"),
        ({"outlet": "   "}, "filter outlet is empty"),
        ({"outlet": "x" * 201}, "filter outlet is too long: 201 characters"),
        ({"outlet": "BBC\u202e"}, "filter outlet contains control or invisible characters"),
        ({"outlet": 5}, "filter outlet must be text, got int"),
        ({"colour": "red"}, "unknown filter(s): colour"),
    ],
)
def test_bad_filter_values_are_named(given: dict, message: str) -> None:
    with pytest.raises(InputError) as info:
        Filters.of(given)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_filters_match_outlet_kind_and_dates() -> None:
    meta = DocMeta(outlet="The Daily  Example", published="2019-02-22", kind="news report")
    assert Filters(outlet="the daily example").matches(meta) and not Filters(outlet="Daily Example").matches(meta)
    assert Filters(kind="News Report").matches(meta) and not Filters(kind="blog post").matches(meta)
    assert Filters(published_from="2019-02-22", published_to="2019-02-22").matches(meta)
    assert not Filters(published_to="2019-02-21").matches(meta) and not Filters(published_from="2019-02-23").matches(
        meta
    )
    assert not Filters(published_from="2000-01-01").matches(DocMeta())  # an unknown date is not in any range
    assert (
        Filters.of({}) is None
        and Filters.of(Filters()) is None
        and Filters.of({"kind": "report"}) == Filters(kind="report")
    )


# --- the real pipeline -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder):
    """A corpus of one good document per format plus one bad file of each kind, indexed by the real build."""
    from tr_qa.index import build
    from tr_qa.qa import QA

    base = tmp_path_factory.mktemp("mixed")
    corpus = base / "corpus"
    write_documents(corpus)
    bad = bad_files(corpus)
    (corpus / "metadata.json").write_text(json.dumps({"inspection.pdf": INSPECTION_META}), encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=base / "index")
    logged: list[str] = []
    report = build(settings, embedder=embedder, progress=False, log=logged.append)
    return QA.load(settings=settings, embedder=embedder), report, logged, bad


def assert_offsets_round_trip(qa, result: Result) -> None:
    """Every offset points into the text the extractor reads from the file itself."""
    for p in result.passages:
        text = extract(qa.settings.corpus_dir / p.doc_id).text
        assert text[p.start : p.end] == p.text
        for h in p.highlights:
            assert text[h.start : h.end] == h.text
    if result.answer is not None:
        a = result.answer
        assert extract(qa.settings.corpus_dir / a.doc_id).text[a.start : a.end] == a.text


@pytest.mark.integration
def test_each_bad_file_is_skipped_in_one_line_naming_it_and_the_rest_is_indexed(mixed) -> None:
    qa, report, logged, bad = mixed
    assert sorted(qa.documents) == GOOD and report.documents == 4
    assert sorted(Path(s.path).name for s in report.skipped) == sorted(bad)
    for name, words in bad.items():
        [line] = [line for line in logged if f"/{name}: " in line]
        assert line.startswith("warning: ") and "skipped: " in line and words in line and "\n" not in line


@pytest.mark.integration
def test_boilerplate_is_not_indexed(mixed) -> None:
    qa = mixed[0]
    for words in ("cookies", "Weather", "Sport", "Copyright", "Post comment", "Leave a reply"):
        assert not any(words in d.text for d in qa.documents.values())
        assert not any(words in c.text for c in qa.data.chunks)


@pytest.mark.integration
def test_a_page_two_answer_names_its_page_and_its_offsets_round_trip(mixed) -> None:
    qa = mixed[0]
    result = qa.ask("What did the chief inspector find in Devon?", k=3)
    top = result.passages[0]
    assert top.doc_id == "inspection.pdf" and PAGE_TWO_SENTENCE in top.text and top.page == 2
    assert not top.from_comment
    shown = result.to_dict()["passages"][0]
    assert shown["page"] == 2 and shown["meta"] == {**INSPECTION_META, "author": None, "url": None}
    assert not result.abstained and result.answer is not None and result.answer.doc_id == "inspection.pdf"
    assert result.answer.text in PAGE_TWO_SENTENCE
    assert_offsets_round_trip(qa, result)
    other = qa.ask("How many people did each probation officer supervise on average?", k=3)
    assert other.passages[0].doc_id == "inspection.pdf" and other.passages[0].page == 1


@pytest.mark.integration
def test_a_passage_from_the_reader_comments_says_so(mixed) -> None:
    qa = mixed[0]
    result = qa.ask("Who was supervised by phone once a month after his release?", k=3)
    top = result.passages[0]
    assert top.doc_id == "article.html" and "My brother" in top.text and top.from_comment
    assert result.to_dict()["passages"][0]["from_comment"] is True and top.page is None
    article = qa.ask("Under which former justice secretary was probation privatised?", k=3)
    body = next(p for p in article.passages if "Chris Grayling" in p.text)
    assert body.doc_id == "article.html" and not body.from_comment
    assert body.meta.outlet == "The Daily Example" and body.meta.published == "2019-02-22"
    assert_offsets_round_trip(qa, result)
    assert_offsets_round_trip(qa, article)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("filters", "docs"),
    [
        (Filters(kind="briefing"), {"brief.md"}),
        ({"outlet": "the daily example"}, {"article.html"}),
        (Filters(published_from="2019-01-01", published_to="2019-03-01"), {"article.html"}),
        (Filters(published_from="2019-06-01"), {"brief.md", "inspection.pdf"}),
        (Filters(kind="report", published_to="2019-12-31"), {"inspection.pdf"}),
    ],
)
def test_filters_keep_only_matching_documents(mixed, filters, docs: set[str]) -> None:
    qa = mixed[0]
    question = "What went wrong with probation?"
    result = qa.ask(question, k=10, filters=filters)
    assert result.passages and {p.doc_id for p in result.passages} <= docs
    assert result.answer is None or result.answer.doc_id in docs
    unfiltered = {(p.doc_id, p.start): p.score for p in qa.ask(question, k=50).passages}
    for p in result.passages:  # a filter narrows what is shown; it does not change a passage's score
        assert unfiltered.get((p.doc_id, p.start), p.score) == pytest.approx(p.score, abs=1e-6)
    assert_offsets_round_trip(qa, result)


@pytest.mark.integration
def test_a_large_index_searches_many_passing_chunks_inside_faiss_with_the_same_results(
    mixed, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tr_qa.index import build, vectors
    from tr_qa.qa import QA

    exact = mixed[0]
    settings = Settings(corpus_dir=exact.settings.corpus_dir, index_dir=tmp_path / "index", large_index_chunks=2)
    build(settings, embedder=embedder, progress=False)
    monkeypatch.setattr(vectors, "EXACT_FILTERED", 0)  # every filter searched with a selector inside the IVF index
    large = QA.load(settings=settings, embedder=embedder)
    assert large.data.manifest["vectors"]["index"] == vectors.IVF_SQ4
    filters = Filters(published_from="2019-06-01")
    assert large.retriever._allowed_set(filters).selector is not None
    question = "What went wrong with probation?"
    found = large.ask(question, k=10, filters=filters)
    assert found.passages and {p.doc_id for p in found.passages} <= {"brief.md", "inspection.pdf"}
    want = exact.ask(question, k=10, filters=filters)
    # The same passages as the exact index finds (in an order that its 8-bit sentence vectors may shift a little).
    assert {(p.doc_id, p.start, p.end) for p in found.passages} == {(p.doc_id, p.start, p.end) for p in want.passages}


@pytest.mark.integration
def test_a_filter_nothing_matches_abstains_and_filters_are_part_of_the_cache_key(mixed) -> None:
    qa = mixed[0]
    nothing = qa.ask("What went wrong with probation?", filters={"outlet": "Nobody's Gazette"})
    assert nothing.abstained and nothing.passages == () and nothing.answer is None
    question = "Who wrote the briefing?"
    plain = qa.ask(question)
    briefing = qa.ask(question, filters=Filters(kind="briefing"))
    assert briefing is not plain and {p.doc_id for p in briefing.passages} == {"brief.md"}
    assert qa.ask(question, filters={"kind": "Briefing"}) is briefing  # the same filters: answered from the cache
    assert qa.ask(question, filters={}) is plain and qa.ask(question, filters=None) is plain
    with pytest.raises(InputError, match="unknown filter"):
        qa.ask(question, filters={"source": "x"})


# --- tr-qa add, remove, list and ask's filters ---------------------------------------------------------------------


def tr_qa(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tr_qa", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TR_QA_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], words: str) -> None:
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and words in proc.stderr


@pytest.mark.integration
def test_cli_add_remove_and_list(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    corpus, index_dir, incoming = tmp_path / "corpus", tmp_path / "index", tmp_path / "incoming"
    corpus.mkdir()
    (corpus / "002.txt").write_bytes((root / "seeds" / "002_d74444fc747f437f.txt").read_bytes())
    write_documents(incoming)
    (incoming / "more").mkdir()
    (incoming / "more" / "article.html").write_text(LONG_ARTICLE_HTML, encoding="utf-8")
    (incoming / "more" / "brief.md").write_text(MARKDOWN, encoding="utf-8")
    (incoming / "more" / "scan.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    where = ["--corpus", str(corpus), "--index", str(index_dir)]

    added = tr_qa("add", str(incoming / "inspection.pdf"), str(incoming / "review.docx"), *where, "--no-progress")
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[:2] == ["added: inspection.pdf", "added: review.docx"]
    assert "index updated: 3 documents" in added.stdout
    assert (corpus / "inspection.pdf").read_bytes() == (incoming / "inspection.pdf").read_bytes()

    folder = tr_qa("add", str(incoming / "more"), *where, "--no-progress")
    assert folder.returncode == 0, folder.stderr
    assert folder.stdout.splitlines()[:2] == ["added: more/article.html", "added: more/brief.md"]
    assert "more/scan.pdf: not added: is a PNG image" in folder.stderr and not (corpus / "more" / "scan.pdf").exists()

    other = tmp_path / "other"
    other.mkdir()
    (other / "inspection.pdf").write_bytes(make_pdf([["A different inspection report altogether."]]))
    before = (corpus / "inspection.pdf").read_bytes()
    one_line_error(tr_qa("add", str(other / "inspection.pdf"), *where), "already in")
    assert (corpus / "inspection.pdf").read_bytes() == before  # never overwritten without --replace
    replaced = tr_qa("add", str(other / "inspection.pdf"), "--replace", *where, "--no-progress")
    assert replaced.returncode == 0 and replaced.stdout.startswith("replaced: inspection.pdf"), replaced.stderr
    assert not [p.name for p in corpus.rglob(".*")]  # no temporary file left behind

    listed = tr_qa("list", "--json", "--index", str(index_dir))
    assert listed.returncode == 0, listed.stderr
    rows = {d["id"]: d for d in json.loads(listed.stdout)["documents"]}
    assert sorted(rows) == ["002.txt", "inspection.pdf", "more/article.html", "more/brief.md", "review.docx"]
    assert rows["more/article.html"]["outlet"] == "The Daily Example" and rows["more/brief.md"]["kind"] == "briefing"
    assert rows["review.docx"]["title"] == "Probation review" and all(r["chunks"] >= 1 for r in rows.values())
    table = tr_qa("list", "--index", str(index_dir))
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == [
        "ID",
        "TITLE",
        "OUTLET",
        "DATE",
        "KIND",
        "CHUNKS",
    ]

    asked = tr_qa("ask", "Who wrote the briefing?", "--kind", "briefing", "--json", "--index", str(index_dir))
    assert asked.returncode == 0, asked.stderr
    assert {p["doc"] for p in json.loads(asked.stdout)["passages"]} == {"more/brief.md"}
    one_line_error(tr_qa("ask", "Who?", "--from", "2019-13-01", "--index", str(index_dir)), "got '2019-13-01'")

    removed = tr_qa("remove", "more/brief.md", *where)
    assert removed.returncode == 0 and "removed: more/brief.md" in removed.stdout, removed.stderr
    assert not (corpus / "more" / "brief.md").exists()
    rows = json.loads(tr_qa("list", "--json", "--index", str(index_dir)).stdout)["documents"]
    assert "more/brief.md" not in {d["id"] for d in rows} and len(rows) == 4
    one_line_error(tr_qa("remove", "more/brief.md", *where), "no document 'more/brief.md'")
    one_line_error(tr_qa("remove", "../corpus/002.txt", *where), "must be a path under the corpus folder")
