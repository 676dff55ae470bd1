"""The web app: a Gradio chat, a JSON API, source-document pages and an embeddable widget on one FastAPI app.

Safety rule for everything shown in a browser: document text (passages, titles, file names) is escaped with
``html.escape`` here on the server and only this module's own tags (``<mark>``, ``<strong>``, ``<a>`` and a few
layout tags) are added around it. Chat messages go through Gradio's sanitiser as well (``sanitize_html`` stays on)
and are never rendered with ``gr.HTML``.
"""

from __future__ import annotations

import os

# Set before Gradio is imported: it reads these at import and launch time, and without them the page and the
# server call home (version check, analytics), which this offline app must never do.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import base64
import hashlib
import html
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tr_qa.config import Settings, validate_k, validate_question
from tr_qa.errors import IndexMissingError, InputError, TrQaError
from tr_qa.highlight import segments
from tr_qa.types import Passage, Result, Span

if TYPE_CHECKING:
    from tr_qa.qa import QA

log = logging.getLogger("tr_qa.app")

ALLOW_ORIGINS_ENV = "TR_QA_ALLOW_ORIGINS"
RATE_LIMIT_ENV = "TR_QA_RATE_LIMIT"
# The web surfaces take shorter questions than the library (2,000): a chat question has no reason to be longer,
# and this bounds the work one request can cause.
MAX_QUESTION_CHARS = 1000
MAX_BODY_BYTES = 16_384
DEFAULT_RATE_LIMIT = 30  # questions per client per window
DEFAULT_RATE_WINDOW = 60.0  # seconds
# Two cores: two questions at a time keep both busy (~30 ms each) while a third waits in line instead of slowing
# every running one down; QA.ask was checked to give identical results from 8 threads at once.
DEFAULT_CONCURRENCY = 2
CHAT_PASSAGES = 3  # passages shown under a chat answer; the API returns k
# Characters of context either side of the highlight in a chat excerpt; the whole passage is one click away.
EXCERPT_CONTEXT = 160
MAX_HISTORY_MESSAGES = 60  # bound what a client can make the server echo back
EXAMPLE_QUESTIONS = (
    "How much was the 2016 bail out?",
    "What losses are the Community Rehabilitation Companies facing by 2022?",
    "What share of probation work is now the responsibility of the CRCs?",
    "When was the probation privatisation extended to commercial companies?",
)
GRADIO_JS = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"
NO_ANSWER = "The documents don't answer this."
# The default orange button has white text at contrast 2.8 (axe: serious); a darker fill passes AA (built-in theme
# fonts only: they are bundled in the wheel, so the page requests nothing from elsewhere).
THEME = gr.themes.Default(primary_hue="blue").set(
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_text_color="white",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover_dark="*primary_800",
    button_primary_text_color_dark="white",
)
CHAT_CSS = """
#tr-qa-chat mark { background: #fff3a3; color: #1f2328; text-decoration: underline dotted; padding: 0 1px; }
#tr-qa-chat mark strong { background: #ffd33d; text-decoration: underline solid 2px; }
#tr-qa-chat .tr-qa-source { font-size: 0.9em; }
"""

# ---------------------------------------------------------------------------------------------------------------
# Origins and rate limits


def validate_origin(origin: str) -> str:
    """Normalise ``scheme://host[:port]``; InputError naming the value if it has a path, query or other scheme."""
    raw = origin.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise InputError(f"allowed origin {origin!r} is not a valid URL origin (scheme://host[:port])") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or raw.endswith("?")
        or raw.endswith("#")
        or any(c.isspace() for c in raw)
    ):
        raise InputError(
            f"allowed origin {origin!r} must look like https://example.org or http://host:8080 (no path, no '*')"
        )
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def parse_origins(values: Iterable[str]) -> tuple[str, ...]:
    """Validate and de-duplicate origins (each value may hold several, comma-separated)."""
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            if item.strip():
                origin = validate_origin(item)
                if origin not in out:
                    out.append(origin)
    return tuple(out)


