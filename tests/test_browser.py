"""Real Debian Chromium (Playwright) against the live app: answers, highlights, safety, offline, a11y, embedding.

Needs ``apt-get install chromium`` and ``npm ci`` (axe-core) at the repository root; missing either fails, never skips.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from conftest import ALLOWED_HOST, CHAT_HOST, HOSTILE_ID, HOSTILE_QUESTION, OTHER_HOST, LiveServer

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
CAMPAIGN = ROOT / "examples" / "campaign.html"
ANSWER_TIMEOUT = 45_000  # ms; the 2-core machine is shared, the first answer may wait for a warm-up
QUESTION = "How much was the 2016 bail out?"
BOT = "#tr-qa-chat [data-testid='bot']"

pytestmark = [pytest.mark.browser, pytest.mark.integration]


class Recorder:
    """Everything a page did that a test may want to assert on: requests, dialogs, errors, console lines."""

    def __init__(self, page) -> None:
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("popup", self.watch)

        def on_dialog(dialog) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self._on_dialog = on_dialog
        page.on("dialog", on_dialog)

    def watch(self, page) -> None:
        """Record a popup (e.g. a source page opened from a link) too."""
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("dialog", self._on_dialog)

    def hosts(self) -> set[str]:
        """host:port of every request (data: and blob: URLs stay inside the page)."""
        return {urlsplit(u).netloc for u in self.requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")}


@pytest.fixture
def context(browser) -> Iterator:
    """A fresh browser profile per test."""
    ctx = browser.new_context(viewport={"width": 1100, "height": 1000}, locale="en-GB", color_scheme="light")
    yield ctx
    ctx.close()


def shot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def ask_in_page(page, question: str, root: str = "") -> None:
    """Type a question into the chat box and press Enter."""
    box = page.locator(f"{root} #tr-qa-question textarea".strip())
    box.click()
    box.fill(question)
    box.press("Enter")


def source_text(corpus: Path, doc_id: str) -> str:
    """The source file as the indexer reads it."""
    return (corpus / doc_id).read_bytes().decode("utf-8-sig")


def link_offsets(href: str) -> tuple[str, int, int, int | None, int | None]:
    """(doc id, start, end, astart, aend) from a /doc/ link."""
    parts = urlsplit(href)
    q = {k: int(v[0]) for k, v in parse_qs(parts.query).items()}
    return unquote(parts.path.removeprefix("/doc/")), q["start"], q["end"], q.get("astart"), q.get("aend")


def test_answer_highlight_matches_the_source_and_links_to_it(context, live_server: LiveServer, web_settings) -> None:
    page = context.new_page()
    rec = Recorder(page)
    page.goto(f"{live_server.url}/?__theme=light")
    ask_in_page(page, QUESTION)
    bot = page.locator(BOT).last
    answer = bot.locator("p").first.locator("mark strong")
    answer.wait_for(timeout=ANSWER_TIMEOUT)

    first_source = bot.locator("p.tr-qa-source").first
    link = first_source.locator("a")
    doc_id, start, end, astart, aend = link_offsets(link.get_attribute("href") or "")
    text = source_text(web_settings.corpus_dir, doc_id)
    sentence = bot.locator("blockquote").first.locator("mark")
    assert sentence.count() == 1
    assert sentence.text_content() == text[start:end]
    assert astart is not None and aend is not None
    assert sentence.locator("strong").text_content() == text[astart:aend] == answer.text_content()
    assert "£42m" in text[astart:aend]
    # Gradio's own live region announces new messages to screen readers.
    log_region = page.locator("#tr-qa-chat [role='log'][aria-live='polite']")
    assert "£42m" in (log_region.text_content() or "")
    shot(page, "chat-answer")

    with page.expect_popup() as popup_info:
        link.click()
    doc_page = popup_info.value
    doc_page.wait_for_load_state()
    hl = doc_page.locator("#hl")
    assert hl.text_content() == text[start:end]
    assert hl.locator("strong").text_content() == text[astart:aend]
    assert doc_page.evaluate(
        "() => { const r = document.getElementById('hl').getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= window.innerHeight; }"
    ), "highlight not scrolled into view"
    shot(doc_page, "source-document")
    assert rec.hosts() == {urlsplit(live_server.url).netloc}, rec.requests
    assert not rec.errors


def test_keyboard_only_ask_examples_and_clear(context, live_server: LiveServer) -> None:
    page = context.new_page()
    rec = Recorder(page)
    page.goto(f"{live_server.url}/?__theme=light")
    page.locator("#tr-qa-question textarea").wait_for()

    def tab_to(predicate: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"() => {{ const e = document.activeElement; return {predicate}; }}"):
                return
        pytest.fail(f"Tab never reached the element where {predicate}")

    tab_to("e.tagName === 'TEXTAREA' && !!e.closest('#tr-qa-question')")
    page.keyboard.type("What losses are the companies facing by 2022?")
    page.keyboard.press("Enter")
    page.locator(BOT).last.locator("mark strong").first.wait_for(timeout=ANSWER_TIMEOUT)
    assert "443m" in (page.locator(BOT).last.text_content() or "")

    # The folded passages open from the keyboard too.
    tab_to("e.tagName === 'SUMMARY'")
    page.keyboard.press("Enter")
    assert page.locator(BOT).last.locator("details").get_attribute("open") is not None

    tab_to("e.id === 'tr-qa-clear'")
    page.keyboard.press("Enter")
    page.locator(BOT).first.wait_for(state="detached", timeout=10_000)

    tab_to("e.tagName === 'BUTTON' && e.textContent.trim() === 'How much was the 2016 bail out?'")
    page.keyboard.press("Enter")
    page.locator(BOT).last.locator("mark strong").first.wait_for(timeout=ANSWER_TIMEOUT)
    assert "£42m" in (page.locator(BOT).last.text_content() or "")
    assert page.locator("#tr-qa-chat [data-testid='user']").last.text_content().strip() == QUESTION
    shot(page, "keyboard-example")
    assert rec.hosts() == {urlsplit(live_server.url).netloc}, rec.requests


def test_a_conversation_sends_its_history_back_and_bad_questions_name_the_rule(context, live_server) -> None:
    # Every question carries the history the browser holds: it must pass the server's check of chat bodies.
    page = context.new_page()
    rec = Recorder(page)
    page.goto(f"{live_server.url}/?__theme=light")
    ask_in_page(page, QUESTION)
    page.locator(BOT).nth(0).locator("mark strong").first.wait_for(timeout=ANSWER_TIMEOUT)
    ask_in_page(page, "What losses are the companies facing by 2022?")
    page.locator(BOT).nth(1).locator("mark strong").first.wait_for(timeout=ANSWER_TIMEOUT)
    assert "443m" in (page.locator(BOT).nth(1).text_content() or "")
    ask_in_page(page, "\u200b\u200b")
    third = page.locator(BOT).nth(2)
    third.wait_for(timeout=ANSWER_TIMEOUT)
    assert "no visible characters" in (third.text_content() or "")
    assert not rec.errors and not [c for c in rec.console if c.startswith("error")], rec.console


SAFE_TAGS = {"DIV", "SPAN", "P", "STRONG", "MARK", "A", "BLOCKQUOTE", "BR", "DETAILS", "SUMMARY"}
INSPECT = """(root) => {
  const els = [...root.querySelectorAll('*')];
  return {
    tags: [...new Set(els.map(e => e.tagName))],
    handlers: els.flatMap(e => [...e.attributes].filter(a => a.name.startsWith('on'))
                                 .map(a => e.tagName + ' ' + a.name)),
    hrefs: els.filter(e => e.hasAttribute('href')).map(e => e.getAttribute('href')),
    text: root.textContent,
  };
}"""


def test_hostile_document_is_shown_as_text(context, live_server: LiveServer) -> None:
    page = context.new_page()
    rec = Recorder(page)
    page.goto(f"{live_server.url}/?__theme=light")
    # A hostile question as well: the user's own message is escaped like document text.
    ask_in_page(page, "<img src=x onerror=\"alert('question')\"> " + HOSTILE_QUESTION)
    bot = page.locator(BOT).last
    bot.locator("mark").first.wait_for(timeout=ANSWER_TIMEOUT)
    page.locator(f"{BOT} details summary").last.click()  # open the folded passages too

    for message in (bot, page.locator("#tr-qa-chat [data-testid='user']").last):
        found = message.locator(".message-content").evaluate(INSPECT)
        assert set(found["tags"]) <= SAFE_TAGS, found["tags"]
        assert found["handlers"] == []
        own = (f"{live_server.url}/doc/", f"{live_server.url}/answer?q=")  # sources and the answer's permalink
        assert all(h.startswith(own) for h in found["hrefs"]), found["hrefs"]
    user_text = page.locator("#tr-qa-chat [data-testid='user']").last.text_content() or ""
    assert "<img src=x onerror=\"alert('question')\">" in user_text
    bot_text = bot.text_content() or ""
    assert HOSTILE_ID not in bot_text  # people see titles and provenance, never file names
    assert "<img src=x onerror=\"window.__xss='title';alert('title')\"> Zanzibar quarry report" in bot_text
    assert "<img src=x onerror=\"window.__xss='img';alert('img')\">ministry" in bot_text
    shot(page, "hostile-chat")

    hostile_link = bot.locator(f"a[href*='{HOSTILE_ID}']").first
    with page.expect_popup() as popup_info:
        hostile_link.click()
    doc_page = popup_info.value
    doc_page.wait_for_load_state()
    found = doc_page.locator("body").evaluate(INSPECT)
    assert set(found["tags"]) <= {"HEADER", "H1", "P", "MAIN", "MARK", "STRONG", "BR", "A"}, found["tags"]
    assert found["handlers"] == [] and found["hrefs"] == ["/"]  # only the way back to the chat
    for payload in (
        "<script>window.__xss='script';alert('script')</script>",
        "javascript:window.__xss='link'",
        "<svg onload=\"window.__xss='svg';alert('svg')\"></svg>",
        "<iframe srcdoc=",
    ):
        assert payload in found["text"]
    shot(doc_page, "hostile-source-document")

    page.wait_for_timeout(500)  # give any injected handler (an image error, a load event) time to fire
    for p in (page, doc_page):
        assert p.evaluate("() => window.__xss") is None
    assert rec.dialogs == []
    assert rec.hosts() == {urlsplit(live_server.url).netloc}, rec.requests


def run_axe(page) -> list[dict]:
    """axe-core's serious and critical violations on the page."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (or `npm install`) at the repository root")
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in results["violations"] if v["impact"] in ("serious", "critical")]


