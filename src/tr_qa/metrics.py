"""Evaluation metrics as pure functions of per-question records: ranking, answers, abstention, selective answering.

Selective answering (Kamath et al., ACL 2020): rank every question's best answer by the confidence the app states;
at each cut, coverage = answers shown / questions asked and risk = wrong answers among those shown. An answer is
right when its token F1 against a gold answer is at least 0.5; any answer to an unanswerable question is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tr_qa.squad import exact_match, token_f1

CORRECT_F1 = 0.5
ECE_BINS = 10
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20261130
# Headline metrics that get a bootstrap interval.
INTERVAL_METRICS = (
    "recall@1",
    "recall@5",
    "mrr@10",
    "highlight_hit",
    "em",
    "f1",
    "unanswerable_abstained",
    "answerable_answered",
    "coverage@acc80",
    "coverage@acc90",
    "aurc",
    "ece",
)


def contains_answer(text: str, golds: Sequence[str]) -> bool:
    """Whether any gold answer occurs in the text (case-insensitive, whitespace-insensitive)."""
    hay = " ".join(text.lower().split())
    return any(" ".join(g.lower().split()) in hay for g in golds if g.strip())


def recall_at_k(ranked_hits: Sequence[bool], k: int) -> float:
    """1.0 if a relevant passage is within the top k."""
    return float(any(ranked_hits[:k]))


def reciprocal_rank(ranked_hits: Sequence[bool], k: int = 10) -> float:
    """1/rank of the first relevant passage within the top k, else 0."""
    for i, hit in enumerate(ranked_hits[:k], 1):
        if hit:
            return 1.0 / i
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Scored:
    """Per-question numbers that every metric is computed from (one array entry per question)."""

    answerable: np.ndarray  # bool
    r1: np.ndarray
    r5: np.ndarray
    rr10: np.ndarray
    highlight: np.ndarray
    em: np.ndarray  # of the candidate answer, whether or not it is shown
    f1: np.ndarray
    has_answer: np.ndarray  # bool: the system had a candidate answer at all
    confidence: np.ndarray
    latency: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        """Whether showing the candidate answer would be right (answerable, F1 >= 0.5)."""
        return self.answerable & self.has_answer & (self.f1 >= CORRECT_F1)

    def take(self, idx: np.ndarray) -> Scored:
        """The questions at ``idx`` (with repeats: a bootstrap resample)."""
        return Scored(**{k: getattr(self, k)[idx] for k in self.__dataclass_fields__})


def score_records(records: Sequence[Any]) -> Scored:
    """Turn records (evaluate.Record) into arrays, computing each question's scores once."""
    return Scored(
        answerable=np.array([bool(r.answers) for r in records], dtype=bool),
        r1=np.array([recall_at_k(r.ranked_hits, 1) for r in records]),
        r5=np.array([recall_at_k(r.ranked_hits, 5) for r in records]),
        rr10=np.array([reciprocal_rank(r.ranked_hits, 10) for r in records]),
        highlight=np.array([float(r.highlight_hit) for r in records]),
        em=np.array([exact_match(r.prediction, r.answers) if r.answers else 0.0 for r in records]),
        f1=np.array([token_f1(r.prediction, r.answers) if r.answers else 0.0 for r in records]),
        has_answer=np.array([bool(r.prediction) for r in records], dtype=bool),
        confidence=np.array([float(r.confidence) for r in records]),
        latency=np.array([float(r.latency_ms) for r in records]),
    )


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def risk_coverage(s: Scored) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coverage, risk, confidence at the cut) for each cut through the answers ranked by confidence.

    Questions with no candidate answer are never shown; ties in confidence are cut together (a threshold cannot
    separate them).
    """
    n = len(s.confidence)
    idx = np.flatnonzero(s.has_answer)
    if n == 0 or idx.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    order = idx[np.argsort(-s.confidence[idx], kind="stable")]
    conf = s.confidence[order]
    wrong = np.cumsum(~s.correct[order])
    shown = np.arange(1, order.size + 1)
    last_of_tie = np.r_[conf[1:] != conf[:-1], True]
    return shown[last_of_tie] / n, wrong[last_of_tie] / shown[last_of_tie], conf[last_of_tie]


def coverage_at_accuracy(s: Scored, accuracy: float) -> float:
    """The largest coverage at which the answers shown are at least ``accuracy`` right (0 when none is)."""
    cov, risk, _ = risk_coverage(s)
    ok = risk <= 1 - accuracy + 1e-12
    return float(cov[ok].max()) if ok.any() else 0.0


def aurc(s: Scored) -> float:
    """Area under the risk-coverage curve: the mean risk over every cut, one cut per answer (lower is better)."""
    idx = np.flatnonzero(s.has_answer)
    if idx.size == 0:
        return 1.0
    order = idx[np.argsort(-s.confidence[idx], kind="stable")]
    wrong = np.cumsum(~s.correct[order])
    return float((wrong / np.arange(1, order.size + 1)).mean())


def reliability(s: Scored, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per equal-width confidence bin: count, mean stated confidence, observed accuracy (questions with an answer)."""
    idx = np.flatnonzero(s.has_answer)
    conf, ok = s.confidence[idx], s.correct[idx]
    which = np.minimum((conf * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        sel = which == b
        out.append(
            {
                "lo": b / bins,
                "hi": (b + 1) / bins,
                "n": int(sel.sum()),
                "confidence": float(conf[sel].mean()) if sel.any() else float("nan"),
                "accuracy": float(ok[sel].mean()) if sel.any() else float("nan"),
            }
        )
    return out


def ece(s: Scored, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the stated confidence against observed correctness (equal-width bins)."""
    rows = reliability(s, bins)
    total = sum(r["n"] for r in rows)
    if total == 0:
        return 0.0
    return float(sum(r["n"] / total * abs(r["accuracy"] - r["confidence"]) for r in rows if r["n"]))


def metrics_from(s: Scored, threshold: float) -> dict[str, float]:
    """Every metric over the scored questions, answering where confidence >= threshold."""
    ans, una = s.answerable, ~s.answerable
    shown = s.has_answer & (s.confidence >= threshold)
    out = {
        "n": float(len(ans)),
        "n_answerable": float(ans.sum()),
        "n_unanswerable": float(una.sum()),
        "recall@1": _mean(s.r1[ans]),
        "recall@5": _mean(s.r5[ans]),
        "mrr@10": _mean(s.rr10[ans]),
        "highlight_hit": _mean(s.highlight[ans]),
        "em": _mean(np.where(shown, s.em, 0.0)[ans]),
        "f1": _mean(np.where(shown, s.f1, 0.0)[ans]),
        "f1_if_answered": _mean(s.f1[ans]),
        "unanswerable_abstained": _mean((~shown)[una].astype(float)),
        "answerable_answered": _mean(shown[ans].astype(float)),
        "accuracy_of_shown": _mean(s.correct[shown].astype(float)),
        "coverage": _mean(shown.astype(float)),
        "coverage@acc80": coverage_at_accuracy(s, 0.8),
        "coverage@acc90": coverage_at_accuracy(s, 0.9),
        "aurc": aurc(s),
        "ece": ece(s),
        "latency_ms_p50": percentile(list(s.latency), 50),
        "latency_ms_p95": percentile(list(s.latency), 95),
        "abstain_threshold": float(threshold),
    }
    if una.any():
        # SQuAD 2.0's figures: an abstention is right on an unanswerable question and scores 0 on an answerable one.
        out["HasAns_f1"] = out["f1"]
        out["NoAns_acc"] = out["unanswerable_abstained"]
        out["overall_f1"] = _mean(np.where(ans, np.where(shown, s.f1, 0.0), (~shown).astype(float)))
    return out


def metrics(records: Sequence[Any], threshold: float) -> dict[str, float]:
    """All metrics over the records, abstaining where confidence < threshold (records are not changed)."""
    return metrics_from(score_records(records), threshold)


def bootstrap_intervals(
    s: Scored,
    threshold: float,
    names: Iterable[str] = INTERVAL_METRICS,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, list[float]]:
    """95 % percentile-bootstrap interval of each metric, resampling questions with replacement (seeded)."""
    names = list(names)
    n = len(s.confidence)
    if n == 0:
        return {k: [0.0, 0.0] for k in names}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(resamples):
        m = metrics_from(s.take(rng.integers(0, n, n)), threshold)
        for k in names:
            samples[k].append(m[k])
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in samples.items()}


def fit_threshold(records: Sequence[Any]) -> tuple[float, float]:
    """The threshold maximising answered-and-right plus correctly-abstained; returns (threshold, that share)."""
    if not records:
        return 0.0, 0.0
    s = score_records(records)
    candidates = sorted({0.0, *s.confidence.tolist()})
    best = (0.0, -1.0)
    for i, t in enumerate(candidates):
        # Put the threshold halfway to the next confidence so that near-ties do not flip on rounding.
        t = (t + candidates[i - 1]) / 2 if i else t
        shown = s.has_answer & (s.confidence >= t)
        good = np.where(s.answerable, shown & s.correct, ~shown).mean()
        if good > best[1]:
            best = (round(t, 4), float(good))
    return best


def question_ok(record: Any, threshold: float) -> bool:
    """Whether the app did right by one question: a right answer shown, or an abstention where none exists."""
    shown = bool(record.prediction) and record.confidence >= threshold
    if not record.answers:
        return not shown
    return shown and token_f1(record.prediction, record.answers) >= CORRECT_F1


def compare(
    old: dict[str, Any], new_overall: dict[str, float], new_ok: dict[str, bool], questions: dict[str, str]
) -> dict[str, Any]:
    """Each metric's change against an old report (and whether it left the old interval), and the questions
    newly failed and newly fixed."""
    old_overall, old_iv = old.get("overall", {}), old.get("intervals", {})
    rows = {}
    for k, v in new_overall.items():
        if k not in old_overall or not isinstance(v, int | float):
            continue
        iv = old_iv.get(k)
        outside = bool(iv) and not (iv[0] <= v <= iv[1])
        rows[k] = {"old": old_overall[k], "new": v, "change": v - old_overall[k], "outside_old_interval": outside}
    old_t = float(old_overall.get("abstain_threshold", 0.0))
    old_ok = {}
    for r in old.get("records", []):
        if "ok" in r:
            old_ok[r["id"]] = bool(r["ok"])
        elif {"prediction", "confidence", "answers"} <= set(r):
            # Reports written before per-question verdicts were stored: judge them the same way, at their threshold.
            shown = bool(r["prediction"]) and float(r["confidence"]) >= old_t
            golds = r["answers"]
            old_ok[r["id"]] = (not shown) if not golds else shown and token_f1(r["prediction"], golds) >= CORRECT_F1
    failed = [{"id": i, "question": questions[i]} for i, ok in new_ok.items() if not ok and old_ok.get(i) is True]
    fixed = [{"id": i, "question": questions[i]} for i, ok in new_ok.items() if ok and old_ok.get(i) is False]
    return {"metrics": rows, "newly_failed": failed, "newly_fixed": fixed}


def by_group(records: Sequence[Any], key: Callable[[Any], str], threshold: float) -> dict[str, dict[str, float]]:
    """Metrics per group of records (e.g. per question type)."""
    groups: dict[str, list[Any]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    return {g: metrics(rs, threshold) for g, rs in sorted(groups.items())}
