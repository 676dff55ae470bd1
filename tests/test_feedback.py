"""Answer feedback: the vote's checks, the SQLite store beside the index, POST /api/feedback and its export."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from conftest import LiveServer

from tr_qa.config import Settings
from tr_qa.errors import InputError
from tr_qa.feedback import FeedbackStore, Vote, export_items, export_jsonl, feedback_path
from tr_qa.web.app import build_app

QUESTION = "How much was the 2016 bail out?"
COLUMNS = ["id", "created", "question", "answer", "abstained", "vote", "generation"]


def test_feedback_file_sits_beside_the_index_not_in_it(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    assert feedback_path(settings) == (tmp_path / "feedback.sqlite3").resolve()
    assert feedback_path(replace(settings, feedback_path=tmp_path / "votes.db")) == tmp_path / "votes.db"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"vote": 0}, "vote must be 1 (thumbs up) or -1 (thumbs down), got 0"),
        ({"vote": True}, "vote must be 1"),
        ({"question": "  "}, "question is empty"),
        ({"question": "a\x00b"}, "control characters"),
        ({"answer": "x" * 2001}, "answer is too long: 2001 characters"),
        ({"answer": "a\x1bb"}, "answer contains control characters"),
        ({"abstained": "no"}, "abstained must be true or false, got 'no'"),
    ],
)
def test_a_bad_vote_is_refused_naming_the_value(kwargs: dict, words: str) -> None:
    fields = {"question": QUESTION, "answer": "£42m", "abstained": False, "vote": 1, "generation": "gen-1"} | kwargs
    with pytest.raises(InputError, match=None) as err:
        Vote(**fields)
    assert words in str(err.value)


def test_store_keeps_only_the_vote_fields_durably_and_export_lists_what_to_label(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    store.add(Vote(QUESTION, "£42m", False, 1, "gen-1"))
    store.add(Vote("Who won the 2031 election?", "The documents don't answer this.", True, 1, "gen-1"))
    store.add(Vote("What losses  by 2022?", "£443m", False, -1, "gen-2"))
    store.add(Vote("what losses by 2022?", "£443m", False, -1, "gen-2"))  # the same question again
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[1] for r in db.execute("PRAGMA table_info(feedback)")] == COLUMNS
    rows = FeedbackStore(path).rows()  # a new store on the same file: the votes are on disk
    assert [(r["question"], r["vote"], r["abstained"], r["generation"]) for r in rows][:2] == [
        (QUESTION, 1, 0, "gen-1"),
        ("Who won the 2031 election?", 1, 1, "gen-1"),
    ]
    items = export_items(rows)
    assert [i["question"] for i in items] == ["Who won the 2031 election?", "What losses by 2022?"]
    for item in items:
        assert set(item) == {"id", "question", "answers", "doc", "type", "split"}
        assert item["answers"] == [] and item["doc"] is None and item["type"] == "unlabelled" and item["split"] == "dev"
        assert str(item["id"]).startswith("fb-")
    assert [json.loads(line) for line in export_jsonl(rows).splitlines()] == items


@pytest.mark.integration
def test_api_feedback_stores_a_vote_with_the_index_generation(live_server: LiveServer, web_settings) -> None:
    body = {"question": QUESTION, "answer": "£42m", "abstained": False, "vote": -1}
    r = httpx.post(f"{live_server.url}/api/feedback", json=body, headers={"user-agent": "secret-agent"}, timeout=10)
    assert r.status_code == 201, r.text
    stored = r.json()["stored"]
    row = next(r for r in FeedbackStore(feedback_path(web_settings)).rows() if r["id"] == stored)
    generation = (Path(web_settings.index_dir) / "CURRENT").read_text().strip()
    assert row["generation"] == generation and row["vote"] == -1 and row["question"] == QUESTION
    assert "secret-agent" not in json.dumps(row) and "127.0.0.1" not in json.dumps(row)  # nothing personal
    assert not (Path(web_settings.index_dir) / "feedback.sqlite3").exists()  # beside the index, never in it


@pytest.mark.integration
@pytest.mark.parametrize(
    ("content", "ctype", "status", "words"),
    [
        ('{"question": "q", "answer": "a", "vote": 2}', "application/json", 400, "vote must be 1"),
        (
            '{"question": "q", "answer": "a", "vote": 1, "ip": "x"}',
            "application/json",
            400,
            "unknown field(s): ip; expected question, answer",
        ),
        ('{"question": "", "answer": "a", "vote": 1}', "application/json", 400, "question is empty"),
        ('{"question": "q", "answer": "a", "vote": "1"}', "application/json", 400, "vote: Input should be"),
        ('{"question": "q", "answer": "a"}', "application/json", 400, "vote is missing"),
        ("[1]", "application/json", 400, "body must be a JSON object"),
        ("question=q&vote=1", "application/x-www-form-urlencoded", 415, "Content-Type must be application/json"),
        ('{"question": "' + "x" * 20_000 + '"}', "application/json", 413, "too large"),
    ],
)
def test_api_feedback_bad_requests_are_json_4xx(
    live_server: LiveServer, content: str, ctype: str, status: int, words: str
) -> None:
    r = httpx.post(f"{live_server.url}/api/feedback", content=content, headers={"content-type": ctype}, timeout=10)
    assert r.status_code == status and words in r.json()["error"], r.text


@pytest.mark.integration
def test_api_feedback_is_rate_limited(web_qa, tmp_path: Path) -> None:
    settings = replace(web_qa.settings, rate_limit="2/60", feedback_path=tmp_path / "fb.sqlite3")
    server = LiveServer(build_app(web_qa, settings)).start()
    try:
        body = {"question": QUESTION, "answer": "£42m", "vote": 1}
        codes = [httpx.post(f"{server.url}/api/feedback", json=body, timeout=10).status_code for _ in range(3)]
        assert codes == [201, 201, 429]
        assert len(FeedbackStore(tmp_path / "fb.sqlite3").rows()) == 2
    finally:
        server.stop()


def test_cli_feedback_export_writes_items_to_label(tmp_path: Path) -> None:
    db = tmp_path / "feedback.sqlite3"
    FeedbackStore(db).add(Vote("Why did it fail?", "because", False, -1, "gen-1"))
    out = tmp_path / "label.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "tr_qa", "feedback", "export", "--db", str(db), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "wrote 1 questions to label" in run.stderr
    assert [json.loads(line)["question"] for line in out.read_text().splitlines()] == ["Why did it fail?"]
    missing = subprocess.run(
        [sys.executable, "-m", "tr_qa", "feedback", "export", "--db", str(tmp_path / "none.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "no feedback file at" in missing.stderr
