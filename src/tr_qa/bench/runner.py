"""One bench run, start to end: corpus, cold build, in-process asks, processes, HTTP load, peers."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from tr_qa.bench.figures import (
    BenchConfig,
    BenchResult,
    BuildFigures,
    Corpus,
    HttpFigures,
    MemoryFigures,
    Meta,
    PeerFigures,
    StartupFigures,
)
from tr_qa.bench.report import peer_ratios
from tr_qa.bench.stages import measure_ask, measure_encode, peak_rss_mb
from tr_qa.bench.startup import median, process_tree_rss_mb, run_ask_processes, run_index, start_server
from tr_qa.bench.synthetic import default_squad_file, spread, synthetic_corpus
from tr_qa.config import Settings
from tr_qa.errors import InputError

Log = Callable[[str], None]


@contextmanager
def workspace(workdir: Path | None) -> Iterator[Path]:
    """``workdir`` (created; it must be empty, so the build is cold) or a temporary folder removed afterwards."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="tr-qa-bench-") as tmp:
            yield Path(tmp)
        return
    workdir = Path(workdir)
    if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
        raise InputError(f"--workdir must be an empty or new folder (the build must be cold), got {workdir}")
    workdir.mkdir(parents=True, exist_ok=True)
    yield workdir


def prepare_corpus(config: BenchConfig, work: Path, settings: Settings) -> Corpus:
    """The corpus to index and its questions: generated from SQuAD for ``--synthetic``, else the given folder."""
    if config.synthetic is not None:
        squad = config.squad_file or default_squad_file()
        size, overlap = settings.chunk_size, settings.chunk_overlap
        return synthetic_corpus(squad, config.synthetic, work / "corpus", config.questions, size, overlap)
    from tr_qa.evaluate import load_qa_file

    if not Path(config.corpus).is_dir():
        raise InputError(f"corpus folder does not exist: {config.corpus}")
    if config.qa_file is None:
        raise InputError("give a question file (--qa) for a corpus that is not synthetic")
    questions = [item.question for item in load_qa_file(config.qa_file)]
    return Corpus(Path(config.corpus), spread(questions, config.questions))


def run_bench(config: BenchConfig, log: Log) -> BenchResult:
    """Run every part that ``config`` does not skip, in one process, and return the figures."""
    from tr_qa.embed import Embedder
    from tr_qa.qa import QA

    started, load_start = time.perf_counter(), os.getloadavg()[0]
    skip = config.skip
    with workspace(config.workdir) as work:
        base = Settings()
        corpus = prepare_corpus(config, work, base)
        if not corpus.questions:
            raise InputError("the bench has no questions to ask")
        settings = replace(base, corpus_dir=corpus.path, index_dir=work / "index")
        log(f"building the index of {corpus.path} with tr-qa index …")
        build_run = run_index(corpus.path, settings.index_dir)

        log(f"asking {len(corpus.questions)} questions in process …")
        embedder = Embedder(settings.threads)
        qa = QA.load(settings=settings, embedder=embedder)
        qa.warm_up()
        ask = measure_ask(qa, corpus.questions, config.cached_questions, config.k)
        texts = [c.text for c in qa.data.chunks]
        build = None
        if "build" not in skip:
            log(f"encoding the {len(texts)} chunk texts once …")
            encode_s = measure_encode(embedder, texts)
            build_rate = len(texts) / build_run.wall_s
            encode_rate = len(texts) / encode_s if encode_s > 0 else 0.0
            build = BuildFigures(
                documents=len(qa.documents),
                chunks=len(texts),
                build_wall_s=build_run.wall_s,
                build_chunks_per_s=round(build_rate, 2),
                build_peak_rss_mb=build_run.peak_rss_mb,
                encode_s=round(encode_s, 3),
                encode_chunks_per_s=round(encode_rate, 2),
                build_to_encode_rate=round(build_rate / encode_rate, 4) if encode_rate else 0.0,
            )
        bench_after_ask = peak_rss_mb()

        startup: StartupFigures | None = None
        http: HttpFigures | None = None
        server_first: float | None = None
        server_peak: float | None = None
        if "serve" not in skip or "http" not in skip:
            ask_times: tuple[float, ...] = ()
            if "serve" not in skip:
                log(f"timing {config.ask_runs} tr-qa ask process(es) …")
                ask_times = run_ask_processes(settings.index_dir, corpus.questions[: config.ask_runs])
            log("starting tr-qa serve …")
            serve = start_server(settings.index_dir, corpus.path, corpus.questions[0], work / "serve.log")
            try:
                pid = serve.server.proc.pid if serve.server.proc else 0
                server_first = process_tree_rss_mb(pid)
                server_peak = server_first
                if "serve" not in skip:
                    startup = StartupFigures(
                        serve.healthz_s, serve.first_answer_s, server_first, ask_times, median(ask_times)
                    )
                if "http" not in skip:
                    from tr_qa.bench.http import run_load

                    log(f"HTTP load with {', '.join(map(str, config.clients))} clients …")
                    http = run_load(
                        serve.server.url,
                        corpus.questions,
                        config.clients,
                        config.requests,
                        lambda: process_tree_rss_mb(pid),
                    )
                    server_peak = max([server_first, *(lv.server_rss_peak_mb for lv in http.levels)])
            finally:
                serve.server.stop()

        peers: tuple[PeerFigures, ...] | None = None
        if "peers" not in skip:
            from tr_qa.bench.peers import measure_peers

            log("peers: txtai and Haystack on the same chunks …")
            peers = measure_peers(embedder.path, texts, corpus.questions, config.k, settings.threads)

        vectors = None
        if config.vectors is not None:
            from tr_qa.bench.scale import measure_vector_index

            log(f"vector index at {config.vectors} vectors …")
            vectors = measure_vector_index(config.vectors)

    meta = Meta(
        machine=f"{platform.system()} {platform.machine()}",
        cpus=os.cpu_count() or 0,
        torch_threads=settings.threads,
        load_1m_start=round(load_start, 2),
        load_1m_end=round(os.getloadavg()[0], 2),
        corpus=f"{config.synthetic} chunks of SQuAD v1.1 train" if corpus.synthetic else str(config.corpus),
        synthetic=corpus.synthetic,
        questions=len(corpus.questions),
        seconds=round(time.perf_counter() - started, 1),
        skipped=tuple(s for s in ("build", "serve", "http", "peers") if s in skip),
    )
    memory = MemoryFigures(bench_after_ask, peak_rss_mb(), server_first, server_peak)
    ratios = peer_ratios(ask, build, peers or ())
    return BenchResult(meta, build, ask, memory, startup, http, peers, ratios, vectors)
