"""POST /api/documents: off without a token, 401 without the right one, size and type checked, and a document added
to a running server is answered from at once, while questions already running finish on the old index."""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from conftest import LiveServer
from reportlab.lib import pdfencrypt
from test_extract import make_pdf

from tr_qa.config import Settings
from tr_qa.embed import Embedder
from tr_qa.errors import InputError
from tr_qa.web.admin import LiveQA, admin_routes, check_token

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-admin-token-0123456789"
UPLOAD_LIMIT = 100_000
NEW_FACT = "The Quarry Lane approved premises in Bristol closed in March 2021 after a fire."
NEW_PDF = make_pdf(
    [
        ["Approved premises report", "Hostels for people released on licence were inspected across the region."],
        [NEW_FACT, "Residents were moved to other premises in Gloucester and Bath."],
    ]
)


def test_no_token_no_route_and_a_short_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TR_QA_ADMIN_TOKEN", raising=False)
    assert admin_routes(Settings()) == {}
    monkeypatch.setenv("TR_QA_ADMIN_TOKEN", f"  {TOKEN} ")
    settings = Settings()
    assert settings.admin_token == TOKEN and TOKEN not in repr(settings)  # never printed with the settings
    assert set(admin_routes(settings)) == {"/api/documents"}
    with pytest.raises(InputError, match="at least 16 characters, got 5"):
        check_token("short")
    with pytest.raises(InputError, match="visible ASCII"):
        check_token("a token with spaces in it")


def test_live_qa_swaps_atomically_and_a_call_in_flight_finishes_on_the_old_object() -> None:
    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name
            self.started = threading.Event()
            self.release = threading.Event()

        def ask(self) -> str:
            self.started.set()
            self.release.wait(5)
            return self.name

    old, new = Fake("old"), Fake("new")
    live = LiveQA(old)  # type: ignore[arg-type]
    answers: list[str] = []
    running = threading.Thread(target=lambda: answers.append(live.as_qa().ask()))  # type: ignore[call-arg]
    running.start()
    old.started.wait(5)
    assert live.swap(new) is old  # type: ignore[arg-type]
    new.release.set()
    assert live.ask() == "new" and live.current is new and live.name == "new"
    old.release.set()
    running.join(5)
    assert answers == ["old"]


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder):
    """A running app over a two-document index, with the admin route on and a small upload limit."""
    from tr_qa.index import build
    from tr_qa.qa import QA
    from tr_qa.web.app import build_app

    base = tmp_path_factory.mktemp("admin")
    (base / "corpus").mkdir()
    for name in ("002_d74444fc747f437f.txt", "004_a9da44ecae937e51.txt"):
        shutil.copy(ROOT / "seeds" / name, base / "corpus" / name)
    settings = Settings(corpus_dir=base / "corpus", index_dir=base / "index", rate_limit="0")
    build(settings, embedder=embedder, progress=False)
    qa = QA.load(settings=settings, embedder=embedder)
    web = replace(settings, admin_token=TOKEN, upload_bytes=UPLOAD_LIMIT)
    with LiveServer(build_app(qa, web)) as server:
        yield server, settings, qa


def upload(server: LiveServer, data: bytes, name: str | None = "report.pdf", token: str | None = TOKEN, **kw):
    headers = {"content-type": kw.pop("content_type", "application/pdf")}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    params = {"name": name} if name is not None else {}
    params.update(kw.pop("params", {}))
    return httpx.post(f"{server.url}/api/documents", content=data, headers=headers, params=params, timeout=120)


