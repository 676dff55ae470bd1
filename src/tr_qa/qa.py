"""QA: the facade that the CLI, the web app and the evaluation call. Loads once; ``ask`` → Result."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tr_qa.config import Settings, validate_k, validate_question, validate_retriever
from tr_qa.embed import Embedder
from tr_qa.errors import InputError
from tr_qa.highlight import Highlighter, SentenceHit
from tr_qa.index import IndexData, load
from tr_qa.retrieve import Retriever
from tr_qa.types import Answer, Document, Passage, Result, Span

if TYPE_CHECKING:
    from tr_qa.reader import Reader, ReaderSpan


@dataclass(frozen=True)
class Confidence:
    """Logistic model of "this passage's answer is right" from retrieval, sentence and reader signals.

    Fitted by scripts/fit_confidence.py on SQuAD v1.1 *training* articles the reader never saw: 400 answerable
    questions and 400 whose article was left out of the corpus (1,600 read passages).
    """

    bias: float = -9.932
    retrieval: float = 7.547
    sentence: float = 3.147
    reader_score: float = 0.3229
    reader_prob: float = 1.386

    def __call__(self, retrieval: float, sentence: float, span: ReaderSpan | None) -> float:
        """Probability-like confidence in [0, 1]."""
        z = self.bias + self.retrieval * retrieval + self.sentence * sentence
        if span is not None:
            z += self.reader_score * span.score + self.reader_prob * span.prob
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


# Without the reader, a passage's rank mixes retrieval with how well its best sentence answers the question.
RETRIEVAL_WEIGHT = 0.5


class QA:
    """Question answering over one index: retrieve → read/highlight → confidence → answer or abstain."""

    def __init__(self, data: IndexData, settings: Settings, embedder: Embedder, reader: Reader | None = None) -> None:
        self.data = data
        self.settings = settings
        self.embedder = embedder
        self.retriever = Retriever(data, settings.hybrid_alpha, settings.dense_sentence_weight)
        self.highlighter = Highlighter(
            {d.id: d.text for d in data.documents.values()}, data.analyses, data.sentence_vectors
        )
        self.confidence = Confidence()
        self._reader = reader
        self._reader_lock = threading.Lock()

    @classmethod
    def load(
        cls, index_dir: str | Path | None = None, settings: Settings | None = None, embedder: Embedder | None = None
    ) -> QA:
        """Load the index (checking its manifest against the model and settings); models load on first use."""
        settings = settings or Settings()
        if index_dir is not None:
            settings = replace(settings, index_dir=Path(index_dir))
        embedder = embedder or Embedder(settings.threads)
        return cls(load(settings.index_dir, settings, embedder), settings, embedder)

    @property
    def reader(self) -> Reader | None:
        """The shipped span reader (None when switched off with ``reader_passages=0``)."""
        if self.settings.reader_passages == 0:
            return None
        with self._reader_lock:
            if self._reader is None:
                from tr_qa.reader import Reader

                self._reader = Reader()
                self._reader.predict("warm up", ["load the model once, under the lock"])
            return self._reader

    @property
    def documents(self) -> dict[str, Document]:
        """The indexed documents by id."""
        return self.data.documents

    def document(self, doc_id: str) -> Document:
        """One indexed document; InputError if there is none with that id."""
        try:
            return self.data.documents[doc_id]
        except KeyError:
            raise InputError(f"no document with id {doc_id!r}") from None

    def ask(self, question: str, k: int | None = None, retriever: str | None = None) -> Result:
        """Answer a question extractively from the documents, or abstain and show the nearest passages."""
        return self.decide(self.candidates(question, k, retriever), self.settings.abstain_threshold)

    @staticmethod
    def decide(result: Result, threshold: float) -> Result:
        """Apply the abstention threshold to a candidate result (the answer is dropped below it)."""
        if result.answer is None or result.confidence < threshold:
            return replace(result, abstained=True, answer=None)
        return replace(result, abstained=False)

    def signals(
        self, question: str, k: int | None = None, retriever: str | None = None
    ) -> tuple[str, int, list[tuple[Passage, SentenceHit | None, ReaderSpan | None]]]:
        """Retrieved passages with their best sentence and, for the top ones, the reader's span."""
        question = validate_question(question)
        k = validate_k(self.settings.k if k is None else k)
        method = validate_retriever(retriever or self.settings.retriever)
        q_vec = self.embedder.encode([question])[0]
        passages = self.retriever.passages(self.retriever.search(question, q_vec, method), k)
        hits = [self.highlighter.best_sentence(question, q_vec, p.doc_id, p.start, p.end) for p in passages]
        reader = self.reader
        n_read = min(len(passages), self.settings.reader_passages) if reader is not None else 0
        spans: list[ReaderSpan | None] = [None] * len(passages)
        if n_read:
            assert reader is not None
            spans[:n_read] = reader.predict(question, [p.text for p in passages[:n_read]])
        return question, n_read, list(zip(passages, hits, spans, strict=True))

    def candidates(self, question: str, k: int | None = None, retriever: str | None = None) -> Result:
        """The best answer and ranked passages before the abstention threshold is applied."""
        question, n_read, signals = self.signals(question, k, retriever)
        ranked = [self._judge(passage, hit, span) for passage, hit, span in signals]
        # Passages the reader read come first, by confidence; the rest keep their retrieval order.
        read = sorted(ranked[:n_read], key=lambda item: -item[0])
        ranked = read + (ranked[n_read:] if n_read else sorted(ranked, key=lambda item: -item[0]))
        ordered = tuple(p for _, p, _ in ranked)
        if not ranked:
            return Result(question, True, None, ordered, 0.0)
        confidence, _, answer = ranked[0]
        return Result(question, answer is None, answer, ordered, round(confidence, 4))

    def _judge(
        self, passage: Passage, hit: SentenceHit | None, span: ReaderSpan | None
    ) -> tuple[float, Passage, Answer | None]:
        """A passage's confidence, its highlights and the answer it offers."""
        if span is not None and span.end > span.start:
            start, end = passage.start + span.start, passage.start + span.end
            text = self.data.documents[passage.doc_id].text
            answer_span = Span(passage.doc_id, start, end, text[start:end], "answer", round(span.prob, 4))
            sentence = self.highlighter.sentence_around(passage.doc_id, start, end, passage.start, passage.end)
            confidence = self.confidence(passage.score, hit.score if hit else 0.0, span)
            sentence = replace(sentence, score=round(confidence, 4))
            answer = Answer(answer_span.text, passage.doc_id, start, end, round(confidence, 4), sentence)
            return confidence, replace(passage, highlights=(sentence, answer_span)), answer
        if hit is None:
            return RETRIEVAL_WEIGHT * passage.score, passage, None
        highlights = (hit.span,) if hit.answer is None else (hit.span, hit.answer)
        if self.settings.reader_passages > 0:
            # Passages past the reader's reach are shown with their sentence but offer no answer.
            return RETRIEVAL_WEIGHT * passage.score, replace(passage, highlights=highlights), None
        confidence = RETRIEVAL_WEIGHT * passage.score + (1 - RETRIEVAL_WEIGHT) * hit.score
        short = hit.answer or hit.span
        answer = Answer(short.text, passage.doc_id, short.start, short.end, round(confidence, 4), hit.span)
        return confidence, replace(passage, highlights=highlights), answer
