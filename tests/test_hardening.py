"""The server under abuse: closed Gradio extras, body limits on every route, JSON errors without tracebacks,
load shedding, rate limits keyed on the real client, and the same question rules as the CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpx
import pytest
from conftest import BAD_QUESTIONS, HOSTILE_ID, LiveServer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from starlette.testclient import TestClient

from tr_qa.config import Settings
from tr_qa.errors import InputError, OverloadedError
from tr_qa.memory import malloc_trim, release_free_memory
from tr_qa.web.addresses import parse_proxies, rate_key, real_client
from tr_qa.web.app import build_app
from tr_qa.web.limits import AnswerGate, RateLimiter
from tr_qa.web.security import JsonErrors, RequestGuard, Route, json_depth

QUESTION = "How much was the 2016 bail out?"
GET, POST = frozenset({"GET", "HEAD"}), frozenset({"POST"})
JSON_HEADERS = {"content-type": "application/json"}


# --- the middleware on its own (no model needed) ----------------------------------------------------------------


class Shape(BaseModel):
    n: int


def guarded(max_body: int = 100) -> FastAPI:
    """A small app behind RequestGuard and JsonErrors, with routes that fail in each way a route can."""
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/typed")
    def typed(body: Shape) -> dict[str, int]:
        return {"n": body.n}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaboom\nsecond line")

    @app.get("/plain")
    def plain() -> PlainTextResponse:
        return PlainTextResponse("Internal Server Error", status_code=500)

    @app.get("/busy")
    def busy() -> JSONResponse:
        return JSONResponse({"detail": "Queue is full"}, status_code=503)

    exact = {"/echo": Route(POST, max_body), "/typed": Route(POST, 10_000)}
    exact |= {path: Route(GET, max_body) for path in ("/boom", "/plain", "/busy", "/missing")}
    app.add_middleware(RequestGuard, exact=exact, prefixes={}, max_depth=4)
    app.add_middleware(JsonErrors, retry_after=lambda: 7)
    return app


@pytest.fixture()
def client() -> TestClient:
    return TestClient(guarded(), raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "message"),
    [
        ("GET", "/gradio_api/upload", {}, 404, "not found: /gradio_api/upload"),
        ("POST", "/boom", {"json": {}}, 405, "method POST is not allowed here (allowed: GET, HEAD)"),
        ("POST", "/echo", {"content": b"hi", "headers": {"content-type": "text/plain"}}, 415, "got text/plain"),
        ("POST", "/echo", {"data": {"question": "x"}}, 415, "got application/x-www-form-urlencoded"),
        ("POST", "/echo", {"content": b"{}"}, 415, "got none"),
        ("POST", "/echo", {"json": {"q": "x" * 200}}, 413, "request body is too large (limit 100 bytes)"),
        ("POST", "/echo", {"content": b"[[[[[1]]]]]", "headers": JSON_HEADERS}, 400, "more than 4 levels"),
        ("GET", "/boom", {}, 500, "internal error; the server log has the details"),
        ("GET", "/plain", {}, 500, "internal server error"),
        ("GET", "/missing", {}, 404, "Not Found"),
        ("POST", "/typed", {"json": {"n": "x" * 5000}}, 422, "the request does not have the shape"),
    ],
)
def test_guard_and_json_errors(client: TestClient, method: str, path: str, kwargs: dict, status: int, message: str):
    r = client.request(method, path, **kwargs)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["error"] and message in body["error"] and "\n" not in body["error"]
    assert len(r.content) < 400  # never an echo of the request


def test_a_chunked_body_is_cut_off_at_the_limit(client: TestClient) -> None:
    def chunks():
        yield b'{"q": "'
        for _ in range(50):
            yield b"x" * 10
        yield b'"}'

    r = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    ok = client.post("/echo", content=iter([b"[1,", b"2]"]), headers={"content-type": "application/json"})
    assert ok.status_code == 200 and ok.json() == {"bytes": 5}


def test_an_exception_is_one_log_line_without_traceback(client: TestClient, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="tr_qa.web"):
        r = client.get("/boom")
    assert r.status_code == 500
    [record] = [r for r in caplog.records if r.name == "tr_qa.web"]
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert record.getMessage() == "unexpected RuntimeError on GET /boom: kaboom second line"


def test_a_503_always_says_when_to_retry(client: TestClient) -> None:
    r = client.get("/busy")
    assert r.status_code == 503 and r.json() == {"error": "Queue is full"} and r.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("raw", "depth"),
    [(b"", 0), (b'{"a": 1}', 1), (b'{"a": [[1], {"b": "[[[[["}]}', 3), (b'"[{"', 0), (b'["\\"[", []]', 2)],
)
def test_json_depth_ignores_brackets_in_strings(raw: bytes, depth: int) -> None:
    assert json_depth(raw) == depth


def test_json_depth_of_16k_nested_brackets_is_counted_not_recursed() -> None:
    assert json_depth(b"[" * 8192 + b"]" * 8192) == 8192


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    proxies = parse_proxies(["127.0.0.1, 10.0.0.0/8"])
    # An untrusted peer: its header is ignored, whatever it says.
    assert real_client("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"
    assert real_client("203.0.113.9", "1.2.3.4", ()) == "203.0.113.9"
    # A trusted proxy: the nearest hop it did not add itself; what the client wrote to the left is ignored.
    assert real_client("127.0.0.1", "1.2.3.4", proxies) == "1.2.3.4"
    assert real_client("127.0.0.1", "6.6.6.6, 1.2.3.4", proxies) == "1.2.3.4"
    assert real_client("127.0.0.1", "6.6.6.6, 1.2.3.4, 10.1.2.3", proxies) == "1.2.3.4"
    assert real_client("127.0.0.1", "[2001:db8::1]:443", proxies) == "2001:db8::1"
    assert real_client("127.0.0.1", "", proxies) == "127.0.0.1"
    assert real_client("127.0.0.1", "garbage", proxies) == "127.0.0.1"


@pytest.mark.parametrize(
    ("value", "message"),
    [("*", "'*' would let every client choose"), ("proxy.example", "'proxy.example' is not an IP address")],
)
def test_bad_trusted_proxies_are_refused_naming_the_value(value: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_proxies([value])


def test_rate_key_groups_an_ipv6_subscriber_and_unmaps_ipv4() -> None:
    assert rate_key("2001:db8:1:2:aaaa::1") == rate_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert rate_key("::ffff:192.0.2.7") == "192.0.2.7"


def test_rate_limiter_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tr_qa.web.limits.MAX_CLIENTS", 50)
    limiter = RateLimiter(limit=1, window=60)
    for i in range(500):
        limiter.check(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._hits) <= 51


def test_answer_gate_sheds_past_its_line_and_recovers() -> None:
    release = threading.Event()

    async def scenario() -> tuple[list[Any], OverloadedError]:
        gate = AnswerGate(slots=1, queue=1)
        running = [asyncio.ensure_future(gate.run(release.wait, 10)) for _ in range(2)]
        while gate.admitted < 2:
            await asyncio.sleep(0.01)
        with pytest.raises(OverloadedError) as refused:
            await gate.run(lambda: "never")
        release.set()
        done = await asyncio.gather(*running)
        done.append(await gate.run(lambda: "again"))
        gate.close()
        return done, refused.value

    done, refused = asyncio.run(scenario())
    assert done == [True, True, "again"]
    assert refused.retry_after >= 1 and "1 questions are being answered and 1 are waiting" in str(refused)


def test_release_free_memory_finds_glibc_trim_and_is_safe_to_call() -> None:
    import platform

    if platform.libc_ver()[0] == "glibc":
        assert malloc_trim() is not None  # otherwise a server would silently keep every freed page
    release_free_memory()


# --- the real app ----------------------------------------------------------------------------------------------


def post(url: str, body: Any = None, raw: bytes | None = None, **headers: str) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(url, content=content, headers={"content-type": "application/json", **headers}, timeout=60)


def no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, out + err


@pytest.mark.integration
@pytest.mark.parametrize(("question", "rule"), BAD_QUESTIONS)
def test_api_refuses_bad_questions_naming_the_rule(live_server: LiveServer, capfd, question: str, rule: str) -> None:
    # json.dumps writes a lone surrogate as the escape \ud800, which a JSON parser reads back as that character.
    r = post(f"{live_server.url}/api/ask", {"question": question, "k": 1})
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert "\n" not in message
    if "surrogate" in rule:
        assert "lone surrogate" in message
    else:
        assert rule in message or (rule == "question is too long" and "characters, the limit is 1000" in message)
    no_traceback(capfd)


@pytest.mark.integration
@pytest.mark.parametrize(("question", "rule"), BAD_QUESTIONS)
def test_chat_refuses_bad_questions_naming_the_rule(live_server: LiveServer, capfd, question: str, rule: str) -> None:
    # The Gradio API route, with the JSON written by hand so lone surrogates arrive as escapes.
    r = post(f"{live_server.url}/gradio_api/call/ask", raw=json.dumps({"data": [question, []]}).encode())
    assert r.status_code == 200, r.text
    stream = httpx.get(f"{live_server.url}/gradio_api/call/ask/{r.json()['event_id']}", timeout=60).text
    assert "event: complete" in stream, stream
    data = json.loads(stream.split("data:", 1)[1].strip().splitlines()[0])
    reply = data[1][-1]["content"][0]["text"] if isinstance(data[1][-1]["content"], list) else data[1][-1]["content"]
    if rule == "question is too long":
        assert "the limit is 1,000" in reply
    elif rule == "question is empty":
        assert "Please type a question" in reply
    else:
        assert "can&#x27;t take that question" in reply or "can't take that question" in reply
        assert rule.split(" (")[0] in reply
    no_traceback(capfd)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/ask", b"[" * 8192 + b"]" * 8192, 400, "JSON body nests too deeply"),
        ("/api/ask", b'{"question": "who \\ud800 x"}', 400, "lone surrogate"),
        ("/api/ask", b'{"question": "' + b"\\u200b" * 20 + b'"}', 400, "no visible characters"),
        ("/api/ask", b"\xff\xfe\x00", 400, "body must be JSON"),
        ("/api/ask", json.dumps({"question": "x" * 30_000}).encode(), 413, "limit 16384 bytes"),
        ("/gradio_api/queue/join", b"[" * 8192 + b"]" * 8192, 400, "JSON body nests too deeply"),
        ("/gradio_api/call/ask", b"[" * 8192 + b"]" * 8192, 400, "JSON body nests too deeply"),
        ("/gradio_api/queue/join", b'{"data": 5, "fn_index": "x"}', 400, "not a chat request: data"),
        ("/gradio_api/queue/join", b'{"data": ["q", []], "fn_index": 0}', 400, "Session hash not found"),
        ("/gradio_api/queue/join", b'{"data": ["q", []], "fn_index": 999, "session_hash": "s"}', 400, "fn_index 999"),
        ("/gradio_api/queue/join", b'{"data": ["q", []], "fn_index": 2, "session_hash": "s"}', 400, "fn_index 2"),
        ("/gradio_api/call/ask", b'{"data": "' + b"x" * 100_000 + b'"}', 400, "not a chat request: data"),
        ("/gradio_api/call/ask", b'{"data": [null, []]}', 400, "data.0: Input should be a valid string"),
        ("/gradio_api/call/ask", b'{"data": ["q", [{"role": "system", "content": "x"}]]}', 400, "data.1.0.role"),
        (
            "/gradio_api/call/ask",
            b'{"data": ["q", [{"role": "user", "content": [{"type": "file", "file": {"path": "/etc/passwd"}}]}]]}',
            400,
            "not a chat request: data.1.0.content",
        ),
        ("/gradio_api/call/ask", b'{"data": ["q", []', 400, "not a chat request: the body is not JSON"),
        ("/gradio_api/call/nope", b'{"data": []}', 404, "not found"),
        ("/gradio_api/run/predict", b'{"data": [], "fn_index": 0}', 404, "not found"),
        ("/gradio_api/upload", b"{}", 404, "not found"),
    ],
)
def test_hostile_bodies_get_a_json_4xx_without_echo(
    live_server: LiveServer, capfd, path: str, body: bytes, status: int, message: str
) -> None:
    r = post(f"{live_server.url}{path}", raw=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json" and message in r.json()["error"]
    assert len(r.content) < 1000  # a 422 used to echo the whole body back
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors" in r.headers["content-security-policy"]
    no_traceback(capfd)


@pytest.mark.integration
def test_huge_bodies_are_refused_on_every_route_that_takes_one(live_server: LiveServer, capfd) -> None:
    history = [{"role": "user", "content": "x" * 24_000_000}]
    for path in ("/gradio_api/call/ask", "/gradio_api/queue/join", "/api/ask"):
        body = json.dumps({"data": [QUESTION, history], "question": QUESTION}).encode()
        r = post(f"{live_server.url}{path}", raw=body)
        assert r.status_code == 413 and "request body is too large" in r.json()["error"]
        assert len(r.content) < 200
    # No Content-Length (chunked): cut off at the limit too.
    chunks = (b"[" + b'"x",' * 16_384 for _ in range(100))
    r = httpx.post(
        f"{live_server.url}/gradio_api/queue/join", content=chunks, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    no_traceback(capfd)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/gradio_api/upload"),
        ("GET", "/gradio_api/upload_progress"),
        ("GET", "/gradio_api/file=/etc/passwd"),
        ("GET", "/gradio_api/file/etc/passwd"),
        ("GET", "/gradio_api/proxy=http://example.org/"),
        ("GET", "/monitoring"),
        ("GET", "/monitoring/summary"),
        ("GET", "/gradio_api/openapi.json"),
        ("GET", "/gradio_api/heartbeat/abc"),
        ("POST", "/gradio_api/cancel"),
        ("POST", "/gradio_api/reset"),
        ("POST", "/gradio_api/process_recording"),
        ("POST", "/gradio_api/vibe-edit"),
        ("GET", "/gradio_api/mcp/sse"),
        ("GET", "/gradio_api/profiling/summary"),
        ("GET", "/runs"),
        ("POST", "/login"),
        ("GET", "/manifest.json"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
    ],
)
def test_gradio_extras_the_product_does_not_use_are_closed(live_server: LiveServer, method: str, path: str) -> None:
    r = httpx.request(method, f"{live_server.url}{path}", headers={"content-type": "application/json"}, content=b"{}")
    assert r.status_code == 404 and r.json()["error"].startswith("not found")


@pytest.mark.integration
def test_uploads_are_refused_before_anything_is_stored(live_server: LiveServer) -> None:
    r = httpx.post(f"{live_server.url}/gradio_api/upload", files={"files": ("x.html", b"<script>1</script>")})
    assert r.status_code == 404
    # Nor can anything Gradio keeps on disk be downloaded through it.
    assert httpx.get(f"{live_server.url}/gradio_api/file=x.html").status_code == 404


@pytest.mark.integration
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"question": "bail out"}'),
        ("application/x-www-form-urlencoded", b"question=bail+out"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="q"\r\n\r\nq\r\n--x--'),
        ("application/jsonp", b'{"question": "bail out"}'),
    ],
)
def test_cross_site_simple_requests_are_refused(live_server: LiveServer, content_type: str, body: bytes) -> None:
    # The only bodies a page on another site can make a browser send without a CORS preflight.
    for path in ("/api/ask", "/gradio_api/queue/join", "/gradio_api/call/ask"):
        r = httpx.post(f"{live_server.url}{path}", content=body, headers={"content-type": content_type})
        assert r.status_code == 415 and "Content-Type must be application/json" in r.json()["error"]


@pytest.mark.integration
def test_every_answered_page_still_works(live_server: LiveServer) -> None:
    for path in ("/", "/config", "/theme.css", "/favicon.ico", "/widget.js", "/gradio_api/info", f"/doc/{HOSTILE_ID}"):
        assert httpx.get(f"{live_server.url}{path}").status_code == 200, path


# --- load shedding -------------------------------------------------------------------------------------------------


class HeldQA:
    """The real QA, except that every question waits until the test lets it go: the gate fills on cue."""

    def __init__(self, qa: Any) -> None:
        self.qa, self.settings, self.documents, self.data = qa, qa.settings, qa.documents, qa.data
        self.release = threading.Event()

    def ask(self, question: str, k: int | None = None) -> Any:
        self.release.wait(60)
        return self.qa.ask(question, k=k)


def wait_for(predicate: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.integration
def test_a_full_line_gets_503_at_once_and_everything_else_still_answers(web_qa, capfd) -> None:
    from gradio_client import Client

    held = HeldQA(web_qa)
    settings = replace(web_qa.settings, answer_slots=1, answer_queue=1, rate_limit="0")
    app = build_app(held, settings)  # type: ignore[arg-type]
    with LiveServer(app) as server, ThreadPoolExecutor(2) as pool:
        first = [pool.submit(post, f"{server.url}/api/ask", {"question": QUESTION, "k": 1}) for _ in range(2)]
        wait_for(lambda: app.state.gate.admitted == 2, "two questions in the gate")
        r = post(f"{server.url}/api/ask", {"question": QUESTION, "k": 1})
        assert r.status_code == 503 and "the server is busy" in r.json()["error"]
        assert int(r.headers["retry-after"]) >= 1
        # Nothing else waits behind the questions.
        for path in ("/healthz", "/", "/widget.js", "/theme.css", f"/doc/{HOSTILE_ID}"):
            assert httpx.get(f"{server.url}{path}", timeout=10).status_code == 200, path
        # The chat shares the gate and says so instead of hanging.
        box, history = Client(server.url, verbose=False).predict(QUESTION, [], api_name="/ask")
        assert box == QUESTION
        assert "The server is busy answering other questions" in history[-1]["content"][0]["text"]
        held.release.set()
        assert [f.result().status_code for f in first] == [200, 200]
        assert post(f"{server.url}/api/ask", {"question": QUESTION, "k": 1}).status_code == 200
    no_traceback(capfd)


@pytest.mark.integration
def test_short_overload_sheds_with_503_and_healthz_keeps_answering(web_qa) -> None:
    settings = replace(web_qa.settings, answer_slots=1, answer_queue=2, rate_limit="0")
    app = build_app(web_qa, settings)
    codes: list[int] = []
    health: list[int] = []
    start = threading.Barrier(13)
    with LiveServer(app) as server:

        def client(i: int) -> None:
            start.wait()
            with httpx.Client(timeout=60) as http:
                for j in range(6):
                    question = f"{QUESTION} ({i}-{j})"
                    r = http.post(f"{server.url}/api/ask", json={"question": question, "k": 3})
                    codes.append(r.status_code)

        with ThreadPoolExecutor(12) as pool:
            jobs = [pool.submit(client, i) for i in range(12)]
            start.wait()
            with httpx.Client(timeout=10) as http:
                while not all(j.done() for j in jobs):
                    health.append(http.get(f"{server.url}/healthz").status_code)
                    time.sleep(0.05)
            for j in jobs:
                j.result()
    assert len(codes) == 72 and set(codes) <= {200, 503}
    assert codes.count(503) > 0 and codes.count(200) >= 3
    assert health and set(health) == {200}


# --- rate limits keyed on the real client ----------------------------------------------------------------------


@pytest.mark.integration
def test_forwarded_for_from_an_untrusted_peer_does_not_reset_the_limit(web_qa) -> None:
    app = build_app(web_qa, replace(web_qa.settings, rate_limit="2/60", forwarded_allow_ips=()))
    with LiveServer(app) as server:
        codes = [
            post(f"{server.url}/api/ask", {"question": QUESTION, "k": 1}, **{"x-forwarded-for": f"198.51.100.{i}"})
            for i in range(4)
        ]
    assert [r.status_code for r in codes] == [200, 200, 429, 429]


@pytest.mark.integration
def test_a_trusted_proxy_gives_each_real_client_its_own_budget(web_qa) -> None:
    app = build_app(web_qa, replace(web_qa.settings, rate_limit="1/60", forwarded_allow_ips=("127.0.0.1",)))
    with LiveServer(app) as server:
        url = f"{server.url}/api/ask"
        ask = {"question": QUESTION, "k": 1}
        assert post(url, ask, **{"x-forwarded-for": "198.51.100.1"}).status_code == 200
        assert post(url, ask, **{"x-forwarded-for": "198.51.100.2"}).status_code == 200
        assert post(url, ask, **{"x-forwarded-for": "198.51.100.1"}).status_code == 429
        # Whatever the client writes to the left of what the proxy appended changes nothing.
        assert post(url, ask, **{"x-forwarded-for": "7.7.7.7, 198.51.100.2"}).status_code == 429
        # Without the header the proxy itself is the client, with a budget of its own.
        assert post(url, ask).status_code == 200


@pytest.mark.integration
def test_the_chat_links_follow_the_proxy_scheme(web_qa) -> None:
    from gradio_client import Client

    app = build_app(web_qa, replace(web_qa.settings, rate_limit="0", forwarded_allow_ips=("127.0.0.1",)))
    with LiveServer(app) as server:
        headers = {"x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "https"}
        client = Client(server.url, verbose=False, headers=headers)
        _, history = client.predict(QUESTION, [], api_name="/ask")
    assert f"https://127.0.0.1:{server.port}/doc/" in history[-1]["content"][0]["text"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--forwarded-allow-ips", "*"], {}, "'*' would let every client choose"),
        (["--forwarded-allow-ips", "10.0.0.0/8,proxy"], {}, "'proxy' is not an IP address"),
        ([], {"TR_QA_FORWARDED_ALLOW_IPS": "nonsense"}, "'nonsense' is not an IP address"),
        ([], {"TR_QA_RATE_LIMIT": "lots"}, "TR_QA_RATE_LIMIT must look like 30 or 30/60"),
        ([], {"TR_QA_ANSWER_QUEUE": "-1"}, "TR_QA_ANSWER_QUEUE must be at least 0, got -1"),
        (["--allow-origin", "https://a.example/path"], {}, "'https://a.example/path' must look like"),
    ],
)
def test_serve_refuses_bad_web_settings_in_one_line(tmp_path, args: list[str], env: dict, message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tr_qa", "serve", "--index", str(tmp_path / "none"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and not (tmp_path / "none").exists()


def test_settings_read_the_web_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TR_QA_FORWARDED_ALLOW_IPS", "10.0.0.1, 10.0.0.2")
    monkeypatch.setenv("TR_QA_ANSWER_SLOTS", "3")
    settings = Settings()
    assert settings.forwarded_allow_ips == ("10.0.0.1", "10.0.0.2") and settings.answer_slots == 3
