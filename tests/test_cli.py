"""The tr-qa command: JSON output, readable output, one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tr_qa.config import Settings

pytestmark = pytest.mark.integration


def tr_qa(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tr_qa", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "TR_QA_THREADS": "1"},
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_ask_json_prints_one_object_with_offsets_into_the_source(seed_settings: Settings) -> None:
    proc = tr_qa(
        "ask",
        "How much was the bail out the companies got in 2016?",
        "--json",
        "--k",
        "3",
        "--index",
        str(seed_settings.index_dir),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["abstained"] is False and out["answer"]["text"] == "£42m"
    assert len(out["passages"]) <= 3
    for p in out["passages"]:
        text = (seed_settings.corpus_dir / p["doc"]).read_text(encoding="utf-8")
        assert text[p["start"] : p["end"]] == p["text"]
        for h in p["highlights"]:
            assert p["start"] <= h["start"] < h["end"] <= p["end"]
    a = out["answer"]
    assert (seed_settings.corpus_dir / a["doc"]).read_text(encoding="utf-8")[a["start"] : a["end"]] == a["text"]


def test_ask_human_output_marks_the_highlights_and_names_the_source(seed_settings: Settings) -> None:
    proc = tr_qa(
        "ask", "Which company won the West Midlands probation contract?", "--index", str(seed_settings.index_dir)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(("Answer: ", "Best guess, weak evidence: "))
    assert "«" in proc.stdout and "[[" in proc.stdout
    # Each passage names its title, file and character range, so the quote can be checked in the source.
    assert re.search(r"^\[1\] .+ — 004_a9da44ecae937e51\.txt  \(chars \d+-\d+, score \d\.\d\d\)$", proc.stdout, re.M)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "   "], "question is empty"),
        (["ask", "q" * 2001], "too long"),
        (["ask", "tab\x1bescape"], "control characters"),
        (["ask", "who?", "--k", "0"], "k must be between 1 and 50, got 0"),
        (["index", "--corpus", "/no/such/folder"], "corpus folder does not exist"),
        (["eval", "--qa", "/no/such.jsonl"], "does not exist"),
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(args: list[str], message: str, tmp_path: Path) -> None:
    proc = tr_qa(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_missing_index_is_a_one_line_message_offering_the_build(tmp_path: Path) -> None:
    proc = tr_qa("ask", "Who runs probation?", "--index", str(tmp_path / "none"))
    assert proc.returncode == 1
    assert "tr-qa index" in proc.stderr and "Traceback" not in proc.stderr


def test_index_command_reports_counts_and_skips_bad_files(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Napo is the probation union. It opposed the reforms.\n", encoding="utf-8")
    (corpus / "bad.txt").write_bytes(b"\xff\xfe\x00\x00binary")
    proc = tr_qa("index", "--corpus", str(corpus), "--index", str(tmp_path / "i"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "indexed 1 documents" in proc.stdout
    assert "bad.txt" in proc.stderr and "skipped" in proc.stderr
    again = tr_qa("index", "--corpus", str(corpus), "--index", str(tmp_path / "i"), "--no-progress")
    assert "nothing to embed" in again.stdout


def test_eval_squad_json_prints_exactly_one_object_and_never_touches_index(tmp_path: Path) -> None:
    squad = {
        "version": "1.1",
        "data": [
            {
                "title": "Probation",
                "paragraphs": [
                    {
                        "context": "Napo, the probation union, was founded in 1912. It represents probation staff.",
                        "qas": [
                            {
                                "id": "a",
                                "question": "When was Napo founded?",
                                "answers": [{"text": "1912", "answer_start": 42}],
                            }
                        ],
                    },
                    {
                        "context": "Working Links ran three community rehabilitation companies until 2019.",
                        "qas": [
                            {
                                "id": "b",
                                "question": "How many CRCs did Working Links run?",
                                "answers": [{"text": "three", "answer_start": 22}],
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(squad), encoding="utf-8")
    proc = tr_qa("eval", "--squad", str(path), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in (
        "n",
        "recall@1",
        "recall@5",
        "mrr@10",
        "highlight_hit",
        "em",
        "f1",
        "unanswerable_abstained",
        "answerable_answered",
        "latency_ms_p50",
        "latency_ms_p95",
    ):
        assert key in out
    assert out["n"] == 2 and out["recall@1"] == 1.0
    assert not (tmp_path / "index").exists()


def test_ask_loads_no_web_document_or_chunking_libraries(seed_settings: Settings) -> None:
    # Start-up time: `tr-qa ask` pays only for what answering needs (not Gradio, spaCy, the chunker or
    # sentence-transformers, each a second or more of imports).
    code = (
        "import sys; from tr_qa.cli import main; sys.argv = ['tr-qa', 'ask', 'Who runs probation?', '--index', "
        f"{str(seed_settings.index_dir)!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('gradio', 'spacy', 'langchain_text_splitters', 'sentence_transformers', 'sklearn', 'pandas')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "TR_QA_THREADS": "1"}
    )
    assert json.loads(out.stdout)["question"] == "Who runs probation?"
    assert out.stderr.strip().splitlines()[-1] == "[]"
