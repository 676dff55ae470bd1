"""Sentence and short-answer highlights inside a passage, from the bi-encoder, word overlap and answer types.

Documents are analysed once at index time (``tr_qa.analyse``: sentences and named entities with spaCy) and every
sentence is embedded then, so a question costs one embedding plus arithmetic here.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tr_qa.analyse import DocAnalysis
from tr_qa.text import terms
from tr_qa.types import SentenceHit, Span

WEIGHTS_FILE = Path(__file__).parent / "data" / "highlighter.json"

# Which spaCy entity labels answer which kind of question, best label first.
NUMBER = ("MONEY", "CARDINAL", "PERCENT", "QUANTITY")
ANSWER_TYPES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), labels)
    for pattern, labels in (
        (r"\b(what|which) (percentage|proportion|share)\b|\bwhat per ?cent\b", ("PERCENT", "CARDINAL")),
        (
            r"\bhow much\b|\b(cost|costs|worth|paid|pay|fine|fined|bail[- ]?out|budget|money|sum|amount|salary|"
            r"earn|earns|value)\b.*\?$",
            ("MONEY", "CARDINAL", "QUANTITY"),
        ),
        (r"\bhow many\b|\b(what|which) (number|figure|total)\b|\bnumber of\b", NUMBER),
        (r"\bhow (long|often)\b", ("DATE", "TIME", "CARDINAL")),
        (r"\bwhen\b|\b(what|which) (year|date|month|day|time|decade)\b|\bsince when\b|\bby when\b", ("DATE", "TIME")),
        (
            r"\b(which|what) (company|companies|firm|firms|organi[sz]ations?|union|unions|charity|charities|group|"
            r"body|bodies|provider|contractor|consortium|outsourcer|watchdog|newspaper|paper|department|committee|"
            r"party|inspectorate|agency|trust|partnership|business)\b",
            ("ORG",),
        ),
        (
            r"\bwhere\b|\b(which|what) (region|regions|city|cities|county|counties|country|countries|area|areas|"
            r"place|town|part of)\b",
            ("GPE", "LOC", "FAC"),
        ),
        (
            r"\bwho(m|se)?\b|\b(which|what) (minister|secretary|person|people|man|woman|official|officer|"
            r"inspector|mp|politician|spokesman|spokeswoman|chief)\b|\bname of\b",
            ("PERSON", "ORG", "NORP"),
        ),
    )
)


_EXPLAIN = re.compile(
    r"\bwhy\b|^\s*(what|which) (was|were|is|are) the (reason|cause|effect|impact|result|consequence)s?\b|"
    r"^\s*how (do|does|did|is|are|was|were|can|could|should|would|will|has|have|had)\b",
    re.IGNORECASE,
)


def asks_for_explanation(question: str) -> bool:
    """Whether the question asks why or how (an explanation, best answered by a sentence, not a phrase)."""
    return bool(_EXPLAIN.search(question))


def answer_labels(question: str) -> tuple[str, ...]:
    """The entity labels that would answer the question, best first; () when it asks for an explanation."""
    q = question.strip()
    if re.match(r"^\s*(why|how (do|does|did|is|are|was|were|can|could|should|would|will))\b", q, re.IGNORECASE):
        return ()
    for pattern, labels in ANSWER_TYPES:
        if pattern.search(q):
            return labels
    return ()


@dataclass(frozen=True)
class Weights:
    """How the sentence score mixes its signals: fitted by scripts/fit_highlighter.py on SQuAD *training* questions
    and read from ``data/highlighter.json``."""

    cosine: float
    overlap: float
    answer_type: float

    @classmethod
    def fitted(cls, path: Path = WEIGHTS_FILE) -> Weights:
        """The weights in the fitted-parameters file."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))["weights"]
        return cls(float(data["cosine"]), float(data["overlap"]), float(data["answer_type"]))


