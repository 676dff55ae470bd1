"""The web app over a real index and a real uvicorn server: JSON API, limits, origins, document pages, Gradio API."""

from __future__ import annotations

import html
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from conftest import HOSTILE_ID, HOSTILE_QUESTION, HOSTILE_TEXT, LiveServer

from tr_qa.config import Settings
from tr_qa.errors import InputError
from tr_qa.extract.base import DocMeta
from tr_qa.types import Answer, Passage, Result, Span
from tr_qa.web.addresses import parse_origins, validate_origin
from tr_qa.web.app import build_app
from tr_qa.web.chat import looks_like_follow_up
from tr_qa.web.limits import RateLimiter, parse_rate_limit
from tr_qa.web.render import DOC_STYLE, human_date, result_html, safe_url
from tr_qa.web.server import ServeProcess, wait_ready

QUESTION = "How much was the 2016 bail out?"
ROOT = Path(__file__).resolve().parents[1]
MAX_QUESTION_CHARS = Settings.web_question_chars  # the web's limit (the library allows 2,000)


def ask(server: LiveServer, body: object, *, raw: bytes | None = None, headers: dict[str, str] | None = None):
    """POST /api/ask with a JSON body (or raw bytes)."""
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(
        f"{server.url}/api/ask",
        content=content,
        headers={"content-type": "application/json", **(headers or {})},
        timeout=30,
    )


# --- pure functions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://Example.org", "https://example.org"),
        ("https://example.org/", "https://example.org"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("https://example.org:443", "https://example.org"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_validate_origin_normalises(raw: str, expected: str) -> None:
    assert validate_origin(raw) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "*",
        "example.org",
        "ftp://example.org",
        "https://example.org/campaign",
        "https://example.org?x=1",
        "https://user@example.org",
        "https://example.org:99999",
        "https://",
        "https://exa mple.org",
    ],
)
def test_validate_origin_rejects_and_names_the_value(bad: str) -> None:
    with pytest.raises(InputError, match=re.escape(repr(bad))):
        validate_origin(bad)


def test_parse_origins_splits_commas_and_dedupes() -> None:
    assert parse_origins(["https://a.example, https://b.example:8443", "https://A.example", ""]) == (
        "https://a.example",
        "https://b.example:8443",
    )


def test_parse_rate_limit() -> None:
    assert parse_rate_limit("30") == (30, 60.0)
    assert parse_rate_limit("5/10") == (5, 10.0)
    with pytest.raises(InputError, match="TR_QA_RATE_LIMIT"):
        parse_rate_limit("lots")


def test_rate_limiter_sliding_window() -> None:
    limiter = RateLimiter(limit=2, window=0.3)
    assert limiter.check("a") == 0 and limiter.check("a") == 0
    assert 0 < limiter.check("a") <= 0.3
    assert limiter.check("b") == 0  # per client
    time.sleep(0.35)
    assert limiter.check("a") == 0


def test_result_html_escapes_document_text_and_adds_only_own_tags() -> None:
    text = "<script>alert(1)</script> the fee was £5m & <b>more</b>"
    start = 100
    answer = Span("x/<y>.txt", start + 38, start + 41, "£5m", "answer")
    sentence = Span("x/<y>.txt", start + 26, start + len(text), text[26:], "sentence")
    passage = Passage(
        "x/<y>.txt", "<img src=x onerror=alert(1)>", start, start + len(text), text, 0.5, (sentence, answer)
    )
    out = result_html(Result("q", True, None, (passage,)), "http://chat.example")
    assert "<script" not in out and "<img" not in out and "<b>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "The documents don&#x27;t answer this." in out
    assert set(re.findall(r"</?([a-z]+)", out)) <= {"p", "strong", "a", "mark", "blockquote"}
    assert "<mark>the fee was <strong>£5m</strong> &amp; &lt;b&gt;more&lt;/b&gt;</mark>" in out
    assert 'href="http://chat.example/doc/x/%3Cy%3E.txt?start=126&amp;end=155&amp;astart=138&amp;aend=141#hl"' in out


