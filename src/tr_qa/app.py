"""Kept for imports written before the web app became the ``tr_qa.web`` package; new code imports from there."""

from __future__ import annotations

from tr_qa.web.addresses import parse_origins, validate_origin
from tr_qa.web.app import build_app, serve
from tr_qa.web.limits import RateLimiter, parse_rate_limit
from tr_qa.web.render import result_html

__all__ = ["RateLimiter", "build_app", "parse_origins", "parse_rate_limit", "result_html", "serve", "validate_origin"]
