"""End to end with the real model and index: answers, offsets, abstention, deduplication."""

from __future__ import annotations

import pytest

from tr_qa.errors import InputError
from tr_qa.qa import QA

pytestmark = pytest.mark.integration


def assert_offsets_hold(qa: QA, result) -> None:
    for p in result.passages:
        doc = qa.document(p.doc_id)
        assert doc.text[p.start : p.end] == p.text
        for h in p.highlights:
            assert doc.text[h.start : h.end] == h.text
            assert p.start <= h.start < h.end <= p.end
    if result.answer is not None:
        assert qa.document(result.answer.doc_id).text[result.answer.start : result.answer.end] == result.answer.text


@pytest.mark.parametrize(
    ("question", "expected", "doc"),
    [
        ("How much was the bail out the companies got in 2016?", "£42m", "000_c3ebf7a9a73dcbbe.txt"),
        ("Who is the GMB national officer?", "Kevin Brandstatter", "002_d74444fc747f437f.txt"),
        ("How many offenders will the West Midlands consortium manage?", "20,000", "004_a9da44ecae937e51.txt"),
    ],
)
def test_figure_and_name_questions_get_the_short_answer_highlighted(
    seed_qa: QA, question: str, expected: str, doc: str
) -> None:
    result = seed_qa.ask(question)
    assert not result.abstained and result.answer is not None
    assert expected in result.answer.text and result.answer.doc_id == doc
    top = result.passages[0]
    kinds = {h.kind: h for h in top.highlights}
    assert kinds["answer"].text == result.answer.text
    assert kinds["sentence"].start <= kinds["answer"].start and kinds["answer"].end <= kinds["sentence"].end
    assert_offsets_hold(seed_qa, result)


def test_off_topic_question_abstains_and_still_shows_nearest_passages(seed_qa: QA) -> None:
    result = seed_qa.ask("What is the boiling point of mercury in kelvin?")
    assert result.abstained and result.answer is None
    assert len(result.passages) == 5
    assert result.to_dict()["answer"] is None


@pytest.mark.parametrize("k", [1, 3, 5, 10, 50])
def test_k_passages_without_overlap_from_the_same_place(seed_qa: QA, k: int) -> None:
    result = seed_qa.ask("What did the National Audit Office report say about the CRCs?", k=k)
    assert 1 <= len(result.passages) <= k
    assert_offsets_hold(seed_qa, result)
    ps = result.passages
    for i, a in enumerate(ps):
        for b in ps[i + 1 :]:
            assert a.doc_id != b.doc_id or a.end <= b.start or b.end <= a.start


@pytest.mark.parametrize("question", ["", "   ", "x" * 2001, "bell\x07", "null\x00byte"])
def test_bad_questions_are_refused_with_a_clear_message(seed_qa: QA, question: str) -> None:
    with pytest.raises(InputError) as info:
        seed_qa.ask(question)
    assert "question" in str(info.value)


@pytest.mark.parametrize("k", [0, 51, -3])
def test_k_out_of_range_names_the_value(seed_qa: QA, k: int) -> None:
    with pytest.raises(InputError, match=f"k must be between 1 and 50, got {k}"):
        seed_qa.ask("Who runs probation?", k=k)


@pytest.mark.parametrize(
    "question",
    ["<script>alert(1)</script> who runs probation?", "Qui a privatisé la probation ? 🚓", "Приватизация пробации?"],
)
def test_html_emoji_and_other_scripts_are_plain_text(seed_qa: QA, question: str) -> None:
    result = seed_qa.ask(question)
    assert result.question == question
    assert_offsets_hold(seed_qa, result)


def test_result_json_shape(seed_qa: QA) -> None:
    d = seed_qa.ask("Who is the Chief Inspector of Probation?").to_dict()
    assert set(d) >= {"question", "abstained", "answer", "passages"}
    assert set(d["answer"]) >= {"text", "doc", "start", "end", "score"}
    for p in d["passages"]:
        assert set(p) >= {"doc", "title", "start", "end", "text", "score", "highlights"}
        assert all(h["kind"] in ("sentence", "answer") for h in p["highlights"])


def test_repeated_questions_are_answered_from_the_cache(seed_qa: QA) -> None:
    first = seed_qa.ask("Who is the Chief Inspector of Probation?")
    again = seed_qa.ask("  who is the chief inspector   of probation?")
    assert again is first  # same normalised question, k and retriever: no work done
    assert seed_qa.ask("Who is the Chief Inspector of Probation?", k=2) is not first
    assert len(seed_qa.ask("Who is the Chief Inspector of Probation?", k=2).passages) <= 2


def test_abstention_marks_no_short_answer(seed_qa: QA) -> None:
    result = seed_qa.ask("What is the boiling point of mercury in kelvin?")
    assert result.abstained and result.evidence == "none"
    assert all(h.kind != "answer" for p in result.passages for h in p.highlights)
    assert result.to_dict()["evidence_words"] == "the documents don't answer this"


def test_stage_timings_cover_every_stage_and_the_result_is_unchanged(seed_qa: QA) -> None:
    from tr_qa.qa import STAGES

    question = "Who is the GMB national officer?"
    timings: dict[str, float] = {}
    timed = seed_qa.candidates(question, timings=timings)
    assert set(timings) == set(STAGES)
    assert all(t > 0 for t in timings.values())
    assert timed == seed_qa.candidates(question)


@pytest.mark.parametrize("budget", [1, 250, 600])
def test_the_reader_reads_a_window_of_whole_sentences_around_the_best_one(seed_qa: QA, budget: int) -> None:
    from dataclasses import replace

    qa = QA(seed_qa.data, replace(seed_qa.settings, reader_window_chars=budget), seed_qa.embedder, seed_qa.reader)
    question = "How many offenders will the West Midlands consortium manage?"
    _, cands = qa.gather(question)
    for c in cands[: qa.settings.reader_passages]:
        assert c.sentence is not None and c.read is not None
        start, end = qa.read_window(c)
        best = c.sentence.span
        assert c.passage.start <= start <= best.start < best.end <= end <= c.passage.end
        # Only the best sentence when nothing else fits; otherwise never past the budget.
        assert end - start <= budget or (start, end) == (best.start, best.end)
        # The span the reader found lies inside the window, in passage offsets.
        assert start <= c.passage.start + c.read.start <= c.passage.start + c.read.end <= end
        assert c.passage.text[c.read.start : c.read.end] == c.read.text
    assert_offsets_hold(qa, qa.ask(question))
