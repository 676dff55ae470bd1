"""An HTML page's article with trafilatura: navigation, cookie banners, footers and comment forms are left out.

trafilatura returns the main text as XML (paragraphs, headings with their level, lists, tables, quotes) and,
separately, the reader comments it found. The article comes first; comments worth keeping (three words or more,
not "Reply" or "Log in to comment") follow it, each paragraph one range in ``comments``. Metadata is read from
the page's own tags first (``og:title`` then ``<title>``, ``og:site_name``, ``author``/``article:author``,
``article:published_time`` and the other published-date tags, ``<link rel="canonical">`` then ``og:url``), and
from trafilatura's reading of the page only where those are missing. Dates are taken from markup only, never
guessed from the text or the URL. The kind comes from the schema.org type the page declares in JSON-LD
(``NewsArticle`` is a news report, ``BlogPosting`` a blog post, ``Report`` a report).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from lxml import etree
from lxml import html as lxml_html

from tr_qa.extract.base import MAX_FILE_BYTES, DocMeta, Extracted, ExtractError, TextBuilder, clean_value
from tr_qa.extract.dates import to_iso

_MIN_COMMENT_WORDS = 3
_COMMENT_CHROME = re.compile(
    r"(?:reply|report(?: abuse)?|share|like|flag|(?:log|sign) ?in( to (?:comment|reply))?|load more comments?|"
    r"(?:show|view|hide) (?:more )?(?:replies|comments))\W*",
    re.IGNORECASE,
)
_DATE_META = (
    "article:published_time",
    "og:published_time",
    "datepublished",
    "date",
    "pubdate",
    "publishdate",
    "publish-date",
    "dc.date",
    "dc.date.issued",
    "dcterms.created",
    "dcterms.issued",
    "ld:datepublished",
    "parsely-pub-date",
    "sailthru.date",
)
# schema.org types a page declares in its JSON-LD, and the kind of document each one is.
_SCHEMA_KINDS = {
    "newsarticle": "news report",
    "reportagenewsarticle": "news report",
    "analysisnewsarticle": "news report",
    "blogposting": "blog post",
    "liveblogposting": "blog post",
    "report": "report",
    "comment": "reader comment",
}
_BLOCK_TAGS = frozenset({"p", "head", "list", "item", "quote", "table", "row", "code", "div"})
# Parsing trafilatura's own XML output: no entities resolved, no network, no huge trees.
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _config() -> Any:
    from trafilatura.settings import use_config

    config = use_config()
    config.set("DEFAULT", "EXTENSIVE_DATE_SEARCH", "off")  # dates from markup only, never guessed from text
    config.set("DEFAULT", "MAX_FILE_SIZE", str(MAX_FILE_BYTES))
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")  # a short page is still a page
    return config


def _page_meta(data: bytes) -> dict[str, str]:
    """The page's metadata tags by lower-cased name or property, plus "title", "canonical" and time tags."""
    try:
        root = lxml_html.fromstring(data)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return {}
    found: dict[str, str] = {}
    for meta in root.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
        value = clean_value(meta.get("content"))
        if key and value and key not in found:
            found[key] = value
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        if element.tag == "title" and "title" not in found and (value := clean_value(element.text_content())):
            found["title"] = value
        elif element.tag == "link" and "canonical" in (element.get("rel") or "").lower().split():
            found.setdefault("canonical", (element.get("href") or "").strip())
        elif (element.get("itemprop") or "").lower() == "datepublished" and element.get("datetime"):
            found.setdefault("datepublished", element.get("datetime", ""))
        elif element.tag == "script" and (element.get("type") or "").lower() == "application/ld+json":
            _json_ld(element.text or "", found)
    return found


