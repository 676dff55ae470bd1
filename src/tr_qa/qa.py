"""QA: the facade that the CLI, the web app and the evaluation call. Loads once; ``ask`` → Result."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tr_qa.config import Settings, validate_k, validate_question, validate_retriever
from tr_qa.embed import Embedder
from tr_qa.errors import InputError
from tr_qa.highlight import Highlighter, asks_for_explanation
from tr_qa.index import IndexData, load
from tr_qa.index.store import texts_of
from tr_qa.judge import Judge, strategy_for
from tr_qa.retrieve import Retriever
from tr_qa.text import specific_overlap
from tr_qa.types import Candidate, Document, Filters, Judged, Result

if TYPE_CHECKING:
    from tr_qa.reader import Reader

# Stage names that ``QA.candidates(..., timings=...)`` records, in the order they run.
STAGES = ("embed", "retrieve", "highlight", "read", "judge")


@contextmanager
def _timed(timings: dict[str, float] | None, stage: str) -> Iterator[None]:
    """Add the seconds the block takes to ``timings[stage]`` (nothing when ``timings`` is None)."""
    if timings is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started


class QA:
    """Question answering over one index: retrieve → read/highlight → judge → answer, best guess or abstain."""

    def __init__(self, data: IndexData, settings: Settings, embedder: Embedder, reader: Reader | None = None) -> None:
        self.data = data
        self.settings = settings
        self.embedder = embedder
        self.retriever = Retriever(data, settings.hybrid_alpha, settings.dense_sentence_weight)
        # Texts are read from the store on demand: a large index never holds them all (tr_qa.index.store); its
        # highlighter weighs words by the BM25 index's chunk frequencies instead of counting over every sentence.
        texts = texts_of(data.documents)
        self.highlighter = Highlighter(
            texts,
            data.analyses,
            data.sentence_vectors,
            first_row=data.documents.first_sentence if data.large else None,  # type: ignore[attr-defined]
            frequency=self.retriever.document_frequency if data.large else None,
        )
        strategy = strategy_for(
            "reader" if settings.reader_passages > 0 else "sentences", settings.confidence_file, settings.reader_dir
        )
        self.judge = Judge(strategy, texts, self.highlighter.sentence_around)  # type: ignore[arg-type]
        self._reader = reader
        self._reader_lock = threading.Lock()
        # One QA object serves one index generation, so the generation is implicit in the cache's owner.
        self._cache: OrderedDict[tuple[str, int, str, Filters | None], Result] = OrderedDict()
        self._cache_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        index_dir: str | Path | None = None,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        reader: Reader | None = None,
    ) -> QA:
        """Load the index (checking its manifest against the model and settings); models load on first use."""
        settings = settings or Settings()
        if index_dir is not None:
            settings = replace(settings, index_dir=Path(index_dir))
        embedder = embedder or Embedder(settings.threads)
        return cls(load(settings.index_dir, settings, embedder), settings, embedder, reader)

    def warm_up(self) -> None:
        """Load every model now (embedder, reader) and run each once, so the first question is as fast as any."""
        self.candidates("warm up")

    @property
    def reader(self) -> Reader | None:
        """The shipped span reader (None when switched off with ``reader_passages=0``)."""
        if self.settings.reader_passages == 0:
            return None
        with self._reader_lock:
            if self._reader is None:
                from tr_qa.reader import Reader

                self._reader = Reader(self.settings.reader_dir)
                self._reader.warm_up()
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

    def ask(
        self,
        question: str,
        k: int | None = None,
        retriever: str | None = None,
        filters: Filters | dict[str, Any] | None = None,
    ) -> Result:
        """Answer a question extractively from the documents, or abstain and show the nearest passages.

        ``filters`` (a ``Filters`` or a dict of its fields) limits the answer and passages to documents of one
        outlet, kind or publication period. Answers are cached (bounded, least recently used first out) by the
        normalised question, k, the retriever, the filters and the index generation: a campaign site gets the
        same few questions again and again.
        """
        question = validate_question(question)
        k = validate_k(self.settings.k if k is None else k)
        method = validate_retriever(retriever or self.settings.retriever)
        chosen = Filters.of(filters)
        key = (" ".join(question.casefold().split()), k, method, chosen)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        result = self.decide(self.candidates(question, k, method, chosen))
        if self.settings.answer_cache_size > 0:
            with self._cache_lock:
                self._cache[key] = result
                while len(self._cache) > self.settings.answer_cache_size:
                    self._cache.popitem(last=False)
        return result

    def decide(self, result: Result, threshold: float | None = None) -> Result:
        """Apply the strategy's thresholds to a candidate result: answer, best guess, or abstain (answer dropped)."""
        strategy = self.judge.strategy
        if threshold is not None:
            strategy = replace(
                strategy, abstain_below=threshold, confident_from=max(threshold, strategy.confident_from)
            )
        evidence = strategy.evidence(result.confidence) if result.answer is not None else "none"
        if evidence == "none":
            # An abstention marks no short answer anywhere: a bold span would read as an answer after all.
            passages = tuple(
                replace(p, highlights=tuple(h for h in p.highlights if h.kind != "answer")) for p in result.passages
            )
            return replace(result, abstained=True, answer=None, evidence="none", passages=passages)
        return replace(result, abstained=False, evidence=evidence)

    def gather(
        self,
        question: str,
        k: int | None = None,
        retriever: str | None = None,
        filters: Filters | dict[str, Any] | None = None,
        timings: dict[str, float] | None = None,
    ) -> tuple[str, list[Candidate]]:
        """The validated question and its candidates: retrieved passages, best sentences, the reader's spans.

        ``timings``, when given, receives the seconds each stage took (keys from ``STAGES``).
        """
        question = validate_question(question)
        k = validate_k(self.settings.k if k is None else k)
        method = validate_retriever(retriever or self.settings.retriever)
        chosen = Filters.of(filters)
        with _timed(timings, "embed"):
            q_vec = self.embedder.encode([question])[0]
        with _timed(timings, "retrieve"):
            passages = self.retriever.passages(self.retriever.search(question, q_vec, method, filters=chosen), k)
        with _timed(timings, "highlight"):
            cands = [
                Candidate(
                    p,
                    rank,
                    self.highlighter.best_sentence(question, q_vec, p.doc_id, p.start, p.end),
                    specific=specific_overlap(question, p.text),
                )
                for rank, p in enumerate(passages)
            ]
        reader = self.reader
        n_read = min(len(cands), self.settings.reader_passages) if reader is not None else 0
        if n_read:
            assert reader is not None
            with _timed(timings, "read"):
                windows = [self.read_window(c) for c in cands[:n_read]]
                # A window lies inside its passage, whose text is at hand: no document is read from the store.
                texts = [
                    c.passage.text[s - c.passage.start : e - c.passage.start]
                    for c, (s, e) in zip(cands[:n_read], windows, strict=True)
                ]
                spans = reader.predict(question, texts)
            for i, (span, (s, _)) in enumerate(zip(spans, windows, strict=True)):
                # Spans come back in window offsets; candidates keep them in passage offsets.
                shift = s - cands[i].passage.start
                cands[i] = replace(cands[i], read=replace(span, start=span.start + shift, end=span.end + shift))
        return question, cands

    def read_window(self, candidate: Candidate) -> tuple[int, int]:
        """Document offsets of the part of a passage the reader reads: its best sentence with neighbours around it.

        Whole sentences are added, nearest first, while the window stays within ``reader_window_chars``; the reader's
        cost grows with the text it reads, and the answer is nearly always in or beside the best sentence. 0 (or a
        passage without a best sentence) reads the whole passage.
        """
        p = candidate.passage
        budget = self.settings.reader_window_chars
        if budget <= 0 or candidate.sentence is None or p.end - p.start <= budget:
            return p.start, p.end
        rows = self.highlighter.sentences_in(p.doc_id, p.start, p.end)
        best = candidate.sentence.span
        at = next((i for i, (_, s, e) in enumerate(rows) if s <= best.start < e), None)
        if at is None:
            return p.start, p.end
        lo = hi = at
        start, end = rows[at][1], rows[at][2]
        while True:
            grown = False
            for side in (hi + 1, lo - 1):
                if 0 <= side < len(rows) and not lo <= side <= hi:
                    s, e = min(start, rows[side][1]), max(end, rows[side][2])
                    if e - s <= budget:
                        start, end, grown = s, e, True
                        lo, hi = min(lo, side), max(hi, side)
            if not grown:
                return start, end

    def candidates(
        self,
        question: str,
        k: int | None = None,
        retriever: str | None = None,
        filters: Filters | dict[str, Any] | None = None,
        timings: dict[str, float] | None = None,
    ) -> Result:
        """The best answer and ranked passages before the abstention threshold is applied.

        ``timings``, when given, receives the seconds each stage took (keys from ``STAGES``).
        """
        question, cands = self.gather(question, k, retriever, filters, timings)
        with _timed(timings, "judge"):
            explain = self.settings.explain_with_sentence and asks_for_explanation(question)
            judged = [self.judge.judge(c, explain) for c in cands]
            ranked = self.rank(judged, sum(c.read is not None for c in cands))
        if not ranked:
            return Result(question, True, None, (), 0.0)
        best = ranked[0]
        return Result(
            question, best.answer is None, best.answer, tuple(j.passage for j in ranked), round(best.confidence, 4)
        )

    @staticmethod
    def rank(judged: list[Judged], n_read: int) -> list[Judged]:
        """Passages the reader read come first, by confidence; the rest keep their retrieval order."""
        if n_read:
            return sorted(judged[:n_read], key=lambda j: -j.confidence) + judged[n_read:]
        return sorted(judged, key=lambda j: -j.confidence)
