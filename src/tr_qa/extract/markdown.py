"""Markdown as plain prose with markdown-it-py; provenance from YAML front matter read with ``yaml.safe_load``.

Markup is dropped (emphasis, link targets, images, HTML tags, table pipes) and the words kept: a soft line break
inside a paragraph becomes a space, paragraphs and headings are separated by a blank line, items of a tight list
and table rows by a line break (cells by a tab), code keeps its lines. Headings keep their level in
``headings``. Front matter keys read: title; author/authors/by; date/published/pubdate; url/canonical/link;
outlet/publisher/source/site; kind (one of ``KINDS``). A front matter block that is not valid YAML, or a date
or kind that cannot be used, is refused with the key and value named, so the file can be corrected rather than
indexed without its metadata.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import yaml
from lxml import etree
from lxml import html as lxml_html

from tr_qa.extract.base import KINDS, DocMeta, Extracted, ExtractError, TextBuilder, check_text_size, clean_value
from tr_qa.extract.dates import to_iso
from tr_qa.extract.detect import front_matter_match
from tr_qa.extract.text import decode

_MAX_FRONT_MATTER_CHARS = 65_536
_KEYS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "author": ("author", "authors", "by", "byline"),
    "published": ("date", "published", "published_at", "publish_date", "pubdate", "pub_date"),
    "url": ("url", "canonical", "canonical_url", "link", "source_url"),
    "outlet": ("outlet", "publisher", "source", "site", "site_name", "publication"),
    "kind": ("kind",),
}


def _scalar(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | dt.date):
        raise ExtractError(f"has front matter whose {key!r} is not a single value: {str(value)[:60]!r}")
    return clean_value(str(value))


def _author(key: str, value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("name")
    if isinstance(value, list):
        names = [_author(key, item) for item in value]
        return ", ".join(n for n in names if n) or None
    return _scalar(key, value)


def front_matter(text: str) -> tuple[DocMeta, str | None, str]:
    """The metadata and title in a leading YAML block, and the Markdown after it."""
    match = front_matter_match(text)
    if not match:
        return DocMeta(), None, text
    block = match.group(1)
    if len(block) > _MAX_FRONT_MATTER_CHARS:
        raise ExtractError(f"has front matter of {len(block):,} characters (the limit is {_MAX_FRONT_MATTER_CHARS:,})")
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        raise ExtractError(f"has front matter that is not valid YAML{where}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ExtractError(f"has front matter that is a {type(data).__name__}, not key: value lines")
    fields: dict[str, Any] = {}
    lowered = {str(k).strip().lower(): v for k, v in data.items()}
    for field, keys in _KEYS.items():
        key = next((k for k in keys if lowered.get(k) is not None), None)
        if key is not None:
            fields[field] = (key, lowered[key])
    values: dict[str, str | None] = {}
    for field, (key, value) in fields.items():
        values[field] = _author(key, value) if field == "author" else _scalar(key, value)
    if "published" in fields:
        key, raw = fields["published"]
        values["published"] = to_iso(raw)
        if values["published"] is None:
            raise ExtractError(f"has front matter {key!r} that is not a full date: {str(raw)[:60]!r}")
    kind = values.get("kind")
    if kind is not None:
        kind = kind.lower()
        if kind not in KINDS:
            raise ExtractError(f"has front matter kind {kind!r}; use one of: {', '.join(KINDS)}")
    url = values.get("url")
    if url is not None and not re.match(r"https?://\S+$", url):
        raise ExtractError(f"has front matter url {url[:80]!r} that is not an http(s) address")
    meta = DocMeta(
        outlet=values.get("outlet"), author=values.get("author"), published=values.get("published"), url=url, kind=kind
    )
    return meta, values.get("title"), text[match.end() :]


def _inline_text(token: Any) -> str:
    parts: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
    return "\n".join(" ".join(line.split()) for line in "".join(parts).split("\n")).strip()


def _html_text(source: str) -> str:
    try:
        fragments = lxml_html.fragments_fromstring(source)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return ""
    texts = []
    for fragment in fragments:
        if isinstance(fragment, str):
            texts.append(fragment)
            continue
        for element in fragment.xpath(".//script|.//style|self::script|self::style"):
            if element.getparent() is not None:
                element.getparent().remove(element)
            else:
                element.clear()
        texts.append(fragment.text_content())
    return " ".join(" ".join(texts).split())


def render(source: str) -> tuple[str, tuple[tuple[int, int, int], ...], str | None]:
    """Markdown source → (plain text, heading ranges with levels, the first level-1 heading)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    builder = TextBuilder()
    headings: list[tuple[int, int, int]] = []
    first_h1: str | None = None
    tight = False  # the paragraph now open belongs to a tight list item: separate it with one line break
    row: list[str] | None = None
    first_row = False
    list_top = False  # the next paragraph opens a top-level list: a blank line before it, like any block
    for i, token in enumerate(tokens):
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open") and token.level == 0:
            list_top = True
        elif kind == "paragraph_open":
            tight = token.hidden
        elif kind == "table_open":
            first_row = True
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and row is not None:
            if builder.add("\t".join(c for c in row if c), "\n\n" if first_row else "\n"):
                first_row = False
            row = None
        elif kind == "inline":
            text = _inline_text(token)
            opener = tokens[i - 1] if i else None
            if row is not None:
                row.append(text)
            elif opener is not None and opener.type == "heading_open":
                span = builder.add(text)
                if span:
                    level = int(opener.tag[1])
                    headings.append((*span, level))
                    if level == 1 and first_h1 is None:
                        first_h1 = text
            elif builder.add(text, "\n" if tight and not list_top else "\n\n"):
                list_top = False
        elif kind in ("fence", "code_block"):
            builder.add(token.content.rstrip("\n"))
        elif kind == "html_block":
            builder.add(_html_text(token.content))
    return builder.text(), tuple(headings), first_h1


def read(data: bytes) -> Extracted:
    """A Markdown file as prose, with its headings and front matter metadata."""
    meta, title, body = front_matter(decode(data))
    text, headings, first_h1 = render(body)
    if not text.strip():
        raise ExtractError("is a Markdown file with no text outside its front matter")
    return Extracted(
        text=check_text_size(text), title=title or first_h1, meta=meta, format="markdown", headings=headings
    )
