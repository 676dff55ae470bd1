"""Caching and compression for every response of the app.

``CachePolicy`` gives Gradio's content-hashed build files a year of immutable caching (the same URL never holds
other bytes) and its unhashed theme files a day. ``Compression`` sends HTML, JavaScript, CSS and JSON as brotli or
gzip, whichever the client accepts. Both sit outside every other middleware, so error pages, the chat's config and
the API's answers are compressed as well, and ``JsonErrors`` still reads the plain bodies it rewrites.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tr_qa.web.security import header

try:  # a dependency of Gradio, so present wherever the app runs; gzip alone if it ever is not
    import brotli as _brotli
except ImportError:  # pragma: no cover
    _brotli = None

IMMUTABLE = "public, max-age=31536000, immutable"
DAY = "public, max-age=86400"
# Vite names every build file name-<hash>.<ext>; the hash is 8 or more characters of [A-Za-z0-9_-].
HASHED_ASSET = re.compile(r"^/assets/(?:[^/]+/)*[^/]+-[A-Za-z0-9_-]{8,}\.[A-Za-z0-9]+$")
CACHE_RULES: tuple[tuple[re.Pattern[str], str], ...] = ((HASHED_ASSET, IMMUTABLE), (re.compile(r"^/static/"), DAY))
COMPRESSIBLE = frozenset(
    {
        "text/html",
        "text/css",
        "text/javascript",
        "application/javascript",
        "application/json",
        "application/manifest+json",
        "image/svg+xml",
        "text/plain",
    }
)
PREFERENCE = ("br", "gzip") if _brotli is not None else ("gzip",)


def brotli_compress(body: bytes, quality: int = 5) -> bytes | None:
    """``body`` as brotli, or None where the brotli module is missing."""
    return None if _brotli is None else bytes(_brotli.compress(body, quality=quality))


def accepted_encoding(accept: str, available: Sequence[str] = PREFERENCE) -> str | None:
    """The preferred encoding (brotli, then gzip) among ``available`` that an Accept-Encoding header allows."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        name, _, params = part.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[name] = weight
    for encoding in PREFERENCE:
        if encoding in available and weights.get(encoding, weights.get("*", 0.0)) > 0:
            return encoding
    return None


class CachePolicy:
    """Sets Cache-Control on successful GET responses that have none, by path (first matching rule wins)."""

    def __init__(self, app: ASGIApp, rules: Sequence[tuple[re.Pattern[str], str]] = CACHE_RULES) -> None:
        self.app = app
        self.rules = tuple(rules)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        policy = next((value for pattern, value in self.rules if pattern.search(scope["path"])), None)
        if policy is None:
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (200, 304):
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                if "cache-control" not in headers:
                    headers["Cache-Control"] = policy
                message = {**message, "headers": headers.raw}
            await send(message)

        await self.app(scope, receive, with_policy)


class _Stream:
    """Compresses a streamed body piece by piece, flushing each piece so none waits in the compressor."""

    def __init__(self, encoding: str, gzip_level: int, brotli_quality: int) -> None:
        self.encoding = encoding
        self.gzip: Any = None
        self.brotli: Any = None
        if encoding == "br" and _brotli is not None:
            self.brotli = _brotli.Compressor(quality=brotli_quality)
        else:
            self.gzip = zlib.compressobj(gzip_level, zlib.DEFLATED, 31)  # wbits 31: a gzip stream

    def feed(self, data: bytes, final: bool) -> bytes:
        if self.brotli is not None:
            out = self.brotli.process(data)
            return bytes(out + (self.brotli.finish() if final else self.brotli.flush()))
        out = self.gzip.compress(data)
        return out + self.gzip.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


class Compression:
    """Brotli or gzip for text responses (HTML, JavaScript, CSS, JSON, SVG), as the client's Accept-Encoding allows.

    Passed unchanged: HEAD requests, responses already encoded (Gradio compresses some files itself), partial and
    empty ones, ``Cache-Control: no-transform``, bodies under ``minimum_size``, and every other type, notably
    ``text/event-stream``: the chat's answers arrive as one, and a compressor would hold them back. A body sent in
    one piece is compressed whole; a streamed one piece by piece.
    """

    def __init__(self, app: ASGIApp, minimum_size: int = 512, gzip_level: int = 6, brotli_quality: int = 5) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.gzip_level = gzip_level
        self.brotli_quality = brotli_quality

    def compressible(self, status: int, headers: MutableHeaders) -> bool:
        """Whether a response with this status and these headers may be compressed."""
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        return (
            status >= 200
            and status not in (204, 206, 304)
            and content_type in COMPRESSIBLE
            and "content-encoding" not in headers
            and "no-transform" not in headers.get("cache-control", "").lower()
        )

    def compress(self, body: bytes, encoding: str) -> bytes:
        """A whole body in one go (gzip with a fixed timestamp, so equal bodies compress to equal bytes)."""
        if encoding == "br":
            compressed = brotli_compress(body, self.brotli_quality)
            if compressed is not None:
                return compressed
        return gzip.compress(body, self.gzip_level, mtime=0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        encoding = accepted_encoding(header(scope, b"accept-encoding") or "")
        if encoding is not None and "http.response.pathsend" in scope.get("extensions", {}):
            # A file sent by path bypasses the body messages this middleware compresses.
            extensions = {k: v for k, v in scope["extensions"].items() if k != "http.response.pathsend"}
            scope = {**scope, "extensions": extensions}
        held: Message | None = None  # the response start, kept until the first body piece shows its size
        stream: _Stream | None = None

        async def compressing(message: Message) -> None:
            nonlocal held, stream
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                if self.compressible(message["status"], headers):
                    headers.add_vary_header("Accept-Encoding")
                    if encoding is not None:
                        held = {**message, "headers": headers.raw}
                        return
                await send({**message, "headers": headers.raw})
                return
            if message["type"] != "http.response.body" or held is None:
                await send(message)
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if stream is None:
                start, held_headers = held, MutableHeaders(raw=held["headers"])
                if not more and len(body) < self.minimum_size:
                    held = None
                    await send(start)
                    await send(message)
                    return
                assert encoding is not None
                held_headers["Content-Encoding"] = encoding
                etag = held_headers.get("etag")
                if etag and not etag.startswith("W/"):
                    # The compressed bytes differ from the plain ones, so the validator may only claim equivalence.
                    held_headers["ETag"] = f"W/{etag}"
                if not more:
                    held = None
                    data = self.compress(body, encoding)
                    held_headers["Content-Length"] = str(len(data))
                    await send(start)
                    await send({"type": "http.response.body", "body": data, "more_body": False})
                    return
                if "content-length" in held_headers:
                    del held_headers["Content-Length"]
                stream = _Stream(encoding, self.gzip_level, self.brotli_quality)
                await send(start)
            await send({"type": "http.response.body", "body": stream.feed(body, final=not more), "more_body": more})
            if not more:
                held = None

        await self.app(scope, receive, compressing)
