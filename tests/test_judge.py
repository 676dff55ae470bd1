"""The judge: fitted strategies from their file, confidence, evidence words, and answers from candidates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tr_qa import judge as jd
from tr_qa.errors import InputError
from tr_qa.files import sha256_file
from tr_qa.reader import SHIPPED_MODEL_DIR, WEIGHTS_FILE
from tr_qa.types import Candidate, Passage, ReaderSpan, SentenceHit, Span

TEXT = "Intro. The bail out cost £42m in 2016. Outro."


def strategy(name: str = "reader", lo: float = 0.3, hi: float = 0.7) -> jd.Strategy:
    return jd.Strategy(name, -1.0, {"retrieval": 2.0, "margin": 0.5}, lo, hi)


def test_confidence_is_a_logistic_of_the_named_features() -> None:
    s = strategy()
    assert s.confidence({"retrieval": 0.5, "margin": 0.0}) == pytest.approx(0.5)
    assert s.confidence({"retrieval": 1e9}) == pytest.approx(1.0)  # clipped, never overflows
    assert [s.evidence(c) for c in (0.1, 0.3, 0.69, 0.7)] == ["none", "weak", "weak", "strong"]


def test_malformed_strategy_files_are_named() -> None:
    with pytest.raises(ValueError, match="'reader' is malformed"):
        jd.strategy_from_json("reader", {"bias": 0})
    with pytest.raises(ValueError, match="abstain_below <= confident_from"):
        jd.strategy_from_json("reader", {"bias": 0, "weights": {}, "abstain_below": 0.8, "confident_from": 0.2})
    with pytest.raises(ValueError, match="unknown features"):
        jd.strategy_from_json("reader", {"bias": 0, "weights": {"vibes": 1}, "abstain_below": 0, "confident_from": 1})


def test_shipped_parameters_load_and_were_fitted_with_the_shipped_reader() -> None:
    data = json.loads(jd.FITTED_FILE.read_text(encoding="utf-8"))
    for name in ("reader", "sentences"):
        jd.load_strategy(name)
    # Refit (scripts/fit_confidence.py) whenever the reader changes: its scores are what the weights weigh.
    assert data["fitted_on"]["reader_weights_sha256"] == sha256_file(SHIPPED_MODEL_DIR / WEIGHTS_FILE)
    assert "squad11_train" in data["fitted_on"]["train_file"]


def candidate_reader(tmp_path: Path, weights: bytes | None = None) -> tuple[Path, Path]:
    """A candidate reader folder (the shipped one, or other weights) and a copy of the shipped judge file."""
    folder = tmp_path / "reader"
    shutil.copytree(SHIPPED_MODEL_DIR, folder)
    if weights is not None:
        (folder / WEIGHTS_FILE).write_bytes(weights)
    judge = tmp_path / "confidence.json"
    shutil.copy(jd.FITTED_FILE, judge)
    return folder, judge


def test_a_candidate_reader_needs_a_judge_fitted_for_its_weights(tmp_path: Path) -> None:
    same, judge = candidate_reader(tmp_path / "same")
    assert jd.strategy_for("reader", judge, same) == jd.load_strategy("reader")
    other, judge = candidate_reader(tmp_path / "other", weights=b"other weights")
    with pytest.raises(InputError, match=r"was fitted for other reader weights .* refit it"):
        jd.strategy_for("reader", judge, other)
    with pytest.raises(InputError, match="was fitted for other reader weights"):
        jd.strategy_for("reader", None, other)  # the shipped judge does not fit other weights either
    # Without the reader the sentence strategy does not depend on its weights.
    assert jd.strategy_for("sentences", judge, other) == jd.load_strategy("sentences")
    with pytest.raises(InputError, match="no reader weights at"):
        jd.strategy_for("reader", judge, tmp_path / "nowhere")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="cannot read the judge file"):
        jd.strategy_for("reader", tmp_path / "broken.json", same)


def candidate(read: ReaderSpan | None) -> Candidate:
    passage = Passage("d.txt", "Title", 7, 38, TEXT[7:38], 0.8)
    s = TEXT.index("The bail")
    hit = SentenceHit(Span("d.txt", s, s + 31, TEXT[s : s + 31], "sentence", 0.6), None, 0.6)
    return Candidate(passage, 0, hit, read)


def sentence_around(doc_id: str, start: int, end: int, lo: int, hi: int) -> Span:
    return Span(doc_id, lo, hi, TEXT[lo:hi], "sentence")


def test_reader_span_becomes_an_answer_with_document_offsets() -> None:
    judge = jd.Judge(strategy(), {"d.txt": TEXT}, sentence_around)
    rel = TEXT[7:38].index("£42m")
    judged = judge.judge(candidate(ReaderSpan(rel, rel + 4, "£42m", 5.0, -1.0, 0.9)))
    assert judged.answer is not None and judged.answer.text == "£42m"
    assert TEXT[judged.answer.start : judged.answer.end] == "£42m"
    assert judged.confidence == pytest.approx(strategy().confidence({"retrieval": 0.8, "margin": 6.0}))
    assert [h.kind for h in judged.passage.highlights] == ["sentence", "answer"]


def test_unread_passage_offers_no_answer_under_the_reader_strategy() -> None:
    judged = jd.Judge(strategy(), {"d.txt": TEXT}, sentence_around).judge(candidate(None))
    assert judged.answer is None and [h.kind for h in judged.passage.highlights] == ["sentence"]
    # Without the reader the sentence itself is the answer, judged by the sentences strategy.
    s = jd.Strategy("sentences", 0.0, {"retrieval": 1.0, "sentence": 1.0}, 0.1, 0.9)
    judged = jd.Judge(s, {"d.txt": TEXT}, sentence_around).judge(candidate(None))
    assert judged.answer is not None and judged.answer.text.startswith("The bail out")
