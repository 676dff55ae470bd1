"""SQuAD files and scores: reading, examples, official normalisation, EM/F1, 2.0 scoring and its threshold."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest

from tr_qa import squad
from tr_qa.errors import InputError


def test_normalisation_em_and_f1_follow_the_official_script() -> None:
    assert squad.normalize_answer("The  £2.1 Billion!") == "£21 billion"  # ASCII punctuation only
    assert squad.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert squad.exact_match("the Ministry of Justice", ["Ministry of Justice"]) == 1.0
    assert squad.token_f1("Chris Grayling", ["Grayling"]) == pytest.approx(2 / 3)
    assert squad.token_f1("nothing", ["Grayling", "nothing at all"]) == pytest.approx(0.5)
    assert squad.token_f1("", ["x"]) == 0.0


def test_v2_scores_reward_silence_only_when_there_is_no_answer() -> None:
    assert squad.v2_scores("", []) == (1.0, 1.0)
    assert squad.v2_scores("London", []) == (0.0, 0.0)
    assert squad.v2_scores("", ["London"]) == (0.0, 0.0)
    assert squad.v2_scores("London", ["London"]) == (1.0, 1.0)


def test_reads_plain_and_xz_files_and_names_bad_ones(tmp_path: Path) -> None:
    data = {
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "In 1907.",
                        "qas": [
                            {"id": "1", "question": "When?", "answers": [{"text": "1907", "answer_start": 3}]},
                            {"id": "2", "question": "Who?", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ]
    }
    plain = tmp_path / "s.json"
    plain.write_text(json.dumps(data), encoding="utf-8")
    packed = tmp_path / "s.json.xz"
    packed.write_bytes(lzma.compress(json.dumps(data).encode()))
    for path in (plain, packed):
        arts = squad.read_articles(path)
        assert [e.qid for e in squad.examples(arts)] == ["1"]
        both = squad.examples(arts, answerable_only=False)
        assert [(e.qid, e.answers, e.answer_start) for e in both] == [("1", ("1907",), 3), ("2", (), -1)]
    (tmp_path / "bad.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="not a SQuAD JSON file"):
        squad.read_articles(tmp_path / "bad.json")
    with pytest.raises(InputError, match="does not exist"):
        squad.read_articles(tmp_path / "missing.json")


def test_article_split_keeps_articles_whole() -> None:
    arts = [{"title": str(i)} for i in range(5)]
    train, held = squad.split_articles(arts, 2)
    assert [a["title"] for a in train] == ["0", "1", "2"] and [a["title"] for a in held] == ["3", "4"]


def outcome(qid: str, answerable: bool, margin: float, f1: float) -> squad.ReaderOutcome:
    return squad.ReaderOutcome(qid, answerable, margin, f1, f1, "x")


def test_v2_metrics_and_best_threshold_on_known_outcomes() -> None:
    outs = [
        outcome("a", True, 3.0, 1.0),
        outcome("b", True, 1.0, 0.5),
        outcome("c", False, 2.0, 0.0),
        outcome("d", False, -1.0, 0.0),
    ]
    m = squad.v2_metrics(outs, 0.0)  # answers a, b, c; abstains on d
    assert m["HasAns_f1"] == pytest.approx(0.75) and m["NoAns_acc"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx((1.0 + 0.5 + 0 + 1) / 4)
    never = squad.v2_metrics(outs, None)
    assert never["NoAns_acc"] == 0.0 and never["HasAns_f1"] == pytest.approx(0.75)
    # Best: answer only above 2.0 (a) → 1 + 0 + 1 + 1 = 3, or above 0.99 excluding c? c (2.0) sits above b (1.0),
    # so the choices are {a}: 3.0, {a,c}: 2.0, {a,c,b}: 2.5, all: 1.5 → answer a only.
    t = squad.best_margin_threshold(outs)
    assert 2.0 <= t < 3.0
    assert squad.v2_metrics(outs, t)["f1"] == pytest.approx(0.75)