def test_why_answers_show_the_whole_sentence_with_the_span_in_bold_and_weak_ones_say_so() -> None:
    text = "Working Links failed because its contracts paid too little <i>."
    a, b = text.index("because"), text.index(" paid")
    span = Span("d.txt", a, b, text[a:b], "answer")
    sentence = Span("d.txt", 0, len(text), text, "sentence")
    passage = Passage("d.txt", "T", 0, len(text), text, 0.5, (sentence, span))
    answer = Answer(text[a:b], "d.txt", a, b, 0.3, sentence, display="sentence")
    out = result_html(Result("Why did Working Links fail?", False, answer, (passage,), 0.3, "weak"), "http://x")
    assert out.startswith("<p>Best guess, weak evidence: <mark>Working Links failed <strong>because")
    assert "&lt;i&gt;" in out and "<i>" not in out
    strong = result_html(Result("q", False, replace(answer, display="span"), (passage,), 0.9, "strong"), "http://x")
    assert strong.startswith("<p>Answer: <mark><strong>because its contracts</strong></mark></p>")


def test_citation_cards_show_provenance_in_words_and_no_file_offsets_or_scores() -> None:
    text = "The fee was £5m in total."
    answer = Span("news/a.txt", 12, 15, "£5m", "answer")
    sentence = Span("news/a.txt", 0, len(text), text, "sentence")
    meta = DocMeta(
        outlet="The <Guardian>",
        author="A & B",
        published="2016-05-03",
        url="https://x.example/a?b=1&c=2",
        kind="news report",
    )
    passage = Passage(
        "news/a.txt", "Fees <rise>", 7000, 7000 + len(text), text, 0.4321, (sentence, answer), meta, 2, True
    )
    shifted = replace(passage, start=0, end=len(text))
    out = result_html(Result("q", False, Answer("£5m", "news/a.txt", 12, 15, 0.9, sentence), (shifted,)), "http://c")
    card = re.search(r'<p class="tr-qa-source">(.*?)</p>', out, re.S)
    assert card is not None
    words = html.unescape(re.sub(r"<[^>]+>", "", card.group(1)))
    assert words == (
        "[1] Fees <rise>The <Guardian> · by A & B · 3 May 2016 · news report · from a reader comment · p. 2 · original"
    )
    assert "a.txt" not in words and "0.43" not in out and "characters" not in out and "score" not in out
    assert (
        'href="https://x.example/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer nofollow">original</a>' in out
    )
    # Only http(s) originals are linked; anything else is dropped, never shown as a link.
    bad = replace(shifted, meta=replace(meta, url="javascript:alert(1)"))
    assert "javascript" not in result_html(Result("q", True, None, (bad,)), "http://c")
    assert set(re.findall(r"</?([a-z]+)", out)) <= {"p", "strong", "a", "mark", "blockquote", "br"}
    # Unknown provenance: just the title, no empty separators.
    plain = replace(shifted, meta=DocMeta(), page=None, from_comment=False)
    assert re.search(
        r'<p class="tr-qa-source"><strong>\[1\]</strong> <a [^>]+>Fees &lt;rise&gt;</a></p>',
        result_html(Result("q", True, None, (plain,)), "http://c"),
    )


def test_human_dates_and_safe_urls() -> None:
    assert human_date("2016-05-03") == "3 May 2016" and human_date("2017-11-25") == "25 November 2017"
    assert human_date(None) is None and human_date("2016-13-01") is None
    assert safe_url("http://a.example/x") == "http://a.example/x"
    assert safe_url("HTTPS://a.example") == "HTTPS://a.example"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//a.example", "ftp://a.example", "", None, "https://"):
        assert safe_url(bad) is None, bad


def test_highlights_are_not_underlined_and_keep_a_non_colour_cue() -> None:
    from tr_qa.web.chat import CHAT_CSS

    for css in (DOC_STYLE, CHAT_CSS):
        assert "underline" not in css and "dotted" not in css
        assert re.search(r"mark\s*\{[^}]*border-left:\s*3px solid", css)  # the sentence: a rule at its start
        assert re.search(r"mark strong\s*\{[^}]*font-weight:\s*700", css)  # the answer: bold


FOLLOW_UPS = [
    # (a question that stands alone, a follow-up that leans on it)
    ("How much was the 2016 bail out?", "And what about 2017?"),
    ("When did Working Links go into administration?", "Why did it fail?"),
    ("Who is the chief inspector of probation?", "What did she say about the CRCs?"),
    ("What losses are the Community Rehabilitation Companies facing by 2022?", "How much did they get?"),
    ("When was the probation privatisation extended to commercial companies?", "What about the unions?"),
    ("What share of probation work is now the responsibility of the CRCs?", "Is that true?"),
]