def test_axe_finds_no_serious_problems(browser, live_server: LiveServer) -> None:
    # bypass_csp: the source page forbids all scripts, axe's included.
    ctx = browser.new_context(viewport={"width": 1100, "height": 1000}, color_scheme="light", bypass_csp=True)
    try:
        page = ctx.new_page()
        page.goto(f"{live_server.url}/?__theme=light")
        ask_in_page(page, QUESTION)
        page.locator(BOT).last.locator("mark strong").first.wait_for(timeout=ANSWER_TIMEOUT)
        page.locator(f"{BOT} details summary").last.click()
        found = {"chat": run_axe(page)}
        href = page.locator(BOT).last.locator("a").first.get_attribute("href")
        page.goto(href or "")
        found["source page"] = run_axe(page)
        page.goto(f"{live_server.url}/answer?q={QUESTION}")
        found["answer page"] = run_axe(page)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "axe-serious.json").write_text(json.dumps(found, indent=1), encoding="utf-8")
        summary = {where: [(v["id"], v["help"], len(v["nodes"])) for v in vs] for where, vs in found.items()}
        assert found == {"chat": [], "source page": [], "answer page": []}, summary
    finally:
        ctx.close()


# --- embedding ----------------------------------------------------------------------------------------------------


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files without request logging."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def campaign_site(tmp_path_factory: pytest.TempPathFactory, live_server: LiveServer, page_port: int) -> Iterator[int]:
    """examples/campaign.html, pointed at the live chat server, served on page_port (any host name)."""
    site = tmp_path_factory.mktemp("campaign")
    chat = f"http://{CHAT_HOST}:{live_server.port}"
    html_text = CAMPAIGN.read_text(encoding="utf-8")
    assert html_text.count("http://localhost:7860/") >= 2  # the script and the element point at the chat
    (site / "campaign.html").write_text(html_text.replace("http://localhost:7860", chat), encoding="utf-8")
    httpd = ThreadingHTTPServer(("127.0.0.1", page_port), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield page_port
    httpd.shutdown()
    httpd.server_close()


def test_widget_and_iframe_work_from_an_allowed_origin(context, live_server: LiveServer, campaign_site: int) -> None:
    page = context.new_page()
    rec = Recorder(page)
    page.goto(f"http://{ALLOWED_HOST}:{campaign_site}/campaign.html")
    ask_in_page(page, QUESTION, root="gradio-app")
    answer = page.locator(f"gradio-app {BOT}").last.locator("mark strong").first
    answer.wait_for(timeout=ANSWER_TIMEOUT)
    assert "£42m" in (answer.text_content() or "")
    href = page.locator(f"gradio-app {BOT}").last.locator("a").first.get_attribute("href") or ""
    assert href.startswith(f"http://{CHAT_HOST}:{live_server.port}/doc/")  # not resolved against the campaign page
    # The host page's CSS variables restyle the widget.
    send_bg = page.locator("gradio-app #tr-qa-send").evaluate("e => getComputedStyle(e).backgroundColor")
    assert send_bg == "rgb(91, 42, 134)"
    page.locator("#tr-qa-frame").scroll_into_view_if_needed()  # lazy, and painted only when on screen
    frame = page.frame_locator("#tr-qa-frame")
    frame.locator("#tr-qa-question textarea").wait_for(timeout=30_000)
    api = page.evaluate(
        f"""async () => {{
          const r = await fetch('http://{CHAT_HOST}:{live_server.port}/api/ask', {{method: 'POST',
              headers: {{'content-type': 'application/json'}}, body: JSON.stringify({{question: 'bail out', k: 1}})}});
          return r.status;
        }}"""
    )
    assert api == 200
    shot(page, "embed-allowed")
    assert rec.hosts() <= {f"{ALLOWED_HOST}:{campaign_site}", f"{CHAT_HOST}:{live_server.port}"}, rec.hosts()


def test_widget_and_iframe_are_blocked_from_another_origin(
    context, live_server: LiveServer, campaign_site: int
) -> None:
    page = context.new_page()
    rec = Recorder(page)
    page.goto(f"http://{OTHER_HOST}:{campaign_site}/campaign.html")
    page.wait_for_load_state("networkidle")
    page.locator("#tr-qa-frame").scroll_into_view_if_needed()
    page.wait_for_load_state("networkidle")
    # The module script is refused by CORS, so the element never comes alive; the iframe is refused by CSP.
    assert page.evaluate("() => customElements.get('gradio-app') === undefined")
    assert page.locator("gradio-app #tr-qa-question").count() == 0
    assert page.frame_locator("#tr-qa-frame").locator("#tr-qa-question").count() == 0
    console = "\n".join(rec.console)
    assert "CORS policy" in console and "frame-ancestors" in console, console
    api = page.evaluate(
        f"""async () => {{
          try {{
            await fetch('http://{CHAT_HOST}:{live_server.port}/api/ask', {{method: 'POST',
                headers: {{'content-type': 'application/json'}}, body: JSON.stringify({{question: 'bail out'}})}});
            return 'read';
          }} catch (e) {{ return 'blocked'; }}
        }}"""
    )
    assert api == "blocked"
    shot(page, "embed-other-origin")


# --- phone, permalinks, copy and feedback ---------------------------------------------------------------------------

PHONE = {"width": 390, "height": 844}
USER = "#tr-qa-chat [data-testid='user']"


def inside(box: dict | None, width: float, height: float) -> bool:
    """Whether a Playwright bounding box lies wholly inside a width × height viewport."""
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= width
        and (box["y"] + box["height"] <= height)
    )


