"""The light embed for other sites, served from the package: ``/embed.js`` (the dependency-free ``<tr-qa-chat>``
element: launcher, panel, "unavailable" state) and ``/embed-chat.js`` (the conversation, loaded by the first when a
visitor opens the launcher, or at once for an inline chat). Each carries its stylesheet; ``/embed.css`` and
``/embed-chat.css`` are the same sheets for browsers without constructable stylesheets.

The files are read and compressed (brotli and gzip) once and served from memory. Unversioned URLs are cached
briefly (``/embed.js`` is the one URL every campaign page names, so a new version must reach them soon); with
``?v=<version>`` (what ``/embed.js`` itself uses for the others) they are cached for a year, as that content never
changes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import Response

from tr_qa.web.compress import IMMUTABLE, accepted_encoding, brotli_compress

SHORT_CACHE = "public, max-age=300"
JS_TYPE = "text/javascript; charset=utf-8"
CSS_TYPE = "text/css; charset=utf-8"


@dataclass(frozen=True)
class Asset:
    """One served file: its bytes plain and compressed, its type and its version (which is also its ETag)."""

    plain: bytes
    media_type: str
    version: str
    encoded: dict[str, bytes]

    @classmethod
    def of(cls, body: bytes, media_type: str, version: str) -> Asset:
        """Compress ``body`` once, as tightly as each encoding goes (it is served many times)."""
        encoded = {"gzip": gzip.compress(body, 9, mtime=0)}
        br = brotli_compress(body, quality=11)
        if br is not None:
            encoded["br"] = br
        return cls(body, media_type, version, encoded)


# The embed's files: each script carries its stylesheet, put in its slot when the app starts.
SCRIPTS = {"embed.js": ("embed.css", '"__TR_QA_CSS__"'), "embed-chat.js": ("embed-chat.css", '"__TR_QA_CHAT_CSS__"')}
VERSION_SLOT = '"__TR_QA_VERSION__"'


@dataclass(frozen=True)
class EmbedAssets:
    """The embed's files as served, by URL path, and their shared version."""

    files: dict[str, Asset]
    version: str


def strip_js_comments(js: str) -> str:
    """The script without its comment lines and blank lines (the package keeps the commented source).

    Line-based, so only for code written to its rules, which are checked: a comment starts a line (``//`` or
    ``/*``; ``/*!``, the header, stays), a block comment ends a line, and no string or template spans lines.
    """
    out: list[str] = []
    in_block = False
    for number, line in enumerate(js.splitlines(), 1):
        text = line.strip()
        if in_block:
            in_block = not text.endswith("*/")
            continue
        if text.startswith("/*") and not text.startswith("/*!"):
            in_block = not text.endswith("*/")
            continue
        if not text or text.startswith("//"):
            continue
        if text.count("`") % 2 or text.endswith("\\"):
            raise RuntimeError(f"line {number} of an embed script continues a string on the next line")
        out.append(line.rstrip())
    if in_block:
        raise RuntimeError("an embed script ends inside a block comment")
    return "\n".join(out) + "\n"


def strip_css_comments(css: str) -> str:
    """The stylesheet without comments, indentation or blank lines (its strings never hold ``/*``)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    return "\n".join(line.strip() for line in css.splitlines() if line.strip()) + "\n"


def load_embed_assets() -> EmbedAssets:
    """Read the embed's files from the package and put each stylesheet, and the version, into its script."""
    static = files("tr_qa") / "static"
    names = [*SCRIPTS, *(sheet for sheet, _slot in SCRIPTS.values())]
    source = {name: (static / name).read_text(encoding="utf-8") for name in names}
    version = hashlib.sha256("\0".join(source[name] for name in names).encode()).hexdigest()[:12]
    # Comments are for people reading the source; visitors would download them with every page.
    text = {name: (strip_js_comments if name.endswith(".js") else strip_css_comments)(source[name]) for name in names}
    served: dict[str, Asset] = {}
    for script, (sheet, slot) in SCRIPTS.items():
        body = text[script]
        if body.count(slot) != 1 or body.count(VERSION_SLOT) > 1:
            raise RuntimeError(f"{script} must hold its stylesheet slot once and the version slot at most once")
        # JSON strings are JavaScript strings (ES2019 allows U+2028/U+2029 in them too).
        body = body.replace(slot, json.dumps(text[sheet])).replace(VERSION_SLOT, json.dumps(version))
        served[f"/{script}"] = Asset.of(body.encode(), JS_TYPE, version)
        served[f"/{sheet}"] = Asset.of(text[sheet].encode(), CSS_TYPE, version)
    return EmbedAssets(served, version)


def etag_matches(if_none_match: str | None, version: str) -> bool:
    """Whether an If-None-Match header names this version (strong or weak, or ``*``)."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in if_none_match.split(",")}
    return version in tags or "*" in tags


def asset_response(request: Request, asset: Asset) -> Response:
    """The asset, compressed as the client accepts, with its ETag; 304 when the client already has it."""
    pinned = request.query_params.get("v") == asset.version
    headers = {
        "Cache-Control": IMMUTABLE if pinned else SHORT_CACHE,
        "ETag": f'"{asset.version}"',
        "Vary": "Accept-Encoding",
        # Meant for other sites' pages, including ones that only load resources marked for them (COEP).
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if etag_matches(request.headers.get("if-none-match"), asset.version):
        return Response(status_code=304, headers=headers)
    encoding = accepted_encoding(request.headers.get("accept-encoding", ""), tuple(asset.encoded))
    if encoding is None:
        return Response(asset.plain, media_type=asset.media_type, headers=headers)
    headers["Content-Encoding"] = encoding
    return Response(asset.encoded[encoding], media_type=asset.media_type, headers=headers)


def add_embed(app: FastAPI) -> EmbedAssets:
    """Register ``/embed.js``, ``/embed-chat.js`` and their stylesheets on ``app``; the assets they serve."""
    assets = load_embed_assets()

    def serve(request: Request) -> Response:
        """One of the embed's files (the route's path names it)."""
        return asset_response(request, assets.files[request.url.path])

    for path in assets.files:
        app.add_api_route(path, serve, methods=["GET", "HEAD"], include_in_schema=False)
    return assets
