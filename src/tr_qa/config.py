"""Settings: model, chunking, retrieval and abstention knobs, with environment overrides."""

from __future__ import annotations

import os
import unicodedata
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

    One thread is the safe default on a small shared machine: with more threads than idle cores, every matrix
    product waits for the thread whose core is busy elsewhere (the reader on 3 passages went from ~0.1 s to ~0.8 s
    that way). Raise it where cores are idle, e.g. to index faster.
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


def env_int(name: str, default: int, minimum: int) -> int:
    """A whole number from the environment variable ``name`` (``default`` when unset); InputError naming it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_path(name: str) -> Path | None:
    """The path in the environment variable ``name`` (None when unset or blank)."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def env_list(name: str) -> tuple[str, ...]:
    """Comma-separated values from the environment variable ``name`` (empty when unset)."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Everything that changes what the index holds or how a question is answered."""

    corpus_dir: Path = field(default_factory=lambda: project_root() / "seeds")
    index_dir: Path = field(default_factory=lambda: project_root() / "index")
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
    # Another reader folder and judge file than the shipped pair, to measure or try a candidate reader (the judge
    # file must have been fitted for that reader's weights; `tr-qa eval --reader DIR --confidence FILE`).
    reader_dir: Path | None = field(default_factory=lambda: env_path("TR_QA_READER_DIR"))
    confidence_file: Path | None = field(default_factory=lambda: env_path("TR_QA_CONFIDENCE"))
    # Characters of each read passage the reader reads: the best sentence and its neighbours (0: the whole passage).
    reader_window_chars: int = field(default_factory=lambda: env_int("TR_QA_READER_WINDOW", 0, 0))
    # Why/how questions get the whole answering sentence as the answer (the reader's span stays marked inside it):
    # a one-word span rarely explains anything.
    explain_with_sentence: bool = True
    # Answers kept for repeated questions (0 turns the cache off).
    answer_cache_size: int = 512
    threads: int = field(default_factory=default_threads)
    # From this many chunks on an index is large: approximate vector search (IVF with 4-bit codes, its nprobe tuned
    # at build time to recall@10 >= 0.95 of the re-scored top 100 against exact search) and sentence vectors stored
    # as 8-bit integers (there are ~5 a chunk). Below it, search is exact and sentence vectors float32.
    # $TR_QA_LARGE_INDEX_CHUNKS overrides it.
    large_index_chunks: int = field(default_factory=lambda: env_int("TR_QA_LARGE_INDEX_CHUNKS", 50_000, 1))
    # --- The web server (`tr-qa serve`); each has an environment override. Checked by tr_qa.web.security. ---
    # Origins (scheme://host[:port]) allowed to embed the chat and call the API; none by default.
    allow_origins: tuple[str, ...] = field(default_factory=lambda: env_list("TR_QA_ALLOW_ORIGINS"))
    # Reverse proxies (IPs or networks) whose X-Forwarded-For / X-Forwarded-Proto are believed; none by default,
    # so a client can never pick the address its rate limit is counted under.
    forwarded_allow_ips: tuple[str, ...] = field(default_factory=lambda: env_list("TR_QA_FORWARDED_ALLOW_IPS"))
    # Questions per client per window, "30/60" (30 per 60 s); "0" turns the limit off.
    rate_limit: str = field(default_factory=lambda: os.environ.get("TR_QA_RATE_LIMIT", "").strip() or "30/60")
    # Web questions are shorter than library ones: a chat question has no reason to be longer, and it bounds the
    # work one request can cause.
    web_question_chars: int = 1000
    # Request bodies: the chat sends its whole visible history with each question, everything else is small.
    web_body_bytes: int = field(default_factory=lambda: env_int("TR_QA_MAX_BODY_BYTES", 16_384, 1024))
    chat_body_bytes: int = field(default_factory=lambda: env_int("TR_QA_MAX_CHAT_BODY_BYTES", 262_144, 16_384))
    # Nesting depth of a JSON body; the chat's history needs about 6.
    json_max_depth: int = 32
    # Questions answered at once (one thread each) and questions allowed to wait for one; past both, 503 at once.
    # Two at a time keep two cores busy while a third waits instead of slowing every running one down. The line
    # bounds latency: at ~0.1-0.2 s a question on two cores, 64 waiting is a wait of ~5-10 s, which a chat user
    # still sits through, and 50 simultaneous visitors are all answered rather than half of them refused.
    answer_slots: int = field(default_factory=lambda: env_int("TR_QA_ANSWER_SLOTS", 2, 1))
    answer_queue: int = field(default_factory=lambda: env_int("TR_QA_ANSWER_QUEUE", 64, 0))
    # Server processes (`tr-qa serve --workers`), each with its own models, answer slots and limits, all reading the
    # same index files. One is enough where the other cores are busy; see docs/serving.md.
    workers: int = field(default_factory=lambda: env_int("TR_QA_WORKERS", 1, 1))
    # Seconds a request waits for the models while the server starts (health checks never wait); past it, 503.
    load_wait_s: int = field(default_factory=lambda: env_int("TR_QA_LOAD_WAIT_S", 30, 0))
    # Seconds between a server's looks at index/CURRENT: a generation built by another process (`tr-qa index`, an
    # upload to another worker) is loaded and answered from within this time. 0: serve the start-up generation only.
    reload_check_s: int = field(default_factory=lambda: env_int("TR_QA_RELOAD_CHECK_S", 5, 0))
    # Chat turns the server keeps from the history a client sends back (older ones are dropped).
    chat_history_messages: int = 60
    # --- Adding documents through the server (POST /api/documents, tr_qa.web.admin). ---
    # The bearer token that route requires; while it is unset the route does not exist (404). Kept out of repr so
    # it never reaches a log line that prints the settings.
    admin_token: str = field(default_factory=lambda: os.environ.get("TR_QA_ADMIN_TOKEN", "").strip(), repr=False)
    # The largest document the route takes, in bytes (the whole upload is held in memory while it is read).
    upload_bytes: int = field(default_factory=lambda: env_int("TR_QA_MAX_UPLOAD_BYTES", 20_000_000, 1024))
    # --- Answer feedback (thumbs up/down, tr_qa.feedback). ---
    # The SQLite file votes are kept in; None: feedback.sqlite3 next to the index folder (never inside it, so an
    # index rebuild cannot remove it).
    feedback_path: Path | None = field(
        default_factory=lambda: Path(p) if (p := os.environ.get("TR_QA_FEEDBACK_PATH", "").strip()) else None
    )

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


