"""Retriever: dense (FAISS inner product), BM25 (bm25s) or their convex fusion → ranked, deduplicated passages.

Everything per chunk is a NumPy column or rows read from the index files as a question needs them (vectors, BM25
postings), so a question costs the same memory over a million chunks as over a hundred.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from tr_qa.config import validate_retriever
from tr_qa.index import IndexData
from tr_qa.index.lexical import build_lexical
from tr_qa.index.store import ChunkTable, passing_rows
from tr_qa.index.vectors import Allowed, allowed_set, search_within
from tr_qa.text import terms
from tr_qa.types import Filters, Passage

CANDIDATES = 100
# Chunk sets kept per distinct filter (a campaign site asks with the same few filters again and again).
ALLOWED_CACHE = 64
# Up to this many chunks the best candidates are found by a full stable sort (the order every seed figure was
# measured with); past it by a partial sort, whose choice among tied scores at the cut may differ.
FULL_SORT_CHUNKS = 10_000


def top(scores: np.ndarray, limit: int) -> np.ndarray:
    """Positions of the ``limit`` highest scores, best first."""
    if len(scores) <= FULL_SORT_CHUNKS or limit >= len(scores):
        return np.argsort(-scores, kind="stable")[:limit]
    part = np.argpartition(-scores, limit - 1)[:limit]
    return part[np.argsort(-scores[part], kind="stable")]


@dataclass(frozen=True)
class Hit:
    """One chunk's scores for a question."""

    chunk: int
    score: float
    dense: float
    bm25: float


