"""The Gradio chat: question box, send and clear buttons, example questions and the answer log."""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from tr_qa.config import Settings, validate_question
from tr_qa.errors import InputError, OverloadedError, TrQaError
from tr_qa.feedback import FeedbackStore, Vote, feedback_path
from tr_qa.web.addresses import rate_key
from tr_qa.web.chat_body import chat_body_check, displayable, history_messages
from tr_qa.web.feedback import index_generation
from tr_qa.web.limits import AnswerGate, RateLimiter
from tr_qa.web.render import NO_ANSWER, esc, result_html
from tr_qa.web.share import share_path

if TYPE_CHECKING:
    from tr_qa.qa import QA

log = logging.getLogger("tr_qa.web")

EXAMPLE_QUESTIONS = (
    "How much was the 2016 bail out?",
    "What losses are the Community Rehabilitation Companies facing by 2022?",
    "What share of probation work is now the responsibility of the CRCs?",
    "When was the probation privatisation extended to commercial companies?",
)
GRADIO_JS = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"
# The default orange button has white text at contrast 2.8 (axe: serious); a darker fill passes AA.
# One font family for everything: the system UI stack. Gradio's bundled Source Sans Pro SemiBold lacks most letters,
# so a heading mixed two fonts; system fonts have every glyph and nothing is fetched from elsewhere.
SYSTEM_FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif")
MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Consolas", "Liberation Mono", "monospace")
THEME = gr.themes.Default(primary_hue="blue", font=SYSTEM_FONTS, font_mono=MONO_FONTS).set(
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_text_color="white",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover_dark="*primary_800",
    button_primary_text_color_dark="white",
)
# Highlights: background plus a non-colour cue (a left rule on the sentence, bold for the short answer) and no
# underline, so they read neither as links nor as spelling errors. On a phone (narrow or touch) the conversation
# gets the height the screen has left, so the question box and Ask button stay on screen, and the keyboard hint
# goes (there is no Shift key to hold).
CHAT_CSS = """
#tr-qa-chat mark { background: #fff3a3; color: #1f2328; border-left: 3px solid #7d4e00; padding: 0 1px 0 2px; }
#tr-qa-chat mark strong { background: #ffd33d; font-weight: 700; }
#tr-qa-chat .tr-qa-source { font-size: 0.9em; }
#tr-qa-chat .tr-qa-note { font-style: italic; }
#tr-qa-hint { font-size: 0.85em; }
@media (max-width: 640px), (pointer: coarse) {
  #tr-qa-hint { display: none; }
}
@media (max-width: 640px) {
  #tr-qa-chat { height: 52vh !important; max-height: 52vh !important; }
  #tr-qa-chat:has(.placeholder-content) { height: 7rem !important; min-height: 0 !important; }
  #tr-qa-title h1 { font-size: 1.3rem; margin: 0; }
  #tr-qa-intro { display: none; }
  #tr-qa-actions > button { min-width: 0 !important; flex: 1 1 0 !important; padding-inline: 4px !important; }
  #tr-qa-examples button { min-height: 44px; }
}
"""


FOLLOW_UP_OPENERS = ("and ", "what about ", "how about ", "what else", "also ", "but ", "so ")
# Pronouns that need an earlier question to mean anything; "that"/"this" only where they stand for a thing.
BARE_PRONOUNS = frozenset({"it", "its", "they", "them", "their", "he", "she", "him", "her", "those", "these"})
DEMONSTRATIVES = frozenset({"that", "this"})
DEMONSTRATIVE_NEXT = frozenset(
    {"", "is", "was", "were", "are", "mean", "means", "happen", "happened", "cost", "about", "true", "right"}
)
FOLLOW_UP_NOTICE = (
    '<p class="tr-qa-note">Each question is answered on its own, without the earlier ones: if this one follows '
    "on from another, ask it again naming what it is about.</p>"
)
WORD = re.compile(r"[A-Za-z0-9£$%'’]+")


def looks_like_follow_up(question: str) -> bool:
    """Whether a question seems to lean on an earlier one: it opens like a follow-up ("and …", "what about …"),
    or it uses a bare pronoun before naming anything (a capitalised name, number or acronym) it could stand for."""
    text = " ".join(question.split()).lower()
    if text.startswith(FOLLOW_UP_OPENERS):
        return True
    words = WORD.findall(question)
    for i, word in enumerate(words):
        if i > 0 and (word[0].isupper() or any(c.isdigit() for c in word)):
            return False  # something is named before any pronoun: the pronoun can refer to it
        low = word.lower()
        after = words[i + 1].lower() if i + 1 < len(words) else ""
        if low in BARE_PRONOUNS or (low in DEMONSTRATIVES and after in DEMONSTRATIVE_NEXT):
            return True
    return False


