"""SQuAD v1.1 / v2.0 files and scores: reading, examples, article splits, official normalisation, EM and F1.

The one place that knows the SQuAD format; evaluation, training and the fit scripts all read through it.
"""

from __future__ import annotations

import json
import lzma
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tr_qa.errors import InputError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)  # exactly the official SQuAD script's set, so figures compare with published ones


@dataclass(frozen=True)
class SquadExample:
    """One question over one paragraph; ``answers`` is empty when the paragraph does not answer it."""

    qid: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_start: int = -1
    article: int = 0
    paragraph: int = 0

    @property
    def answerable(self) -> bool:
        """Whether the paragraph holds an answer."""
        return bool(self.answers)


def read_articles(path: Path) -> list[dict[str, Any]]:
    """The ``data`` list of a SQuAD JSON file (plain or ``.xz``); InputError when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"SQuAD file does not exist: {path}")
    opener: Any = lzma.open if path.suffix == ".xz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)["data"]
        if not isinstance(data, list):
            raise TypeError("'data' is not a list")
    except (UnicodeDecodeError, json.JSONDecodeError, lzma.LZMAError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a SQuAD JSON file ({type(exc).__name__}: {exc})") from exc
    return data


def examples(articles: Iterable[dict[str, Any]], *, answerable_only: bool = True) -> list[SquadExample]:
    """Every question of the articles, in file order (v2.0 unanswerable ones only if ``answerable_only`` is off)."""
    out = []
    try:
        for a, art in enumerate(articles):
            for p, para in enumerate(art["paragraphs"]):
                for qa in para["qas"]:
                    impossible = bool(qa.get("is_impossible")) or not qa["answers"]
                    if impossible and answerable_only:
                        continue
                    answers = () if impossible else tuple(x["text"] for x in qa["answers"])
                    start = -1 if impossible else int(qa["answers"][0]["answer_start"])
                    out.append(SquadExample(str(qa["id"]), qa["question"], para["context"], answers, start, a, p))
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"not a SQuAD article list (missing {exc})") from exc
    return out


def split_articles(
    articles: Sequence[dict[str, Any]], holdout_articles: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held-out) articles: the last ``holdout_articles`` are held out, so no paragraph is in both."""
    cut = len(articles) - holdout_articles if holdout_articles > 0 else len(articles)
    return list(articles[:cut]), list(articles[cut:])


def normalize_answer(text: str) -> str:
    """Official SQuAD normalisation: lower case, no ASCII punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer."""
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1, the maximum over the gold answers."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        ref = normalize_answer(gold).split()
        common = Counter(pred) & Counter(ref)
        same = sum(common.values())
        if not pred or not ref:
            best = max(best, float(pred == ref))
        elif same:
            precision, recall = same / len(pred), same / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def v2_scores(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """SQuAD 2.0 EM and F1 of one prediction: for a question with no answer, only an empty prediction scores 1."""
    if not golds:
        value = float(not prediction.strip())
        return value, value
    if not prediction.strip():
        return 0.0, 0.0
    return exact_match(prediction, golds), token_f1(prediction, golds)


@dataclass(frozen=True)
class ReaderOutcome:
    """What a reader did with one question given its paragraph: its no-answer margin and its span's scores."""

    qid: str
    answerable: bool
    margin: float
    em: float
    f1: float
    prediction: str


def read_examples(
    predict: Any, items: Sequence[SquadExample], *, chunk: int = 64, progress: bool = False
) -> list[ReaderOutcome]:
    """Run ``predict(questions, contexts) -> spans`` over the examples (shortest first, in batches)."""
    from tqdm.auto import tqdm

    order = sorted(range(len(items)), key=lambda k: len(items[k].context) + len(items[k].question))
    out: dict[int, ReaderOutcome] = {}
    bar = tqdm(total=len(items), desc="read", disable=not progress, mininterval=10.0)
    for c0 in range(0, len(order), chunk):
        idx = order[c0 : c0 + chunk]
        spans = predict([items[k].question for k in idx], [items[k].context for k in idx])
        for k, sp in zip(idx, spans, strict=True):
            ex = items[k]
            em = exact_match(sp.text, ex.answers) if ex.answers else 0.0
            f1 = token_f1(sp.text, ex.answers) if ex.answers else 0.0
            out[k] = ReaderOutcome(ex.qid, ex.answerable, float(sp.score - sp.null_score), em, f1, sp.text)
        bar.update(len(idx))
    bar.close()
    return [out[k] for k in range(len(items))]


def v2_metrics(outcomes: Sequence[ReaderOutcome], threshold: float | None) -> dict[str, float]:
    """SQuAD 2.0 figures (0-1): the reader answers when its margin is above ``threshold`` (None: always answers)."""

    def answered(o: ReaderOutcome) -> bool:
        return threshold is None or o.margin > threshold

    has = [o for o in outcomes if o.answerable]
    no = [o for o in outcomes if not o.answerable]
    em = [o.em if answered(o) else 0.0 for o in has] + [float(not answered(o)) for o in no]
    f1 = [o.f1 if answered(o) else 0.0 for o in has] + [float(not answered(o)) for o in no]

    def mean(xs: Sequence[float]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    return {
        "n": float(len(outcomes)),
        "n_has_ans": float(len(has)),
        "n_no_ans": float(len(no)),
        "exact": mean(em),
        "f1": mean(f1),
        "HasAns_exact": mean(em[: len(has)]),
        "HasAns_f1": mean(f1[: len(has)]),
        "HasAns_f1_if_answered": mean([o.f1 for o in has]),
        "NoAns_acc": mean([float(not answered(o)) for o in no]),
        "threshold": float("nan") if threshold is None else float(threshold),
    }


def best_margin_threshold(outcomes: Sequence[ReaderOutcome]) -> float:
    """The no-answer margin threshold that maximises SQuAD 2.0 F1 over the outcomes (fit on training data only)."""
    cands = sorted({o.margin for o in outcomes})
    if not cands:
        return 0.0
    # Sweep once: start answering nothing, then lower the threshold past each margin.
    has_f1 = {o.qid: o.f1 for o in outcomes if o.answerable}
    score = float(sum(not o.answerable for o in outcomes))
    best_score, best_t = score, cands[-1]
    by_margin = sorted(outcomes, key=lambda o: -o.margin)
    i = 0
    for t_idx in range(len(cands) - 1, -1, -1):
        t = cands[t_idx - 1] if t_idx > 0 else cands[0] - 1.0
        while i < len(by_margin) and by_margin[i].margin > t:
            o = by_margin[i]
            score += has_f1[o.qid] if o.answerable else -1.0
            i += 1
        if score > best_score:
            best_score, best_t = score, t
    return float(best_t)