class Highlighter:
    """Scores the sentences of a passage against a question and picks the short answer inside the best one.

    ``sentence_vectors`` holds a vector for every sentence (documents in the store's order). For a large index,
    ``first_row`` gives a document's first row in it and ``frequency`` (chunks holding a term, all chunks: the
    BM25 index's document frequencies) weighs the word overlap, where counting terms over every sentence here
    would read every text in the corpus.
    """

    def __init__(
        self,
        texts: Mapping[str, str],
        analyses: Mapping[str, DocAnalysis],
        sentence_vectors: np.ndarray,
        weights: Weights | None = None,
        *,
        first_row: Callable[[str], int] | None = None,
        frequency: Callable[[str], tuple[int, int]] | None = None,
    ) -> None:
        if (first_row is None) != (frequency is None):
            raise ValueError("first_row and frequency are given together (a large index) or not at all")
        self.texts = texts
        self.analyses = analyses
        self.weights = weights or Weights.fitted()
        self.sentence_vectors = sentence_vectors
        self._first_row_of = first_row
        self._frequency = frequency
        # Row of each document's first sentence in the sentence matrix (documents in the store's order).
        self._first_row: dict[str, int] = {}
        self._idf: dict[str, float] = {}
        self._idf_default = 0.0
        if frequency is None:
            self._count_sentence_terms()

    def _count_sentence_terms(self) -> None:
        """Each document's first sentence row, and the inverse sentence frequency of every term."""
        row = 0
        df: Counter[str] = Counter()
        for doc_id, analysis in self.analyses.items():
            self._first_row[doc_id] = row
            row += len(analysis.sentences)
            text = self.texts[doc_id]
            for s, e in analysis.sentences:
                df.update(set(terms(text[s:e])))
        n = max(row, 1)
        self._idf = {t: math.log(1 + n / c) for t, c in df.items()}
        self._idf_default = math.log(1 + n)

    def idf(self, term: str) -> float:
        """Inverse sentence frequency (chunk frequency in a large index); unseen terms weigh most."""
        if self._frequency is not None:
            count, n = self._frequency(term)
            return math.log(1 + max(n, 1) / count) if count else math.log(1 + max(n, 1))
        return self._idf.get(term, self._idf_default)

    def overlap(self, question_terms: list[str], sentence: str) -> float:
        """IDF-weighted share of the question's content terms that the sentence contains (0..1)."""
        if not question_terms:
            return 0.0
        have = set(terms(sentence))
        total = sum(self.idf(t) for t in set(question_terms))
        return sum(self.idf(t) for t in set(question_terms) if t in have) / total if total else 0.0

    def sentences_in(self, doc_id: str, start: int, end: int) -> list[tuple[int, int, int]]:
        """(row, start, end) of each sentence overlapping [start, end), clipped to it."""
        out = []
        first = self._first_row_of(doc_id) if self._first_row_of is not None else self._first_row[doc_id]
        for i, (s, e) in enumerate(self.analyses[doc_id].sentences):
            if e <= start or s >= end:
                continue
            cs, ce = max(s, start), min(e, end)
            if self.texts[doc_id][cs:ce].strip():
                out.append((first + i, cs, ce))
        return out

    def sentence_around(self, doc_id: str, start: int, end: int, clip_start: int, clip_end: int) -> Span:
        """The sentence(s) holding [start, end), clipped to [clip_start, clip_end)."""
        covering = [(s, e) for s, e in self.analyses[doc_id].sentences if s < end and e > start]
        s = max(clip_start, min([start, *(s for s, _ in covering)]))
        e = min(clip_end, max([end, *(e for _, e in covering)]))
        return Span(doc_id, s, e, self.texts[doc_id][s:e], "sentence")

    def answer_span(
        self, doc_id: str, start: int, end: int, labels: tuple[str, ...], question_terms: list[str]
    ) -> Span | None:
        """The entity of a wanted type inside [start, end) nearest the question's words, not named in the question."""
        if not labels:
            return None
        text = self.texts[doc_id]
        qset = set(question_terms)
        anchors = [m.start() for t in qset for m in re.finditer(re.escape(t), text[start:end].lower())]
        best: tuple[float, int, int] | None = None
        for s, e, label in self.analyses[doc_id].entities:
            if s < start or e > end or label not in labels:
                continue
            ent_terms = set(terms(text[s:e]))
            if ent_terms and ent_terms <= qset:
                continue
            rank = labels.index(label)
            distance = min((abs(a - (s - start)) for a in anchors), default=200)
            score = 1.0 - 0.15 * rank - min(distance, 300) / 1000
            if best is None or score > best[0]:
                best = (score, s, e)
        if best is None:
            return None
        score, s, e = best
        return Span(doc_id, s, e, text[s:e], "answer", round(score, 4))

    def best_sentence(
        self, question: str, question_vector: np.ndarray, doc_id: str, start: int, end: int
    ) -> SentenceHit | None:
        """The best-scoring sentence of the passage [start, end) and its answer span."""
        rows = self.sentences_in(doc_id, start, end)
        if not rows:
            return None
        q_terms = terms(question)
        labels = answer_labels(question)
        cos = self.sentence_vectors[[r for r, _, _ in rows]] @ question_vector
        w = self.weights
        best: SentenceHit | None = None
        for (_, s, e), c in zip(rows, cos, strict=True):
            answer = self.answer_span(doc_id, s, e, labels, q_terms)
            score = (
                w.cosine * float(c)
                + w.overlap * self.overlap(q_terms, self.texts[doc_id][s:e])
                + w.answer_type * (answer is not None)
            )
            if best is None or score > best.score:
                sentence = Span(doc_id, s, e, self.texts[doc_id][s:e], "sentence", round(score, 4))
                best = SentenceHit(sentence, answer, score)
        return best


def segments(passage_text: str, passage_start: int, highlights: tuple[Span, ...]) -> list[tuple[str, str | None]]:
    """Split a passage into (text, kind) runs; kind is None, "sentence" or "answer" (answer wins where nested)."""
    n = len(passage_text)
    kinds: list[str | None] = [None] * n
    for wanted in ("sentence", "answer"):
        for h in highlights:
            if h.kind == wanted:
                for i in range(max(0, h.start - passage_start), min(n, h.end - passage_start)):
                    kinds[i] = wanted
    out: list[tuple[str, str | None]] = []
    start = 0
    for i in range(1, n + 1):
        if i == n or kinds[i] != kinds[start]:
            out.append((passage_text[start:i], kinds[start]))
            start = i
    return out