def starts_in(box: dict | None, top: float, bottom: float) -> bool:
    """Whether a bounding box's top edge lies between ``top`` and ``bottom`` (the element starts in view)."""
    return box is not None and top <= box["y"] < bottom - 20


@pytest.fixture
def phone(browser) -> Iterator:
    """A 390 × 844 touch screen (an iPhone 12-14 in CSS pixels)."""
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-GB", color_scheme="light")
    yield ctx
    ctx.close()


def test_phone_layout_keeps_question_answer_input_and_examples_in_view(phone, live_server: LiveServer) -> None:
    page = phone.new_page()
    rec = Recorder(page)
    page.goto(f"{live_server.url}/?__theme=light")
    box = page.locator("#tr-qa-question textarea")
    box.wait_for()
    w, h = PHONE["width"], PHONE["height"]
    examples = page.locator("#tr-qa-examples button")
    # Gradio draws the example row after the question box: wait for the fourth button before counting.
    examples.nth(3).wait_for()
    assert examples.count() == 4
    for i in range(4):  # every example is on screen before anything is scrolled or typed
        assert inside(examples.nth(i).bounding_box(), w, h), (i, examples.nth(i).bounding_box())
    assert not page.locator("#tr-qa-hint").is_visible()  # no Shift key on a phone: the hint is dropped
    for n, question in enumerate((QUESTION, "What losses are the companies facing by 2022?"), 1):
        box.tap()
        box.fill(question)
        page.locator("#tr-qa-send").tap()
        page.locator(BOT).nth(n - 1).locator("mark strong").first.wait_for(timeout=ANSWER_TIMEOUT)
        # The scroll that follows each answer runs in the browser after the reply is drawn; wait for the newest
        # question to be the one at the top of the conversation (from the second answer on, it is not without it).
        page.wait_for_function(
            """(n) => { const users = document.querySelectorAll("#tr-qa-chat [data-testid='user']");
                const wrap = document.querySelector('#tr-qa-chat .bubble-wrap');
                if (users.length !== n) return false;
                const d = users[n - 1].getBoundingClientRect().top - wrap.getBoundingClientRect().top;
                return d >= 0 && d < 40; }""",
            arg=n,
            timeout=10_000,
        )
        chat = page.locator("#tr-qa-chat").bounding_box()
        assert inside(chat, w, h), chat
        top, bottom = chat["y"], chat["y"] + chat["height"]
        user, bot = page.locator(USER).last.bounding_box(), page.locator(BOT).last.bounding_box()
        assert starts_in(user, top, bottom), (n, user, chat)  # the newest question starts in view …
        assert starts_in(bot, top, bottom), (n, bot, chat)  # … and so does its answer
        assert inside(box.bounding_box(), w, h) and inside(page.locator("#tr-qa-send").bounding_box(), w, h)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= w  # nothing wider than the screen
        clipped = page.evaluate(  # no button's label spills out of it
            "() => [...document.querySelectorAll('#tr-qa-actions button, #tr-qa-examples button')]"
            ".filter(b => b.scrollWidth > b.clientWidth + 1).map(b => b.textContent.trim())"
        )
        assert clipped == [], clipped
    shot(page, "phone-answer")
    assert not rec.errors


