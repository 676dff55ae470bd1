"""HTML for the chat messages and the source-document page.

Safety rule for everything shown in a browser: document text (passages, titles, file names) is escaped with
``html.escape`` here on the server and only this module's own tags (``<mark>``, ``<strong>``, ``<a>`` and a few
layout tags) are added around it. Chat messages go through Gradio's sanitiser as well (``sanitize_html`` stays on)
and are never rendered with ``gr.HTML``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
from urllib.parse import quote, urlsplit

from fastapi.responses import HTMLResponse

from tr_qa.extract.base import DocMeta
from tr_qa.highlight import segments
from tr_qa.types import Answer, Document, Passage, Result, Span

CHAT_PASSAGES = 3  # passages shown under a chat answer; the API returns k
# Characters of context either side of the highlight in a chat excerpt; the whole passage is one click away.
EXCERPT_CONTEXT = 160
NO_ANSWER = "The documents don't answer this."


def esc(text: str) -> str:
    """Escape text for HTML and keep its line breaks."""
    return html.escape(text, quote=True).replace("\r\n", "\n").replace("\n", "<br>")


def doc_href(base_url: str, doc_id: str, start: int, end: int, answer: tuple[int, int] | None = None) -> str:
    """Absolute link to the source document page with [start, end) highlighted (absolute: the widget's links
    must not resolve against the campaign page)."""
    query = f"start={start}&end={end}"
    if answer is not None:
        query += f"&astart={answer[0]}&aend={answer[1]}"
    return f"{base_url.rstrip('/')}/doc/{quote(doc_id, safe='/')}?{query}#hl"


def marked_html(text: str, offset: int, highlights: tuple[Span, ...]) -> str:
    """Escaped text with one <mark> around the sentence and <strong> (inside it) around the short answer."""
    out: list[str] = []
    open_mark = False
    for run, kind in segments(text, offset, highlights):
        if kind is not None and not open_mark:
            out.append("<mark>")
            open_mark = True
        elif kind is None and open_mark:
            out.append("</mark>")
            open_mark = False
        out.append(f"<strong>{esc(run)}</strong>" if kind == "answer" else esc(run))
    if open_mark:
        out.append("</mark>")
    return "".join(out)


def excerpt_bounds(passage: Passage, context: int = EXCERPT_CONTEXT) -> tuple[int, int]:
    """Document offsets of a short window around the passage's highlights, cut at spaces (the link has the rest)."""
    ps, text = passage.start, passage.text
    if passage.highlights:
        hl_start = min(h.start for h in passage.highlights)
        hl_end = max(h.end for h in passage.highlights)
        start, end = max(ps, hl_start - context), min(passage.end, hl_end + context)
    else:
        hl_start = hl_end = ps
        start, end = ps, min(passage.end, ps + 2 * context)
    if start > ps:
        space = text.find(" ", start - ps, hl_start - ps)
        start = ps + space + 1 if space != -1 else start
    if end < passage.end:
        space = text.rfind(" ", hl_end - ps, end - ps)
        end = ps + space if space != -1 else end
    return start, end


def passage_html(passage: Passage) -> str:
    """An excerpt of the passage around its highlights, escaped and marked, with … where it was cut."""
    start, end = excerpt_bounds(passage)
    text = passage.text[start - passage.start : end - passage.start]
    body = marked_html(text, start, passage.highlights)
    before = "… " if start > passage.start else ""
    after = " …" if end < passage.end else ""
    return f"{before}{body}{after}"


def passage_link(base_url: str, passage: Passage) -> str:
    """Link to the passage's best sentence (or the whole passage) in its document."""
    sentence = next((h for h in passage.highlights if h.kind == "sentence"), None)
    answer = next((h for h in passage.highlights if h.kind == "answer"), None)
    start, end = (sentence.start, sentence.end) if sentence else (passage.start, passage.end)
    return doc_href(base_url, passage.doc_id, start, end, (answer.start, answer.end) if answer else None)


