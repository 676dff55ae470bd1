"""The question set is valid; question files are checked; the gate fails below its limits; reports are written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tr_qa import evaluate as ev
from tr_qa import report as rp
from tr_qa.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
ALLOWED_TYPES = {
    "figure",
    "date",
    "person",
    "organisation",
    "place",
    "why",
    "how",
    "comment",
    "paraphrase",
    "multi_doc",
    "unanswerable",
}


def test_question_set_is_valid_and_every_answer_is_in_its_document() -> None:
    items = ev.load_qa_file(ROOT / "eval" / "qa.jsonl")
    assert len(items) >= 250
    assert len({i.id for i in items}) == len(items)
    assert sum(not i.answerable for i in items) >= 60
    for kind, least in (("comment", 25), ("paraphrase", 25)):
        assert sum(i.type == kind for i in items) >= least
    assert sum(i.type in ("why", "how") for i in items) >= 25
    # Both splits hold every type, about half each.
    for t in {i.type for i in items}:
        dev = sum(i.type == t and i.split == "dev" for i in items)
        test = sum(i.type == t and i.split == "test" for i in items)
        assert abs(dev - test) <= 1, t
    for item in items:
        assert item.type in ALLOWED_TYPES
        if item.answerable:
            text = (ROOT / "seeds" / item.doc).read_text(encoding="utf-8")
            for answer in item.answers:
                assert answer in text, (item.id, answer)
        else:
            assert item.doc is None and item.type == "unanswerable"


def test_gate_fails_below_minimum_and_above_latency_maximum() -> None:
    values = {"recall@5": 0.9, "f1": 0.5, "latency_ms_p95": 120.0}
    assert ev.check_gate(values, {"recall@5": 0.85, "f1": 0.4, "latency_ms_p95": 500}) == []
    problems = ev.check_gate(values, {"recall@5": 0.95, "latency_ms_p95": 100, "nonsense": 1})
    assert len(problems) == 3 and "recall@5 = 0.900 is below the minimum 0.95" in problems


def test_project_thresholds_file_names_real_metrics() -> None:
    thresholds = ev.load_thresholds(ROOT / "eval" / "thresholds.json")
    assert thresholds and set(thresholds) <= set(ev.METRICS) | {"HasAns_f1", "NoAns_acc", "overall_f1"}


def test_malformed_question_files_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "answers": [], "doc": null}\n{oops\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl:2: not JSON"):
        ev.load_qa_file(bad)
    bad.write_text('{"id": "a", "question": "q", "answers": ["x"], "doc": null}\n', encoding="utf-8")
    with pytest.raises(InputError, match="'doc' must name"):
        ev.load_qa_file(bad)


def test_squad_files_become_documents_and_questions(tmp_path: Path) -> None:
    squad = {
        "version": "2.0",
        "data": [
            {
                "title": "Probation_Act",
                "paragraphs": [
                    {
                        "context": "The Act came into force in 1907.",
                        "qas": [
                            {"id": "1", "question": "When?", "answers": [{"text": "1907", "answer_start": 27}]},
                            {"id": "2", "question": "Who?", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(squad), encoding="utf-8")
    items = ev.squad_corpus(path, tmp_path / "corpus")
    assert [(i.id, i.answers, i.doc, i.type) for i in items] == [
        ("1", ("1907",), "000_000.txt", "squad"),
        ("2", (), None, "unanswerable"),
    ]
    assert (tmp_path / "corpus" / "000_000.txt").read_text(encoding="utf-8") == "The Act came into force in 1907."
    path.write_text('{"data": 3}', encoding="utf-8")
    with pytest.raises(InputError, match="not a SQuAD JSON file"):
        ev.squad_corpus(path, tmp_path / "c2")


@pytest.mark.integration
def test_eval_on_the_seed_index_writes_a_report(seed_qa, tmp_path: Path) -> None:
    items = ev.load_qa_file(ROOT / "eval" / "qa.jsonl")[:12]
    summary, records = ev.evaluate(seed_qa, items, ["hybrid", "bm25"], progress=False, source="qa.jsonl")
    assert summary["overall"]["n"] == 12 and set(summary["by_retriever"]) == {"hybrid", "bm25"}
    for name in ("f1", "coverage@acc90", "aurc", "ece"):
        lo, hi = summary["intervals"][name]
        assert lo <= summary["overall"][name] <= hi
    paths = rp.write_report(tmp_path, summary, records, summary["overall"]["abstain_threshold"])
    names = [p.name for p in paths]
    assert names == ["report.json", "summary.md", "per_type.png", "risk_coverage.png", "reliability.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths[2:])
    assert "Failed questions" in paths[1].read_text(encoding="utf-8")
    # The report's per-question rows reproduce the headline figures by hand.
    report = json.loads(paths[0].read_text(encoding="utf-8"))
    rows = report["records"]
    t = summary["overall"]["abstain_threshold"]
    answerable = [r for r in rows if r["answers"]]
    shown = [r for r in rows if r["prediction"] and r["confidence"] >= t]
    assert summary["overall"]["answerable_answered"] == pytest.approx(
        sum(r in shown for r in answerable) / len(answerable)
    )
    assert summary["overall"]["coverage"] == pytest.approx(len(shown) / len(rows))
    assert sum(r["ok"] for r in rows) == len(rows) - len(report["failures"])


def test_validate_names_each_problem_on_its_own_line(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The bail out cost £42m.", encoding="utf-8")
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"id": "1", "question": "How much?", "answers": ["£42m"], "doc": "a.txt", "type": "figure", "split": "dev"}\n'
        '{"id": "2", "question": "Who?", "answers": [], "doc": null, "type": "unanswerable", "split": "test"}\n',
        encoding="utf-8",
    )
    assert ev.validate_qa_file(good, corpus) == []
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "1", "question": "How much?", "answers": ["£43m"], "doc": "a.txt", "type": "figure"}\n'
        '{"id": "2", "question": "Who?", "answers": ["x"], "doc": "missing.txt", "type": "weird"}\n'
        '{"id": "3", "question": "Why?", "answers": [], "doc": null, "type": "why"}\n',
        encoding="utf-8",
    )
    problems = ev.validate_qa_file(bad, corpus)
    assert len(problems) == 4 and all("\n" not in p for p in problems)
    assert any("'£43m' is not an exact substring" in p for p in problems)
    assert any("unknown type 'weird'" in p for p in problems)
    assert any("missing.txt" in p and "does not exist" in p for p in problems)
    assert any("must be 'unanswerable'" in p for p in problems)
    bad.write_text('{"id": "1", "question": "q", "answers": [], "doc": null, "split": "train"}\n', encoding="utf-8")
    assert ev.validate_qa_file(bad, corpus) == [f"{bad}:1: 'split' must be one of dev, test, got 'train'"]


@pytest.mark.integration
def test_cli_eval_measures_a_candidate_reader_only_with_a_judge_fitted_for_it(seed_settings, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tr_qa.cli import cli
    from tr_qa.judge import FITTED_FILE
    from tr_qa.reader import SHIPPED_MODEL_DIR, WEIGHTS_FILE

    folder, judge = tmp_path / "candidate", tmp_path / "confidence.json"
    shutil.copytree(SHIPPED_MODEL_DIR, folder)
    shutil.copy(FITTED_FILE, judge)
    args = ["eval", "--qa", str(ROOT / "eval" / "qa.jsonl"), "--split", "dev", "--limit", "3"]
    args += ["--index", str(seed_settings.index_dir), "--reader", str(folder), "--confidence", str(judge), "--json"]
    ran = CliRunner().invoke(cli, args, env={"TR_QA_HOME": str(ROOT)})
    assert ran.exit_code == 0, ran.output
    out = json.loads(ran.output)
    assert out["n"] == 3 and out["reader"] == f"{folder} (judge {judge})"
    (folder / WEIGHTS_FILE).write_bytes(b"not the weights the judge was fitted for")
    # As a person runs it: one line on stderr, exit 2.
    refused = subprocess.run(
        [sys.executable, "-m", "tr_qa", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TR_QA_HOME": str(ROOT), "TR_QA_THREADS": "1"},
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and not refused.stdout, refused.stderr
    assert "was fitted for other reader weights" in refused.stderr and "refit it" in refused.stderr


def test_cli_validate_exits_1_on_problems_and_0_on_the_project_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tr_qa.cli import cli

    runner = CliRunner()
    ok = runner.invoke(
        cli, ["eval", "--qa", str(ROOT / "eval" / "qa.jsonl"), "--validate"], env={"TR_QA_HOME": str(ROOT)}
    )
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "question": "q", "answers": ["nowhere"], "doc": "a.txt", "type": "figure"}\n')
    out = runner.invoke(cli, ["eval", "--qa", str(bad), "--validate"], env={"TR_QA_HOME": str(tmp_path)})
    assert out.exit_code == 1 and len(out.output.strip().splitlines()) == 1 and "a.txt" in out.output
