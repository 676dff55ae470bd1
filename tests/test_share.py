"""Permalinks: the /answer page (Open Graph tags, escaping, strict CSP) and the plain text for the clipboard."""

from __future__ import annotations

import html
import re
from dataclasses import replace

import httpx
import pytest
from conftest import HOSTILE_ID, HOSTILE_QUESTION, HOSTILE_TEXT, LiveServer

from tr_qa.extract.base import DocMeta
from tr_qa.types import Answer, Passage, Result, Span
from tr_qa.web.app import build_app
from tr_qa.web.share import og_description, plain_text, share_path

QUESTION = "How much was the 2016 bail out?"


def meta_tags(page: str) -> dict[str, str]:
    """The page's <meta property=... content=...> values, unescaped."""
    return {k: html.unescape(v) for k, v in re.findall(r'<meta property="([^"]+)" content="([^"]*)">', page)}


def sample() -> Result:
    text = "Before. The fee was £5m in total. After."
    s, a = text.index("The fee"), text.index("£5m")
    sentence = Span("a.txt", s, text.index(" After"), text[s : text.index(" After")], "sentence")
    answer = Span("a.txt", a, a + 3, "£5m", "answer")
    meta = DocMeta(outlet="The Guardian", published="2016-05-03", kind="news report")
    passage = Passage("a.txt", "Fees rise", 0, len(text), text, 0.5, (sentence, answer), meta, 2, True)
    return Result(
        "What was the fee?", False, Answer("£5m", "a.txt", a, a + 3, 0.9, sentence), (passage,), 0.9, "strong"
    )


def test_plain_text_has_the_answer_quote_citation_and_link_and_no_html() -> None:
    text = plain_text(sample(), "http://c/answer?q=x")
    assert text == (
        "Q: What was the fee?\nA: £5m\n"
        "“The fee was £5m in total.” — Fees rise, The Guardian, 3 May 2016, news report, reader comment, p. 2\n"
        "http://c/answer?q=x"
    )
    abstained = replace(sample(), abstained=True, answer=None, evidence="none")
    assert plain_text(abstained, "u").splitlines()[1] == "A: The documents don't answer this."


def test_og_description_is_only_the_answer_and_its_quote() -> None:
    assert og_description(sample()) == "£5m — “The fee was £5m in total.”"  # "Before."/"After." stay out
    assert share_path("a b?&<") == "/answer?q=a%20b%3F%26%3C"


@pytest.mark.integration
def test_answer_page_reproduces_the_answer_with_open_graph_tags(live_server: LiveServer) -> None:
    r = httpx.get(f"{live_server.url}{share_path(QUESTION)}", timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    api = httpx.post(f"{live_server.url}/api/ask", json={"question": QUESTION}, timeout=60).json()
    og = meta_tags(r.text)
    assert og["og:title"] == QUESTION
    assert og["og:description"].startswith(api["answer"]["text"])  # the same answer the API gives
    sentence = next(h for h in api["passages"][0]["highlights"] if h["kind"] == "sentence")
    quote = " ".join(api["passages"][0]["text"][sentence["start"] - api["passages"][0]["start"] :][:40].split())
    assert quote[:30] in og["og:description"]
    assert og["og:url"].endswith(share_path(QUESTION))
    body = r.text.split("<body>", 1)[1]
    assert "£42m" in body and '<pre id="plain">' in body and f'href="{live_server.url}/?q=' in body


@pytest.mark.integration
def test_answer_page_escapes_a_hostile_question_and_document(live_server: LiveServer) -> None:
    question = '"><script>alert(1)</script> ' + HOSTILE_QUESTION
    r = httpx.get(f"{live_server.url}/answer", params={"q": question}, timeout=60)
    assert r.status_code == 200
    head, body = r.text.split("<body>", 1)
    assert "<script" not in r.text and "<img" not in body and "<svg" not in body and "<iframe" not in body
    assert meta_tags(head)["og:title"] == question  # escaped in the attribute, whole after unescaping
    assert HOSTILE_ID not in re.sub(r"<[^>]+>", "", body)  # no file names for people (links keep their ids)
    assert html.escape("<img src=x onerror=\"window.__xss='title';alert('title')\">", quote=True) in body
    description = meta_tags(head)["og:description"]
    assert "<script>window.__xss" not in description and description in html.unescape(head)
    assert len(description) <= 300 and HOSTILE_TEXT.count(description) == 0  # answer + quote only, not the text


@pytest.mark.integration
@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", "question is empty"),
        ("?q=", "question is empty"),
        ("?q=" + "x" * 1001, "too long"),
        ("?q=a%00b", "control"),
    ],
)
def test_answer_page_bad_questions_are_html_400s_naming_the_rule(
    live_server: LiveServer, query: str, words: str
) -> None:
    r = httpx.get(f"{live_server.url}/answer{query}", timeout=30)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert words in r.text and "Go to the chat" in r.text


@pytest.mark.integration
def test_answer_page_is_rate_limited_like_questions(web_qa) -> None:
    server = LiveServer(build_app(web_qa, replace(web_qa.settings, rate_limit="1/60"))).start()
    try:
        assert httpx.get(f"{server.url}{share_path(QUESTION)}", timeout=60).status_code == 200
        r = httpx.get(f"{server.url}{share_path(QUESTION)}", timeout=60)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "too many questions" in r.text
        assert httpx.post(f"{server.url}/answer", timeout=10).status_code == 405  # GET only (route allowlist)
    finally:
        server.stop()


@pytest.mark.integration
def test_chat_replies_carry_their_permalink(live_server: LiveServer) -> None:
    from gradio_client import Client

    _, history = Client(live_server.url, verbose=False).predict(QUESTION, [], api_name="/ask")
    reply = history[-1]["content"] if isinstance(history[-1]["content"], str) else history[-1]["content"][0]["text"]
    link = html.escape(f"{live_server.url}{share_path(QUESTION)}", quote=True)
    assert f'<p class="tr-qa-share"><a href="{link}"' in reply