class Retriever:
    """Ranks the chunks of a loaded index for a question, with the BM25 index saved in it (built in memory for an
    IndexData that has none)."""

    def __init__(self, data: IndexData, alpha: float, sentence_weight: float) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"hybrid alpha must be between 0 and 1, got {alpha}")
        if not 0.0 <= sentence_weight <= 1.0:
            raise ValueError(f"sentence weight must be between 0 and 1, got {sentence_weight}")
        self.data = data
        self._allowed: dict[Filters, Allowed] = {}
        self._allowed_lock = threading.Lock()
        self.alpha = alpha
        self.sentence_weight = sentence_weight
        self.table = ChunkTable.of(data.chunks, data.documents)
        self.size_cap = 2 * int((self.table.end - self.table.start).max(initial=0))
        # Sentence rows of each chunk: columns the loader made, else worked out here (an IndexData made in memory).
        self._chunk_sentences = self._sentence_rows(data, self.table) if self.table.sentences is None else []
        if data.bm25 is not None:
            self._bm25 = data.bm25
            self.typical_score = float(data.manifest["bm25"]["typical_score"])
        else:
            lexical = build_lexical(c.text for c in data.chunks)
            self._bm25, self.typical_score = lexical.bm25, lexical.typical_score

    @staticmethod
    def _sentence_rows(data: IndexData, table: ChunkTable) -> list[np.ndarray]:
        """For each chunk, the rows (in the sentence matrix) of the sentences that start inside it."""
        first: dict[str, int] = {}
        row = 0
        for doc_id, analysis in data.analyses.items():
            first[doc_id] = row
            row += len(analysis.sentences)
        out = []
        for d, start, end in zip(table.doc.tolist(), table.start.tolist(), table.end.tolist(), strict=True):
            doc_id = table.doc_ids[d]
            sents = data.analyses[doc_id].sentences
            out.append(
                np.array([first[doc_id] + i for i, (s, _) in enumerate(sents) if start <= s < end], dtype=np.int64)
            )
        return out

    def document_frequency(self, term: str) -> tuple[int, int]:
        """(chunks containing ``term``, all chunks), from the BM25 postings (0 for a term no chunk holds)."""
        n = len(self.table)
        token = self._bm25.vocab_dict.get(term)
        if token is None or not n:
            return 0, n
        indptr = self._bm25.scores["indptr"]
        return int(indptr[token + 1] - indptr[token]), n

    def dense_scores(self, chunk_ids: np.ndarray, question_vector: np.ndarray) -> np.ndarray:
        """Cosine of each chunk, mixed with its best sentence's cosine (a chunk is as good as its best sentence)."""
        dense = self.data.chunk_vectors[chunk_ids] @ question_vector
        if self.sentence_weight == 0.0 or not len(self.data.sentence_vectors):
            return dense
        best = dense.copy()
        spans = self.table.sentences
        per_chunk = [
            np.arange(*spans[int(c)]) if spans is not None else self._chunk_sentences[int(c)] for c in chunk_ids
        ]
        sizes = np.array([len(r) for r in per_chunk], dtype=np.int64)
        if sizes.sum():
            # One read of every candidate's sentence rows (consecutive rows come in one piece), then each chunk's best.
            cosine = self.data.sentence_vectors[np.concatenate(per_chunk)] @ question_vector
            has = sizes > 0
            starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))[has]
            best[has] = np.maximum.reduceat(cosine, starts)
        return (1 - self.sentence_weight) * dense + self.sentence_weight * best

    def bm25_scores(self, question: str) -> np.ndarray:
        """BM25 score of every chunk (zeros when the question has no content words)."""
        q = terms(question)
        if not q or not len(self.table):
            return np.zeros(len(self.table), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(q), dtype=np.float32)

    def _allowed_set(self, filters: Filters | None) -> Allowed | None:
        """The chunks whose documents pass ``filters`` (cached per filter); None when there are no filters."""
        if filters is None or filters.empty:
            return None
        with self._allowed_lock:
            found = self._allowed.get(filters)
        if found is None:
            passing = passing_rows(self.data.documents, filters)
            ids = np.flatnonzero(np.isin(self.table.doc, passing)).astype(np.int64)
            found = allowed_set(ids, len(self.table), self.data.faiss_index)
            with self._allowed_lock:
                if len(self._allowed) >= ALLOWED_CACHE:
                    self._allowed.pop(next(iter(self._allowed)))
                self._allowed[filters] = found
        return found

    def search(
        self,
        question: str,
        question_vector: np.ndarray,
        method: str = "hybrid",
        limit: int = CANDIDATES,
        filters: Filters | None = None,
    ) -> list[Hit]:
        """Chunks ranked best first by the chosen method, only from documents that pass ``filters``.

        With filters, the candidates are the best dense and the best BM25 matches among the chunks that pass
        (not the overall best, filtered afterwards, which can leave nothing): every score is the one the chunk
        would get without filters, so a filter only narrows what is shown.
        """
        validate_retriever(method)
        n = len(self.table)
        passing = self._allowed_set(filters)
        allowed = None if passing is None else passing.ids
        if n == 0 or (allowed is not None and not len(allowed)):
            return []
        limit = min(limit, n)
        bm25 = self.bm25_scores(question)
        if allowed is None:
            _scores, ids = self.data.faiss_index.search(question_vector.reshape(1, -1).astype(np.float32), limit)
            candidates = {int(i) for i in ids[0] if i >= 0}
            candidates.update(int(i) for i in top(bm25, limit))
        else:
            assert passing is not None
            if passing.selector is None:  # few pass, or an exact index: score every passing chunk
                cosine = self.data.chunk_vectors[allowed] @ question_vector
                candidates = {int(i) for i in allowed[top(cosine, limit)]}
            else:
                candidates = {int(i) for i in search_within(self.data.faiss_index, question_vector, passing, limit)}
            candidates.update(int(i) for i in allowed[top(bm25[allowed], limit)])
        cand = np.fromiter(candidates, dtype=np.int64)
        dense = self.dense_scores(cand, question_vector)
        top_bm25 = float(bm25.max()) if bm25.size else 0.0
        scale = min(top_bm25 + self.typical_score, 6 * self.typical_score)
        lexical = np.minimum(bm25[cand] / scale, 1.0) if top_bm25 > 0 else np.zeros(len(cand), dtype=np.float32)
        if method == "dense":
            fused = dense
        elif method == "bm25":
            fused = lexical
        else:
            fused = self.alpha * dense + (1 - self.alpha) * lexical
        order = np.argsort(-fused, kind="stable")[:limit]
        return [Hit(int(cand[i]), float(fused[i]), float(dense[i]), float(bm25[cand[i]])) for i in order]

    def passages(self, hits: list[Hit], k: int) -> list[Passage]:
        """The top k passages; a hit overlapping a better one from the same document is merged into it."""
        spans: list[list] = []  # [doc_id, start, end, score]
        t = self.table
        for hit in hits:
            doc_id, c_start, c_end = t.doc_ids[int(t.doc[hit.chunk])], int(t.start[hit.chunk]), int(t.end[hit.chunk])
            same = [s for s in spans if s[0] == doc_id]
            touching = [s for s in same if c_start < s[2] and c_end > s[1]]
            if touching:
                span = touching[0]
                start, end = min(span[1], c_start), max(span[2], c_end)
                # Grow a passage only while it stays short and clear of the other passages.
                if end - start <= self.size_cap and not any(
                    s is not span and start < s[2] and end > s[1] for s in same
                ):
                    span[1], span[2] = start, end
                continue
            if len(spans) == k:
                break
            spans.append([doc_id, c_start, c_end, hit.score])
        out = []
        for doc_id, start, end, score in spans:
            doc = self.data.documents[doc_id]
            out.append(
                Passage(
                    doc_id,
                    doc.title,
                    start,
                    end,
                    doc.text[start:end],
                    score,
                    meta=doc.meta,
                    page=doc.page_at(start),
                    from_comment=doc.in_comments(start, end),
                )
            )
        return out