def _json_ld(source: str, found: dict[str, str]) -> None:
    """The document kind and publication date a JSON-LD block declares (``@type``, ``datePublished``)."""
    try:
        data = json.loads(source)
    except (ValueError, RecursionError):
        return
    items = data if isinstance(data, list) else [data]
    items += [g for item in items if isinstance(item, dict) for g in item.get("@graph", []) if isinstance(g, dict)]
    for item in items:
        if not isinstance(item, dict):
            continue
        types = item.get("@type")
        for name in types if isinstance(types, list) else [types]:
            if isinstance(name, str) and name.lower() in _SCHEMA_KINDS:
                found.setdefault("ld:kind", _SCHEMA_KINDS[name.lower()])
                if isinstance(item.get("datePublished"), str):
                    found.setdefault("ld:datepublished", item["datePublished"])


def _inline(element: etree._Element) -> str:
    parts = [element.text or ""]
    for child in element:
        parts.append("\n" if child.tag == "lb" else _inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _tidy(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _blocks(element: etree._Element) -> Iterator[tuple[str, int]]:
    """(text, heading level or 0) for each block of trafilatura's XML, in order."""
    if element.tag == "row":
        yield "\t".join(filter(None, (_tidy(_inline(cell)) for cell in element))), 0
        return
    if element.tag == "head" or not any(child.tag in _BLOCK_TAGS for child in element):
        level = 0
        if element.tag == "head":
            match = re.fullmatch(r"h([1-6])", element.get("rend") or "")
            level = int(match.group(1)) if match else 2
        yield _tidy(_inline(element)), level
        return
    if element.text and element.text.strip():
        yield _tidy(element.text), 0
    for child in element:
        yield from _blocks(child)
        if child.tail and child.tail.strip():
            yield _tidy(child.tail), 0


def _worth_keeping(comment: str) -> bool:
    return len(comment.split()) >= _MIN_COMMENT_WORDS and not _COMMENT_CHROME.fullmatch(comment)


def _url(value: str | None) -> str | None:
    value = clean_value(value)
    return value if value and re.match(r"https?://\S+$", value) else None


def read(data: bytes) -> Extracted:
    """An HTML page's article (and its reader comments) as text; ExtractError when no article text is found."""
    import trafilatura

    try:
        xml = trafilatura.extract(
            data,
            output_format="xml",
            include_comments=True,
            include_tables=True,
            include_images=False,
            include_links=False,
            include_formatting=False,
            with_metadata=True,
            deduplicate=False,
            config=_config(),
        )
        root = etree.fromstring(xml.encode("utf-8"), parser=_XML_PARSER) if xml else None
    except Exception as exc:  # trafilatura and lxml fail in many ways on broken markup; it is one bad file
        raise ExtractError(f"is an HTML page that could not be parsed ({type(exc).__name__})") from exc
    main = root.find("main") if root is not None else None
    if root is None or main is None:
        raise ExtractError("is an HTML page with no article text that could be found")
    builder = TextBuilder()
    headings: list[tuple[int, int, int]] = []
    for block, level in _blocks(main):
        span = builder.add(block)
        if span and level:
            headings.append((*span, level))
    if not len(builder):
        raise ExtractError("is an HTML page with no article text that could be found")
    comments: list[tuple[int, int]] = []
    section = root.find("comments")
    for block, _level in _blocks(section) if section is not None else ():
        if _worth_keeping(block) and (span := builder.add(block)):
            comments.append(span)
    page = _page_meta(data)
    published = next((found for key in _DATE_META if (found := to_iso(page.get(key)))), None)
    meta = DocMeta(
        outlet=page.get("og:site_name") or page.get("application-name") or clean_value(root.get("sitename")),
        author=next(
            (v for k in ("author", "article:author", "dc.creator") if (v := page.get(k)) and not _url(v)),
            clean_value(root.get("author")),
        ),
        published=published or to_iso(root.get("date")),
        url=_url(page.get("canonical")) or _url(page.get("og:url")) or _url(root.get("url")),
        kind=page.get("ld:kind"),
    )
    title = page.get("og:title") or page.get("title") or clean_value(root.get("title"))
    return Extracted(
        text=builder.text(),
        title=title,
        meta=meta,
        format="html",
        headings=tuple(headings),
        comments=tuple(comments),
    )