@pytest.mark.parametrize(("first", "follow"), FOLLOW_UPS)
def test_follow_ups_are_recognised_and_standalone_questions_are_not(first: str, follow: str) -> None:
    assert not looks_like_follow_up(first)
    assert looks_like_follow_up(follow)


def test_named_subjects_are_not_follow_ups() -> None:
    for q in ("Did Working Links say it failed?", "Who said that the contracts failed?", "Why did Sodexo lose it?"):
        assert not looks_like_follow_up(q), q


# --- the live server ---------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_healthz(live_server: LiveServer, web_qa) -> None:
    r = httpx.get(f"{live_server.url}/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "documents": len(web_qa.documents), "chunks": len(web_qa.data.chunks)}


@pytest.mark.integration
def test_api_ask_returns_the_cli_json_shape(live_server: LiveServer, web_qa) -> None:
    r = ask(live_server, {"question": QUESTION, "k": 3})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == web_qa.ask(QUESTION, k=3).to_dict()
    body = r.json()
    assert len(body["passages"]) == 3
    assert body["abstained"] is False and "42" in body["answer"]["text"]


@pytest.mark.integration
def test_api_ask_default_k(live_server: LiveServer, web_qa) -> None:
    r = ask(live_server, {"question": QUESTION})
    assert r.status_code == 200 and len(r.json()["passages"]) == web_qa.settings.k


@pytest.mark.integration
def test_api_ask_accepts_the_longest_question(live_server: LiveServer) -> None:
    question = ("probation " * 200)[:MAX_QUESTION_CHARS]
    assert ask(live_server, {"question": question, "k": 1}).status_code == 200


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "raw", "message"),
    [
        (None, b"{not json", "must be JSON"),
        (None, b"\xff\xfe", "must be JSON"),
        (None, b"", "must be JSON"),
        (["a question"], None, "JSON object"),
        ({"question": 42}, None, "question must be text"),
        ({"question": None}, None, "question must be text"),
        ({"k": 3}, None, "question is missing"),
        ({"question": QUESTION, "k": "3"}, None, "k must be between"),
        ({"question": QUESTION, "k": True}, None, "k must be between"),
        ({"question": QUESTION, "k": 0}, None, "k must be between"),
        ({"question": QUESTION, "k": 51}, None, "k must be between"),
        ({"question": QUESTION, "k": 2.5}, None, "k must be between"),
        ({"question": QUESTION, "top": 3}, None, "unknown field"),
        ({"question": "   "}, None, "question is empty"),
        ({"question": "x" * (MAX_QUESTION_CHARS + 1)}, None, "too long"),
        ({"question": "bail\x00out"}, None, "control characters"),
    ],
)
def test_api_ask_bad_input_is_a_4xx_json_error(live_server: LiveServer, body, raw, message: str) -> None:
    r = ask(live_server, body, raw=raw)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert "Traceback" not in r.text


@pytest.mark.integration
def test_api_ask_body_too_large(live_server: LiveServer) -> None:
    r = ask(live_server, None, raw=json.dumps({"question": "x" * 20_000}).encode())
    assert r.status_code == 413 and "too large" in r.json()["error"]


@pytest.mark.integration
def test_api_wrong_method_is_a_json_405(live_server: LiveServer) -> None:
    r = httpx.get(f"{live_server.url}/api/ask")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert "method GET is not allowed" in r.json()["error"]


@pytest.mark.integration
def test_concurrent_api_calls_give_the_sequential_answer(live_server: LiveServer) -> None:
    expected = ask(live_server, {"question": QUESTION, "k": 3}).json()
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: ask(live_server, {"question": QUESTION, "k": 3}), range(40)))
    # Past the answer slots and the waiting line the server sheds load; every question it takes gets the
    # sequential answer, and at least a full gate's worth is always taken.
    answered = [r for r in responses if r.status_code == 200]
    shed = [r for r in responses if r.status_code == 503]
    assert len(answered) + len(shed) == 40
    assert len(answered) >= min(40, Settings().answer_slots + Settings().answer_queue)
    assert all(r.json() == expected for r in answered)
    assert all(int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["error"] for r in shed)


