"""Word .docx with python-docx: paragraphs and tables in document order, headings kept, core properties read.

A paragraph styled "Heading N" (or a style based on one) is a heading of level N and "Title" one of level 1;
each table row becomes one line with its cells separated by tabs. The title, author and created date come from
the core properties (docProps/core.xml); a "Title"-styled paragraph stands in for a missing title.
"""

from __future__ import annotations

import io
import re
import zipfile

from tr_qa.extract.base import DocMeta, Extracted, ExtractError, TextBuilder, clean_value
from tr_qa.extract.dates import to_iso

# A .docx is a ZIP: refuse archives that would expand past this (a zip bomb) before python-docx unpacks them.
MAX_UNZIPPED_BYTES = 300_000_000
_HEADING_STYLE = re.compile(r"heading\s*([1-9])", re.IGNORECASE)


def _check_archive(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise ExtractError(f"is a damaged Word document ({exc})") from exc
    if total > MAX_UNZIPPED_BYTES:
        raise ExtractError(f"is a Word document that unpacks to {total:,} bytes (the limit is {MAX_UNZIPPED_BYTES:,})")


def _heading_level(paragraph: object) -> int:
    """The heading level of a paragraph's style or the styles it is based on; 0 for body text."""
    style = getattr(paragraph, "style", None)
    for _ in range(10):  # base-style chains are short; the bound guards against a cycle in a damaged file
        if style is None:
            return 0
        name = style.name or ""
        if name.lower() == "title":
            return 1
        match = _HEADING_STYLE.fullmatch(name.strip())
        if match:
            return int(match.group(1))
        style = style.base_style
    return 0


def _row_text(row: object) -> str:
    cells: list[str] = []
    for cell in row.cells:  # type: ignore[attr-defined]
        value = " ".join(cell.text.split())
        if value and (not cells or cells[-1] != value):  # a merged cell is listed once per grid column
            cells.append(value)
    return "\t".join(cells)


def read(data: bytes) -> Extracted:
    """A .docx document's text with its headings; ExtractError when it cannot be opened."""
    import docx
    from docx.table import Table

    _check_archive(data)
    try:
        document = docx.Document(io.BytesIO(data))
        builder = TextBuilder()
        headings: list[tuple[int, int, int]] = []
        styled_title: str | None = None
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                for i, row in enumerate(block.rows):
                    builder.add(_row_text(row), "\n" if i else "\n\n")
                continue
            text = block.text.strip()
            level = _heading_level(block)
            span = builder.add(text)
            if span and level:
                headings.append((*span, level))
                if styled_title is None and (block.style is not None and (block.style.name or "").lower() == "title"):
                    styled_title = text
        props = document.core_properties
        title, author, created = props.title, props.author, props.created
    except ExtractError:
        raise
    except Exception as exc:  # python-docx fails in many ways on a damaged package (zip, XML, missing parts)
        detail = (str(exc).splitlines() or [""])[0][:80] or type(exc).__name__
        raise ExtractError(f"is a damaged Word document ({detail})") from exc
    text = builder.text()
    if not text.strip():
        raise ExtractError("is a Word document with no text")
    meta = DocMeta(author=clean_value(author), published=to_iso(created))
    return Extracted(
        text=text,
        title=clean_value(title) or styled_title,
        meta=meta,
        format="docx",
        headings=tuple(headings),
    )