TAG = re.compile(r"<[^>]*>")
ANSWER_P = re.compile(r"<p>(?:Answer: |Best guess, weak evidence: )(.*?)</p>", re.S)
# The browser side of "Copy answer": the newest reply's HTML is parsed (DOMParser runs no scripts) and its answer,
# first quote, citation and permalink are put on the clipboard as plain text.
COPY_JS = """(history) => {
  const last = [...(history || [])].reverse().find((m) => m.role === 'assistant');
  if (!last) return;
  const html = typeof last.content === 'string' ? last.content
    : (last.content || []).map((p) => p.text || '').join('');
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const text = (sel) => (doc.querySelector(sel)?.textContent || '').replace(/\\s+/g, ' ').trim();
  const lines = [text('p:not(.tr-qa-note):not(.tr-qa-source)')];
  const quote = text('blockquote');
  if (quote) lines.push('"' + quote + '" (' + text('p.tr-qa-source').replace(/^\\[1\\] /, '') + ')');
  const link = doc.querySelector('p.tr-qa-share a');
  if (link) lines.push(link.getAttribute('href'));
  navigator.clipboard.writeText(lines.filter(Boolean).join('\\n'));
}"""
# After each answer: scroll the conversation so the newest question is at its top, and bring the conversation back
# on screen if the page had scrolled it away (the question box and Ask button sit right below it).
SCROLL_JS = """() => new Promise((done) => requestAnimationFrame(() => {
  const chat = document.querySelector('#tr-qa-chat');
  const users = chat ? chat.querySelectorAll("[data-testid='user']") : [];
  const last = users[users.length - 1];
  const wrap = last && last.closest('.bubble-wrap');
  if (wrap) wrap.scrollTop += last.getBoundingClientRect().top - wrap.getBoundingClientRect().top - 8;
  if (chat && chat.getBoundingClientRect().top < 0) chat.scrollIntoView({block: 'start'});
  done([]);
}))"""
# Only on the chat's own page (or its iframe): inside the <gradio-app> widget, location is the campaign page's, whose
# own ?q= is none of the chat's business.
QUERY_JS = """() => {
  const root = window.gradio_config && window.gradio_config.root;
  if (!root || new URL(root, location.href).origin !== location.origin) return '';
  return (new URLSearchParams(location.search).get('q') || '').slice(0, 2000);
}"""


def html_text(fragment: str) -> str:
    """The plain text of a chat message's HTML (tags dropped, entities decoded)."""
    return " ".join(html.unescape(TAG.sub(" ", fragment.replace("<br>", "\n"))).split())


def shown_answer(reply: str) -> str:
    """The answer a reply showed, as plain text (the no-answer sentence when it abstained)."""
    match = ANSWER_P.search(reply)
    return html_text(match.group(1)) if match else (NO_ANSWER if NO_ANSWER in html.unescape(reply) else "")