@pytest.mark.integration
def test_rate_limit_answers_429_and_the_chat_says_so(web_qa) -> None:
    from gradio_client import Client

    server = LiveServer(build_app(web_qa, replace(web_qa.settings, rate_limit="3/60"))).start()
    try:
        codes = [ask(server, {"question": QUESTION, "k": 1}).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = ask(server, {"question": QUESTION, "k": 1})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1 and "too many questions" in r.json()["error"]
        # The chat shares the per-client budget.
        _, history = Client(server.url, verbose=False).predict(QUESTION, [], api_name="/ask")
        assert "asking faster than 3 questions per 60 seconds" in text_of(history[-1])
    finally:
        server.stop()


# --- origins: CORS and framing ------------------------------------------------------------------------------------


@pytest.mark.integration
def test_cors_allows_only_the_listed_origin(live_server: LiveServer, page_port: int) -> None:
    allowed, other = f"http://allowed.test:{page_port}", f"http://other.test:{page_port}"
    for path in ("/api/ask", "/gradio_api/queue/join"):
        pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        ok = httpx.options(f"{live_server.url}{path}", headers={"Origin": allowed, **pre})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == allowed
        bad = httpx.options(f"{live_server.url}{path}", headers={"Origin": other, **pre})
        assert "access-control-allow-origin" not in bad.headers
    for path in ("/healthz", "/config", "/widget.js"):
        assert (
            httpx.get(f"{live_server.url}{path}", headers={"Origin": allowed}).headers["access-control-allow-origin"]
            == allowed
        )
        assert (
            "access-control-allow-origin"
            not in httpx.get(f"{live_server.url}{path}", headers={"Origin": other}).headers
        )
    r = ask(live_server, {"question": QUESTION, "k": 1}, headers={"Origin": other})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.integration
def test_frame_ancestors_lists_only_allowed_origins(live_server: LiveServer, page_port: int, web_qa) -> None:
    r = httpx.get(f"{live_server.url}/")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == f"frame-ancestors 'self' http://allowed.test:{page_port}"
    assert "x-frame-options" not in r.headers
    # Deny by default: with no allowed origin only the app itself may frame it.
    server = LiveServer(build_app(web_qa, replace(web_qa.settings, allow_origins=()))).start()
    try:
        r = httpx.get(f"{server.url}/", headers={"Origin": "http://localhost:1234"})
        assert r.headers["content-security-policy"] == "frame-ancestors 'self'"
        assert r.headers["x-frame-options"] == "SAMEORIGIN"
        assert "access-control-allow-origin" not in r.headers
    finally:
        server.stop()


# --- Gradio API ----------------------------------------------------------------------------------------------------


def text_of(message: dict) -> str:
    """A chat message's text, whatever shape the client returns it in."""
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


@pytest.mark.integration
def test_gradio_client_chat(live_server: LiveServer) -> None:
    from gradio_client import Client

    client = Client(live_server.url, verbose=False)
    box, history = client.predict(QUESTION, [], api_name="/ask")
    assert box == ""
    assert [m["role"] for m in history] == ["user", "assistant"]
    reply = text_of(history[-1])
    # Plain answer or best guess is the judge's call (tests/test_qa.py); the chat shows either the same way.
    assert re.match(r"<p>(Answer|Best guess, weak evidence): <mark><strong>£42m</strong></mark>", reply), reply
    assert f"{live_server.url}/doc/" in reply  # absolute links, so they work inside the widget
    # Multi-turn: the history comes back with the next answer appended.
    _, history = client.predict("What losses are the companies facing by 2022?", history, api_name="/ask")
    assert len(history) == 4 and "443m" in text_of(history[-1])
    _, history = client.predict("   ", history, api_name="/ask")
    assert len(history) == 5 and "Please type a question" in text_of(history[-1])
    box, history = client.predict("y" * (MAX_QUESTION_CHARS + 5), [], api_name="/ask")
    assert "1,005 characters long; the limit is 1,000" in text_of(history[-1])
    assert box == "y" * (MAX_QUESTION_CHARS + 5)  # kept so the user can shorten it


@pytest.mark.integration
def test_gradio_rest_shortcut_is_closed(live_server: LiveServer) -> None:
    # /gradio_api/run/... would skip the queue, its concurrency limit and the rate limit; the chat's own
    # browser-only events (fill an example, clear) need no server route, so it is closed altogether.
    for name in ("ask", "predict"):
        r = httpx.post(f"{live_server.url}/gradio_api/run/{name}", json={"data": [QUESTION, []]})
        assert r.status_code == 404 and r.json() == {"error": f"not found: /gradio_api/run/{name}"}


@pytest.mark.integration
def test_widget_js_is_served_by_the_app(live_server: LiveServer) -> None:
    r = httpx.get(f"{live_server.url}/widget.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    asset = re.search(r'import\("\./(assets/[^"]+)"\)', r.text)
    assert asset, r.text[:200]
    assert httpx.get(f"{live_server.url}/{asset.group(1)}").status_code == 200


# --- document pages -------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_doc_page_highlights_and_escapes(live_server: LiveServer, web_qa) -> None:
    doc = web_qa.document(HOSTILE_ID)
    start = doc.text.index("The Zanzibar")
    end = doc.text.index("\n", start)
    astart = doc.text.index("£77m")
    r = httpx.get(f"{live_server.url}/doc/{HOSTILE_ID}?start={start}&end={end}&astart={astart}&aend={astart + 4}")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'self'" in csp
    body = r.text.split("<body>", 1)[1]
    assert "<script" not in body and "<img" not in body and "<svg" not in body and "<iframe" not in body
    assert html.escape("<script>window.__xss='script';alert('script')</script>") in body
    marked = re.search(r'<mark id="hl">(.*?)</mark>', body, re.S)
    assert marked is not None
    assert html.unescape(re.sub(r"</?strong>", "", marked.group(1))) == doc.text[start:end]
    assert "<strong>£77m</strong>" in marked.group(1)
    assert '<a href="/">← Back to the chat</a>' in body and HOSTILE_ID not in body.split("<main>")[0]


@pytest.mark.integration
def test_doc_page_shows_provenance(live_server: LiveServer, web_qa) -> None:
    doc = web_qa.document("001_6c092b2caff0b2fa.txt")
    assert doc.meta.published == "2016-05-03" and doc.meta.kind == "blog post"  # from seeds/metadata.json
    r = httpx.get(f"{live_server.url}/doc/001_6c092b2caff0b2fa.txt?start=0&end=10")
    head = r.text.split("<main>")[0]
    assert '<p class="meta">3 May 2016 · blog post</p>' in head and "That NAO Report Explained 2" in head
    assert "File " not in head and "characters" not in head


@pytest.mark.integration
def test_doc_page_without_highlight(live_server: LiveServer) -> None:
    r = httpx.get(f"{live_server.url}/doc/{HOSTILE_ID}")
    assert r.status_code == 200 and "<mark" not in r.text and "Zanzibar quarry report" in r.text


@pytest.mark.integration
@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/doc/nope.txt?start=0&end=5", 404),
        ("/doc/..%2F..%2Fetc%2Fpasswd", 404),
        ("/doc/%3Cscript%3Ealert(1)%3C%2Fscript%3E.txt", 404),
        (f"/doc/{HOSTILE_ID}?start=5&end=2", 400),
        (f"/doc/{HOSTILE_ID}?start=-1&end=2", 400),
        (f"/doc/{HOSTILE_ID}?start=0&end=999999", 400),
        (f"/doc/{HOSTILE_ID}?start=a&end=2", 400),
        (f"/doc/{HOSTILE_ID}?start=1", 400),
        (f"/doc/{HOSTILE_ID}?start=0&end=20&astart=30&aend=40", 400),
    ],
)
def test_doc_page_errors(live_server: LiveServer, path: str, status: int) -> None:
    r = httpx.get(f"{live_server.url}{path}")
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    assert "<script" not in r.text and "Traceback" not in r.text


@pytest.mark.integration
def test_hostile_answer_through_the_api_is_data(live_server: LiveServer) -> None:
    body = ask(live_server, {"question": HOSTILE_QUESTION, "k": 3}).json()
    top = body["passages"][0]
    assert top["doc"] == HOSTILE_ID
    assert top["text"] in HOSTILE_TEXT  # returned verbatim as JSON data; escaping is the renderer's job


# --- serve() -----------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_serve_builds_a_missing_index_and_merges_env_origins(tmp_path, monkeypatch, capsys) -> None:
    import uvicorn

    from tr_qa import app as app_module  # the old import path still works

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Probation news\nThe contract was worth £9m in 2015.\n", encoding="utf-8")
    captured: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(app=app, **kw))
    monkeypatch.setenv("TR_QA_ALLOW_ORIGINS", "https://campaign.example, http://localhost:8000")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    app_module.serve(settings, host="127.0.0.1", port=8123, allow_origins=["https://cli.example"])
    assert (tmp_path / "index" / "CURRENT").is_file()
    assert captured["port"] == 8123 and captured["host"] == "127.0.0.1"
    assert captured["proxy_headers"] is False  # uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1
    err = capsys.readouterr().err
    assert "building the index" in err
    assert "https://cli.example, https://campaign.example, http://localhost:8000" in err
    assert "trusted proxies: none (X-Forwarded-For is ignored)" in err


