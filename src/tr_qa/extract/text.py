"""Plain UTF-8 text, kept exactly as decoded, plus the provenance the text states about itself.

The text is never rewritten (only a UTF-8 BOM is dropped), so offsets into it match those of documents indexed
before this reader existed. What is read from it:

- a dateline near the top ("Tuesday, 3 May 2016", "Published 12:00, 3 May 2016"), a byline ("By Jane Smith")
  and a source line ("Source: The Independent");
- an outlet line: a short capitalised name with a masthead word in it (Star, Times, News, Post...) above a longer
  headline ("Express & Star" over "West Midlands and ..."), or a line that is exactly a known outlet's name; the
  headline under it (or under the dateline) becomes the title;
- reader comments, in the two shapes pasted pages take. Blog exports end with a numbered, indented thread
  ("  1. First comment", "    1. A reply to it", "  2. Next comment") that runs to the end of the text:
  the thread must number its comments 1, 2, 3... at one indent with replies numbered from 1 under them, and
  nothing after it may be less indented, so an ordinary numbered list inside an article is not taken for
  comments. Otherwise a heading line such as "Comments" or "12 comments" near the end starts a section whose
  paragraphs are the comments. Each comment's range covers its words, not its "1." marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tr_qa.extract.base import DocMeta, Extracted, ExtractError, check_text_size
from tr_qa.extract.dates import to_iso

_HEADER_LINES = 8  # provenance lines are looked for among this many non-empty lines at the top
_HEADER_CHARS = 4000
_SHORT_LINE = 80
_HEADLINE_WORDS = 25
_OUTLET_WORDS = 4
_KNOWN_OUTLETS = frozenset(
    name.lower()
    for name in (
        "BBC News", "BBC", "The Guardian", "The Observer", "The Independent", "The Times", "The Sunday Times",
        "The Telegraph", "The Daily Telegraph", "Daily Mail", "Mail Online", "Daily Mirror", "The Mirror", "The Sun",
        "Evening Standard", "Financial Times", "The Economist", "New Statesman", "The Spectator", "Express & Star",
        "Daily Express", "Sky News", "ITV News", "Channel 4 News", "Reuters", "Press Association", "PA Media",
        "Inside Time", "Morning Star", "Yorkshire Post", "Manchester Evening News", "Birmingham Mail",
        "Liverpool Echo", "WalesOnline", "The Herald", "The Scotsman", "Public Finance", "Civil Service World",
        "HuffPost UK", "The Conversation", "Private Eye",
    )
)  # fmt: skip
_CONNECTORS = frozenset({"&", "and", "of", "the", "on", "-", "–", "+", "a"})
# A name line above a headline is taken for an outlet only when it reads like a masthead.
_MASTHEAD_WORDS = frozenset(
    """news times post star mail echo herald guardian express chronicle gazette journal standard telegraph mirror
    observer independent review magazine weekly daily online today press courier argus record advertiser sentinel
    bulletin tribune eye world voice citizen examiner inquirer report""".split()  # noqa: SIM905
)
_BYLINE = re.compile(
    r"(?i:(?:written\s+|posted\s+)?by)\s+([A-Z][\w'’.-]*(?:\s+(?:[A-Z][\w'’.-]*|de|van|von|der|le|la)){0,4})"
    r"(?:\s*[,|–—-]\s*.*)?"
)
_SOURCE = re.compile(r"(?:source|publisher|published by|outlet)\s*:\s*(\S.{0,79})", re.IGNORECASE)
_LONE_META_WORD = re.compile(r"(?:published|updated|posted|share|advertisement)", re.IGNORECASE)
_UPDATED = re.compile(r"\s*(?:last\s+)?(?:updated|modified)\b", re.IGNORECASE)
_ITEM = re.compile(r"([ \t]*)(\d{1,4})\.[ \t]+(?=\S)")
# "Comments", "12 comments", "Reader comments (4)", WordPress's "3 Responses to “Title”"; a bare "Responses" is
# too common a subheading to be taken for the start of a comment section.
_COMMENTS_HEADING = re.compile(
    r"(?:\d+\s+)?(?:readers?['’]?\s+)?comments?(?:\s*\(\d+\))?\s*:?|\d+\s+(?:responses?|replies)(?:\s+to\s+.{1,200})?",
    re.IGNORECASE,
)
_COMMENT_CHROME = re.compile(r"(?:reply|report|share|like|\d+\s+likes?|load more comments)\.?", re.IGNORECASE)


@dataclass(frozen=True)
class _Line:
    start: int  # offset of the line's first character
    end: int  # offset just past its last non-space character
    indent: int  # leading spaces (a tab counts as four)
    body: str  # the line without surrounding whitespace

    @property
    def blank(self) -> bool:
        return not self.body


def decode(data: bytes) -> str:
    """UTF-8 text with a BOM dropped; ExtractError for binary, non-UTF-8 or blank bytes."""
    if b"\x00" in data[:8192]:
        raise ExtractError("looks binary (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExtractError(f"is not valid UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8") from exc
    if not text.strip():
        raise ExtractError("has no text (only whitespace)")
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f")
    if controls > max(8, len(text) // 100):
        raise ExtractError(f"looks binary ({controls:,} control characters)")
    return text


def _lines(text: str) -> list[_Line]:
    out, pos = [], 0
    for raw in text.splitlines(keepends=True):
        content = raw.rstrip("\r\n")
        expanded = content.expandtabs(4)
        indent = len(expanded) - len(expanded.lstrip(" "))
        lead = len(content) - len(content.lstrip())
        body = content.strip()
        out.append(_Line(pos + lead, pos + lead + len(body), indent, body))
        pos += len(raw)
    return out


def _dateline(body: str) -> str | None:
    if len(body) > _SHORT_LINE:
        return None
    pieces = sorted((p for p in re.split(r"\s[|·•]\s", body) if p.strip()), key=lambda p: bool(_UPDATED.match(p)))
    for piece in pieces:
        found = to_iso(piece, fuzzy=True)
        if found:
            return found
    return None


def _headline_like(body: str) -> bool:
    words = body.split()
    return 0 < len(words) <= _HEADLINE_WORDS and body[-1] not in ".,;:!" and not body.startswith(('"', "“", "'"))


def _outlet_like(body: str, next_body: str | None) -> bool:
    if body.lower() in _KNOWN_OUTLETS:
        return True
    words = body.split()
    if next_body is None or not 0 < len(words) <= _OUTLET_WORDS or any(c.isdigit() for c in body):
        return False
    named = all(w[0].isupper() or w.lower() in _CONNECTORS for w in words)
    masthead = any(w.lower().strip(".,") in _MASTHEAD_WORDS for w in words)
    return named and masthead and _headline_like(next_body) and len(next_body.split()) > len(words)


def provenance(text: str) -> tuple[DocMeta, str | None]:
    """The outlet, author and date stated at the top of ``text``, and the headline when one stands there."""
    top = [line for line in _lines(text[:_HEADER_CHARS]) if not line.blank][:_HEADER_LINES]
    published = author = outlet = None
    rest: list[_Line] = []  # lines that are neither dates, bylines, source lines nor lone words like "Published"
    for line in top:
        if published is None and (found := _dateline(line.body)):
            published = found
        elif author is None and len(line.body) <= _SHORT_LINE and (match := _BYLINE.fullmatch(line.body)):
            author = match.group(1)
        elif outlet is None and (match := _SOURCE.fullmatch(line.body)):
            outlet = match.group(1).strip()
        elif not _LONE_META_WORD.fullmatch(line.body):
            rest.append(line)
    title = None
    # The headline run: the lines standing above the first body paragraph (a long or punctuated line).
    run: list[str] = []
    for line in rest:
        if not _headline_like(line.body):
            break
        run.append(line.body)
    if run and outlet is None and _outlet_like(run[0], run[1] if len(run) > 1 else None):
        outlet, run = run[0], run[1:]
    if run and (len(run) > 1 or len(rest) > 1):  # a single line with nothing under it is not a headline
        title = run[0]
    return DocMeta(outlet=outlet, author=author, published=published), title


def _numbered_thread(lines: list[_Line], first: int, allow_flush: bool) -> list[tuple[int, int]] | None:
    """Comment ranges when ``lines[first]`` opens a numbered thread that runs to the end of the text."""
    match = _ITEM.match(" " * lines[first].indent + lines[first].body)
    if match is None or match.group(2) != "1" or (lines[first].indent == 0 and not allow_flush):
        return None
    top = lines[first].indent
    expected_top = 2
    replies: dict[int, int] = {}  # indent → the next reply number expected there, under the current comment
    items: list[tuple[int, int]] = []  # (line index, marker length)
    for i in range(first, len(lines)):
        line = lines[i]
        if line.blank:
            continue
        item = _ITEM.match(" " * line.indent + line.body)
        number = int(item.group(2)) if item else 0
        if i == first or (item and line.indent == top and number == expected_top):
            if i != first:
                expected_top += 1
            replies = {}
        elif item and line.indent > top and number == replies.get(line.indent, 1):
            replies = {k: v for k, v in replies.items() if k <= line.indent}
            replies[line.indent] = number + 1
        elif line.indent > top:
            continue  # a continuation line of the current comment
        else:
            return None  # text outside the thread follows it: not a trailing comment section
        items.append((i, len(item.group(0)) - line.indent if item else 0))
    ranges = []
    for n, (i, marker) in enumerate(items):
        stop = items[n + 1][0] if n + 1 < len(items) else len(lines)
        last = max(j for j in range(i, stop) if not lines[j].blank)
        ranges.append((lines[i].start + marker, lines[last].end))
    return ranges


def _heading_section(lines: list[_Line], text_length: int) -> list[tuple[int, int]] | None:
    """Comment ranges after a "Comments" heading line in the last part of the text: one per paragraph."""
    for i, line in enumerate(lines):
        if line.blank or line.start < text_length // 3 or not _COMMENTS_HEADING.fullmatch(line.body):
            continue
        after = [j for j in range(i + 1, len(lines)) if not lines[j].blank]
        if after and any(_ITEM.match(" " * lines[j].indent + lines[j].body) for j in after[:1]):
            thread = _numbered_thread(lines, after[0], allow_flush=True)
            if thread:
                return thread
        ranges: list[tuple[int, int]] = []
        para: list[_Line] = []
        for j in [*range(i + 1, len(lines)), None]:
            if j is not None and not lines[j].blank and not _COMMENT_CHROME.fullmatch(lines[j].body):
                para.append(lines[j])
                continue
            if para:
                ranges.append((para[0].start, para[-1].end))
                para = []
        return ranges or None
    return None


def find_comments(text: str) -> tuple[tuple[int, int], ...]:
    """Character ranges of the reader comments at the end of ``text`` (empty when there are none)."""
    lines = _lines(text)
    # A thread indented under flush article text cannot contain a flush line, so start after the last one.
    flush = [i for i, line in enumerate(lines) if not line.blank and line.indent == 0]
    begin = flush[-1] + 1 if flush else 0
    for i in range(begin, len(lines)):
        line = lines[i]
        if line.indent and (i == 0 or lines[i - 1].blank) and line.body.startswith("1."):
            thread = _numbered_thread(lines, i, allow_flush=False)
            if thread:
                return tuple(thread)
    return tuple(_heading_section(lines, len(text)) or ())


def read(data: bytes) -> Extracted:
    """Plain UTF-8 text with the provenance and reader comments it states."""
    text = check_text_size(decode(data))
    meta, title = provenance(text)
    return Extracted(text=text, title=title, meta=meta, format="text", comments=find_comments(text))