# Characters that render as nothing, or as a blank, though they are not white space.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
# Bidirectional embeddings, overrides and isolates: they reorder how text is shown ("Trojan Source").
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def validate_question(question: object, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """Return the question NFC-normalised with its white space collapsed, or raise InputError naming the rule.

    The one check for every surface (CLI, Python API, HTTP, chat): text only; no lone surrogates (what invalid
    UTF-8 bytes become in a command-line argument); not empty or invisible only; at most ``max_chars``; no
    control or bidirectional control characters. Messages show a bad character as U+XXXX, never the character.
    """
    if not isinstance(question, str):
        raise InputError(f"question must be text, got {type(question).__name__}")
    for i, c in enumerate(question):
        if 0xD800 <= ord(c) <= 0xDFFF:
            raise InputError(
                f"question is not valid Unicode text: lone surrogate U+{ord(c):04X} at character {i + 1} "
                "(invalid UTF-8 bytes become these); retype it"
            )
    text = unicodedata.normalize("NFC", question).strip()
    if not text:
        raise InputError("question is empty: type a question about the documents")
    if len(text) > max_chars:
        raise InputError(f"question is too long: {len(text)} characters, the limit is {max_chars}")
    for i, c in enumerate(text):
        if unicodedata.category(c) == "Cc" and c not in "\t\n\r":
            raise InputError(
                f"question contains control characters (first: U+{ord(c):04X} at character {i + 1}); remove them"
            )
        if c in BIDI_CONTROLS:
            raise InputError(
                f"question contains a bidirectional control character (U+{ord(c):04X} at character {i + 1}), "
                "which can make text display differently from what it says; remove it"
            )
    if all(c.isspace() or c in BLANK_LETTERS or unicodedata.category(c) in INVISIBLE_CATEGORIES for c in text):
        raise InputError(
            f"question has no visible characters (only invisible ones such as U+{ord(text[0]):04X}); "
            "type a question about the documents"
        )
    return " ".join(text.split())
