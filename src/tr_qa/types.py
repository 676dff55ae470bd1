"""Shared frozen dataclasses; every offset is a character offset into the source document's text."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SpanKind = Literal["sentence", "answer"]
# How an answer is shown: plainly, as a best guess on weak evidence, or not at all.
Evidence = Literal["strong", "weak", "none"]
EVIDENCE_WORDS: dict[str, str] = {
    "strong": "answer",
    "weak": "best guess, weak evidence",
    "none": "the documents don't answer this",
}


@dataclass(frozen=True)
class Document:
    """One source document; ``id`` is its file name."""

    id: str
    title: str
    text: str
    path: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class Chunk:
    """A slice of a document: ``document.text[start:end] == text``."""

    doc_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Span:
    """A highlighted slice of a document (a sentence or a short answer)."""

    doc_id: str
    start: int
    end: int
    text: str
    kind: SpanKind
    score: float = 0.0


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its score and the highlights found inside it."""

    doc_id: str
    title: str
    start: int
    end: int
    text: str
    score: float
    highlights: tuple[Span, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape shared by the CLI and the API."""
        return {
            "doc": self.doc_id,
            "title": self.title,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "score": round(float(self.score), 4),
            "highlights": [
                {"start": h.start, "end": h.end, "kind": h.kind, "score": round(float(h.score), 4)}
                for h in self.highlights
            ],
        }


@dataclass(frozen=True)
class Answer:
    """The extractive answer: the short span (or the sentence when no short span applies)."""

    text: str
    doc_id: str
    start: int
    end: int
    score: float
    sentence: Span | None = None
    # "sentence" for why/how questions: people are shown the whole answering sentence as the answer (the short
    # span stays marked inside it); "span" shows the short answer itself.
    display: Literal["span", "sentence"] = "span"

    @property
    def shown_text(self) -> str:
        """What a person is shown as the answer: the sentence for explanations, else the short answer."""
        return self.sentence.text if self.display == "sentence" and self.sentence is not None else self.text

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape shared by the CLI and the API."""
        out: dict[str, Any] = {
            "text": self.text,
            "doc": self.doc_id,
            "start": self.start,
            "end": self.end,
            "score": round(float(self.score), 4),
            "display": self.display,
        }
        if self.sentence is not None:
            out["sentence"] = {k: v for k, v in asdict(self.sentence).items() if k != "doc_id"}
        return out


@dataclass(frozen=True)
class SentenceHit:
    """A passage's best-scoring sentence (clipped to the passage) and the typed entity inside it, if any."""

    span: Span
    answer: Span | None
    score: float


@dataclass(frozen=True)
class ReaderSpan:
    """The reader's best answer span in one context: ``context[start:end] == text`` (character offsets).

    ``score`` is the span's start+end logit, ``null_score`` the lowest [CLS] start+end logit over the context's
    windows (the reader's "no answer here"), ``prob`` the span's start×end probability in its window.
    """

    start: int
    end: int
    text: str
    score: float
    null_score: float
    prob: float

    @property
    def margin(self) -> float:
        """Span score minus no-answer score: above 0 the reader prefers the span to "no answer"."""
        return self.score - self.null_score


@dataclass(frozen=True)
class Candidate:
    """A retrieved passage with the evidence gathered for it, handed from retrieval to reading to judging."""

    passage: Passage
    rank: int
    sentence: SentenceHit | None = None
    read: ReaderSpan | None = None
    # Share of the question's numbers and names that the passage contains (1.0 when it names none).
    specific: float = 1.0


@dataclass(frozen=True)
class Judged:
    """A candidate after judging: its confidence, its passage with highlights and the answer it offers."""

    confidence: float
    passage: Passage
    answer: Answer | None


@dataclass(frozen=True)
class Result:
    """What ``QA.ask`` returns: an answer or an abstention, plus the passages behind it."""

    question: str
    abstained: bool
    answer: Answer | None
    passages: tuple[Passage, ...] = field(default_factory=tuple)
    # Confidence of the best candidate answer, also when it fell below the threshold and the result abstains.
    confidence: float = 0.0
    # "strong": shown as the answer; "weak": shown as a best guess on weak evidence; "none": abstained.
    evidence: Evidence = "none"

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``tr-qa ask --json`` and ``POST /api/ask``."""
        return {
            "question": self.question,
            "abstained": self.abstained,
            "answer": None if self.answer is None else self.answer.to_dict(),
            "passages": [p.to_dict() for p in self.passages],
            "confidence": round(float(self.confidence), 4),
            "evidence": self.evidence,
            "evidence_words": EVIDENCE_WORDS[self.evidence],
        }
