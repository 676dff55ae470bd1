"""tr-qa bench: percentiles, ratios, table and JSON shaping, the synthetic corpus, and one real run on the seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tr_qa.bench.commands import parse_clients
from tr_qa.bench.figures import (
    AskFigures,
    BenchConfig,
    BenchResult,
    BuildFigures,
    HttpFigures,
    HttpLevel,
    Latency,
    MemoryFigures,
    Meta,
    PeerFigures,
    StartupFigures,
)
from tr_qa.bench.http import distinct_question
from tr_qa.bench.report import dumps, grid, peer_ratios, text
from tr_qa.bench.runner import workspace
from tr_qa.bench.synthetic import estimated_chunks, spread, write_corpus
from tr_qa.errors import InputError
from tr_qa.qa import STAGES

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("meta", "build", "ask", "memory", "startup", "http", "peers", "ratios")


def lat(p50: float, p95: float) -> Latency:
    return Latency(10, p50, p95, p95, p95)


def sample_result(peers: tuple[PeerFigures, ...]) -> BenchResult:
    ask = AskFigures(10, {s: lat(1.0, 2.0) for s in STAGES}, lat(20.0, 30.0), lat(100.0, 150.0), lat(0.1, 0.2), 3)
    build = BuildFigures(5, 72, 18.0, 4.0, 600.0, 2.0, 36.0, 0.111)
    level = HttpLevel(1, 8, 8, 0, 0, 1.0, 7.0, lat(120.0, 160.0), 20.0, 750.0, {"200": 8})
    return BenchResult(
        meta=Meta("Linux x86_64", 2, 1, 1.0, 1.5, "seeds", False, 10, 80.0, ()),
        build=build,
        ask=ask,
        memory=MemoryFigures(800.0, 1000.0, 700.0, 750.0),
        startup=StartupFigures(15.0, 15.5, 700.0, (9.0,), 9.0),
        http=HttpFigures((level,), "distinct questions"),
        peers=peers,
        ratios=peer_ratios(ask, build, peers),
    )


def test_latency_gives_interpolated_percentiles_in_milliseconds() -> None:
    summary = Latency.of([0.001 * i for i in range(1, 101)])  # 1..100 ms
    assert summary.n == 100
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p95_ms == pytest.approx(95.05)
    assert summary.max_ms == pytest.approx(100.0)
    assert summary.p50_ms <= summary.p95_ms <= summary.p99_ms <= summary.max_ms


def test_latency_of_nothing_is_zeros_not_an_error() -> None:
    assert Latency.of([]) == Latency(0, 0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"clients": (1, 0)}, "clients must be whole numbers of at least 1, got [1, 0]"),
        ({"skip": frozenset({"serve", "nonsense"})}, "--skip takes build, serve, http, peers; got nonsense"),
        ({"questions": 0}, "bench questions must be at least 1, got 0"),
        ({"synthetic": 0}, "--synthetic must be at least 1 chunk, got 0"),
    ],
)
def test_bench_config_names_the_bad_value(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        BenchConfig(corpus=Path("seeds"), qa_file=None, **changes)  # type: ignore[arg-type]


def test_clients_list_is_parsed_and_a_bad_item_named() -> None:
    assert parse_clients(" 1, 10,50 ,") == (1, 10, 50)
    with pytest.raises(InputError, match="got 'ten'"):
        parse_clients("1,ten")


def test_grid_aligns_columns_and_shows_missing_values_as_a_dash() -> None:
    out = grid(["", "p50", "p95"], [["embed", 14.94, 0.5], ["a longer name", None, 123.0]]).splitlines()
    assert out[1] == "embed          14.9  0.500"
    assert out[2] == "a longer name     -  123.0"
    assert len({len(line) for line in out}) == 1


def test_ratios_are_trqa_over_peer_and_missing_for_a_failed_peer() -> None:
    peers = (
        PeerFigures("txtai hybrid", "9", 6.0, lat(10.0, 15.0)),
        PeerFigures("haystack hybrid", "3", error="ModuleNotFoundError: No module named 'haystack'"),
    )
    ratios = sample_result(peers).ratios
    assert ratios["ask_p50_over_txtai_search_p50"] == pytest.approx(10.0)
    assert ratios["retrieval_p50_over_txtai_search_p50"] == pytest.approx(2.0)
    assert ratios["ask_p95_over_txtai_search_p95"] == pytest.approx(10.0)
    assert ratios["build_s_over_txtai_index_s"] == pytest.approx(3.0)
    assert ratios["ask_p50_over_haystack_search_p50"] is None
    assert ratios["build_s_over_haystack_index_s"] is None


def test_json_has_every_section_and_the_table_says_why_a_peer_is_missing() -> None:
    peers = (PeerFigures("haystack hybrid", "", error="ModuleNotFoundError: No module named 'haystack'"),)
    result = sample_result(peers)
    data = json.loads(dumps(result))
    assert all(data[s] is not None for s in SECTIONS)
    assert data["ask"]["stages"]["read"]["p50_ms"] == 1.0
    assert data["http"]["levels"][0]["latency"]["p95_ms"] == 160.0
    assert data["peers"][0]["error"].startswith("ModuleNotFoundError")
    shown = text(result)
    for heading in ("warm ask in process (ms)", "index build:", "start-up (s)", "peak memory (MB)", "HTTP POST"):
        assert heading in shown
    assert "haystack hybrid: not measured (ModuleNotFoundError: No module named 'haystack')" in shown


def test_distinct_questions_never_repeat_across_requests_or_levels() -> None:
    asked = {distinct_question(["a?", "b?"], n, i) for n in (1, 10) for i in range(30)}
    assert len(asked) == 60


def squad_articles(paragraphs: int, length: int) -> list[dict[str, object]]:
    words = ("probation " * (length // 10 + 1))[:length]
    paras = [
        {"context": f"{p} {words}", "qas": [{"question": f"question {p}.{q}?", "id": f"{p}.{q}"} for q in range(3)]}
        for p in range(paragraphs)
    ]
    return [
        {"title": "First_article", "paragraphs": paras[: paragraphs // 2]},
        {"paragraphs": paras[paragraphs // 2 :]},
    ]


def test_synthetic_corpus_writes_paragraphs_until_about_n_chunks(tmp_path: Path) -> None:
    corpus = write_corpus(squad_articles(40, 1000), 12, tmp_path / "c", questions=5)
    # A 1,002-character paragraph is two chunks of 800 with 200 overlap: six paragraphs make the twelve.
    assert corpus.paragraphs == 6 and corpus.synthetic and corpus.target_chunks == 12
    files = sorted(p.name for p in (tmp_path / "c").glob("*.txt"))
    assert files == [f"000_{p:03d}.txt" for p in range(6)]
    metadata = json.loads((tmp_path / "c" / "metadata.json").read_text(encoding="utf-8"))
    assert metadata["000_000.txt"] == {"title": "First article ¶1"}
    assert len(corpus.questions) == 5 and set(corpus.questions) <= {
        f"question {p}.{q}?" for p in range(6) for q in range(3)
    }
    assert corpus.questions[0] == "question 0.0?"


def test_synthetic_corpus_crosses_articles_and_rejects_a_non_squad_list(tmp_path: Path) -> None:
    corpus = write_corpus(squad_articles(10, 100), 8, tmp_path / "c", questions=100)
    assert corpus.paragraphs == 8 and len(corpus.questions) == 24
    assert (tmp_path / "c" / "001_002.txt").is_file()  # the second article's third paragraph
    with pytest.raises(InputError, match="not a SQuAD article list"):
        write_corpus([{"title": "x"}], 5, tmp_path / "bad", questions=1)


def test_chunk_estimate_and_even_spread() -> None:
    assert [estimated_chunks(n, 800, 200) for n in (10, 800, 801, 1400, 1401)] == [1, 1, 2, 2, 3]
    assert spread(list("abcdefghij"), 5) == ("a", "c", "e", "g", "i")
    assert spread(["a", "b"], 5) == ("a", "b")


def test_workdir_must_be_empty_so_the_build_is_cold(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="must be an empty or new folder"), workspace(tmp_path):
        pass
    with workspace(tmp_path / "new") as work:
        assert work.is_dir()


@pytest.mark.integration
def test_bench_quick_on_the_seeds_reports_every_section_with_sane_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--quick", "--questions", "5", "--requests", "4", "--clients", "1,2", "--json-out", str(out), "--json"]
    proc = subprocess.run(
        [sys.executable, "-m", "tr_qa", "bench", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # nothing may be written into the repository
        env={**os.environ, "TR_QA_HOME": str(ROOT), "TR_QA_THREADS": "1"},
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(proc.stdout) == data
    assert all(data[s] is not None for s in SECTIONS), [s for s in SECTIONS if data[s] is None]
    assert data["meta"]["corpus"] == str(ROOT / "seeds") and data["meta"]["questions"] == 5

    def sane(latency: dict[str, float], n: int) -> None:
        assert latency["n"] == n and 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["max_ms"]

    ask = data["ask"]
    for stage in ("embed", "retrieve", "highlight", "read", "judge"):
        sane(ask["stages"][stage], 5)
    sane(ask["retrieval"], 5)
    sane(ask["end_to_end"], 5)
    sane(ask["cached"], 5)
    build = data["build"]
    assert build["documents"] == 5 and build["chunks"] > 10
    assert build["build_chunks_per_s"] > 0 and build["encode_chunks_per_s"] > 0 and build["build_to_encode_rate"] > 0
    start = data["startup"]
    assert 0 < start["serve_healthz_s"] <= start["serve_first_answer_s"]
    assert len(start["ask_process_s"]) == 1 and start["ask_process_p50_s"] > 0
    memory = data["memory"]
    assert (
        memory["bench_after_ask_mb"] > 100 and memory["server_peak_mb"] >= memory["server_after_first_answer_mb"] > 100
    )
    levels = {lv["clients"]: lv for lv in data["http"]["levels"]}
    assert set(levels) == {1, 2}
    assert levels[1]["errors"] == 0 and levels[1]["answered"] == 4 and levels[1]["shed"] == 0
    for lv in levels.values():
        sane(lv["latency"], lv["answered"])
        assert lv["answered_per_s"] > 0 and lv["healthz_max_ms"] > 0
    peers = {p["name"]: p for p in data["peers"]}
    assert set(peers) == {"txtai hybrid", "haystack hybrid"}
    for peer in peers.values():
        assert peer["error"] is None, peer["error"]
        assert peer["index_s"] > 0
        sane(peer["search"], 5)
    assert data["ratios"] and all(v is not None and v > 0 for v in data["ratios"].values())


def test_synthetic_corpus_recombines_paragraphs_past_the_file_so_no_chunk_repeats(tmp_path: Path) -> None:
    from tr_qa.chunk import chunk_document
    from tr_qa.ingest import ingest

    paragraphs = [
        "Napo is the probation union. It opposed the reforms in 2014. Members voted against the plan.",
        "The companies were paid £42m in 2016. Inspectors criticised the work. Ministers defended it.",
        "Working Links ran three areas. It went into administration. Its contracts passed to others.",
    ]
    articles = [
        {
            "title": "T",
            "paragraphs": [{"context": p, "qas": [{"question": f"q{i}?"}]} for i, p in enumerate(paragraphs)],
        }
    ]
    corpus = write_corpus(articles, 9, tmp_path / "c", questions=10)
    assert corpus.paragraphs == 9 and len(corpus.questions) == 3  # recombined files carry no questions
    docs = ingest(tmp_path / "c").documents
    texts = [c.text for d in docs for c in chunk_document(d, 800, 200)]
    assert len(docs) == 9 and len(texts) == len(set(texts))