def test_serve_rejects_a_bad_origin_before_loading(tmp_path, monkeypatch) -> None:
    from tr_qa.web.app import serve

    monkeypatch.setenv("TR_QA_ALLOW_ORIGINS", "https://ok.example,https://bad.example/path")
    with pytest.raises(InputError, match=re.escape("https://bad.example/path")):
        serve(Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index"))
    assert not (tmp_path / "index").exists()


@pytest.mark.integration
def test_tr_qa_serve_command_starts(web_settings, tmp_path: Path) -> None:
    server = ServeProcess(["--index", str(web_settings.index_dir)], {"TR_QA_THREADS": "1"}, tmp_path / "serve.log")
    try:
        print(f"tr-qa serve answered /healthz after {server.start(timeout=180):.1f} s")
        # The models load behind /healthz; a question would wait for them, but only TR_QA_LOAD_WAIT_S on a slow
        # machine, so wait for readiness first.
        wait_ready(server.url, 180)
        r = httpx.post(f"{server.url}/api/ask", json={"question": QUESTION, "k": 1}, timeout=30)
        assert r.status_code == 200 and "42" in r.json()["answer"]["text"]
    finally:
        server.stop()
    assert "Traceback" not in server.output()


@pytest.mark.integration
def test_chat_says_each_question_is_answered_on_its_own_for_follow_ups(live_server: LiveServer) -> None:
    from gradio_client import Client

    client = Client(live_server.url, verbose=False)
    _, history = client.predict(FOLLOW_UPS[3][0], [], api_name="/ask")
    assert "answered on its own" not in text_of(history[-1])
    _, history = client.predict(FOLLOW_UPS[3][1], history, api_name="/ask")
    assert text_of(history[-1]).startswith('<p class="tr-qa-note">Each question is answered on its own')


@pytest.mark.integration
def test_chat_body_check_takes_votes_only_on_the_vote_event(web_qa, tmp_path: Path) -> None:
    from tr_qa.web.chat import build_blocks
    from tr_qa.web.limits import AnswerGate

    settings = replace(web_qa.settings, feedback_path=tmp_path / "fb.sqlite3")
    demo, check = build_blocks(web_qa, settings, RateLimiter(0, 60), AnswerGate(1, 1))
    by_name = {fn.fn.__name__: i for i, fn in demo.fns.items() if fn.fn is not None}
    vote, ask = by_name["vote"], by_name["respond"]
    history = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<p>Answer: x</p>"}]
    good = {"data": [history], "event_data": {"index": 1, "value": "x", "liked": False}, "fn_index": vote}
    assert check(json.dumps(good).encode()) is None
    problem = check(json.dumps({**good, "data": ["q", history]}).encode())
    assert problem is not None and problem.startswith("not a vote: data: Tuple should have at most 1 item")
    assert "not a vote: event_data" in (check(json.dumps({**good, "event_data": None}).encode()) or "")
    # A question sent to the vote event is refused, and a vote sent to the question event too.
    assert check(json.dumps({"data": [history], "fn_index": ask}).encode()) is not None
    assert check(json.dumps({"data": ["q", []], "fn_index": ask}).encode()) is None
