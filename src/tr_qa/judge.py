"""Judging candidates: how sure the evidence makes an answer, and whether to show it, hedge it or abstain.

Two strategies, each with its own fitted logistic model and thresholds, read from ``data/confidence.json`` (written
by ``scripts/fit_confidence.py`` on SQuAD training data only):
- ``reader``: the passage's retrieval score, its best sentence's score, the reader's no-answer margin (span score
  minus [CLS] score) and the span's probability;
- ``sentences`` (no reader): retrieval and sentence scores only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from tr_qa.errors import InputError
from tr_qa.types import Answer, Candidate, Evidence, Judged, Span

FITTED_FILE = Path(__file__).parent / "data" / "confidence.json"
FEATURES = ("retrieval", "sentence", "margin", "prob", "specific")
# Without the reader a passage past the reader's reach ranks by retrieval alone, weighted like this.
UNREAD_WEIGHT = 0.5


@dataclass(frozen=True)
class Strategy:
    """A logistic confidence model over named features, and the two thresholds that turn it into a decision."""

    name: str
    bias: float
    weights: dict[str, float]
    abstain_below: float
    confident_from: float

    def confidence(self, features: dict[str, float]) -> float:
        """Probability-like confidence in [0, 1]."""
        z = self.bias + sum(w * features.get(name, 0.0) for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def evidence(self, confidence: float) -> Evidence:
        """ "strong", "weak" (a best guess) or "none" (abstain) for a confidence."""
        if confidence < self.abstain_below:
            return "none"
        return "strong" if confidence >= self.confident_from else "weak"


def strategy_from_json(name: str, data: dict[str, Any]) -> Strategy:
    """One strategy from its JSON object; ValueError naming what is missing or out of range."""
    try:
        weights = {str(k): float(v) for k, v in data["weights"].items()}
        s = Strategy(name, float(data["bias"]), weights, float(data["abstain_below"]), float(data["confident_from"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"confidence strategy {name!r} is malformed: {exc}") from exc
    if not 0.0 <= s.abstain_below <= s.confident_from <= 1.0:
        raise ValueError(f"confidence strategy {name!r}: need 0 <= abstain_below <= confident_from <= 1")
    unknown = set(weights) - set(FEATURES)
    if unknown:
        raise ValueError(f"confidence strategy {name!r} has unknown features {sorted(unknown)}")
    return s


@cache
def fitted(path: Path = FITTED_FILE) -> dict[str, Any]:
    """The fitted-parameters file as written by scripts/fit_confidence.py."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_strategy(name: str, path: Path = FITTED_FILE) -> Strategy:
    """The fitted strategy called ``name`` ("reader" or "sentences")."""
    return strategy_from_json(name, fitted(path)["strategies"][name])


def strategy_for(name: str, confidence_file: Path | None = None, reader_dir: Path | None = None) -> Strategy:
    """The strategy ``name`` from the shipped file, or from ``confidence_file`` for the reader in ``reader_dir``.

    With either given, the judge file must name the reader's weights (its ``fitted_on.reader_weights_sha256``): a
    judge fitted for other weights would state confidences that mean nothing. InputError says which and how to refit.
    """
    if confidence_file is None and reader_dir is None:
        return load_strategy(name)
    path = Path(confidence_file) if confidence_file is not None else FITTED_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        strategy = strategy_from_json(name, data["strategies"][name])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"cannot read the judge file {path}: {exc}") from None
    if name == "reader":
        from tr_qa.files import sha256_file
        from tr_qa.reader import SHIPPED_MODEL_DIR, WEIGHTS_FILE

        weights = Path(reader_dir or SHIPPED_MODEL_DIR) / WEIGHTS_FILE
        if not weights.is_file():
            raise InputError(f"no reader weights at {weights}")
        fitted_for = (data.get("fitted_on") or {}).get("reader_weights_sha256")
        if fitted_for != sha256_file(weights):
            raise InputError(
                f"the judge file {path} was fitted for other reader weights than {weights}: refit it with "
                "scripts/fit_confidence.py --reader DIR --out FILE"
            )
    return strategy


def features(candidate: Candidate) -> dict[str, float]:
    """The judge's inputs for one candidate."""
    hit, read = candidate.sentence, candidate.read
    out = {"retrieval": candidate.passage.score, "sentence": hit.score if hit else 0.0, "specific": candidate.specific}
    if read is not None:
        # The margin is clipped: past a few logits it adds certainty nobody can use, and it keeps z finite.
        out["margin"] = max(-20.0, min(20.0, read.margin))
        out["prob"] = read.prob
    return out


class Judge:
    """Turns candidates into judged passages (highlights, answer, confidence) with one strategy."""

    def __init__(self, strategy: Strategy, texts: dict[str, str], sentence_around: Any) -> None:
        self.strategy = strategy
        self.texts = texts
        self.sentence_around = sentence_around

    def judge(self, c: Candidate, explain: bool = False) -> Judged:
        """A candidate's confidence, its highlights and the answer it offers (None when it offers none).

        With ``explain`` (a why/how question) the answer is to be shown as the sentence around the reader's span.
        """
        p, hit, read = c.passage, c.sentence, c.read
        if read is not None and read.end > read.start:
            start, end = p.start + read.start, p.start + read.end
            answer_span = Span(p.doc_id, start, end, self.texts[p.doc_id][start:end], "answer", round(read.prob, 4))
            sentence = self.sentence_around(p.doc_id, start, end, p.start, p.end)
            confidence = self.strategy.confidence(features(c))
            sentence = replace(sentence, score=round(confidence, 4))
            answer = Answer(answer_span.text, p.doc_id, start, end, round(confidence, 4), sentence)
            if explain:
                answer = replace(answer, display="sentence")
            return Judged(confidence, replace(p, highlights=(sentence, answer_span)), answer)
        if hit is None:
            return Judged(UNREAD_WEIGHT * p.score, p, None)
        highlights = (hit.span,) if hit.answer is None else (hit.span, hit.answer)
        if self.strategy.name == "reader":
            # Passages past the reader's reach are shown with their sentence but offer no answer.
            return Judged(UNREAD_WEIGHT * p.score, replace(p, highlights=highlights), None)
        confidence = self.strategy.confidence(features(c))
        short = hit.answer or hit.span
        answer = Answer(short.text, p.doc_id, short.start, short.end, round(confidence, 4), hit.span)
        return Judged(confidence, replace(p, highlights=highlights), answer)
