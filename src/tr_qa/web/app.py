"""The web app: the Gradio chat, the JSON API, source-document pages and the embeddable widget on one FastAPI app,
behind the request limits of ``tr_qa.web.security`` and the answer gate of ``tr_qa.web.limits``."""

from __future__ import annotations

import os

# Set before Gradio is imported: it reads these at import and launch time, and without them the page and the
# server call home (version check, analytics), which this offline app must never do.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import gradio as gr
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from starlette.middleware.cors import CORSMiddleware

from tr_qa.config import Settings
from tr_qa.web.admin import LiveQA, add_admin, admin_routes
from tr_qa.web.api import add_api
from tr_qa.web.chat import CHAT_CSS, GRADIO_JS, THEME, build_blocks
from tr_qa.web.compress import CachePolicy, Compression
from tr_qa.web.embed import add_embed
from tr_qa.web.feedback import add_feedback
from tr_qa.web.limits import AnswerGate, RateLimiter
from tr_qa.web.reload import GenerationWatcher
from tr_qa.web.render import document_response
from tr_qa.web.security import ClientAddress, JsonErrors, RequestGuard, Route, SecurityHeaders
from tr_qa.web.share import add_share
from tr_qa.web.startup import WebConfig, serve

__all__ = ["WebConfig", "allowed_routes", "build_app", "serve"]  # serve and WebConfig live in tr_qa.web.startup

if TYPE_CHECKING:
    from tr_qa.qa import QA

GET = frozenset({"GET", "HEAD"})
POST = frozenset({"POST"})


def allowed_routes(settings: Settings) -> tuple[dict[str, Route], dict[str, Route]]:
    """Every route the product uses (exact paths, then path prefixes); everything else Gradio has stays closed.

    Closed on purpose: uploads (the chat takes no files), file and proxy downloads, monitoring, run history, MCP,
    streaming, login, and the REST shortcut ``/gradio_api/run/…``.
    """
    small = Route(GET, settings.web_body_bytes)
    chat = Route(POST, settings.chat_body_bytes)
    exact = {
        path: small
        for path in (
            "/",
            "/healthz",
            "/readyz",
            "/widget.js",
            "/embed.js",
            "/embed.css",
            "/embed-chat.js",
            "/embed-chat.css",
            "/favicon.ico",
            "/robots.txt",
            "/theme.css",
            "/config",
            "/gradio_api/info",
            "/gradio_api/queue/data",
        )
    }
    exact |= {
        "/api/ask": Route(POST, settings.web_body_bytes),
        "/api/feedback": Route(POST, settings.web_body_bytes),
        "/answer": small,  # an answer's shareable page (tr_qa.web.share)
        "/gradio_api/queue/join": chat,  # the browser chat
        "/gradio_api/call/ask": chat,  # the documented Gradio API (gradio_client, curl)
    }
    prefixes = {p: small for p in ("/doc/", "/assets/", "/static/", "/gradio_api/call/ask/")}
    return exact, prefixes


def build_app(qa: QA, settings: Settings | None = None) -> FastAPI:
    """The FastAPI app: Gradio chat at ``/``, ``/healthz``, ``/api/ask``, ``/doc/{id}`` and ``/widget.js``.

    ``settings`` defaults to the QA's own; its web fields (origins, proxies, limits) are checked here.
    """
    settings = settings or qa.settings
    # Every route reads the QA through this proxy, so a document added through /api/documents is answered at once.
    live = LiveQA(qa)
    qa = live.as_qa()
    config = WebConfig.from_settings(settings)
    frame_ancestors = " ".join(("'self'", *config.origins))
    limiter = RateLimiter(config.rate_limit, config.rate_window)
    # One gate for the chat and the JSON API, so together they never run more questions at once than it allows.
    gate = AnswerGate(settings.answer_slots, settings.answer_queue)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        watching = None
        if settings.reload_check_s > 0:
            watching = asyncio.get_running_loop().create_task(GenerationWatcher(live, settings.reload_check_s).run())
        yield
        if watching is not None:
            watching.cancel()
        gate.close()

    app = FastAPI(title="tr-qa", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.gate = gate
    app.state.limiter = limiter
    add_api(app, qa, limiter, gate, settings.web_question_chars)
    add_admin(app, live, settings)
    # Votes have their own budget (same rate as questions), so voting never stops someone asking.
    add_feedback(app, settings, RateLimiter(config.rate_limit, config.rate_window))
    add_share(app, qa, limiter, gate, frame_ancestors, settings.web_question_chars)

    @app.get("/doc/{doc_id:path}")
    def document_page(
        doc_id: str,
        start: str | None = None,
        end: str | None = None,
        astart: str | None = None,
        aend: str | None = None,
    ) -> HTMLResponse:
        """The whole source document with [start, end) highlighted and scrolled into view via ``#hl``."""
        # A dictionary lookup: the id never touches the file system.
        return document_response(qa.documents.get(doc_id), doc_id, frame_ancestors, start, end, astart, aend)

    @app.api_route("/widget.js", methods=["GET", "HEAD"])
    def widget_js() -> FileResponse:
        """Gradio's web-component loader, served by the app itself (no CDN)."""
        # It imports ./assets/… relative to its own URL, which Gradio serves at /assets/ on this app.
        return FileResponse(GRADIO_JS, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    app.state.embed_version = add_embed(app).version  # the light embed: /embed.js, /embed-chat.js, their CSS

    demo, chat_check = build_blocks(qa, settings, limiter, gate)
    exact, prefixes = allowed_routes(settings)
    exact |= admin_routes(settings)
    checks = {"/gradio_api/queue/join": chat_check, "/gradio_api/call/ask": chat_check}
    # Added innermost first: a request meets Compression, CachePolicy, SecurityHeaders, JsonErrors, ClientAddress,
    # CORS, then RequestGuard.
    app.add_middleware(RequestGuard, exact=exact, prefixes=prefixes, max_depth=settings.json_max_depth, checks=checks)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(config.origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["content-type", "x-gradio-user"],  # the web component sends x-gradio-user
        expose_headers=["Retry-After"],  # so the embed can say when to ask again after a 429 or 503
        # The widget's calls carry no cookies (run history, the one credentialed call, is off), so none are allowed.
        allow_credentials=False,
        max_age=600,
    )
    app.add_middleware(ClientAddress, trusted=config.proxies)
    app.add_middleware(JsonErrors, retry_after=gate.retry_after, html_prefixes=("/doc/", "/answer"))
    app.add_middleware(SecurityHeaders, frame_ancestors=frame_ancestors, frame_deny=not config.origins)
    # Outermost: caching headers and compression apply to every response, errors included.
    app.add_middleware(CachePolicy)
    app.add_middleware(Compression)
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
        enable_monitoring=False,
        mcp_server=False,
        pwa=False,
    )
