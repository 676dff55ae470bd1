"""Shared fixtures: one real index of the seed corpus per test session (real model, real FAISS)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tr_qa.config import Settings
from tr_qa.embed import Embedder

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


@pytest.fixture(scope="session")
def web_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """Settings for an index of seeds/ plus the hostile document."""
    return indexed_seeds(tmp_path_factory.mktemp("web"), embedder, {HOSTILE_ID: HOSTILE_TEXT})


@pytest.fixture(scope="session")
def web_qa(web_settings: Settings, embedder: Embedder):
    """A QA facade over the web index."""
    from tr_qa.qa import QA

    return QA.load(settings=web_settings, embedder=embedder)


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A real uvicorn server for one FastAPI app, in a thread, on a free port."""

    def __init__(self, app, port: int | None = None) -> None:
        import threading

        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        """Start and wait until /healthz answers."""
        import time

        import httpx

        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server on port {self.port} did not start")

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="session")
def page_port() -> int:
    """Port of the static server that plays the campaign site in the embed tests."""
    return free_port()


@pytest.fixture(scope="session")
def live_server(web_qa, page_port: int):
    """The app on a free port; http://allowed.test:<page_port> may embed it. Rate limit high: tests share one IP."""
    from tr_qa.app import build_app

    app = build_app(web_qa, [f"http://allowed.test:{page_port}"], rate_limit=100_000)
    server = LiveServer(app).start()
    yield server
    server.stop()
