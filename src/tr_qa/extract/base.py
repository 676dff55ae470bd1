"""What every reader returns (``Extracted``, ``DocMeta``), the one error they raise, and the limits they share.

Offsets everywhere are character offsets into ``Extracted.text``: readers build that text themselves, so every
range they record (pages, headings, comments) points into exactly the string that is indexed and quoted.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field

# A file above this is refused before it is read: the PDF and DOCX parsers hold the whole file in memory.
MAX_FILE_BYTES = 50_000_000
# Extracted text above this is refused: a small compressed file can expand to far more text than is useful.
MAX_TEXT_CHARS = 20_000_000

KINDS: tuple[str, ...] = ("news report", "blog post", "reader comment", "report", "briefing")
FORMATS: tuple[str, ...] = ("pdf", "docx", "html", "markdown", "text")


class ExtractError(ValueError):
    """A file cannot be turned into text; the message is one line saying why, for a person to read."""


@dataclass(frozen=True)
class DocMeta:
    """Where a document comes from, as far as the file itself states it; ``published`` is ``YYYY-MM-DD``."""

    outlet: str | None = None
    author: str | None = None
    published: str | None = None
    url: str | None = None
    kind: str | None = None

    def __post_init__(self) -> None:
        if self.published is not None:
            try:
                dt.date.fromisoformat(self.published)
            except ValueError:
                raise ValueError(f"published must be an ISO date YYYY-MM-DD, not {self.published!r}") from None
            if len(self.published) != 10:
                raise ValueError(f"published must be an ISO date YYYY-MM-DD, not {self.published!r}")
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; not {self.kind!r}")


@dataclass(frozen=True)
class Extracted:
    """A file's text and what was found in it; every range is ``(start, end)`` into ``text``."""

    text: str
    title: str | None
    meta: DocMeta
    format: str
    pages: tuple[tuple[int, int], ...] = ()
    headings: tuple[tuple[int, int, int], ...] = ()
    comments: tuple[tuple[int, int], ...] = ()
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}; not {self.format!r}")
        n = len(self.text)
        for name, ranges in (("pages", self.pages), ("comments", self.comments)):
            for rng in ranges:
                if len(rng) != 2 or not 0 <= rng[0] <= rng[1] <= n:
                    raise ValueError(f"{name} range {rng!r} is not inside the text (0-{n})")
        for heading in self.headings:
            if len(heading) != 3 or not 0 <= heading[0] <= heading[1] <= n or not 1 <= heading[2] <= 9:
                raise ValueError(f"heading {heading!r} is not (start, end, level 1-9) inside the text (0-{n})")


def page_of(extracted: Extracted, offset: int) -> int | None:
    """The 1-based page holding the character at ``offset``; None between pages, outside the text or no pages."""
    starts = [start for start, _ in extracted.pages]
    i = bisect.bisect_right(starts, offset) - 1
    if i < 0:
        return None
    start, end = extracted.pages[i]
    return i + 1 if start <= offset < end else None


def check_text_size(text: str) -> str:
    """The text unchanged; raise ExtractError when it is over ``MAX_TEXT_CHARS``."""
    if len(text) > MAX_TEXT_CHARS:
        raise ExtractError(f"its text is too long ({len(text):,} characters; the limit is {MAX_TEXT_CHARS:,})")
    return text


def clean_value(value: object) -> str | None:
    """A metadata value as one tidy line, or None when it is empty or not a plain string."""
    if not isinstance(value, str):
        return None
    line = " ".join(value.split())
    return line or None


class TextBuilder:
    """Assembles a document's text block by block and records where each block landed."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0

    def __len__(self) -> int:
        return self._length

    def add(self, block: str, separator: str = "\n\n") -> tuple[int, int] | None:
        """Append a block (after the separator unless it is the first); its range, or None when it is empty."""
        if not block:
            return None
        if self._length:
            self._parts.append(separator)
            self._length += len(separator)
        start = self._length
        self._parts.append(block)
        self._length += len(block)
        if self._length > MAX_TEXT_CHARS:
            check_text_size("".join(self._parts))
        return start, self._length

    def text(self) -> str:
        """Everything added so far."""
        return "".join(self._parts)
