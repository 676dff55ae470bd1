"""Fit the answer confidence (tr_qa.qa.Confidence) and the abstention threshold on SQuAD v1.1 *training* data.

The reader never saw the last 20 training articles (its held-out split). Half of them are indexed as the corpus;
questions about those are answerable, questions about the other half are not answerable from that corpus. A
logistic regression over each read passage (retrieval score, sentence score, reader logit score, reader
probability; label: the passage is from the gold paragraph and the reader's span has F1 >= 0.5) gives the weights.
The threshold maximises the mean of answered-and-right (answerable) and abstained (unanswerable), so it does not
depend on how many unanswerable questions a file happens to hold. Never run this on the evaluation files.
Usage: .venv/bin/python scripts/fit_confidence.py ../shared/bench/squad-v1.1-train/squad11_train_rebuilt.json.xz
"""

from __future__ import annotations

import argparse
import json
import lzma
import random
import tempfile
from pathlib import Path

import numpy as np

import tr_qa  # noqa: F401 - sets the offline environment before torch loads
from tr_qa.config import Settings
from tr_qa.evaluate import squad_corpus, token_f1
from tr_qa.index import build
from tr_qa.qa import QA, Confidence


def features(qa: QA, question: str) -> list[tuple[list[float], str, str]]:
    """Per read passage: its feature row, its document id and the reader's span text."""
    _, n_read, signals = qa.signals(question, 5)
    rows = []
    for passage, hit, span in signals[:n_read]:
        if span is None or span.end <= span.start:
            continue
        rows.append(([passage.score, hit.score if hit else 0.0, span.score, span.prob], passage.doc_id, span.text))
    return rows


def fit(x: np.ndarray, y: np.ndarray, epochs: int = 3000, lr: float = 0.05, l2: float = 1e-3) -> np.ndarray:
    """Logistic regression on standardised features; returns weights for the raw features plus a bias."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-z @ w))
        w -= lr * (z.T @ (p - y) / len(y) + l2 * np.r_[w[:-1], 0])
    raw = w[:-1] / sd
    return np.r_[raw, w[-1] - (mu * raw).sum()]


def main() -> None:
    """Build the corpus, collect features, fit, choose the threshold, print the Confidence to paste."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("train", type=Path)
    parser.add_argument("--questions", type=int, default=500, help="Answerable and unanswerable questions each.")
    args = parser.parse_args()
    with lzma.open(args.train, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    held_out = data["data"][-20:]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        inside, outside = tmp_path / "in.json", tmp_path / "out.json"
        inside.write_text(json.dumps({"data": held_out[:10]}), encoding="utf-8")
        outside.write_text(json.dumps({"data": held_out[10:]}), encoding="utf-8")
        answerable = squad_corpus(inside, tmp_path / "corpus")
        unanswerable = squad_corpus(outside, tmp_path / "unused")
        rng = random.Random(11)
        answerable = rng.sample(answerable, min(args.questions, len(answerable)))
        unanswerable = rng.sample(unanswerable, min(args.questions, len(unanswerable)))
        settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
        build(settings, progress=False)
        qa = QA.load(settings=settings)
        xs, ys, groups = [], [], []
        for items, can in ((answerable, True), (unanswerable, False)):
            for item in items:
                rows = features(qa, item.question)
                labels = [
                    float(can and doc == item.doc and token_f1(text, item.answers) >= 0.5) for _, doc, text in rows
                ]
                xs += [r[0] for r in rows]
                ys += labels
                groups.append((len(xs) - len(rows), len(xs), can, labels))
    x, y = np.array(xs), np.array(ys)
    w = fit(x, y)
    conf = Confidence(
        bias=float(w[4]), retrieval=float(w[0]), sentence=float(w[1]), reader_score=float(w[2]), reader_prob=float(w[3])
    )
    probs = 1 / (1 + np.exp(-(x @ w[:4] + w[4])))
    # Per question: the top passage by confidence answers; is it right, and how confident is it?
    tops = []
    for a, b, can, labels in groups:
        if a == b:
            tops.append((0.0, can, False))
            continue
        i = a + int(np.argmax(probs[a:b]))
        tops.append((float(probs[i]), can, bool(labels[i - a])))
    best = (0.0, -1.0)
    for t in np.linspace(0, 1, 201):
        right = np.mean([c >= t and ok for c, can, ok in tops if can])
        abstained = np.mean([c < t for c, can, _ in tops if not can])
        score = (right + abstained) / 2
        if score > best[1]:
            best = (float(t), float(score))
    t = best[0]
    answered = np.mean([c >= t for c, can, _ in tops if can])
    right = np.mean([c >= t and ok for c, can, ok in tops if can])
    abstained = np.mean([c < t for c, can, _ in tops if not can])
    print(f"{len(answerable)} answerable + {len(unanswerable)} unanswerable training questions, {len(y)} read passages")
    print(f"fitted {conf}")
    print(f"threshold {t:.3f}: answered {answered:.3f}, answered-and-right {right:.3f}, abstained {abstained:.3f}")


if __name__ == "__main__":
    main()
