"""Adding a document to the running server: ``POST /api/documents`` (admin only), answered from the new index at once.

The route exists only while ``TR_QA_ADMIN_TOKEN`` is set (at least 16 characters); without it every request gets
404, as for any unknown path. A request must carry ``Authorization: Bearer <token>`` (compared in constant time)
or gets 401 before its body is read. The body is the document's bytes, at most ``TR_QA_MAX_UPLOAD_BYTES`` (413
past it), with a document Content-Type (415 otherwise); ``?name=report.pdf`` names it in the corpus and
``?replace=true`` lets it overwrite a different file of that name (409 otherwise). What the bytes are decides how
they are read (``tr_qa.extract``): bytes that are no document type at all get 415, a document that cannot be read
(encrypted, scanned without text, damaged) gets 400 with the reason.

The file is written into the corpus folder and the index updated (only its text is embedded) while the server
keeps answering from the old index; then a new QA object for the new generation replaces the one the app uses,
under a lock. Questions already running finish on the old object; every later one gets the new one. Uploads are
handled one at a time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from typing import TYPE_CHECKING, Any, cast

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from tr_qa.analyse import Analyser
from tr_qa.config import Settings
from tr_qa.corpus import ConflictError, add_incoming, incoming
from tr_qa.errors import InputError
from tr_qa.extract import ExtractError, sniff
from tr_qa.index.store import ids_by_hash
from tr_qa.types import meta_dict
from tr_qa.web.security import Authorize, Route, header

if TYPE_CHECKING:
    from tr_qa.qa import QA

log = logging.getLogger("tr_qa.web")

PATH = "/api/documents"
MIN_TOKEN_CHARS = 16
# What a client may declare; what the bytes really are is decided by reading them.
UPLOAD_TYPES = frozenset(
    {
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "text/html",
        "text/markdown",
        "text/plain",
        "application/octet-stream",
    }
)
QUERY_KEYS = frozenset({"name", "replace"})
NAME_MAX_CHARS = 120


class LiveQA:
    """The QA object the app answers from; ``swap`` replaces it atomically when a new index generation is loaded.

    Attribute reads go to the current object, so ``live.ask`` taken by a request stays bound to the object that
    was current then, and a question in flight finishes on it.
    """

    def __init__(self, qa: QA) -> None:
        self._qa = qa
        self._lock = threading.Lock()
        # Held while a new generation is built or loaded for this server (an upload, tr_qa.web.reload), so the
        # same generation is never loaded twice.
        self.update_lock = threading.Lock()

    @property
    def current(self) -> QA:
        """The QA object new requests use."""
        return self._qa

    def swap(self, qa: QA) -> QA:
        """Make ``qa`` the current object; returns the one it replaces."""
        with self._lock:
            old, self._qa = self._qa, qa
        return old

    def as_qa(self) -> QA:
        """This proxy, typed as the QA it stands for (for code that takes a QA)."""
        return cast("QA", self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._qa, name)


def check_token(token: str) -> str:
    """The admin token, or InputError: long enough to resist guessing, visible ASCII only (it travels in a header)."""
    if len(token) < MIN_TOKEN_CHARS:
        raise InputError(f"TR_QA_ADMIN_TOKEN must be at least {MIN_TOKEN_CHARS} characters, got {len(token)}")
    if not all(33 <= ord(c) < 127 for c in token):
        raise InputError("TR_QA_ADMIN_TOKEN must be visible ASCII characters only (no spaces)")
    return token


def bearer_check(token: str) -> Authorize:
    """The route's authorize hook: None for ``Authorization: Bearer <token>``, else a 401 with WWW-Authenticate."""
    expected = hashlib.sha256(check_token(token).encode()).digest()

    def authorize(scope: Scope) -> tuple[int, str, dict[str, str]] | None:
        scheme, _, given = (header(scope, b"authorization") or "").strip().partition(" ")
        # Digests of equal length, compared in constant time: neither the token nor its length leaks by timing.
        same = hmac.compare_digest(hashlib.sha256(given.strip().encode("latin-1")).digest(), expected)
        if scheme.lower() == "bearer" and same:
            return None
        return 401, "a valid admin token is required (Authorization: Bearer …)", {"WWW-Authenticate": "Bearer"}

    return authorize