def base_url_of(request: Any) -> str:
    """The app's own URL as the browser reached it, for absolute links."""
    if request is None:
        return ""
    return str(request.base_url).rstrip("/")


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
            if looks_like_follow_up(question):
                reply = FOLLOW_UP_NOTICE + reply
            link = html.escape(base_url_of(starlette_request) + share_path(question), quote=True)
            reply += (
                f'<p class="tr-qa-share"><a href="{link}" target="_blank" rel="noopener">Link to this answer</a></p>'
            )
        except OverloadedError as exc:
            return keep(
                f"<p>The server is busy answering other questions. Please try again in {exc.retry_after} seconds.</p>"
            )
        except TrQaError as exc:
            log.error("chat question failed: %s", exc)
            reply = f"<p>Sorry, that question could not be answered: {esc(str(exc))}</p>"
        return "", [*history, user, {"role": "assistant", "content": reply}]

    store = FeedbackStore(feedback_path(settings))
    # Votes have their own budget (the questions' rate), so voting never stops someone asking.
    vote_limiter = RateLimiter(limiter.limit, limiter.window)

    def vote(history: Any, data: gr.LikeData, request: gr.Request) -> None:
        """Store a thumbs up or down on an answer: its question, the answer shown, the vote, the index generation."""
        # All of it: the vote's index counts from the first message (RequestGuard has bounded the body's size).
        messages = history_messages(history, len(history) if isinstance(history, list) else 0)
        index = data.index if isinstance(data.index, int) else (data.index or [-1])[0]
        if not isinstance(index, int) or not 0 <= index < len(messages) or messages[index]["role"] != "assistant":
            return
        asked = next((m for m in reversed(messages[:index]) if m["role"] == "user"), None)
        if asked is None:
            return
        client = getattr(getattr(getattr(request, "request", None), "client", None), "host", "")
        if vote_limiter.check(rate_key(client or "")):
            return
        if data.liked is True or data.liked == "Like":
            verdict = 1
        elif data.liked is False or data.liked == "Dislike":
            verdict = -1
        else:
            return  # a vote taken back: nothing to store
        reply = messages[index]["content"]
        try:
            store.add(
                Vote(
                    html_text(asked["content"]),
                    shown_answer(reply),
                    NO_ANSWER in html.unescape(reply),
                    verdict,
                    index_generation(settings),
                )
            )
        except InputError as exc:
            log.info("vote not stored: %s", exc)

    async def ask_on_load(message: Any, history: list[dict[str, Any]], request: gr.Request) -> Any:
        """Answer the question of a ``/?q=...`` permalink when the page opens; nothing otherwise."""
        if not isinstance(message, str) or not message.strip():
            return gr.skip(), gr.skip()
        return await respond(message, history, request)

    with gr.Blocks(title="Ask the probation news archive", analytics_enabled=False) as demo:
        gr.Markdown("# Ask the probation news archive", elem_id="tr-qa-title")
        gr.Markdown(
            "Answers are quoted from the news articles in this collection. Each answer shows the passages it "
            "comes from: the answering sentence is marked, the short answer is marked and **bold**. "
            "Each question is answered on its own, so name what it is about.",
            elem_id="tr-qa-intro",
        )
        chatbot = gr.Chatbot(
            label="Conversation",
            show_label=False,  # the floating label chip covered the first line of a scrolled answer
            elem_id="tr-qa-chat",
            height=520,
            # Not to the bottom: after each answer SCROLL_JS brings the newest question to the top instead, so a
            # long answer is read from its start (on a phone the bottom is far below the question).
            autoscroll=False,
            # Messages are HTML built (and escaped) by result_html; no Markdown pass, so characters in the
            # documents such as * _ [ ] ( ) stay plain text. The sanitiser stays on as a second line of defence.
            render_markdown=False,
            sanitize_html=True,
            # Thumbs up/down under each answer (stored by `vote`); no copy button: it would copy the message's HTML.
            feedback_options=("Like", "Dislike"),
            buttons=[],
            placeholder="Ask a question about probation privatisation, or pick an example below.",
        )
        question = gr.Textbox(
            label="Your question",
            elem_id="tr-qa-question",
            placeholder="e.g. How much was the 2016 bail out?",
            max_lines=4,
            submit_btn=False,
        )
        gr.Markdown("Enter sends, Shift+Enter adds a line.", elem_id="tr-qa-hint")
        with gr.Row(elem_id="tr-qa-actions"):
            send = gr.Button("Ask", variant="primary", elem_id="tr-qa-send", scale=2)
            copy_btn = gr.Button("Copy answer", elem_id="tr-qa-copy", variant="secondary", scale=1)
            clear_btn = gr.Button("Clear chat", elem_id="tr-qa-clear", variant="secondary", scale=1)
        gr.Markdown("Try an example:")
        with gr.Row(elem_id="tr-qa-examples"):
            examples = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLE_QUESTIONS]

        # Waiting happens in the answer gate (shared with the API), so the chat lets as many handlers in as the
        # gate has room for; Gradio's own line holds at most as many more.
        common: dict[str, Any] = {"concurrency_limit": settings.answer_slots + settings.answer_queue}
        common["concurrency_id"] = "qa"
        # The chat's own events first, in the order clients have always seen them (fn_index is public); the
        # browser-only scroll after each answer, copy, votes and the permalink's ask-on-load come after them.
        answered = [
            question.submit(respond, [question, chatbot], [question, chatbot], api_name="ask", **common),
            send.click(respond, [question, chatbot], [question, chatbot], api_visibility="private", **common),
        ]
        for btn in examples:
            # The button's own label is the question: fill the box in the browser, then answer as usual. The
            # fill and the clear button run only in the browser, so the server needs no route for direct calls.
            filled = btn.click(None, btn, question, js="(q) => q", api_visibility="private")
            answered.append(
                filled.then(respond, [question, chatbot], [question, chatbot], api_visibility="private", **common)
            )
        clear_btn.click(None, None, [question, chatbot], js="() => ['', []]", api_visibility="private")
        # Copy runs in the browser only: the newest answer as plain text (answer, quote, citation, permalink).
        copy_btn.click(None, chatbot, None, js=COPY_JS, api_visibility="private")
        chatbot.like(vote, chatbot, None, api_visibility="private", concurrency_limit=4)
        # A /?q=... permalink: the browser puts the question in the box, then it is answered like a typed one.
        loaded = demo.load(None, None, question, js=QUERY_JS, api_visibility="private")
        answered.append(
            loaded.then(ask_on_load, [question, chatbot], [question, chatbot], api_visibility="private", **common)
        )
        for event in answered:
            event.then(None, None, None, js=SCROLL_JS, api_visibility="private")
    # api_open=False: the REST shortcut /gradio_api/run/… would skip the queue, its limits and the rate limit.
    demo.queue(
        api_open=False,
        default_concurrency_limit=settings.answer_slots + settings.answer_queue,
        max_size=max(1, settings.answer_queue),
    )
    return demo, chat_body_check(demo, respond, vote, ask_on_load)