def human_date(iso: str | None) -> str | None:
    """``2016-05-03`` as ``3 May 2016``; None when unknown or not a date."""
    if not iso:
        return None
    try:
        day = dt.date.fromisoformat(iso)
    except ValueError:
        return None
    return f"{day.day} {day:%B %Y}"


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) link (anything else, e.g. ``javascript:``, is not linked)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def provenance(meta: DocMeta, page_no: int | None = None, from_comment: bool = False) -> list[str]:
    """Escaped pieces of where a text comes from: outlet, author, date, kind, reader comment, page."""
    bits = [esc(meta.outlet)] if meta.outlet else []
    if meta.author:
        bits.append(f"by {esc(meta.author)}")
    when = human_date(meta.published)
    if when:
        bits.append(esc(when))
    if meta.kind:
        bits.append(esc(meta.kind))
    if from_comment:
        bits.append("from a reader comment")
    if page_no is not None:
        bits.append(f"p. {int(page_no)}")
    return bits


def original_link(meta: DocMeta) -> str:
    """A link to the original publication, or nothing when its URL is unknown or not http(s)."""
    url = safe_url(meta.url)
    if url is None:
        return ""
    href = html.escape(url, quote=True)
    return f'<a href="{href}" target="_blank" rel="noopener noreferrer nofollow">original</a>'


def source_html(i: int, passage: Passage, base_url: str) -> str:
    """A citation card: number, linked title, outlet, date, kind, comment, page and original link, then the
    marked excerpt (no file names, offsets or scores: the JSON has those)."""
    link = html.escape(passage_link(base_url, passage), quote=True)
    bits = provenance(passage.meta, passage.page, passage.from_comment)
    original = original_link(passage.meta)
    if original:
        bits.append(original)
    details = f"<br>{' · '.join(bits)}" if bits else ""
    return (
        f'<p class="tr-qa-source"><strong>[{i}]</strong> '
        f'<a href="{link}" target="_blank" rel="noopener noreferrer">{esc(passage.title)}</a>{details}</p>'
        f"<blockquote>{passage_html(passage)}</blockquote>"
    )


def answer_html(answer: Answer) -> str:
    """The answer as shown: the short span in bold, inside its whole sentence for why/how questions."""
    sentence = answer.sentence
    if (
        answer.display != "sentence"
        or sentence is None
        or not sentence.start <= answer.start < answer.end <= sentence.end
    ):
        return f"<mark><strong>{esc(answer.text)}</strong></mark>"
    a, b = answer.start - sentence.start, answer.end - sentence.start
    text = sentence.text
    return f"<mark>{esc(text[:a])}<strong>{esc(text[a:b])}</strong>{esc(text[b:])}</mark>"


def result_html(result: Result, base_url: str, max_passages: int = CHAT_PASSAGES) -> str:
    """One chat message: the answer (or that there is none), the best passage, and the next ones folded away."""
    parts = []
    answer = result.answer
    if result.abstained or answer is None:
        parts.append(f"<p><strong>{esc(NO_ANSWER)}</strong> These are the nearest passages:</p>")
    else:
        shown_answer = answer_html(answer)
        if result.evidence == "weak":
            parts.append(
                f"<p>Best guess, weak evidence: {shown_answer}. "
                "The passage below may not answer the question; check it.</p>"
            )
        else:
            parts.append(f"<p>Answer: {shown_answer}</p>")
    shown = result.passages[:max_passages]
    if not shown:
        parts.append("<p>No passages were found.</p>")
        return "".join(parts)
    parts.append(source_html(1, shown[0], base_url))
    if len(shown) > 1:
        # Folded so the answer and its source stay on screen when the chat scrolls to the newest message.
        more = "".join(source_html(i, p, base_url) for i, p in enumerate(shown[1:], 2))
        label = "1 more passage" if len(shown) == 2 else f"{len(shown) - 1} more passages"
        parts.append(f"<details><summary>{label}</summary>{more}</details>")
    parts.append(
        '<p class="tr-qa-source">Highlights: <mark>answering sentence</mark>, '
        "<mark><strong>short answer</strong></mark>.</p>"
    )
    return "".join(parts)


# The server-rendered pages' only style, allowed by its hash so they can forbid every inline script and style else.
# Highlights: a background plus a non-colour cue (a left rule on the sentence, bold for the short answer); no
# underline, so they read neither as links nor as spelling errors.
DOC_STYLE = (
    "body{font:16px/1.6 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;"
    "max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1f2328;background:#fff}"
    "main{white-space:pre-wrap;overflow-wrap:anywhere}a{color:#0b4fb3}"
    "mark{background:#fff3a3;color:inherit;border-left:3px solid #7d4e00;padding-left:2px;scroll-margin-top:30vh}"
    "mark strong{background:#ffd33d;font-weight:700}"
    "mark:target{outline:3px solid #0b5fff;outline-offset:2px}.meta{color:#57606a;font-size:.9rem}"
    "blockquote{margin:1rem 0;padding-left:1rem;border-left:4px solid #d0d7de}"
)
DOC_STYLE_HASH = base64.b64encode(hashlib.sha256(DOC_STYLE.encode()).digest()).decode()