def admin_routes(settings: Settings) -> dict[str, Route]:
    """The admin route for the route allowlist (none while no admin token is set)."""
    if not settings.admin_token:
        return {}
    return {
        PATH: Route(
            frozenset({"POST"}), settings.upload_bytes, UPLOAD_TYPES, authorize=bearer_check(settings.admin_token)
        )
    }


def upload_name(value: str | None) -> str:
    """The ``name`` query value as a corpus file name; InputError naming what is wrong with it."""
    if not value:
        raise InputError("name is missing: add ?name=report.pdf to say what the document is called")
    if len(value) > NAME_MAX_CHARS:
        raise InputError(f"name is too long: {len(value)} characters, the limit is {NAME_MAX_CHARS}")
    if "/" in value or "\\" in value or value.startswith(".") or not value.isprintable():
        raise InputError(f"name {value[:80]!r} must be a plain file name (no folders, no leading dot)")
    return value


def flag(name: str, value: str | None) -> bool:
    """A true/false query value; InputError naming anything else."""
    if value is None or value.lower() in ("", "0", "false", "no"):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    raise InputError(f"{name} must be true or false, got {value[:40]!r}")


def add_admin(app: FastAPI, live: LiveQA, settings: Settings) -> None:
    """Register ``POST /api/documents`` on ``app`` when an admin token is set (see ``admin_routes``)."""
    if not settings.admin_token:
        return
    check_token(settings.admin_token)
    analyser = Analyser()  # spaCy loads on the first upload and stays loaded for the next

    def add(name: str, data: bytes, replace: bool) -> JSONResponse:
        if not data:
            raise InputError(f"{name}: the request body is empty; send the document's bytes as the body")
        try:
            sniff(data, name)
        except ExtractError as exc:
            return JSONResponse({"error": f"{name} {exc}"}, status_code=415)
        try:
            item = incoming(name, data, f"upload {name}")
        except ExtractError as exc:
            raise InputError(f"{name} {exc}") from None
        with live.update_lock:  # one upload at a time
            qa = live.current
            try:
                report = add_incoming(
                    qa.settings,
                    [item],
                    replace=replace,
                    known=ids_by_hash(qa.documents),
                    embedder=qa.embedder,
                    analyser=analyser,
                    log=log.info,
                )
            except ConflictError as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)
            if not report.added:
                return JSONResponse({"error": f"{name}: {report.refused[0].reason}"}, status_code=409)
            new = qa
            if not report.build.unchanged:
                from tr_qa.qa import QA

                reader = qa.reader  # already loaded and warmed: shared, not loaded again
                new = QA.load(settings=qa.settings, embedder=qa.embedder, reader=reader)
                live.swap(new)
        doc = new.document(name)
        log.info("document %s %s; the index now holds %d documents", name, report.added[0].status, len(new.documents))
        return JSONResponse(
            {
                "doc": doc.id,
                "status": report.added[0].status,
                "title": doc.title,
                "meta": meta_dict(doc.meta),
                "pages": len(doc.pages),
                "chunks": new.data.chunk_counts()[doc.id],
                "documents": len(new.documents),
            }
        )

    @app.post(PATH)
    async def add_document(request: Request) -> JSONResponse:
        """Add (or with ``?replace=true`` replace) one document and answer from the new index."""
        unknown = sorted(set(request.query_params) - QUERY_KEYS)
        if unknown:
            raise InputError(f"unknown query parameter(s): {', '.join(unknown)}; expected name and replace")
        name = upload_name(request.query_params.get("name"))
        replace = flag("replace", request.query_params.get("replace"))
        data = await request.body()  # whole and bounded: RequestGuard has read it under the upload limit
        return await run_in_threadpool(add, name, data, replace)
