"""Settings: model, chunking, retrieval and abstention knobs, with environment overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from tr_qa.errors import InputError

MAX_QUESTION_CHARS = 2000
K_MIN, K_MAX = 1, 50
RETRIEVERS = ("dense", "bm25", "hybrid")


def project_root() -> Path:
    """The folder holding ``seeds/`` and ``index/``: $TR_QA_HOME, else the current directory."""
    return Path(os.environ.get("TR_QA_HOME", ".")).resolve()


def default_threads() -> int:
    """Torch threads for queries: $TR_QA_THREADS, else 1.

    On this 2-core shared machine one thread is faster: with two, every matrix product waits for the thread whose
    core is busy elsewhere (measured: reader on 3 passages 98 ms with 1 thread, 826 ms with 2 while another process
    ran). Set TR_QA_THREADS=2 on an otherwise idle machine to index faster.
    """
    raw = os.environ.get("TR_QA_THREADS", "")
    if not raw:
        return 1
    try:
        value = int(raw)
    except ValueError as exc:
        raise InputError(f"TR_QA_THREADS must be a whole number, got {raw!r}") from exc
    if value < 1:
        raise InputError(f"TR_QA_THREADS must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything that changes what the index holds or how a question is answered."""

    corpus_dir: Path = field(default_factory=lambda: project_root() / "seeds")
    index_dir: Path = field(default_factory=lambda: project_root() / "index")
    model_id: str = "sentence-transformers/all-MiniLM-L6-v2"
    chunk_size: int = 800
    chunk_overlap: int = 200
    k: int = 5
    retriever: str = "hybrid"
    # Weight of the dense score in the convex hybrid; the rest goes to normalised BM25. The dense score mixes the
    # chunk's cosine with its best sentence's cosine. Both chosen on SQuAD *training* articles
    # (scripts/bench_retrieval.py): hybrid recall@1 0.775 → 0.800 with the sentence mix.
    hybrid_alpha: float = 0.6
    dense_sentence_weight: float = 0.5
    # How many of the top passages the span reader reads (0: no reader, sentence-and-entity highlighting only).
    reader_passages: int = 2
    threads: int = field(default_factory=default_threads)

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given fields replaced (``None`` values ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def validate_k(k: int) -> int:
    """Reject a k outside 1..50, naming the value."""
    if isinstance(k, bool) or not isinstance(k, int) or not K_MIN <= k <= K_MAX:
        raise InputError(f"k must be between {K_MIN} and {K_MAX}, got {k!r}")
    return k


def validate_retriever(name: str) -> str:
    """Reject an unknown retriever name."""
    if name not in RETRIEVERS:
        raise InputError(f"retriever must be one of {', '.join(RETRIEVERS)}, got {name!r}")
    return name


def validate_question(question: object, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """Return the stripped question, or raise InputError naming what is wrong with it."""
    if not isinstance(question, str):
        raise InputError(f"question must be text, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise InputError("question is empty: type a question about the documents")
    if len(text) > max_chars:
        raise InputError(f"question is too long: {len(text)} characters, the limit is {max_chars}")
    bad = [c for c in text if (ord(c) < 32 and c not in "\t\n\r") or 0x7F <= ord(c) < 0xA0]
    if bad:
        raise InputError(f"question contains control characters (first: U+{ord(bad[0]):04X}); remove them")
    return " ".join(text.split())
