"""The Gradio chat: question box, send and clear buttons, example questions and the answer log."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import gradio as gr
from pydantic import BaseModel, ConfigDict, ValidationError

from tr_qa.config import Settings, validate_question
from tr_qa.errors import InputError, OverloadedError, TrQaError
from tr_qa.web.limits import AnswerGate, RateLimiter
from tr_qa.web.render import esc, result_html
from tr_qa.web.security import rate_key

if TYPE_CHECKING:
    from tr_qa.qa import QA

log = logging.getLogger("tr_qa.web")
SURROGATES = re.compile("[\ud800-\udfff]")

EXAMPLE_QUESTIONS = (
    "How much was the 2016 bail out?",
    "What losses are the Community Rehabilitation Companies facing by 2022?",
    "What share of probation work is now the responsibility of the CRCs?",
    "When was the probation privatisation extended to commercial companies?",
)
GRADIO_JS = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"
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


def base_url_of(request: Any) -> str:
    """The app's own URL as the browser reached it, for absolute links."""
    if request is None:
        return ""
    return str(request.base_url).rstrip("/")


class TextPart(BaseModel):
    """One part of a chat message: the chat only ever shows text."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message of the history a client sends back with each question."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["user", "assistant"]
    content: str | list[TextPart]


class ChatCall(BaseModel):
    """The body of ``/gradio_api/call/ask`` and ``/gradio_api/queue/join``: a question and the history so far."""

    model_config = ConfigDict(extra="ignore")
    data: tuple[str, list[ChatMessage]]
    fn_index: int | None = None
    session_hash: str | None = None


def chat_body_check(demo: gr.Blocks, respond: Callable[..., Any]) -> Callable[[bytes], str | None]:
    """A check for chat request bodies, run before Gradio sees them: anything but a question, a history of text
    messages and one of the chat's own events is refused with a one-line reason (Gradio would raise on it)."""
    events = {fn_id for fn_id, fn in demo.fns.items() if fn.fn is respond}

    def problem(raw: bytes) -> str | None:
        try:
            # Python's parser, not pydantic's: a lone surrogate must reach respond, which names the rule it breaks.
            # (RequestGuard has already bounded the body's size and depth.)
            data = json.loads(raw)
        except ValueError as exc:
            return f"not a chat request: the body is not JSON ({' '.join(str(exc).split())[:120]})"
        try:
            call = ChatCall.model_validate(data)
        except ValidationError as exc:
            err = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in err["loc"]) or "body"
            return f"not a chat request: {where}: {err['msg']} (expected a question and a list of text messages)"
        if call.fn_index is not None and call.fn_index not in events:
            return f"not a chat request: fn_index {call.fn_index} is not one of the chat's events"
        return None

    return problem


def message_text(message: dict[str, Any]) -> str:
    """A history message's text, whether its content is a string or a list of text parts."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content if isinstance(content, str) else ""


def history_messages(history: Any, limit: int) -> list[dict[str, Any]]:
    """The chat history as a bounded list of text messages (anything else from a client is dropped)."""
    if not isinstance(history, list):
        return []
    kept = [m for m in history if isinstance(m, dict) and m.get("role") in ("user", "assistant")][-limit:]
    return [{"role": m["role"], "content": displayable(message_text(m))} for m in kept]


def displayable(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD, so it can be echoed back as JSON."""
    return SURROGATES.sub("\ufffd", text)


def build_blocks(
    qa: QA, settings: Settings, limiter: RateLimiter, gate: AnswerGate
) -> tuple[gr.Blocks, Callable[[bytes], str | None]]:
    """The chat UI, and the check its request bodies must pass; every question goes through the same rate limit
    and answer gate as the JSON API."""
    max_chars = settings.web_question_chars

    async def respond(
        message: Any, history: list[dict[str, Any]], request: gr.Request
    ) -> tuple[str, list[dict[str, Any]]]:
        """Answer one chat question; returns the cleared textbox and the history with both turns appended."""
        history = history_messages(history, settings.chat_history_messages)
        try:
            return await turn(message, history, request)
        except Exception as exc:
            # Whatever a client sends, the chat answers with a message, never a traceback.
            log.error("unexpected %s in the chat handler: %s", type(exc).__name__, " ".join(str(exc).split())[:200])
            log.debug("traceback of the error above", exc_info=True)
            reply = "<p>Sorry, something went wrong on the server. Please try again later.</p>"
            return "", [*history, {"role": "assistant", "content": reply}]

    async def turn(message: Any, history: list[dict[str, Any]], request: gr.Request) -> tuple[str, list[Any]]:
        raw = message if isinstance(message, str) else ""
        text = displayable(raw)
        starlette_request = getattr(request, "request", None)
        if not text.strip():
            reply = "<p>Please type a question about the documents, or pick one of the examples.</p>"
            return "", [*history, {"role": "assistant", "content": reply}]
        user = {"role": "user", "content": esc(text.strip()[: max_chars + 200])}

        def keep(reply: str) -> tuple[str, list[dict[str, Any]]]:
            # The question stays in the box so the user can fix it or send it again.
            return text[: max_chars * 2], [*history, user, {"role": "assistant", "content": reply}]

        try:
            question = validate_question(raw, max_chars)
        except InputError as exc:
            if len(text.strip()) > max_chars:
                return keep(
                    f"<p>That question is {len(text.strip()):,} characters long; the limit is "
                    f"{max_chars:,}. Please shorten it.</p>"
                )
            return keep(f"<p>Sorry, I can't take that question: {esc(str(exc))}.</p>")
        client = getattr(getattr(starlette_request, "client", None), "host", "")
        wait = limiter.check(rate_key(client or ""))
        if wait:
            return keep(
                f"<p>You are asking faster than {limiter.limit} questions per {limiter.window:g} seconds. "
                f"Please wait {math.ceil(wait)} seconds and try again.</p>"
            )
        try:
            result = await gate.run(qa.ask, question, qa.settings.k)
            reply = result_html(result, base_url_of(starlette_request))
        except OverloadedError as exc:
            return keep(
                f"<p>The server is busy answering other questions. Please try again in {exc.retry_after} seconds.</p>"
            )
        except TrQaError as exc:
            log.error("chat question failed: %s", exc)
            reply = f"<p>Sorry, that question could not be answered: {esc(str(exc))}</p>"
        return "", [*history, user, {"role": "assistant", "content": reply}]

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

        # Waiting happens in the answer gate (shared with the API), so the chat lets as many handlers in as the
        # gate has room for; Gradio's own line holds at most as many more.
        common: dict[str, Any] = {"concurrency_limit": settings.answer_slots + settings.answer_queue}
        common["concurrency_id"] = "qa"
        question.submit(respond, [question, chatbot], [question, chatbot], api_name="ask", **common)
        send.click(respond, [question, chatbot], [question, chatbot], api_visibility="private", **common)
        for btn in examples:
            # The button's own label is the question: fill the box in the browser, then answer as usual. The
            # fill and the clear button run only in the browser, so the server needs no route for direct calls.
            btn.click(None, btn, question, js="(q) => q", api_visibility="private").then(
                respond, [question, chatbot], [question, chatbot], api_visibility="private", **common
            )
        clear_btn.click(None, None, [question, chatbot], js="() => ['', []]", api_visibility="private")
    # api_open=False: the REST shortcut /gradio_api/run/… would skip the queue, its limits and the rate limit.
    demo.queue(
        api_open=False,
        default_concurrency_limit=settings.answer_slots + settings.answer_queue,
        max_size=max(1, settings.answer_queue),
    )
    return demo, chat_body_check(demo, respond)
