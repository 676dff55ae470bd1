"""Which reader a file needs, decided by its bytes: magic numbers first, then markup, the name only as a tiebreak.

A PDF named ``.txt`` is read as a PDF, random bytes named ``.pdf`` are refused as binary, and a text file is
HTML only when it looks like a whole HTML page (a ``.txt`` that merely contains a few tags stays text, so
markup in a plain document is shown as written, never run).
"""

from __future__ import annotations

import io
import re
import zipfile

from tr_qa.extract.base import ExtractError

# PDF readers accept the header anywhere in the first 1,024 bytes (junk before it is common in mail dumps).
_PDF_WINDOW = 1024
_SNIFF_BYTES = 65_536
_NAMED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "is a legacy Office file (.doc/.xls/.ppt); save it as .docx or PDF"),
    (b"{\\rtf", "is an RTF file; save it as .docx, PDF or plain text"),
    (b"\x89PNG\r\n\x1a\n", "is a PNG image, not a document (a scanned page needs OCR first)"),
    (b"\xff\xd8\xff", "is a JPEG image, not a document (a scanned page needs OCR first)"),
    (b"GIF87a", "is a GIF image, not a document"),
    (b"GIF89a", "is a GIF image, not a document"),
    (b"II*\x00", "is a TIFF image, not a document (a scanned page needs OCR first)"),
    (b"MM\x00*", "is a TIFF image, not a document (a scanned page needs OCR first)"),
    (b"\x1f\x8b", "is a gzip archive, not a document; unpack it first"),
    (b"7z\xbc\xaf\x27\x1c", "is a 7-Zip archive, not a document; unpack it first"),
    (b"Rar!\x1a\x07", "is a RAR archive, not a document; unpack it first"),
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_HTML_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<")
_HTML_MARKER = re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.IGNORECASE)
FRONT_MATTER = re.compile(r"\A(?:\ufeff)?---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
# Front matter opens with a "key:" line; a text that merely starts with a --- rule is not front matter.
_YAML_KEY = re.compile(r"\s*(?:#.*\n\s*)*[A-Za-z_][\w -]*:(?:\s|$)")
_MD_STRONG: tuple[re.Pattern[str], ...] = (
    re.compile(r"^#{1,6}[ \t]+\S", re.MULTILINE),  # ATX heading
    re.compile(r"^\S.*\r?\n(?:=+|-+)[ \t]*$", re.MULTILINE),  # setext heading
    re.compile(r"^(?:```|~~~)", re.MULTILINE),  # fenced code
    re.compile(r"!?\[[^\]\n]+\]\([^)\s]+(?:\s+\"[^\"\n]*\")?\)"),  # inline link or image
    re.compile(r"^\[[^\]\n]+\]:[ \t]+\S", re.MULTILINE),  # reference definition
    # Strong emphasis; "__" must open at a word start and close at a word end, so code names such as
    # window.__xss or __init__ in plain text do not count.
    re.compile(r"\*\*[^*\n]+\*\*|(?<![\w.])__(?=\S)[^_\n]+(?<=\S)__(?!\w)"),
    re.compile(r"(?<!`)`[^`\n]+`(?!`)"),  # inline code
)
_MD_NAMES = (".md", ".markdown", ".mdown", ".mkd")


def _zip_kind(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise ExtractError(f"is a damaged ZIP/Word file ({exc})") from exc
    if "word/document.xml" in names:
        return "docx"
    if any(name.startswith("xl/") for name in names):
        raise ExtractError("is an Excel workbook, not a Word document; save the text as .docx, PDF or .txt")
    if any(name.startswith("ppt/") for name in names):
        raise ExtractError("is a PowerPoint file, not a Word document; save it as PDF")
    if "mimetype" in names and any(name == "content.xml" for name in names):
        raise ExtractError("is an OpenDocument file; save it as .docx or PDF")
    raise ExtractError("is a ZIP archive without word/document.xml, so not a Word .docx file")


def _is_utf16(head: bytes) -> bool:
    try:
        head[: len(head) // 2 * 2].decode("utf-16")
    except UnicodeDecodeError:
        return False
    return True


def front_matter_match(text: str) -> re.Match[str] | None:
    """The leading ``---`` YAML block of a Markdown text (group 1 is the YAML), when it opens with a key."""
    match = FRONT_MATTER.match(text)
    return match if match and _YAML_KEY.match(match.group(1)) else None


def markdown_score(text: str) -> int:
    """How many kinds of Markdown-only syntax the text uses (headings, fences, links, emphasis...)."""
    return sum(1 for pattern in _MD_STRONG if pattern.search(text))


def sniff(data: bytes, name: str = "") -> str:
    """The format to read ``data`` as: "pdf", "docx", "html", "markdown" or "text"; ExtractError for the rest."""
    if not data:
        raise ExtractError("is empty (0 bytes)")
    if b"%PDF-" in data[:_PDF_WINDOW]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return _zip_kind(data)
    for magic, reason in _NAMED_MAGIC:
        if data.startswith(magic):
            raise ExtractError(reason)
    head = data[:_SNIFF_BYTES]
    if head.startswith(_UTF16_BOMS) and _is_utf16(head):
        raise ExtractError("is UTF-16 text; save it as UTF-8")
    if b"\x00" in head:
        raise ExtractError("looks binary (contains NUL bytes) and is not a PDF, Word, HTML, Markdown or text file")
    if _HTML_START.match(head) and _HTML_MARKER.search(head[:4096]):
        return "html"
    sample = head.decode("utf-8", errors="replace")
    if front_matter_match(sample):
        return "markdown"
    score = markdown_score(sample)
    if score >= 2 or (score >= 1 and name.lower().endswith(_MD_NAMES)):
        return "markdown"
    return "text"
