"""The JSON API: ``POST /api/ask`` (a pydantic request model), ``GET /healthz`` and ``/readyz``, with one exception
handler that turns the project's errors and validation errors into ``{"error": "..."}`` with the right status."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from tr_qa.config import MAX_QUESTION_CHARS, validate_k, validate_question
from tr_qa.errors import BusyError, InputError, RateLimitError, TrQaError
from tr_qa.types import Filters
from tr_qa.web.addresses import rate_key
from tr_qa.web.limits import AnswerGate, RateLimiter

if TYPE_CHECKING:
    from tr_qa.qa import QA

log = logging.getLogger("tr_qa.web")
EXAMPLE_BODY = '{"question": "...", "k": 5}'


class AskRequest(BaseModel):
    """The body of ``POST /api/ask``: a question and, optionally, how many passages to return."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str
    k: int | None = None
    # Only documents of this outlet, kind or publication period: {"kind": "news report", "published_from": ...}.
    filters: Filters | None = None

    @field_validator("question", mode="before")
    @classmethod
    def _question(cls, value: object, info: ValidationInfo) -> str:
        # The same rules as the CLI and the Python API; the web's own length limit comes in as context.
        return validate_question(value, (info.context or {}).get("max_chars", MAX_QUESTION_CHARS))

    @field_validator("k", mode="before")
    @classmethod
    def _k(cls, value: object) -> int:
        return validate_k(value)

    @field_validator("filters", mode="plain")
    @classmethod
    def _filters(cls, value: object) -> Filters | None:
        return Filters.of(value)  # InputError naming anything it cannot use


def validation_message(exc: ValidationError) -> str:
    """One line for the first problem pydantic found, in the words the CLI uses."""
    err = exc.errors(include_url=False, include_input=False)[0]
    kind, loc = err["type"], err["loc"]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, InputError):
        return str(cause)
    if kind == "json_invalid":
        detail = err["msg"].removeprefix("Invalid JSON: ")
        if "surrogate" in detail or "hex escape" in detail:
            detail = "a \\u escape is a lone surrogate (\\ud800-\\udfff), which is not Unicode text: " + detail
        return f"body must be JSON like {EXAMPLE_BODY}; {detail}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"body must be a JSON object like {EXAMPLE_BODY}"
    if kind == "missing":
        return f"{loc[-1]} is missing"
    if kind == "extra_forbidden":
        unknown = sorted(str(e["loc"][-1]) for e in exc.errors() if e["type"] == "extra_forbidden")
        return f"unknown field(s): {', '.join(unknown)}; expected question, k and filters"
    return f"{'.'.join(map(str, loc)) or 'body'}: {err['msg']}"


async def error_response(_request: Request, exc: Exception) -> JSONResponse:
    """The one exception handler: the error's own one-line message, its status, and Retry-After when busy."""
    headers: dict[str, str] = {}
    if isinstance(exc, ValidationError):
        status, message = 400, validation_message(exc)
    elif isinstance(exc, InputError):
        status, message = 400, str(exc)
    elif isinstance(exc, BusyError):
        status, message = (429 if isinstance(exc, RateLimitError) else 503), str(exc)
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, TrQaError):  # the index or a model cannot be used: the server, not the request
        log.error("question failed: %s", exc)
        status, message = 503, str(exc)
    else:
        status, message = 500, "internal error; the server log has the details"
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def add_api(app: FastAPI, qa: QA, limiter: RateLimiter, gate: AnswerGate, max_chars: int) -> None:
    """Register ``/healthz``, ``/readyz`` and ``/api/ask`` and the exception handler on ``app``."""
    for exc_type in (ValidationError, TrQaError):
        app.add_exception_handler(exc_type, error_response)

    @app.api_route("/healthz", methods=["GET", "HEAD"])
    async def healthz() -> dict[str, Any]:
        """Liveness plus what is loaded (async: it never waits for a thread, however busy the answer path is)."""
        return {"status": "ok", "documents": len(qa.documents), "chunks": len(qa.data.chunks)}

    # Readiness for load balancers: this app exists only once the models are loaded, so here it is always ready;
    # while a server starts, ``tr_qa.web.startup`` answers 503 in its place.
    app.add_api_route("/readyz", healthz, methods=["GET", "HEAD"])

    @app.post("/api/ask")
    async def api_ask(request: Request) -> JSONResponse:
        """Answer ``{"question": str, "k": int, "filters": {...}}``; same JSON as ``tr-qa ask --json``."""
        # The body arrives whole and bounded (RequestGuard); pydantic parses it, so depth and types are checked.
        body = AskRequest.model_validate_json(await request.body(), context={"max_chars": max_chars})
        limiter.enforce(rate_key(request.client.host if request.client else ""))
        ask = qa.ask if body.filters is None else functools.partial(qa.ask, filters=body.filters)
        result = await gate.run(ask, body.question, body.k or qa.settings.k)
        return JSONResponse(result.to_dict())