def test_phone_iframe_embed_clips_nothing(phone, live_server: LiveServer, campaign_site: int) -> None:
    page = phone.new_page()
    page.goto(f"http://{ALLOWED_HOST}:{campaign_site}/campaign.html")
    page.locator("#tr-qa-frame").scroll_into_view_if_needed()
    frame = page.frame_locator("#tr-qa-frame")
    frame.locator("#tr-qa-question textarea").wait_for(timeout=30_000)
    frame.locator("#tr-qa-examples button").nth(3).wait_for()  # drawn after the question box
    inner = frame.locator("html").evaluate(
        "e => ({scroll: e.scrollWidth, client: e.clientWidth, boxes: ['#tr-qa-chat', '#tr-qa-question', "
        "'#tr-qa-send', '#tr-qa-clear', '#tr-qa-copy', '#tr-qa-examples'].map(s => "
        "document.querySelector(s).getBoundingClientRect().right)})"
    )
    assert inner["scroll"] <= inner["client"], inner  # no sideways scrolling inside the frame
    assert all(right <= inner["client"] for right in inner["boxes"]), inner
    frame_box = page.locator("#tr-qa-frame").bounding_box()
    assert frame_box is not None and frame_box["x"] >= 0 and frame_box["x"] + frame_box["width"] <= PHONE["width"]


