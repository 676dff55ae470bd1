"""What every request passes before it reaches a route: client addresses, allowed routes, body limits, JSON errors
and security headers. Each piece is a small ASGI middleware; ``tr_qa.web.app`` stacks them. Parsing the configured
origins and proxies, and finding a request's real client, live in ``tr_qa.web.addresses``.

Order, outermost first: SecurityHeaders → JsonErrors → ClientAddress → CORS → RequestGuard → routes. So every
response (errors included) gets the headers, every error (Gradio's too) is JSON, the rate limit sees the real client,
CORS preflights are answered before the route check, and nothing reaches a route with an unbounded body. Outside
them all, ``tr_qa.web.compress`` adds caching headers and compresses what goes out.
"""

from __future__ import annotations

import http
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tr_qa.web.addresses import IPNetwork, real_client

log = logging.getLogger("tr_qa.web")

JSON_TYPE = "application/json"
# An error body from a route is read back only to turn it into {"error": ...}; nothing legitimate is longer.
MAX_ERROR_BODY = 65_536
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


# ---------------------------------------------------------------------------------------------------------------
# Small helpers for raw ASGI messages


def header(scope_or_message: Mapping[str, Any], name: bytes) -> str | None:
    """The first value of a header (latin-1 decoded), or None."""
    for key, value in scope_or_message.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def json_message(status: int, message: str, headers: Mapping[str, str] | None = None) -> tuple[Message, Message]:
    """The two ASGI messages of a ``{"error": message}`` response."""
    body = json.dumps({"error": message}, ensure_ascii=False).encode()
    raw = [(b"content-type", JSON_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    return {"type": "http.response.start", "status": status, "headers": raw}, {
        "type": "http.response.body",
        "body": body,
    }


async def send_error(send: Send, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
    """Send a complete ``{"error": message}`` response."""
    start, body = json_message(status, message, headers)
    await send(start)
    await send(body)


def json_depth(raw: bytes) -> int:
    """How deeply a JSON text nests arrays and objects (brackets inside strings do not count)."""
    if raw.count(b"[") + raw.count(b"{") == 0:
        return 0
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


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
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class JsonErrors:
    """Every error response becomes ``{"error": "..."}`` with its 4xx/5xx status, Gradio's and Starlette's too.

    An exception that escapes a route (or Gradio) becomes a JSON 500 and one log line, never a traceback on the
    wire or in the log. A JSON error that already has a string ``error`` passes unchanged; one with a string
    ``detail`` (FastAPI, Gradio) keeps that text; anything else (plain text, a 422 that echoes the request) gets
    the status's own words. A 503 without Retry-After gets one. Paths under ``html_prefixes`` keep their HTML
    error pages: people reach them by following links.
    """

    def __init__(
        self, app: ASGIApp, retry_after: Callable[[], int], html_prefixes: tuple[str, ...] = ("/doc/",)
    ) -> None:
        self.app = app
        self.retry_after = retry_after
        self.html_prefixes = html_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None  # the start of an error response, kept until its body is read
        body = bytearray()
        state = {"started": False, "done": False}
        keep_html = scope["path"].startswith(self.html_prefixes)

        async def guarded(message: Message) -> None:
            nonlocal held
            if state["done"]:
                return
            if message["type"] == "http.response.start":
                if message["status"] >= 400 and not keep_html:
                    held = message
                    return
                state["started"] = True
            elif message["type"] == "http.response.body":
                if held is not None:
                    if len(body) < MAX_ERROR_BODY:
                        body.extend(message.get("body", b"")[: MAX_ERROR_BODY - len(body)])
                    if not message.get("more_body", False):
                        state["started"] = state["done"] = True
                        await self._send_json(send, held, bytes(body))
                    return
                state["done"] = not message.get("more_body", False)
            await send(message)

        try:
            await self.app(scope, receive, guarded)
        except Exception as exc:
            text = " ".join(str(exc).split())[:200]
            where = (type(exc).__name__, scope.get("method"), scope["path"], text)
            if not state["started"]:
                log.error("unexpected %s on %s %s: %s", *where)
                await send_error(send, 500, "internal error; the server log has the details")
            else:
                # A stream that already told the client what went wrong (Gradio's event streams do, e.g. for an
                # unknown session) and then raised: end it cleanly rather than leave the client hanging.
                log.info("stream ended by %s on %s %s: %s", *where)
                if not state["done"]:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            log.debug("traceback of the error above", exc_info=True)

    async def _send_json(self, send: Send, start: Message, body: bytes) -> None:
        status = int(start["status"])
        message = self._message(status, header(start, b"content-type") or "", body)
        keep = {b"content-type", b"content-length"}
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", []) if k.lower() not in keep
        }
        if status == 503 and not any(k.lower() == "retry-after" for k in headers):
            headers["Retry-After"] = str(self.retry_after())
        await send_error(send, status, message, headers)

    @staticmethod
    def _message(status: int, content_type: str, body: bytes) -> str:
        phrase = http.HTTPStatus(status).phrase.lower() if status in http.HTTPStatus._value2member_map_ else "error"
        if JSON_TYPE in content_type.lower():
            try:
                data = json.loads(body)
            except (ValueError, RecursionError):
                data = None
            if isinstance(data, dict):
                for key in ("error", "detail"):
                    value = data.get(key)
                    if isinstance(value, str) and value.strip():
                        return " ".join(value.split())[:300]
        if status == 422:  # FastAPI's validation errors list (and echo) the input: say what it means instead
            return "the request does not have the shape this route expects"
        return phrase


class ClientAddress:
    """Believes X-Forwarded-For / X-Forwarded-Proto only from trusted proxies; rewrites the ASGI client and scheme.

    Without trusted proxies the headers are ignored, so a client cannot choose the address it is rate limited as.
    """

    def __init__(self, app: ASGIApp, trusted: tuple[IPNetwork, ...]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted and scope.get("client"):
            peer = scope["client"][0]
            forwarded = ",".join(v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"x-forwarded-for")
            client = real_client(peer, forwarded, self.trusted)
            if client != peer:
                scope = {**scope, "client": (client, 0)}
                proto = (header(scope, b"x-forwarded-proto") or "").split(",")[-1].strip().lower()
                if proto in ("http", "https"):
                    scope["scheme"] = proto if scope["type"] == "http" else {"http": "ws", "https": "wss"}[proto]
        await self.app(scope, receive, send)


# A route's check of a request's headers, run before its body is read: (status, message, headers) to refuse it.
Authorize = Callable[[Scope], tuple[int, str, dict[str, str]] | None]


@dataclass(frozen=True)
class Route:
    """An allowed route: its methods, the largest request body it takes, the body types it takes (JSON when none
    are listed) and, optionally, a check that must pass before the body is read (e.g. an admin token)."""

    methods: frozenset[str]
    body_bytes: int
    content_types: frozenset[str] = frozenset()
    authorize: Authorize | None = None


class RequestGuard:
    """Deny by default: only listed routes and methods pass (404/405 otherwise); a route's own check of the
    headers (an admin token) runs next; a POST must be JSON, or one of the route's own types (415);
    a body over the route's limit gets 413 without being read further; JSON nested too deeply, or a body its
    route's check refuses, gets 400.

    The body is read here, bounded, and handed to the route from memory, so no route (Gradio's included) ever
    parses more than its limit. Requiring ``application/json`` also makes every cross-site "simple" request (a
    form or ``text/plain`` POST that a browser sends without asking) fail before it costs anything.
    """

    def __init__(
        self,
        app: ASGIApp,
        exact: Mapping[str, Route],
        prefixes: Mapping[str, Route],
        max_depth: int,
        checks: Mapping[str, Callable[[bytes], str | None]] | None = None,
    ) -> None:
        self.app = app
        self.exact = dict(exact)
        self.prefixes = sorted(prefixes.items(), key=lambda item: -len(item[0]))
        self.max_depth = max_depth
        self.checks = dict(checks or {})  # path → a body check returning what is wrong, or None

    def route(self, path: str) -> Route | None:
        """The rule for a path: an exact entry, else the longest matching prefix."""
        if path in self.exact:
            return self.exact[path]
        return next((rule for prefix, rule in self.prefixes if path.startswith(prefix)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":  # the app serves no websockets
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        rule = self.route(scope["path"])
        if rule is None:
            await send_error(send, 404, f"not found: {scope['path'][:200]}")
            return
        method = scope["method"]
        if method not in rule.methods:
            allowed = ", ".join(sorted(rule.methods))
            await send_error(send, 405, f"method {method} is not allowed here (allowed: {allowed})", {"Allow": allowed})
            return
        refused = rule.authorize(scope) if rule.authorize is not None else None
        if refused is not None:
            await send_error(send, *refused)
            return
        content_type = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if method == "POST" and content_type not in (rule.content_types or {JSON_TYPE}):
            shown = content_type or "none"
            wanted = "one of " + ", ".join(sorted(rule.content_types)) if rule.content_types else JSON_TYPE
            await send_error(send, 415, f"Content-Type must be {wanted}, got {shown[:80]}")
            return
        length = header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await send_error(send, 400, "Content-Length must be a whole number")
                return
            if int(length) > rule.body_bytes:
                await send_error(send, 413, f"request body is too large (limit {rule.body_bytes} bytes)")
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > rule.body_bytes:
                await send_error(send, 413, f"request body is too large (limit {rule.body_bytes} bytes)")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        if raw and content_type == JSON_TYPE and json_depth(raw) > self.max_depth:
            await send_error(send, 400, f"JSON body nests too deeply (more than {self.max_depth} levels)")
            return
        check = self.checks.get(scope["path"])
        problem = check(raw) if check is not None and method == "POST" else None
        if problem:
            await send_error(send, 400, problem)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as a route streaming a reply does

        await self.app(scope, replay, send)