def parse_rate_limit(raw: str) -> tuple[int, float]:
    """``"30"`` (per minute) or ``"30/60"`` (per N seconds) → (limit, window); ``"0"`` turns limiting off."""
    try:
        count, _, window = raw.strip().partition("/")
        limit, seconds = int(count), float(window or DEFAULT_RATE_WINDOW)
    except ValueError:
        raise InputError(f"{RATE_LIMIT_ENV} must look like 30 or 30/60, got {raw!r}") from None
    if limit < 0 or not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"{RATE_LIMIT_ENV} must look like 30 or 30/60, got {raw!r}")
    return limit, seconds


class RateLimiter:
    """Sliding-window limit per client key, in memory (one process); ``limit=0`` allows everything."""

    def __init__(self, limit: int = DEFAULT_RATE_LIMIT, window: float = DEFAULT_RATE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = time.monotonic()

    def check(self, key: str) -> float:
        """Record a hit and return 0, or return the seconds to wait (the hit is not recorded)."""
        if self.limit <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            self._sweep(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.001, hits[0] + self.window - now)
            hits.append(now)
            return 0.0

    def _sweep(self, now: float) -> None:
        # Forget idle clients now and then so the table cannot grow without bound.
        if now - self._last_sweep < self.window:
            return
        self._last_sweep = now
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]


# ---------------------------------------------------------------------------------------------------------------
# HTML rendering (every piece of document text goes through esc)


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


def source_html(i: int, passage: Passage, base_url: str) -> str:
    """One passage: its number, linked title, file, offsets and score, then the marked excerpt."""
    link = html.escape(passage_link(base_url, passage), quote=True)
    return (
        f'<p class="tr-qa-source"><strong>[{i}]</strong> '
        f'<a href="{link}" target="_blank" rel="noopener noreferrer">{esc(passage.title)}</a> · '
        f"file {esc(passage.doc_id)} · characters {passage.start}–{passage.end} · score {passage.score:.2f}</p>"
        f"<blockquote>{passage_html(passage)}</blockquote>"
    )


def result_html(result: Result, base_url: str, max_passages: int = CHAT_PASSAGES) -> str:
    """One chat message: the answer (or that there is none), the best passage, and the next ones folded away."""
    parts = []
    answer = result.answer
    if result.abstained or answer is None:
        parts.append(f"<p><strong>{esc(NO_ANSWER)}</strong> These are the nearest passages:</p>")
    elif result.evidence == "weak":
        parts.append(
            f"<p>Best guess, weak evidence: <mark><strong>{esc(answer.text)}</strong></mark>. "
            "The passage below may not answer the question; check it.</p>"
        )
    else:
        parts.append(f"<p>Answer: <mark><strong>{esc(answer.text)}</strong></mark></p>")
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


# The document page's only style, allowed by its hash so the page can forbid every inline script and style else.
DOC_STYLE = (
    "body{font:16px/1.6 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1f2328;"
    "background:#fff}main{white-space:pre-wrap;overflow-wrap:anywhere}"
    "mark{background:#fff3a3;color:inherit;text-decoration:underline dotted;scroll-margin-top:30vh}"
    "mark strong{background:#ffd33d;text-decoration:underline solid 2px}"
    "mark:target{outline:3px solid #0b5fff;outline-offset:2px}.meta{color:#57606a;font-size:.9rem}"
)
DOC_STYLE_HASH = base64.b64encode(hashlib.sha256(DOC_STYLE.encode()).digest()).decode()


def page(title: str, body: str) -> str:
    """A complete server-rendered page; ``title`` and ``body`` must already be escaped."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{DOC_STYLE}</style></head><body>{body}</body></html>"
    )


def doc_page_csp(frame_ancestors: str) -> str:
    """Strict CSP for the document page: no script at all, only its own hashed style."""
    return (
        f"default-src 'none'; style-src 'sha256-{DOC_STYLE_HASH}'; base-uri 'none'; form-action 'none'; "
        f"frame-ancestors {frame_ancestors}"
    )


def document_html(title: str, doc_id: str, text: str, start: int, end: int, answer: tuple[int, int] | None) -> str:
    """The whole document, escaped, with [start, end) marked as ``#hl`` (and the answer inside it in bold)."""
    spans = [Span(doc_id, start, end, text[start:end], "sentence")]
    if answer is not None:
        spans.append(Span(doc_id, answer[0], answer[1], text[answer[0] : answer[1]], "answer"))
    # The same marking as the chat, so both highlight the same characters the same way; escaped text cannot
    # contain "<mark>", so the first one is the highlight.
    body = marked_html(text, 0, tuple(spans)).replace("<mark>", '<mark id="hl">', 1)
    return (
        f'<header><h1>{esc(title)}</h1><p class="meta">File {esc(doc_id)} · highlighted characters '
        f"{start}–{end}</p></header><main>{body}</main>"
    )


