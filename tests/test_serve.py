"""Serving (tr_qa.web.startup, tr_qa.web.reload): health while loading, bounded waits, workers, new generations.

A full answer line (503 at once) and health answered while questions run are pinned in tests/test_hardening.py.

The loading tests hold the real app's build behind an event, so "loading" is a state the test controls, not a race.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LiveServer

from tr_qa.config import Settings
from tr_qa.errors import InputError
from tr_qa.web.server import ServeProcess, wait_ready
from tr_qa.web.startup import MAX_WAITING, OVERRIDES_ENV, Startup, serve, worker_app

QUESTION = "How much was the 2016 bail out?"
HANG = 60  # seconds: every wait below is bounded by this, only to turn a hang into a failure


def ask(url: str, question: str = QUESTION) -> httpx.Response:
    """POST /api/ask for one passage."""
    return httpx.post(f"{url}/api/ask", json={"question": question, "k": 1}, timeout=HANG)


def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds (bounded by HANG)."""
    deadline = time.monotonic() + HANG
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class HeldLoad:
    """A ``Startup`` loader that builds the real app only once ``release()`` is called (or raises ``error``)."""

    def __init__(self, build: Callable[[], Any], error: Exception | None = None) -> None:
        self.build = build
        self.error = error
        self.go = threading.Event()

    def __call__(self) -> Any:
        self.go.wait(HANG)
        if self.error is not None:
            raise self.error
        return self.build()

    def release(self) -> None:
        """Let the load finish."""
        self.go.set()


@pytest.fixture()
def held(web_qa) -> Iterator[tuple[LiveServer, HeldLoad, Startup]]:
    """A live server whose app is still loading until the test releases it."""
    from tr_qa.web.app import build_app

    settings = replace(web_qa.settings, rate_limit="0")
    load = HeldLoad(lambda: build_app(web_qa, settings))
    startup = Startup(load, wait_s=HANG)
    server = LiveServer(startup).start()
    try:
        yield server, load, startup
    finally:
        load.release()
        server.stop()


