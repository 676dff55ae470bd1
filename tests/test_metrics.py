"""Metric functions on small hand-made records whose values are known."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tr_qa import metrics as mt
from tr_qa.evaluate import Record


def rec(id_: str, answers: tuple[str, ...], prediction: str, confidence: float, hit: bool = True) -> Record:
    return Record(id_, "t", "q " + id_, answers, "d" if answers else None, (hit,), hit, prediction, confidence, 10.0)


def test_ranking_metrics() -> None:
    hits = (False, False, True, False)
    assert mt.recall_at_k(hits, 1) == 0.0 and mt.recall_at_k(hits, 5) == 1.0
    assert mt.reciprocal_rank(hits) == pytest.approx(1 / 3)
    assert mt.reciprocal_rank((False,) * 12 + (True,), 10) == 0.0
    assert mt.percentile([1, 2, 3, 4], 50) == 2.5


def test_metrics_apply_the_threshold_without_mutating_records() -> None:
    records = [rec("a", ("£5",), "£5", 0.9), rec("b", ("x",), "y", 0.2, hit=False), rec("c", (), "z", 0.1)]
    frozen = copy.deepcopy(records)
    m = mt.metrics(records, threshold=0.5)
    assert records == frozen
    assert m["n"] == 3 and m["em"] == 0.5 and m["answerable_answered"] == 0.5
    assert m["unanswerable_abstained"] == 1.0 and m["highlight_hit"] == 0.5
    assert m["NoAns_acc"] == 1.0 and m["overall_f1"] == pytest.approx((1 + 0 + 1) / 3)
    assert mt.metrics(records, threshold=0.0)["unanswerable_abstained"] == 0.0


def test_all_answers_right_gives_coverage_equal_to_the_answered_share() -> None:
    records = [
        rec("a", ("x",), "x", 0.9),
        rec("b", ("y",), "y", 0.8),
        rec("c", ("z",), "", 0.0),
        rec("d", ("w",), "w", 0.7),
    ]
    m = mt.metrics(records, threshold=0.5)
    assert m["coverage@acc90"] == m["coverage@acc80"] == pytest.approx(3 / 4)
    assert m["aurc"] == 0.0


def test_coverage_aurc_and_ece_on_a_known_ranking() -> None:
    # Ranked by confidence: right, wrong (unanswerable), right, wrong (bad span).
    records = [
        rec("a", ("x",), "x", 0.95),
        rec("b", (), "z", 0.85),
        rec("c", ("y",), "y", 0.55),
        rec("d", ("w",), "nope", 0.15),
    ]
    s = mt.score_records(records)
    cov, risk, _ = mt.risk_coverage(s)
    assert cov.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert risk.tolist() == pytest.approx([0.0, 0.5, 1 / 3, 0.5])
    assert mt.coverage_at_accuracy(s, 0.9) == 0.25  # only the first answer keeps 90 %
    assert mt.coverage_at_accuracy(s, 0.5) == 1.0
    assert mt.aurc(s) == pytest.approx((0 + 0.5 + 1 / 3 + 0.5) / 4)
    # One answer per bin: |1-.95| + |0-.85| + |1-.55| + |0-.15|, each weighing 1/4.
    assert mt.ece(s) == pytest.approx((0.05 + 0.85 + 0.45 + 0.15) / 4)


def test_ties_in_confidence_are_cut_together() -> None:
    records = [rec("a", ("x",), "x", 0.5), rec("b", (), "z", 0.5), rec("c", ("y",), "y", 0.9)]
    cov, risk, _ = mt.risk_coverage(mt.score_records(records))
    assert cov.tolist() == pytest.approx([1 / 3, 1.0]) and risk.tolist() == pytest.approx([0.0, 1 / 3])


def test_intervals_contain_the_estimate_and_repeat_with_the_seed() -> None:
    rng = np.random.default_rng(0)
    records = [
        rec(str(i), ("x",) if i % 4 else (), "x" if rng.random() < 0.7 else "no", float(rng.random()))
        for i in range(80)
    ]
    s = mt.score_records(records)
    point = mt.metrics_from(s, 0.3)
    a = mt.bootstrap_intervals(s, 0.3, resamples=200, seed=5)
    b = mt.bootstrap_intervals(s, 0.3, resamples=200, seed=5)
    assert a == b
    for name, (lo, hi) in a.items():
        assert lo <= point[name] + 1e-9 and point[name] <= hi + 1e-9, name
    assert a["f1"][1] - a["f1"][0] > 0.05  # 80 questions leave real sampling noise
    assert mt.bootstrap_intervals(s, 0.3, resamples=200, seed=6) != a


def test_compare_lists_changed_metrics_and_questions() -> None:
    old = {
        "overall": {"f1": 0.5, "em": 0.4},
        "intervals": {"f1": [0.45, 0.55], "em": [0.3, 0.5]},
        "records": [{"id": "a", "ok": True}, {"id": "b", "ok": False}, {"id": "c", "ok": True}],
    }
    diff = mt.compare(
        old, {"f1": 0.6, "em": 0.41}, {"a": False, "b": True, "c": True}, {"a": "qa", "b": "qb", "c": "qc"}
    )
    assert diff["metrics"]["f1"]["outside_old_interval"] and not diff["metrics"]["em"]["outside_old_interval"]
    assert diff["metrics"]["f1"]["change"] == pytest.approx(0.1)
    assert diff["newly_failed"] == [{"id": "a", "question": "qa"}]
    assert diff["newly_fixed"] == [{"id": "b", "question": "qb"}]


def test_fitted_threshold_separates_right_answers_from_unanswerables() -> None:
    records = [rec("a", ("x",), "x", 0.8), rec("b", ("x",), "x", 0.7), rec("c", (), "z", 0.3), rec("d", (), "z", 0.4)]
    threshold, share = mt.fit_threshold(records)
    assert 0.4 < threshold <= 0.7 and share == 1.0


def test_compare_judges_old_reports_without_verdicts_at_their_own_threshold() -> None:
    old = {
        "overall": {"f1": 0.5, "abstain_threshold": 0.5},
        "records": [
            {"id": "a", "prediction": "x", "confidence": 0.9, "answers": ["x"]},  # right then
            {"id": "b", "prediction": "z", "confidence": 0.9, "answers": []},  # answered an unanswerable
        ],
    }
    diff = mt.compare(old, {"f1": 0.5}, {"a": False, "b": True}, {"a": "qa", "b": "qb"})
    assert diff["newly_failed"] == [{"id": "a", "question": "qa"}]
    assert diff["newly_fixed"] == [{"id": "b", "question": "qb"}]