def test_permalink_asks_on_load_and_copy_gives_plain_text(context, live_server: LiveServer) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    rec = Recorder(page)
    page.goto(f"{live_server.url}/?__theme=light")
    ask_in_page(page, QUESTION)
    bot = page.locator(BOT).last
    bot.locator("mark strong").first.wait_for(timeout=ANSWER_TIMEOUT)
    link = bot.locator("p.tr-qa-share a").get_attribute("href") or ""
    assert link == f"{live_server.url}/answer?q=How%20much%20was%20the%202016%20bail%20out%3F"
    answer_words = bot.locator("p").first.text_content() or ""

    page.locator("#tr-qa-copy").click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert "<" not in copied and "£42m" in copied, copied  # plain text, not the message's HTML
    quote = bot.locator("blockquote").first.text_content() or ""
    title = bot.locator("p.tr-qa-source a").first.text_content() or ""
    assert f'"{" ".join(quote.split())}" ({title}' in copied and copied.endswith(link), copied

    # The chat permalink (/?q=) asks on load and shows the same answer; the shared page shows it too.
    fresh = context.new_page()
    fresh.goto(f"{live_server.url}/?__theme=light&q=How%20much%20was%20the%202016%20bail%20out%3F")
    again = fresh.locator(BOT).last
    again.locator("mark strong").first.wait_for(timeout=ANSWER_TIMEOUT)
    assert fresh.locator(USER).last.text_content().strip() == QUESTION
    assert (again.locator("p").first.text_content() or "") == answer_words
    shared = context.new_page()
    shared.goto(link)
    assert "£42m" in (shared.locator("main").text_content() or "")
    assert shared.locator("meta[property='og:title']").get_attribute("content") == QUESTION
    assert not rec.errors


