"""Highlighting: answer types, number spans, sentence choice and highlight segments."""

from __future__ import annotations

import numpy as np
import pytest

from tr_qa.analyse import Analyser, DocAnalysis, widen_number
from tr_qa.highlight import Highlighter, Weights, answer_labels, asks_for_explanation, segments
from tr_qa.types import Span


@pytest.mark.parametrize(
    ("question", "first_label"),
    [
        ("How much did the bail out cost?", "MONEY"),
        ("How many companies run probation?", "MONEY"),
        ("When did Working Links collapse?", "DATE"),
        ("What year was the NPS created?", "DATE"),
        ("Who is the chief inspector of probation?", "PERSON"),
        ("Which company won the West Midlands contract?", "ORG"),
        ("Where did Working Links run probation?", "GPE"),
        ("What percentage of offenders reoffend?", "PERCENT"),
    ],
)
def test_questions_map_to_the_entity_types_that_answer_them(question: str, first_label: str) -> None:
    assert answer_labels(question)[0] == first_label


@pytest.mark.parametrize("question", ["Why did the companies lose money?", "How did the unions react?", "Explain TR"])
def test_explanations_have_no_short_answer_type(question: str) -> None:
    assert answer_labels(question) == ()


@pytest.mark.parametrize(
    ("text", "start", "end", "expected"),
    [
        ("a £42m bail out", 3, 5, "£42m"),
        ("£3.7 billion", 1, 4, "£3.7 billion"),
        ("up 12% now", 3, 5, "12%"),
        ("21 CRCs", 0, 2, "21"),
    ],
)
def test_number_entities_take_in_currency_and_unit(text: str, start: int, end: int, expected: str) -> None:
    s, e = widen_number(text, start, end)
    assert text[s:e] == expected


@pytest.mark.integration
def test_analyser_sentences_never_cross_lines_and_are_trimmed() -> None:
    text = "Headline without stop\n\nFirst sentence here. Second one, £46 in pocket.\n"
    [analysis] = Analyser().analyse([text])
    sentences = [text[s:e] for s, e in analysis.sentences]
    assert sentences == ["Headline without stop", "First sentence here.", "Second one, £46 in pocket."]
    assert ("£46", "MONEY") in [(text[s:e], label) for s, e, label in analysis.entities]
    assert DocAnalysis.from_json(analysis.to_json()) == analysis


def test_highlighter_prefers_the_sentence_sharing_the_question_words_and_finds_the_typed_span() -> None:
    text = "The weather was fine. Working Links collapsed in February 2019 after losses."
    date = text.index("February 2019")
    analysis = DocAnalysis(((0, 21), (22, len(text))), ((date, date + 13, "DATE"), (22, 35, "ORG")))
    vectors = np.zeros((2, 4), dtype=np.float32)  # no semantic signal: word overlap decides
    hl = Highlighter({"d": text}, {"d": analysis}, vectors)
    hit = hl.best_sentence("When did Working Links collapse?", np.zeros(4, dtype=np.float32), "d", 0, len(text))
    assert hit is not None
    assert hit.span.text == "Working Links collapsed in February 2019 after losses."
    assert hit.answer is not None and hit.answer.text == "February 2019"
    assert text[hit.answer.start : hit.answer.end] == hit.answer.text


def test_an_entity_named_in_the_question_is_not_its_answer() -> None:
    text = "Chris Grayling met Ben Priestley."
    analysis = DocAnalysis(((0, len(text)),), ((0, 14, "PERSON"), (19, 32, "PERSON")))
    hl = Highlighter({"d": text}, {"d": analysis}, np.zeros((1, 4), dtype=np.float32))
    hit = hl.best_sentence("Who did Chris Grayling meet?", np.zeros(4, dtype=np.float32), "d", 0, len(text))
    assert hit is not None and hit.answer is not None and hit.answer.text == "Ben Priestley"


def test_segments_mark_answer_inside_sentence_and_keep_all_text() -> None:
    text = "Before. The answer is £5 here. After."
    spans = (Span("d", 108, 130, text[8:30], "sentence"), Span("d", 122, 124, "£5", "answer"))
    runs = segments(text, 100, spans)
    assert "".join(t for t, _ in runs) == text
    assert runs == [
        ("Before. ", None),
        ("The answer is ", "sentence"),
        ("£5", "answer"),
        (" here.", "sentence"),
        (" After.", None),
    ]


@pytest.mark.parametrize(
    ("question", "explains"),
    [
        ("Why did Working Links fail?", True),
        ("How did the companies lose money?", True),
        ("What was the reason for the bail out?", True),
        ("How much did the bail out cost?", False),
        ("How many CRCs were there?", False),
        ("Who is the chief inspector?", False),
    ],
)
def test_why_and_how_questions_ask_for_an_explanation(question: str, explains: bool) -> None:
    assert asks_for_explanation(question) is explains


def test_fitted_sentence_weights_load_from_their_data_file() -> None:
    w = Weights.fitted()
    assert w.cosine > 0 and w.overlap > 0 and w.answer_type > 0
    assert abs(w.cosine + w.overlap + w.answer_type - 1.0) < 0.01  # the fit script scales them to sum to 1


def test_a_large_index_highlighter_finds_rows_by_column_and_weighs_words_by_chunk_frequency() -> None:
    from tr_qa.index.store import Int8Rows

    text = "The weather was fine. Working Links collapsed in February 2019 after losses."
    date = text.index("February 2019")
    analysis = DocAnalysis(((0, 21), (22, len(text))), ((date, date + 13, "DATE"), (22, 35, "ORG")))
    with pytest.raises(ValueError, match="given together"):
        Highlighter({"d": text}, {"d": analysis}, np.zeros((2, 4), np.float32), first_row=lambda d: 0)
    # 8-bit rows; document "d" starts at row 3 of the matrix (other documents come first).
    stored = np.zeros((5, 4), np.int8)
    stored[4] = [127, 0, 0, 0]
    hl = Highlighter(
        {"d": text},
        {"d": analysis},
        Int8Rows(stored, 127.0),
        first_row=lambda d: 3,
        frequency=lambda t: (3 if t == "working" else 0, 9),
    )
    assert hl.sentences_in("d", 0, len(text)) == [(3, 0, 21), (4, 22, len(text))]
    hit = hl.best_sentence("When did Working Links collapse?", np.array([1, 0, 0, 0], np.float32), "d", 0, len(text))
    assert hit is not None and hit.span.text == text[22:] and hit.answer is not None
    assert text[hit.answer.start : hit.answer.end] == "February 2019"
    assert hl.idf("working") < hl.idf("collapse")  # a term in fewer chunks weighs more
