"""``POST /api/feedback``: a thumbs up or down on an answer, stored by ``tr_qa.feedback`` (nothing personal)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, ValidationError

from tr_qa.config import Settings
from tr_qa.errors import InputError, TrQaError
from tr_qa.feedback import FeedbackStore, Vote, feedback_path
from tr_qa.index import current_generation
from tr_qa.web.addresses import rate_key
from tr_qa.web.limits import RateLimiter


class FeedbackRequest(BaseModel):
    """The body of ``POST /api/feedback``: the question, the answer as shown, whether it abstained, and the vote."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str
    answer: str
    abstained: StrictBool = False
    vote: StrictInt


EXAMPLE = '{"question": "...", "answer": "...", "abstained": false, "vote": -1}'


def request_problem(exc: ValidationError) -> str:
    """One line naming what is wrong with a feedback body."""
    err = exc.errors(include_url=False, include_input=False)[0]
    kind, where = err["type"], ".".join(str(part) for part in err["loc"]) or "body"
    if kind == "json_invalid":
        return f"body must be JSON like {EXAMPLE}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"body must be a JSON object like {EXAMPLE}"
    if kind == "missing":
        return f"{where} is missing; expected {EXAMPLE}"
    if kind == "extra_forbidden":
        unknown = sorted(str(e["loc"][-1]) for e in exc.errors() if e["type"] == "extra_forbidden")
        return f"unknown field(s): {', '.join(unknown)}; expected question, answer, abstained and vote"
    return f"{where}: {err['msg']}"


def index_generation(settings: Settings) -> str:
    """The name of the index generation answering now ('' when it cannot be read)."""
    try:
        return current_generation(settings.index_dir).name
    except TrQaError:
        return ""


def add_feedback(app: FastAPI, settings: Settings, limiter: RateLimiter) -> FeedbackStore:
    """Register ``POST /api/feedback`` on ``app``; returns the store it writes to."""
    store = FeedbackStore(feedback_path(settings))

    @app.post("/api/feedback")
    async def api_feedback(request: Request) -> JSONResponse:
        """Store ``{"question", "answer", "abstained", "vote": 1 | -1}`` with the index generation; 201 and its id."""
        try:
            body = FeedbackRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise InputError(request_problem(exc)) from None
        vote = Vote(body.question, body.answer, body.abstained, body.vote, index_generation(settings))
        limiter.enforce(rate_key(request.client.host if request.client else ""))
        return JSONResponse({"stored": store.add(vote)}, status_code=201)

    return store
