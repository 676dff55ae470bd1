"""Fit the sentence scorer's weights (cosine, word overlap, answer type) on the SQuAD v1.1 *training* set.

Logistic regression: does this sentence of the gold paragraph hold the answer? The fitted weights, scaled to sum
to 1, are written to src/tr_qa/data/highlighter.json (read by `tr_qa.highlight.Weights.fitted`). Never run this on
the evaluation files.
Usage: .venv/bin/python scripts/fit_highlighter.py ../shared/bench/squad-v1.1-train/squad11_train_rebuilt.json.xz
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

import tr_qa  # noqa: F401 - sets the offline environment before torch loads
from tr_qa.analyse import Analyser
from tr_qa.embed import Embedder
from tr_qa.files import atomic_write_text, sha256_file
from tr_qa.highlight import WEIGHTS_FILE, Highlighter, Weights, answer_labels
from tr_qa.squad import read_articles
from tr_qa.text import terms


def examples(path: Path, articles: list[int]) -> tuple[list[str], list[tuple[int, str, int]]]:
    """Contexts and (context index, question, answer start) for the chosen articles."""
    data = read_articles(path)
    contexts: list[str] = []
    qs: list[tuple[int, str, int]] = []
    for a in articles:
        for para in data[a]["paragraphs"]:
            contexts.append(para["context"])
            qs.extend((len(contexts) - 1, qa["question"], qa["answers"][0]["answer_start"]) for qa in para["qas"])
    return contexts, qs


def features(contexts: list[str], qs: list[tuple[int, str, int]], embedder: Embedder):
    """Per question: feature rows of its paragraph's sentences and which one holds the answer."""
    analyses = Analyser().analyse(contexts)
    ids = [str(i) for i in range(len(contexts))]
    sent_vecs = embedder.encode([c[s:e] for c, a in zip(contexts, analyses, strict=True) for s, e in a.sentences])
    hl = Highlighter(dict(zip(ids, contexts, strict=True)), dict(zip(ids, analyses, strict=True)), sent_vecs)
    q_vecs = embedder.encode([q for _, q, _ in qs], batch_size=64)
    groups = []
    for (c, question, start), q_vec in zip(qs, q_vecs, strict=True):
        rows = hl.sentences_in(str(c), 0, len(contexts[c]))
        if len(rows) < 2:
            continue
        q_terms, labels = terms(question), answer_labels(question)
        x = [
            [
                float(hl.sentence_vectors[r] @ q_vec),
                hl.overlap(q_terms, contexts[c][s:e]),
                float(hl.answer_span(str(c), s, e, labels, q_terms) is not None),
            ]
            for r, s, e in rows
        ]
        y = [float(s <= start < e) for _, s, e in rows]
        if any(y):
            groups.append((np.array(x, dtype=np.float64), np.array(y)))
    return groups


def fit(groups, epochs: int = 400, lr: float = 0.5) -> np.ndarray:
    """Logistic regression by gradient descent; returns (w_cos, w_overlap, w_type, bias)."""
    x = np.vstack([g[0] for g in groups])
    y = np.concatenate([g[1] for g in groups])
    x1 = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(x1.shape[1])
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-x1 @ w))
        w -= lr * x1.T @ (p - y) / len(y)
    return w


def top1(groups, w: np.ndarray) -> float:
    """Share of questions whose best-scoring sentence holds the answer."""
    return float(np.mean([g[1][int(np.argmax(g[0] @ w[:3]))] for g in groups]))


def main() -> None:
    """Fit on some training articles, compare with the current weights on other training articles."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("train", type=Path)
    parser.add_argument("--fit-articles", type=int, default=30)
    parser.add_argument("--check-articles", type=int, default=10)
    args = parser.parse_args()
    order = list(range(442))
    random.Random(7).shuffle(order)
    embedder = Embedder()
    fit_groups = features(*examples(args.train, order[: args.fit_articles]), embedder)
    check_groups = features(
        *examples(args.train, order[args.fit_articles : args.fit_articles + args.check_articles]), embedder
    )
    w = fit(fit_groups)
    scaled = w[:3] / w[:3].sum()
    current = Weights.fitted()
    print(f"fitted on {len(fit_groups)} questions, checked on {len(check_groups)} (held-out training articles)")
    print(f"raw logistic weights cos={w[0]:.3f} overlap={w[1]:.3f} type={w[2]:.3f} bias={w[3]:.3f}")
    print(f"scaled: Weights(cosine={scaled[0]:.3f}, overlap={scaled[1]:.3f}, answer_type={scaled[2]:.3f})")
    cur = np.array([current.cosine, current.overlap, current.answer_type, 0])
    fitted_top1 = top1(check_groups, w)
    print(f"top-1 sentence holds the answer: current {top1(check_groups, cur):.3f}, fitted {fitted_top1:.3f}")
    out = {
        "_comment": "Written by scripts/fit_highlighter.py on SQuAD v1.1 training articles only; do not edit by hand.",
        "weights": {k: round(float(v), 3) for k, v in zip(("cosine", "overlap", "answer_type"), scaled, strict=True)},
        "fitted_on": {
            "train_file": args.train.name,
            "train_file_sha256": sha256_file(args.train),
            "article_order_seed": 7,
            "fit_articles": args.fit_articles,
            "check_articles": args.check_articles,
            "fit_questions": len(fit_groups),
            "check_questions": len(check_groups),
            "check_top1_sentence_holds_answer": round(fitted_top1, 4),
        },
    }
    atomic_write_text(WEIGHTS_FILE, json.dumps(out, indent=2) + "\n")
    print(f"wrote {WEIGHTS_FILE}")


if __name__ == "__main__":
    main()