def test_the_startup_module_imports_neither_gradio_nor_torch() -> None:
    code = (
        "import sys, tr_qa.web.startup, tr_qa.cli; "
        "print(sorted(m for m in ('gradio', 'torch', 'transformers', 'faiss') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.integration
def test_healthz_says_loading_until_the_models_are_loaded_then_ok(held, web_qa) -> None:
    server, load, startup = held
    r = httpx.get(f"{server.url}/healthz")
    assert r.status_code == 200 and r.json()["status"] == "loading" and r.json()["seconds"] >= 0
    assert r.headers["cache-control"] == "no-store"
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "loading"
    assert int(ready.headers["retry-after"]) >= 1
    assert httpx.head(f"{server.url}/healthz").status_code == 200
    # A question asked while loading waits for the models and is answered once they are there.
    with ThreadPoolExecutor(1) as pool:
        pending: Future[httpx.Response] = pool.submit(ask, server.url)
        until(lambda: startup._waiting == 1, "the question to wait")
        assert not pending.done()
        load.release()
        answered = pending.result(HANG)
    assert answered.status_code == 200 and "42" in answered.json()["answer"]["text"]
    assert startup.status == "ok"
    ok = {"status": "ok", "documents": len(web_qa.documents), "chunks": len(web_qa.data.chunks)}
    assert httpx.get(f"{server.url}/healthz").json() == ok
    assert httpx.get(f"{server.url}/readyz").json() == ok
    wait_ready(server.url, HANG)


@pytest.mark.integration
def test_a_request_that_waits_past_the_load_wait_gets_503_json_with_retry_after(web_qa) -> None:
    from tr_qa.web.app import build_app

    load = HeldLoad(lambda: build_app(web_qa, web_qa.settings))
    server = LiveServer(Startup(load, wait_s=0)).start()
    try:
        r = ask(server.url)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert "starting" in r.json()["error"]
        page = httpx.get(f"{server.url}/", timeout=HANG)
        assert page.status_code == 503 and page.headers["content-type"] == "application/json"
    finally:
        load.release()
        server.stop()


@pytest.mark.integration
def test_a_failed_load_says_failed_and_refuses_questions(web_qa) -> None:
    load = HeldLoad(lambda: None, error=RuntimeError("model file damaged"))
    load.release()
    startup = Startup(load, wait_s=HANG)
    server = LiveServer(startup)
    server.thread.start()
    try:
        until(lambda: startup.status == "failed", "the load to fail")
        for path in ("/healthz", "/readyz"):
            r = httpx.get(f"{server.url}{path}")
            assert r.status_code == 503 and r.json() == {"status": "failed"}
        r = ask(server.url)
        assert r.status_code == 503 and "could not load" in r.json()["error"]
        assert "damaged" not in r.text  # the reason goes to the log, not to visitors
    finally:
        server.stop()


def test_at_most_max_waiting_requests_wait_for_the_models() -> None:
    import asyncio

    async def scenario() -> tuple[bool, bool]:
        startup = Startup(lambda: None, wait_s=HANG)
        startup._ready = asyncio.Event()
        startup._waiting = MAX_WAITING
        refused = not await startup._wait()
        startup._waiting = 0
        startup.failed = True
        return refused, not await startup._wait()

    assert asyncio.run(scenario()) == (True, True)


def test_serve_refuses_uploads_to_workers_that_never_reload(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index", admin_token="x" * 20, reload_check_s=0)
    with pytest.raises(InputError, match="TR_QA_RELOAD_CHECK_S"):
        serve(settings, workers=2)
    assert not (tmp_path / "index").exists()


@pytest.mark.integration
@pytest.mark.parametrize(("slots_env", "slots"), [(None, 1), ("2", 2)])
def test_serve_gives_each_worker_one_answer_slot_unless_told_otherwise(
    web_settings, monkeypatch: pytest.MonkeyPatch, slots_env: str | None, slots: int
) -> None:
    import uvicorn

    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(app=app, **kw))
    monkeypatch.setenv(OVERRIDES_ENV, "")  # serve sets it; monkeypatch puts it back
    if slots_env is None:
        monkeypatch.delenv("TR_QA_ANSWER_SLOTS", raising=False)
    else:
        monkeypatch.setenv("TR_QA_ANSWER_SLOTS", slots_env)
    serve(web_settings, workers=3)
    assert captured["app"] == "tr_qa.web.startup:worker_app" and captured["factory"] is True
    assert captured["workers"] == 3 and captured["proxy_headers"] is False
    handed = json.loads(os.environ[OVERRIDES_ENV])
    assert handed["answer_slots"] == slots and handed["index_dir"] == str(web_settings.index_dir)
    assert isinstance(worker_app(), Startup)


@pytest.mark.integration
def test_tr_qa_serve_with_two_workers_answers_from_both(web_settings, tmp_path: Path) -> None:
    env = {"TR_QA_THREADS": "1", "TR_QA_RATE_LIMIT": "0"}
    server = ServeProcess(["--index", str(web_settings.index_dir), "--workers", "2"], env, tmp_path / "serve.log")
    try:
        server.start(timeout=180)
        # Both processes announce themselves once loaded; each has its own pid.
        until(lambda: server.output().count("ready after") == 2, "both workers to load")
        pids = {line.split()[2] for line in server.output().splitlines() if "ready after" in line}
        assert len(pids) == 2
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda _: ask(server.url), range(8)))
        assert [r.status_code for r in responses] == [200] * 8
        assert all("42" in r.json()["answer"]["text"] for r in responses)
    finally:
        server.stop()
    assert "Traceback" not in server.output()


@pytest.mark.integration
def test_a_server_answers_from_a_generation_another_process_built(tmp_path: Path, embedder) -> None:
    from tr_qa.index import build
    from tr_qa.qa import QA
    from tr_qa.web.app import build_app

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Probation news\nThe probation contract was worth £9m in 2015.\n", encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", reload_check_s=1, rate_limit="0")
    build(settings, embedder=embedder, progress=False)
    qa = QA.load(settings=settings, embedder=embedder)
    with LiveServer(build_app(qa, settings)) as server:
        assert httpx.get(f"{server.url}/healthz").json()["documents"] == 1
        quarry = "Quarry report\nThe Zanzibar quarry contract was worth £77m in 2019, said the ministry.\n"
        (corpus / "b.txt").write_text(quarry, encoding="utf-8")
        build(settings, embedder=embedder, progress=False)  # what `tr-qa index` in another process does
        until(lambda: httpx.get(f"{server.url}/healthz").json()["documents"] == 2, "the new generation")
        r = ask(server.url, "How much was the Zanzibar quarry contract worth?")
        assert r.status_code == 200 and r.json()["passages"][0]["doc"] == "b.txt"
