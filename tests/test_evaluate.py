"""Metrics are pure functions; the question set is valid; the gate fails below its limits."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tr_qa import evaluate as ev
from tr_qa.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
ALLOWED_TYPES = {
    "figure",
    "date",
    "person",
    "organisation",
    "place",
    "why",
    "how",
    "comment",
    "paraphrase",
    "multi_doc",
    "unanswerable",
}


def test_question_set_is_valid_and_every_answer_is_in_its_document() -> None:
    items = ev.load_qa_file(ROOT / "eval" / "qa.jsonl")
    assert len(items) >= 80
    assert len({i.id for i in items}) == len(items)
    assert sum(not i.answerable for i in items) >= 10
    for item in items:
        assert item.type in ALLOWED_TYPES
        if item.answerable:
            text = (ROOT / "seeds" / item.doc).read_text(encoding="utf-8")
            for answer in item.answers:
                assert answer in text, (item.id, answer)
        else:
            assert item.doc is None and item.type == "unanswerable"


def test_squad_normalisation_em_and_f1() -> None:
    assert ev.normalize_answer("The  £2.1 Billion!") == "£21 billion"  # official set: ASCII punctuation only
    assert ev.exact_match("the Ministry of Justice", ["Ministry of Justice"]) == 1.0
    assert ev.token_f1("Chris Grayling", ["Grayling"]) == pytest.approx(2 / 3)
    assert ev.token_f1("nothing", ["Grayling", "nothing at all"]) == pytest.approx(0.5)
    assert ev.token_f1("", ["x"]) == 0.0


def test_ranking_metrics() -> None:
    hits = (False, False, True, False)
    assert ev.recall_at_k(hits, 1) == 0.0 and ev.recall_at_k(hits, 5) == 1.0
    assert ev.reciprocal_rank(hits) == pytest.approx(1 / 3)
    assert ev.reciprocal_rank((False,) * 12 + (True,), 10) == 0.0
    assert ev.percentile([1, 2, 3, 4], 50) == 2.5


def rec(id_: str, answers: tuple[str, ...], prediction: str, confidence: float, hit: bool = True) -> ev.Record:
    return ev.Record(id_, "t", "q", answers, "d" if answers else None, (hit,), hit, prediction, confidence, 10.0)


def test_metrics_apply_the_threshold_without_mutating_records() -> None:
    records = [rec("a", ("£5",), "£5", 0.9), rec("b", ("x",), "y", 0.2, hit=False), rec("c", (), "z", 0.1)]
    frozen = copy.deepcopy(records)
    m = ev.metrics(records, threshold=0.5)
    assert records == frozen
    assert m["n"] == 3 and m["em"] == 0.5 and m["answerable_answered"] == 0.5
    assert m["unanswerable_abstained"] == 1.0 and m["highlight_hit"] == 0.5
    assert ev.metrics(records, threshold=0.0)["unanswerable_abstained"] == 0.0


def test_fitted_threshold_separates_right_answers_from_unanswerables() -> None:
    records = [rec("a", ("x",), "x", 0.8), rec("b", ("x",), "x", 0.7), rec("c", (), "z", 0.3), rec("d", (), "z", 0.4)]
    threshold, share = ev.fit_threshold(records)
    assert 0.4 < threshold <= 0.7 and share == 1.0


def test_gate_fails_below_minimum_and_above_latency_maximum() -> None:
    values = {"recall@5": 0.9, "f1": 0.5, "latency_ms_p95": 120.0}
    assert ev.check_gate(values, {"recall@5": 0.85, "f1": 0.4, "latency_ms_p95": 500}) == []
    problems = ev.check_gate(values, {"recall@5": 0.95, "latency_ms_p95": 100, "nonsense": 1})
    assert len(problems) == 3 and "recall@5 = 0.900 is below the minimum 0.95" in problems


def test_project_thresholds_file_names_real_metrics() -> None:
    thresholds = ev.load_thresholds(ROOT / "eval" / "thresholds.json")
    assert thresholds and set(thresholds) <= set(ev.METRICS)


def test_malformed_question_files_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "answers": [], "doc": null}\n{oops\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl:2: not JSON"):
        ev.load_qa_file(bad)
    bad.write_text('{"id": "a", "question": "q", "answers": ["x"], "doc": null}\n', encoding="utf-8")
    with pytest.raises(InputError, match="'doc' must name"):
        ev.load_qa_file(bad)


def test_squad_files_become_documents_and_questions(tmp_path: Path) -> None:
    squad = {
        "version": "2.0",
        "data": [
            {
                "title": "Probation_Act",
                "paragraphs": [
                    {
                        "context": "The Act came into force in 1907.",
                        "qas": [
                            {"id": "1", "question": "When?", "answers": [{"text": "1907", "answer_start": 27}]},
                            {"id": "2", "question": "Who?", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(squad), encoding="utf-8")
    items = ev.squad_corpus(path, tmp_path / "corpus")
    assert [(i.id, i.answers, i.doc, i.type) for i in items] == [
        ("1", ("1907",), "000_000.txt", "squad"),
        ("2", (), None, "unanswerable"),
    ]
    assert (tmp_path / "corpus" / "000_000.txt").read_text(encoding="utf-8") == "The Act came into force in 1907."
    path.write_text('{"data": 3}', encoding="utf-8")
    with pytest.raises(InputError, match="not a SQuAD JSON file"):
        ev.squad_corpus(path, tmp_path / "c2")


def test_eval_on_the_seed_index_writes_a_report(seed_qa, tmp_path: Path) -> None:
    items = ev.load_qa_file(ROOT / "eval" / "qa.jsonl")[:12]
    summary, records = ev.evaluate(seed_qa, items, ["hybrid", "bm25"], progress=False, source="qa.jsonl")
    assert summary["overall"]["n"] == 12 and set(summary["by_retriever"]) == {"hybrid", "bm25"}
    paths = ev.write_report(tmp_path, summary, records, summary["overall"]["abstain_threshold"])
    assert [p.name for p in paths] == ["report.json", "summary.md", "per_type.png"]
    assert paths[2].read_bytes()[:4] == b"\x89PNG"
    assert "Failed questions" in paths[1].read_text(encoding="utf-8")