# ---------------------------------------------------------------------------------------------------------------
# Middleware


class SecurityHeaders:
    """Adds frame-ancestors (deny-by-default embedding) and a few cheap hardening headers to every response."""

    def __init__(self, app: ASGIApp, frame_ancestors: str, frame_deny: bool) -> None:
        self.app = app
        self.csp = f"frame-ancestors {frame_ancestors}"
        self.frame_deny = frame_deny

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", self.csp.encode()))
                if self.frame_deny:
                    # Old browsers ignore CSP frame-ancestors; only used when no other origin may frame the app.
                    headers.append((b"x-frame-options", b"SAMEORIGIN"))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"same-origin"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---------------------------------------------------------------------------------------------------------------
# The app


def client_key(request: Request | None) -> str:
    """Rate-limit key: the client's IP (behind a proxy, run uvicorn with --forwarded-allow-ips)."""
    if request is None or request.client is None:
        return "unknown"
    return request.client.host


def base_url_of(request: Request | None) -> str:
    """The app's own URL as the browser reached it, for absolute links."""
    if request is None:
        return ""
    return str(request.base_url).rstrip("/")


def error_json(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The API's error shape: {"error": message}."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def history_messages(history: Any) -> list[dict[str, Any]]:
    """The chat history as a bounded list of message dicts (anything else from a client is dropped)."""
    if not isinstance(history, list):
        return []
    return [m for m in history if isinstance(m, dict) and m.get("role") in ("user", "assistant")][
        -MAX_HISTORY_MESSAGES:
    ]


def build_app(
    qa: QA,
    allow_origins: Sequence[str] = (),
    *,
    rate_limit: int = DEFAULT_RATE_LIMIT,
    rate_window: float = DEFAULT_RATE_WINDOW,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> FastAPI:
    """The FastAPI app: Gradio chat at ``/``, ``/healthz``, ``/api/ask``, ``/doc/{id}`` and ``/widget.js``."""
    origins = parse_origins(allow_origins)
    frame_ancestors = " ".join(("'self'", *origins))
    limiter = RateLimiter(rate_limit, rate_window)
    # One gate for the chat and the JSON API, so together they never run more questions at once than the CPU has.
    gate = threading.BoundedSemaphore(concurrency)

    def ask(question: str, k: int) -> Result:
        with gate:
            return qa.ask(question, k=k)

    app = FastAPI(title="tr-qa", docs_url=None, redoc_url=None, openapi_url=None)

    @app.api_route("/healthz", methods=["GET", "HEAD"])
    def healthz() -> dict[str, Any]:
        """Liveness plus what is loaded."""
        return {"status": "ok", "documents": len(qa.documents), "chunks": len(qa.data.chunks)}

    @app.post("/api/ask")
    async def api_ask(request: Request) -> Response:
        """Answer {"question": str, "k": int}; same JSON as ``tr-qa ask --json``."""
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return error_json(413, f"request body is too large (limit {MAX_BODY_BYTES} bytes)")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return error_json(400, 'body must be JSON like {"question": "...", "k": 5}')
        if not isinstance(body, dict):
            return error_json(400, 'body must be a JSON object like {"question": "...", "k": 5}')
        unknown = sorted(set(body) - {"question", "k"})
        if unknown:
            return error_json(400, f"unknown field(s): {', '.join(unknown)}; expected question and k")
        if "question" not in body:
            return error_json(400, "question is missing")
        try:
            question = validate_question(body["question"], MAX_QUESTION_CHARS)
            k = validate_k(body.get("k", qa.settings.k))
        except InputError as exc:
            return error_json(400, str(exc))
        wait = limiter.check(client_key(request))
        if wait:
            return error_json(
                429,
                f"too many questions: the limit is {limiter.limit} per {limiter.window:g} s; "
                f"try again in {math.ceil(wait)} s",
                {"Retry-After": str(math.ceil(wait))},
            )
        try:
            result = await run_in_threadpool(ask, question, k)
        except InputError as exc:
            return error_json(400, str(exc))
        except TrQaError as exc:
            log.error("question failed: %s", exc)
            return error_json(503, str(exc))
        except Exception:
            log.exception("unexpected error answering a question")
            return error_json(500, "internal error while answering; the server log has the details")
        return JSONResponse(result.to_dict())

    @app.get("/doc/{doc_id:path}")
    def document_page(
        doc_id: str,
        start: str | None = None,
        end: str | None = None,
        astart: str | None = None,
        aend: str | None = None,
    ) -> HTMLResponse:
        """The whole source document with [start, end) highlighted and scrolled into view via ``#hl``."""
        csp = {"Content-Security-Policy": doc_page_csp(frame_ancestors)}
        doc = qa.documents.get(doc_id)  # a dictionary lookup: the id never touches the file system
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
        if start is None:
            s, e = 0, 0
        elif not 0 <= s < e <= n:
            return bad(f"the highlight must satisfy 0 <= start < end <= {n}, got start={s}, end={e}")
        if answer is not None and not s <= answer[0] < answer[1] <= e:
            return bad("the answer highlight (astart, aend) must lie inside start..end")
        if e > s:
            body = document_html(doc.title, doc.id, doc.text, s, e, answer)
        else:
            body = f'<header><h1>{esc(doc.title)}</h1><p class="meta">File {esc(doc.id)}</p></header>'
            body += f"<main>{html.escape(doc.text)}</main>"
        return HTMLResponse(page(esc(doc.title), body), headers=csp)

    @app.api_route("/widget.js", methods=["GET", "HEAD"])
    def widget_js() -> FileResponse:
        """Gradio's web-component loader, served by the app itself (no CDN)."""
        # It imports ./assets/… relative to its own URL, which Gradio serves at /assets/ on this app.
        return FileResponse(GRADIO_JS, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    demo = build_blocks(qa, limiter, ask, concurrency)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["content-type", "x-gradio-user"],  # the web component sends x-gradio-user
        # The widget's calls carry no cookies (run history, the one credentialed call, is off), so none are allowed.
        allow_credentials=False,
        max_age=600,
    )
    app.add_middleware(SecurityHeaders, frame_ancestors=frame_ancestors, frame_deny=not origins)
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        theme=THEME,
        css=CHAT_CSS,
        ssr_mode=False,
        run_history=False,  # it would keep every question in the browser's storage: not on shared computers
        # Gradio's footer links are light grey on white (contrast 1.9, axe: serious); the chat needs neither.
        footer_links=[],
        show_error=False,
    )


def build_blocks(qa: QA, limiter: RateLimiter, ask: Any, concurrency: int) -> gr.Blocks:
    """The chat UI: question box, send and clear buttons, example questions, and the answer log."""

    def respond(message: str, history: list[dict[str, Any]], request: gr.Request) -> tuple[str, list[dict[str, Any]]]:
        """Answer one chat question; returns the cleared textbox and the history with both turns appended."""
        history = history_messages(history)
        text = message if isinstance(message, str) else ""
        starlette_request = getattr(request, "request", None)
        if not text.strip():
            reply = "<p>Please type a question about the documents, or pick one of the examples.</p>"
            return "", [*history, {"role": "assistant", "content": reply}]
        user = {"role": "user", "content": esc(text.strip()[: MAX_QUESTION_CHARS + 200])}
        try:
            question = validate_question(text, MAX_QUESTION_CHARS)
        except InputError as exc:
            reply = f"<p>Sorry, I can't take that question: {esc(str(exc))}.</p>"
            if len(text.strip()) > MAX_QUESTION_CHARS:
                reply = (
                    f"<p>That question is {len(text.strip()):,} characters long; the limit is "
                    f"{MAX_QUESTION_CHARS:,}. Please shorten it.</p>"
                )
            return text, [*history, user, {"role": "assistant", "content": reply}]
        wait = limiter.check(client_key(starlette_request))
        if wait:
            reply = (
                f"<p>You are asking faster than {limiter.limit} questions per {limiter.window:g} seconds. "
                f"Please wait {math.ceil(wait)} seconds and try again.</p>"
            )
            return text, [*history, user, {"role": "assistant", "content": reply}]
        try:
            result = ask(question, qa.settings.k)
            reply = result_html(result, base_url_of(starlette_request))
        except TrQaError as exc:
            log.error("chat question failed: %s", exc)
            reply = f"<p>Sorry, that question could not be answered: {esc(str(exc))}</p>"
        except Exception:
            log.exception("unexpected error in the chat handler")
            reply = "<p>Sorry, something went wrong on the server. Please try again later.</p>"
        return "", [*history, user, {"role": "assistant", "content": reply}]

    def clear() -> tuple[str, list[dict[str, Any]]]:
        return "", []

    with gr.Blocks(title="Ask the probation news archive", analytics_enabled=False) as demo:
        gr.Markdown(
            "# Ask the probation news archive\n"
            "Answers are quoted from the news articles in this collection. Each answer shows the passages it "
            "comes from: the answering sentence is marked, the short answer is marked and **bold**."
        )
        chatbot = gr.Chatbot(
            label="Conversation",
            show_label=False,  # the floating label chip covered the first line of a scrolled answer
            elem_id="tr-qa-chat",
            height=520,
            # Messages are HTML built (and escaped) by result_html; no Markdown pass, so characters in the
            # documents such as * _ [ ] ( ) stay plain text. The sanitiser stays on as a second line of defence.
            render_markdown=False,
            sanitize_html=True,
            feedback_options=None,
            buttons=["copy"],
            placeholder="Ask a question about probation privatisation, or pick an example below.",
        )
        question = gr.Textbox(
            label="Your question",
            elem_id="tr-qa-question",
            placeholder="e.g. How much was the 2016 bail out?  (Enter sends, Shift+Enter adds a line)",
            max_lines=4,
            submit_btn=False,
        )
        with gr.Row():
            send = gr.Button("Ask", variant="primary", elem_id="tr-qa-send", scale=3)
            clear_btn = gr.Button("Clear conversation", elem_id="tr-qa-clear", variant="secondary", scale=1)
        gr.Markdown("Try an example:")
        with gr.Row(elem_id="tr-qa-examples"):
            examples = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLE_QUESTIONS]

        common: dict[str, Any] = {"concurrency_limit": concurrency, "concurrency_id": "qa"}
        question.submit(respond, [question, chatbot], [question, chatbot], api_name="ask", **common)
        send.click(respond, [question, chatbot], [question, chatbot], api_visibility="private", **common)
        for btn in examples:
            # The button's own label is the question: fill the box, then answer through the same handler.
            btn.click(lambda q: q, btn, question, queue=False, api_visibility="private").then(
                respond, [question, chatbot], [question, chatbot], api_visibility="private", **common
            )
        clear_btn.click(clear, None, [question, chatbot], queue=False, api_visibility="private")
    # api_open=False: the REST shortcut /gradio_api/run/… would skip the queue, its limits and the rate limit.
    demo.queue(api_open=False, default_concurrency_limit=concurrency, max_size=64)
    return demo


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, allow_origins: Sequence[str] = ()) -> None:
    """Load (or first build) the index, then serve the app with uvicorn until interrupted."""
    import click
    import uvicorn

    from tr_qa.qa import QA

    origins = parse_origins([*allow_origins, os.environ.get(ALLOW_ORIGINS_ENV, "")])
    limit, window = parse_rate_limit(os.environ.get(RATE_LIMIT_ENV, str(DEFAULT_RATE_LIMIT)))
    try:
        qa = QA.load(settings=settings)
    except IndexMissingError as exc:
        from tr_qa.index import build

        click.echo(f"{exc}\nbuilding the index from {settings.corpus_dir} first…", err=True)
        build(settings, progress=True, log=lambda msg: click.echo(msg, err=True))
        qa = QA.load(settings=settings)
    qa.ask(EXAMPLE_QUESTIONS[0])  # warm the model so the first visitor does not wait for it
    app = build_app(qa, origins, rate_limit=limit, rate_window=window)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    click.echo(f"tr-qa: chat on http://{shown}:{port}/  (API: POST /api/ask; widget: /widget.js)", err=True)
    click.echo(f"embedding allowed from: {', '.join(origins) or 'no other origin'}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