def page(title: str, body: str, head: str = "") -> str:
    """A complete server-rendered page; ``title``, ``body`` and ``head`` (extra head tags) must already be escaped."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title>{head}<style>{DOC_STYLE}</style></head><body>{body}</body></html>"
    )


def doc_page_csp(frame_ancestors: str) -> str:
    """Strict CSP for the document page: no script at all, only its own hashed style."""
    return (
        f"default-src 'none'; style-src 'sha256-{DOC_STYLE_HASH}'; base-uri 'none'; form-action 'none'; "
        f"frame-ancestors {frame_ancestors}"
    )


BACK_TO_CHAT = '<p><a href="/">← Back to the chat</a></p>'


def doc_header(doc: Document) -> str:
    """The document page's heading: title, provenance, original link and the way back to the chat."""
    bits = provenance(doc.meta)
    original = original_link(doc.meta)
    if original:
        bits.append(original)
    meta = f'<p class="meta">{" · ".join(bits)}</p>' if bits else ""
    return f"<header>{BACK_TO_CHAT}<h1>{esc(doc.title)}</h1>{meta}</header>"


def document_html(doc: Document, start: int, end: int, answer: tuple[int, int] | None) -> str:
    """The whole document, escaped, with [start, end) marked as ``#hl`` (and the answer inside it in bold)."""
    text, doc_id = doc.text, doc.id
    spans = [Span(doc_id, start, end, text[start:end], "sentence")]
    if answer is not None:
        spans.append(Span(doc_id, answer[0], answer[1], text[answer[0] : answer[1]], "answer"))
    # The same marking as the chat, so both highlight the same characters the same way; escaped text cannot
    # contain "<mark>", so the first one is the highlight.
    body = marked_html(text, 0, tuple(spans)).replace("<mark>", '<mark id="hl">', 1)
    where = doc.page_at(start)
    extra = []
    if where is not None:
        extra.append(f"page {where}")
    if doc.in_comments(start, end):
        extra.append("from a reader comment")
    note = f'<p class="meta">Highlighted: {esc(", ".join(extra))}</p>' if extra else ""
    return f"{doc_header(doc)}{note}<main>{body}</main>"


def document_response(
    doc: Document | None,
    doc_id: str,
    frame_ancestors: str,
    start: str | None = None,
    end: str | None = None,
    astart: str | None = None,
    aend: str | None = None,
) -> HTMLResponse:
    """The document page (or its 404/400 page, in HTML too: people reach it by following a link)."""
    csp = {"Content-Security-Policy": doc_page_csp(frame_ancestors)}
    if doc is None:
        body = f"<h1>Document not found</h1><p>There is no document with id {esc(doc_id)}.</p>"
        return HTMLResponse(page("Not found", body), status_code=404, headers=csp)

    def bad(message: str) -> HTMLResponse:
        body = f"<h1>Bad highlight</h1><p>{esc(message)}</p>"
        return HTMLResponse(page("Bad request", body), status_code=400, headers=csp)

    n = len(doc.text)
    try:
        s = int(start) if start is not None else 0
        e = int(end) if end is not None else 0
        answer = (int(astart), int(aend)) if astart is not None and aend is not None else None
    except ValueError:
        return bad("start, end, astart and aend must be whole numbers")
    if (start is None) != (end is None) or (astart is None) != (aend is None):
        return bad("give both start and end (and both astart and aend)")
    if start is not None and not 0 <= s < e <= n:
        return bad(f"the highlight must satisfy 0 <= start < end <= {n}, got start={s}, end={e}")
    if answer is not None and not s <= answer[0] < answer[1] <= e:
        return bad("the answer highlight (astart, aend) must lie inside start..end")
    whole = f"{doc_header(doc)}<main>{html.escape(doc.text)}</main>"
    body = document_html(doc, s, e, answer) if e > s else whole
    return HTMLResponse(page(esc(doc.title), body), headers=csp)
