"""Shared fixtures: one real index of the seed corpus per test session (real model, real FAISS)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tr_qa.config import Settings
from tr_qa.embed import Embedder
from tr_qa.web.server import LiveServer, free_port

__all__ = ["LiveServer", "free_port"]  # the web tests import the shared server helpers from here too

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The bundled MiniLM, loaded once for the whole session."""
    return Embedder(threads=2)


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """Settings pointing at a fresh copy of seeds/ and an index built from it."""
    return indexed_seeds(tmp_path_factory.mktemp("seed"), embedder)


def indexed_seeds(base: Path, embedder: Embedder, extra: dict[str, str] | None = None) -> Settings:
    """Copy seeds/ (plus extra files) into base/corpus and build base/index from it."""
    from tr_qa.index import build

    corpus = base / "corpus"
    shutil.copytree(SEEDS, corpus)
    for name, text in (extra or {}).items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=base / "index")
    build(settings, embedder=embedder, progress=False)
    return settings


@pytest.fixture(scope="session")
def seed_qa(seed_settings: Settings, embedder: Embedder):
    """A QA facade over the seed index."""
    from tr_qa.qa import QA

    return QA.load(settings=seed_settings, embedder=embedder)


# --- Web app (tests/test_app.py, tests/test_browser.py): a seed index plus a hostile document, served live ---

HOSTILE_ID = "900_hostile.txt"
HOSTILE_QUESTION = "How much was the Zanzibar quarry contract worth?"
# Every classic way to run script from text that ends up in a page; the app must show all of it as text.
HOSTILE_TEXT = (
    "<img src=x onerror=\"window.__xss='title';alert('title')\"> Zanzibar quarry report\n"
    "<script>window.__xss='script';alert('script')</script>\n"
    "The Zanzibar quarry contract was worth £77m in 2019, said the "
    "<img src=x onerror=\"window.__xss='img';alert('img')\">ministry of quarries.\n"
    "Read <a href=\"javascript:window.__xss='link';alert('link')\">the quarry contract</a> or "
    "[the markdown link](javascript:alert('md')) and <svg onload=\"window.__xss='svg';alert('svg')\"></svg> now.\n"
    "<iframe srcdoc=\"<script>parent.__xss='iframe'</script>\"></iframe> "
    "<details open ontoggle=\"window.__xss='details'\">the Zanzibar quarry details</details>\n"
)


# Questions every surface (CLI, Python API, HTTP, chat) must refuse, with the words that name the rule broken.
BAD_QUESTIONS = [
    pytest.param("who \ud800 x", "lone surrogate U+D800", id="lone-surrogate"),
    pytest.param("who \udcff x", "lone surrogate U+DCFF", id="invalid-utf8-byte"),
    pytest.param("\u200b\u200b\u200b", "no visible characters", id="zero-width-only"),
    pytest.param(" \u200b\u2060\ufeff\u00ad\u3164 ", "no visible characters", id="invisible-only"),
    pytest.param("who \u202eeht si", "bidirectional control character (U+202E", id="bidi-override"),
    pytest.param("who \u2066is\u2069 it", "bidirectional control character (U+2066", id="bidi-isolate"),
    pytest.param("bail\x00out", "control characters (first: U+0000", id="nul"),
    pytest.param("tab\x1bescape", "control characters (first: U+001B", id="escape"),
    pytest.param("next\x85line", "control characters (first: U+0085", id="c1-control"),
    pytest.param("   \n\t ", "question is empty", id="blank"),
    pytest.param("[" * 8000 + "]" * 8000, "question is too long", id="nested-brackets-16k"),
]


@pytest.fixture(scope="session")
def web_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """Settings for an index of seeds/ plus the hostile document."""
    return indexed_seeds(tmp_path_factory.mktemp("web"), embedder, {HOSTILE_ID: HOSTILE_TEXT})


@pytest.fixture(scope="session")
def web_qa(web_settings: Settings, embedder: Embedder):
    """A QA facade over the web index."""
    from tr_qa.qa import QA

    return QA.load(settings=web_settings, embedder=embedder)


@pytest.fixture(scope="session")
def page_port() -> int:
    """Port of the static server that plays the campaign site in the embed tests."""
    return free_port()


@pytest.fixture(scope="session")
def live_server(web_qa, page_port: int):
    """The app on a free port; http://allowed.test:<page_port> may embed it. Rate limit high: tests share one IP."""
    from tr_qa.web.app import build_app

    settings = replace(web_qa.settings, allow_origins=(f"http://allowed.test:{page_port}",), rate_limit="100000/60")
    with LiveServer(build_app(web_qa, settings)) as server:
        yield server


# Browser tests (test_browser, test_embed): Debian's Chromium, three host names for one machine (the chat server
# and two campaign sites, so origins differ), and the flags that keep it from calling out of this closed network.
CHROMIUM = Path("/usr/bin/chromium")
CHAT_HOST, ALLOWED_HOST, OTHER_HOST = "chat.test", "allowed.test", "other.test"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP {CHAT_HOST} 127.0.0.1, MAP {ALLOWED_HOST} 127.0.0.1, MAP {OTHER_HOST} 127.0.0.1",
]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Debian Chromium; fails with the fix when it is not installed."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium`")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