def test_thumbs_down_is_stored_with_the_question_and_answer(context, live_server: LiveServer, web_settings) -> None:
    from tr_qa.feedback import FeedbackStore, feedback_path

    store = FeedbackStore(feedback_path(web_settings))
    before = len(store.rows())
    page = context.new_page()
    page.goto(f"{live_server.url}/?__theme=light")
    ask_in_page(page, QUESTION)
    bot = page.locator(BOT).last
    bot.locator("mark strong").first.wait_for(timeout=ANSWER_TIMEOUT)
    page.locator("#tr-qa-chat button[aria-label='Dislike']").last.click()
    for _ in range(100):
        rows = store.rows()
        if len(rows) > before:
            break
        page.wait_for_timeout(100)
    assert len(rows) == before + 1
    row = rows[-1]
    assert row["question"] == QUESTION and row["vote"] == -1 and "£42m" in str(row["answer"])
    assert row["generation"] and str(row["generation"]).startswith("gen-")
    assert set(row) == {"id", "created", "question", "answer", "abstained", "vote", "generation"}


def test_one_font_family_and_no_font_files(context, live_server: LiveServer) -> None:
    page = context.new_page()
    rec = Recorder(page)
    page.goto(f"{live_server.url}/?__theme=light")
    page.locator("#tr-qa-question textarea").wait_for()
    page.wait_for_load_state("networkidle")
    families = page.evaluate(
        "() => ['#tr-qa-title h1', '#tr-qa-intro p', '#tr-qa-send', '#tr-qa-question textarea', "
        "'#tr-qa-examples button'].map(s => getComputedStyle(document.querySelector(s)).fontFamily)"
    )
    assert len(set(families)) == 1 and families[0].startswith("system-ui"), families
    # The heading once mixed two fonts: a bundled SemiBold file lacked most letters. Now no font file is fetched.
    assert not [u for u in rec.requests if u.split("?")[0].endswith((".woff", ".woff2", ".ttf", ".otf"))]
    assert page.evaluate("() => [...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)") == []