def ask(server: LiveServer, question: str) -> dict:
    r = httpx.post(f"{server.url}/api/ask", json={"question": question, "k": 3}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.integration
def test_the_route_is_404_while_no_token_is_set(admin_server) -> None:
    from tr_qa.web.app import build_app

    qa = admin_server[2]
    with LiveServer(build_app(qa, replace(qa.settings, admin_token="", upload_bytes=UPLOAD_LIMIT))) as server:
        r = upload(server, NEW_PDF)
        assert r.status_code == 404 and r.json() == {"error": "not found: /api/documents"}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("token", "scheme"),
    [(None, "Bearer"), ("wrong-token-0123456789", "Bearer"), (TOKEN, "Basic"), ("", "Bearer")],
    ids=["none", "wrong", "basic-scheme", "empty"],
)
def test_without_the_right_token_401_before_the_body_is_read(admin_server, token, scheme) -> None:
    server, settings, _ = admin_server
    headers = {"content-type": "application/pdf"}
    if token is not None:
        headers["authorization"] = f"{scheme} {token}".strip()
    too_big = b"x" * (UPLOAD_LIMIT + 1)  # unauthorised: refused for that, not for its size
    r = httpx.post(f"{server.url}/api/documents", content=too_big, headers=headers, params={"name": "x.pdf"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "admin token" in r.json()["error"] and TOKEN not in r.text
    assert not (settings.corpus_dir / "x.pdf").exists()


@pytest.mark.integration
def test_too_large_is_413_and_wrong_types_are_415(admin_server) -> None:
    server = admin_server[0]
    r = upload(server, b"%PDF-" + b"x" * UPLOAD_LIMIT)
    assert r.status_code == 413 and f"limit {UPLOAD_LIMIT} bytes" in r.json()["error"]
    r = upload(server, NEW_PDF, content_type="image/png")
    assert r.status_code == 415 and "Content-Type must be one of application/octet-stream" in r.json()["error"]
    r = upload(server, b"\x89PNG\r\n\x1a\n" + bytes(64), name="photo.pdf")  # declared a PDF, is a picture
    assert r.status_code == 415 and r.json()["error"] == (
        "photo.pdf is a PNG image, not a document (a scanned page needs OCR first)"
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("data", "name", "params", "words"),
    [
        (make_pdf([["Secret."]], encrypt=pdfencrypt.StandardEncryption("u", "o")), "locked.pdf", {}, "password"),
        (b"%PDF-1.4\nnot really", "broken.pdf", {}, "is not a readable PDF"),
        (b"Caf\xe9", "latin.txt", {}, "is not valid UTF-8"),
        (NEW_PDF, None, {}, "name is missing"),
        (NEW_PDF, "../escape.pdf", {}, "must be a plain file name"),
        (NEW_PDF, ".hidden.pdf", {}, "must be a plain file name"),
        (NEW_PDF, "report.exe", {}, "the name must end in one of .pdf"),
        (NEW_PDF, "report.pdf", {"replace": "maybe"}, "replace must be true or false, got 'maybe'"),
        (NEW_PDF, "report.pdf", {"folder": "x"}, "unknown query parameter(s): folder"),
        (b"", "empty.pdf", {}, "the request body is empty"),
    ],
)
def test_unreadable_documents_and_bad_names_are_400_and_nothing_is_written(
    admin_server, data: bytes, name: str | None, params: dict, words: str
) -> None:
    server, settings, _ = admin_server
    before = sorted(p.name for p in settings.corpus_dir.iterdir())
    r = upload(server, data, name=name, params=params)
    assert r.status_code == 400 and words in r.json()["error"], r.text
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == before


@pytest.mark.integration
def test_an_upload_is_answered_at_once_and_conflicts_are_409(admin_server) -> None:
    server, settings, _ = admin_server
    question = "When did the Quarry Lane approved premises close?"
    assert httpx.get(f"{server.url}/healthz").json()["documents"] == 2
    assert all(p["doc"] != "quarry.pdf" for p in ask(server, question)["passages"])

    r = upload(server, NEW_PDF, name="quarry.pdf")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["doc"] == "quarry.pdf" and body["status"] == "added" and body["documents"] == 3
    assert body["pages"] == 2 and body["chunks"] >= 1 and body["title"] == "Approved premises report"
    assert (settings.corpus_dir / "quarry.pdf").read_bytes() == NEW_PDF
    assert httpx.get(f"{server.url}/healthz").json()["documents"] == 3

    answered = ask(server, question)  # the same server, no restart
    top = answered["passages"][0]
    assert top["doc"] == "quarry.pdf" and NEW_FACT in top["text"] and top["page"] == 1  # where it starts
    assert not answered["abstained"] and answered["answer"]["doc"] == "quarry.pdf"
    assert "March 2021" in answered["answer"]["text"]
    page = httpx.get(f"{server.url}/doc/quarry.pdf")
    assert page.status_code == 200 and "Quarry Lane" in page.text

    assert upload(server, NEW_PDF, name="quarry.pdf").json()["status"] == "unchanged"
    other = make_pdf([["A different report about Quarry Lane."]])
    r = upload(server, other, name="quarry.pdf")
    assert r.status_code == 409 and "already in" in r.json()["error"]
    assert (settings.corpus_dir / "quarry.pdf").read_bytes() == NEW_PDF
    r = upload(server, NEW_PDF, name="copy.pdf")
    assert r.status_code == 409 and "same text as quarry.pdf" in r.json()["error"]
    assert not (settings.corpus_dir / "copy.pdf").exists()

    r = upload(server, other, name="quarry.pdf", params={"replace": "true"})
    assert r.status_code == 200 and r.json()["status"] == "replaced" and r.json()["documents"] == 3
    assert all(NEW_FACT not in p["text"] for p in ask(server, question)["passages"])
    assert not [p.name for p in settings.corpus_dir.iterdir() if p.name.startswith(".")]
