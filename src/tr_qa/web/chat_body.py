"""What a chat request may hold: a question, a history of text messages and one of the chat's own events (or a
vote on a message). Checked before Gradio sees the body, which would raise on anything else; the history is cut to
text messages before it is echoed back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

import gradio as gr
from pydantic import BaseModel, ConfigDict, ValidationError

SURROGATES = re.compile("[\ud800-\udfff]")


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


class VoteCall(BaseModel):
    """The body of a thumbs up/down: the history and Gradio's event data naming the message voted on."""

    model_config = ConfigDict(extra="ignore")
    data: tuple[list[ChatMessage]]
    event_data: dict[str, Any]
    fn_index: int


def chat_body_check(
    demo: gr.Blocks,
    respond: Callable[..., Any],
    vote: Callable[..., Any] | None = None,
    on_load: Callable[..., Any] | None = None,
) -> Callable[[bytes], str | None]:
    """A check for chat request bodies, run before Gradio sees them: anything but a question, a history of text
    messages and one of the chat's own events (or a vote on a message) is refused with a one-line reason (Gradio
    would raise on it)."""
    events = {fn_id for fn_id, fn in demo.fns.items() if fn.fn is respond or (on_load is not None and fn.fn is on_load)}
    vote_events = {fn_id for fn_id, fn in demo.fns.items() if vote is not None and fn.fn is vote}

    def problem(raw: bytes) -> str | None:
        try:
            # Python's parser, not pydantic's: a lone surrogate must reach respond, which names the rule it breaks.
            # (RequestGuard has already bounded the body's size and depth.)
            data = json.loads(raw)
        except ValueError as exc:
            return f"not a chat request: the body is not JSON ({' '.join(str(exc).split())[:120]})"
        if isinstance(data, dict) and data.get("fn_index") in vote_events:
            try:
                VoteCall.model_validate(data)
            except ValidationError as exc:
                err = exc.errors(include_url=False, include_input=False)[0]
                where = ".".join(str(part) for part in err["loc"]) or "body"
                return f"not a vote: {where}: {err['msg']} (expected the history and the message voted on)"
            return None
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
