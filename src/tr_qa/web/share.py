"""Permalinks: ``/answer?q=...`` answers a question on a server-rendered page with Open Graph tags (for link previews),
and ``/?q=...`` asks it in the chat on load. Both reproduce the answer, since answering is deterministic for an
index generation. Everything shown is escaped; the page has no script (the document page's strict CSP)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from tr_qa.config import validate_question
from tr_qa.errors import BusyError, InputError, RateLimitError, TrQaError
from tr_qa.types import Passage, Result
from tr_qa.web.addresses import rate_key
from tr_qa.web.limits import AnswerGate, RateLimiter
from tr_qa.web.render import NO_ANSWER, doc_page_csp, esc, human_date, page, result_html

if TYPE_CHECKING:
    from tr_qa.qa import QA

OG_DESCRIPTION_CHARS = 300


def share_path(question: str) -> str:
    """The permalink path of a question's answer page."""
    return f"/answer?q={quote(question, safe='')}"


def chat_path(question: str) -> str:
    """The chat URL that asks ``question`` on load."""
    return f"/?q={quote(question, safe='')}"


def quote_of(result: Result) -> Passage | None:
    """The passage the answer is quoted from (the first one), if any."""
    return result.passages[0] if result.passages else None


def quote_text(passage: Passage) -> str:
    """The answering sentence of a passage (its first sentence highlight), else its first 300 characters."""
    sentence = next((h for h in passage.highlights if h.kind == "sentence"), None)
    text = sentence.text if sentence is not None else passage.text[:OG_DESCRIPTION_CHARS]
    return " ".join(text.split())


def citation_text(passage: Passage) -> str:
    """The source in words: title, outlet, date and kind, as a reader would cite it."""
    bits = [passage.title]
    bits += [b for b in (passage.meta.outlet, human_date(passage.meta.published), passage.meta.kind) if b]
    if passage.from_comment:
        bits.append("reader comment")
    if passage.page is not None:
        bits.append(f"p. {passage.page}")
    return ", ".join(bits)


def plain_text(result: Result, url: str) -> str:
    """The answer as plain text for the clipboard: question, answer, quote with its citation and the permalink."""
    lines = [f"Q: {result.question}"]
    if result.abstained or result.answer is None:
        lines.append(f"A: {NO_ANSWER}")
    else:
        word = "Best guess (weak evidence)" if result.evidence == "weak" else "A"
        lines.append(f"{word}: {result.answer.shown_text}")
        passage = quote_of(result)
        if passage is not None:
            lines.append(f"“{quote_text(passage)}” — {citation_text(passage)}")
    lines.append(url)
    return "\n".join(lines)


def og_description(result: Result) -> str:
    """The preview text: the answer and its quote only (no other document text), shortened."""
    if result.abstained or result.answer is None:
        return NO_ANSWER
    passage = quote_of(result)
    text = result.answer.shown_text + (f" — “{quote_text(passage)}”" if passage is not None else "")
    return text if len(text) <= OG_DESCRIPTION_CHARS else text[: OG_DESCRIPTION_CHARS - 1] + "…"


def share_page(result: Result, base_url: str) -> str:
    """The answer page: Open Graph tags, the question, the answer with its citation cards, and the plain text."""
    url = base_url.rstrip("/") + share_path(result.question)
    title = esc(f"{result.question} — Ask the probation news archive")
    attr = lambda v: esc(v).replace("<br>", " ")  # noqa: E731 - one-line helper for attribute values
    head = (
        '<meta property="og:type" content="article">'
        f'<meta property="og:title" content="{attr(result.question)}">'
        f'<meta property="og:description" content="{attr(og_description(result))}">'
        f'<meta property="og:url" content="{attr(url)}">'
        f'<meta name="description" content="{attr(og_description(result))}">'
    )
    chat = esc(base_url.rstrip("/") + chat_path(result.question))
    body = (
        '<header><p><a href="/">← Back to the chat</a></p><h1>Ask the probation news archive</h1></header>'
        f"<main><h2>{esc(result.question)}</h2>{result_html(result, base_url)}"
        f'<h2>Copy as text</h2><pre id="plain">{esc(plain_text(result, url)).replace("<br>", chr(10))}</pre>'
        f'<p><a href="{chat}">Ask this in the chat</a></p></main>'
    )
    return page(title, body, head)


def add_share(
    app: FastAPI, qa: QA, limiter: RateLimiter, gate: AnswerGate, frame_ancestors: str, max_chars: int
) -> None:
    """Register ``GET /answer?q=...`` on ``app``."""
    csp = {"Content-Security-Policy": doc_page_csp(frame_ancestors)}

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> HTMLResponse:
        body = f'<h1>No answer page</h1><p>{esc(message)}</p><p><a href="/">Go to the chat</a></p>'
        return HTMLResponse(page("No answer page", body), status_code=status, headers={**csp, **(headers or {})})

    @app.get("/answer")
    async def answer_page(request: Request, q: str | None = None) -> HTMLResponse:
        """The answer to ``q`` as a page people can share; social previews read its Open Graph tags."""
        try:
            question = validate_question(q if q is not None else "", max_chars)
        except InputError as exc:
            return error(400, f"Sorry, that question cannot be answered: {exc}.")
        try:
            limiter.enforce(rate_key(request.client.host if request.client else ""))
            result = await gate.run(qa.ask, question, qa.settings.k)
        except BusyError as exc:
            status = 429 if isinstance(exc, RateLimitError) else 503
            return error(status, str(exc), {"Retry-After": str(exc.retry_after)})
        except TrQaError as exc:
            return error(503, f"The question could not be answered: {exc}")
        return HTMLResponse(share_page(result, str(request.base_url)), headers=csp)
