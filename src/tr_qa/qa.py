"""QA: the facade that the CLI, the web app and the evaluation call. Loads once; ``ask`` → Result."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from tr_qa.config import Settings, validate_k, validate_question, validate_retriever
from tr_qa.embed import Embedder
from tr_qa.errors import InputError
from tr_qa.highlight import Highlighter
from tr_qa.index import IndexData, load
from tr_qa.retrieve import Retriever
from tr_qa.types import Answer, Document, Passage, Result

# A passage's final rank mixes retrieval with how well its best sentence answers the question.
RETRIEVAL_WEIGHT = 0.5


class QA:
    """Question answering over one index: retrieve → highlight → confidence → answer or abstain."""

    def __init__(self, data: IndexData, settings: Settings, embedder: Embedder) -> None:
        self.data = data
        self.settings = settings
        self.embedder = embedder
        self.retriever = Retriever(data, settings.hybrid_alpha)
        self.highlighter = Highlighter(
            {d.id: d.text for d in data.documents.values()}, data.analyses, data.sentence_vectors
        )
        self._warm = threading.Lock()

    @classmethod
    def load(
        cls, index_dir: str | Path | None = None, settings: Settings | None = None, embedder: Embedder | None = None
    ) -> QA:
        """Load the index (checking its manifest against the model and settings) and the model, once."""
        settings = settings or Settings()
        if index_dir is not None:
            settings = replace(settings, index_dir=Path(index_dir))
        embedder = embedder or Embedder(settings.threads)
        data = load(settings.index_dir, settings, embedder)
        threshold = data.manifest.get("abstain_threshold")
        if isinstance(threshold, int | float) and settings == Settings():
            settings = replace(settings, abstain_threshold=float(threshold))
        return cls(data, settings, embedder)

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

    def candidates(self, question: str, k: int | None = None, retriever: str | None = None) -> Result:
        """The best answer and ranked passages before the abstention threshold is applied."""
        question = validate_question(question)
        k = validate_k(self.settings.k if k is None else k)
        method = validate_retriever(retriever or self.settings.retriever)
        q_vec = self.embedder.encode([question])[0]
        hits = self.retriever.search(question, q_vec, method)
        ranked: list[tuple[float, Passage, Answer | None]] = []
        for passage in self.retriever.passages(hits, k):
            hit = self.highlighter.best_sentence(question, q_vec, passage.doc_id, passage.start, passage.end)
            if hit is None:
                ranked.append((RETRIEVAL_WEIGHT * passage.score, passage, None))
                continue
            highlights = (hit.span,) if hit.answer is None else (hit.span, hit.answer)
            confidence = RETRIEVAL_WEIGHT * passage.score + (1 - RETRIEVAL_WEIGHT) * hit.score
            short = hit.answer or hit.span
            answer = Answer(short.text, passage.doc_id, short.start, short.end, round(confidence, 4), hit.span)
            ranked.append((confidence, replace(passage, highlights=highlights), answer))
        ranked.sort(key=lambda item: -item[0])
        passages = tuple(p for _, p, _ in ranked)
        if not ranked:
            return Result(question, True, None, passages, 0.0)
        confidence, _, answer = ranked[0]
        return Result(question, answer is None, answer, passages, round(confidence, 4))
