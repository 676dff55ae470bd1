"""Shared frozen dataclasses; every offset is a character offset into the source document's text."""

from __future__ import annotations

import bisect
import datetime as dt
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from tr_qa.errors import InputError

# A document's provenance is the DocMeta that tr_qa.extract reads from files; it is used here as it is.
from tr_qa.extract.base import KINDS, DocMeta

SpanKind = Literal["sentence", "answer"]
# How an answer is shown: plainly, as a best guess on weak evidence, or not at all.
Evidence = Literal["strong", "weak", "none"]
EVIDENCE_WORDS: dict[str, str] = {
    "strong": "answer",
    "weak": "best guess, weak evidence",
    "none": "the documents don't answer this",
}


Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Document:
    """One source document; ``id`` is its path under the corpus folder.

    ``meta`` is where it comes from (the file's own statements, overridden by ``metadata.json``); ``pages`` are
    the character ranges of its PDF pages (empty for other formats) and ``comments`` those of its reader comments,
    all offsets into ``text``.
    """

    id: str
    title: str
    text: str
    path: str = ""
    sha256: str = ""
    meta: DocMeta = field(default_factory=DocMeta)
    pages: Ranges = ()
    comments: Ranges = ()

    def page_at(self, offset: int) -> int | None:
        """The 1-based PDF page holding the character at ``offset``; None without pages or between pages."""
        i = bisect.bisect_right([s for s, _ in self.pages], offset) - 1
        if i < 0:
            return None
        start, end = self.pages[i]
        return i + 1 if start <= offset < end else None

    def in_comments(self, start: int, end: int) -> bool:
        """Whether most of ``text[start:end]`` lies inside reader comments."""
        if end <= start or not self.comments:
            return False
        inside = sum(max(0, min(end, e) - max(start, s)) for s, e in self.comments)
        return inside * 2 > end - start


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
    # Where the document comes from, the PDF page the passage starts on (None when unknown or not a PDF), and
    # whether the passage lies in the reader comments below an article rather than in the article itself.
    meta: DocMeta = field(default_factory=DocMeta)
    page: int | None = None
    from_comment: bool = False

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
            "meta": meta_dict(self.meta),
            "page": self.page,
            "from_comment": self.from_comment,
        }


def meta_dict(meta: DocMeta) -> dict[str, str | None]:
    """A DocMeta as a JSON object with all five keys (null where unknown)."""
    return {f.name: getattr(meta, f.name) for f in fields(DocMeta)}


FILTER_TEXT_CHARS = 200


def _filter_text(name: str, value: object) -> str | None:
    """A text filter value, whitespace collapsed; InputError naming it when it is not usable text."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"filter {name} must be text, got {type(value).__name__}")
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if not text:
        raise InputError(f"filter {name} is empty; leave it out to match every document")
    if len(text) > FILTER_TEXT_CHARS:
        raise InputError(f"filter {name} is too long: {len(text)} characters, the limit is {FILTER_TEXT_CHARS}")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in text):
        raise InputError(f"filter {name} contains control or invisible characters; remove them")
    return text


def _filter_date(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 10:
        raise InputError(f"filter {name} must be a date YYYY-MM-DD, got {value!r}")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"filter {name} must be a date YYYY-MM-DD, got {value!r}") from None
    return value


@dataclass(frozen=True)
class Filters:
    """Which documents a question may be answered from; every given field must match (None matches anything).

    ``outlet`` matches the document's outlet ignoring case and spacing; ``kind`` is one of ``KINDS``;
    ``published_from`` and ``published_to`` (``YYYY-MM-DD``, inclusive) keep only documents with a known
    publication date in that range. Values are checked on construction (InputError naming the bad one).
    """

    outlet: str | None = None
    kind: str | None = None
    published_from: str | None = None
    published_to: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "outlet", _filter_text("outlet", self.outlet))
        kind = _filter_text("kind", self.kind)
        if kind is not None:
            kind = kind.lower()
            if kind not in KINDS:
                raise InputError(f"filter kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        object.__setattr__(self, "kind", kind)
        start = _filter_date("published_from", self.published_from)
        end = _filter_date("published_to", self.published_to)
        if start is not None and end is not None and start > end:
            raise InputError(f"filter published_from {start} is after published_to {end}")

    @classmethod
    def of(cls, value: object) -> Filters | None:
        """Filters from a Filters, a dict with the same keys (InputError naming unknown ones) or None."""
        if value is None or isinstance(value, Filters):
            return None if value is None or value.empty else value
        if not isinstance(value, dict):
            raise InputError(
                f"filters must be an object with outlet, kind, published_from, published_to; got {type(value).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            raise InputError(f"unknown filter(s): {', '.join(unknown)}; expected {', '.join(sorted(known))}")
        made = cls(**value)
        return None if made.empty else made

    @property
    def empty(self) -> bool:
        """Whether no field is set (every document matches)."""
        return all(getattr(self, f.name) is None for f in fields(self))

    def matches(self, meta: DocMeta) -> bool:
        """Whether a document with this provenance passes every set field."""
        if self.outlet is not None and (meta.outlet is None or _fold(meta.outlet) != _fold(self.outlet)):
            return False
        if self.kind is not None and meta.kind != self.kind:
            return False
        if self.published_from is None and self.published_to is None:
            return True
        if meta.published is None:
            return False
        return (self.published_from or meta.published) <= meta.published <= (self.published_to or meta.published)


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


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
