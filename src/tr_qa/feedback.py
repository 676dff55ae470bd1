"""Answer feedback: thumbs up/down stored durably in SQLite next to the index, and their export as questions to label.

Stored per vote, and nothing else (no address, no browser, no account): the time, the question, the answer as
shown, whether the chat abstained, the vote (+1 or -1) and the index generation that answered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import unicodedata
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tr_qa.config import Settings, validate_question
from tr_qa.errors import InputError

MAX_ANSWER_CHARS = 2000
MAX_GENERATION_CHARS = 200
SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    abstained INTEGER NOT NULL CHECK (abstained IN (0, 1)),
    vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    generation TEXT NOT NULL
)
"""


def feedback_path(settings: Settings) -> Path:
    """Where votes are kept: ``settings.feedback_path``, else ``feedback.sqlite3`` beside the index folder."""
    if settings.feedback_path is not None:
        return Path(settings.feedback_path)
    return Path(settings.index_dir).resolve().parent / "feedback.sqlite3"


@dataclass(frozen=True)
class Vote:
    """One thumbs up or down on an answer, checked on construction (InputError naming the bad value)."""

    question: str
    answer: str
    abstained: bool
    vote: int
    generation: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "question", validate_question(self.question))
        if not isinstance(self.answer, str):
            raise InputError(f"answer must be text, got {type(self.answer).__name__}")
        answer = " ".join(unicodedata.normalize("NFC", self.answer).split())
        if len(answer) > MAX_ANSWER_CHARS:
            raise InputError(f"answer is too long: {len(answer)} characters, the limit is {MAX_ANSWER_CHARS}")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in answer):
            raise InputError("answer contains control characters or lone surrogates")
        object.__setattr__(self, "answer", answer)
        if not isinstance(self.abstained, bool):
            raise InputError(f"abstained must be true or false, got {self.abstained!r}")
        if isinstance(self.vote, bool) or self.vote not in (-1, 1):
            raise InputError(f"vote must be 1 (thumbs up) or -1 (thumbs down), got {self.vote!r}")
        if not isinstance(self.generation, str) or len(self.generation) > MAX_GENERATION_CHARS:
            raise InputError(f"generation must be text up to {MAX_GENERATION_CHARS} characters")


class FeedbackStore:
    """Votes in one SQLite file (WAL journal, one transaction per write, so a crash never leaves half a vote)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A connection per call: votes are rare, and it keeps the store safe to use from any thread.
        with closing(sqlite3.connect(self.path, timeout=10)) as db:
            db.execute("PRAGMA synchronous=FULL")
            with db:  # one transaction: committed on success, rolled back on error
                yield db

    def add(self, vote: Vote) -> int:
        """Store one vote; returns its row id."""
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO feedback (created, question, answer, abstained, vote, generation) VALUES (?,?,?,?,?,?)",
                (created, vote.question, vote.answer, int(vote.abstained), vote.vote, vote.generation),
            )
            return int(cur.lastrowid or 0)

    def rows(self) -> list[dict[str, object]]:
        """Every stored vote, oldest first."""
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM feedback ORDER BY id")]


def export_items(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Thumbs-down and abstained questions as unlabelled ``eval/qa.jsonl`` items, one per distinct question."""
    items: list[dict[str, object]] = []
    seen: set[str] = set()
    for row in rows:
        if row["vote"] != -1 and not row["abstained"]:
            continue
        question = str(row["question"])
        key = " ".join(question.casefold().split())
        if key in seen:
            continue
        seen.add(key)
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        items.append(
            {
                "id": f"fb-{digest}",
                "question": question,
                "answers": [],
                "doc": None,
                "type": "unlabelled",
                "split": "dev",
            }
        )
    return items


def export_jsonl(rows: list[dict[str, object]]) -> str:
    """The export as JSON lines (empty string when there is nothing to label)."""
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in export_items(rows))
