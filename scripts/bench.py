"""Speed and memory benchmark of the core: cold and unchanged index builds, model load, warm `ask` latency.

Usage: .venv/bin/python scripts/bench.py [--corpus seeds] [--questions eval/qa.jsonl] [--repeat 1]
Prints one JSON object. Latency is measured in one warm process over every question of the file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import tr_qa  # noqa: F401 - sets the offline environment before torch loads
from tr_qa.config import Settings
from tr_qa.evaluate import load_qa_file
from tr_qa.index import build
from tr_qa.metrics import percentile
from tr_qa.qa import QA


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("seeds"))
    parser.add_argument("--questions", type=Path, default=Path("eval/qa.jsonl"))
    parser.add_argument("--repeat", type=int, default=1, help="Ask every question this many times.")
    args = parser.parse_args()
    questions = [i.question for i in load_qa_file(args.questions)] * args.repeat
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(corpus_dir=args.corpus, index_dir=Path(tmp) / "index")
        t = time.perf_counter()
        cold = build(settings, progress=False)
        cold_s = time.perf_counter() - t
        t = time.perf_counter()
        warm = build(settings, progress=False)
        unchanged_s = time.perf_counter() - t
        t = time.perf_counter()
        qa = QA.load(settings=settings)
        qa.ask("warm-up: who runs probation?")
        load_s = time.perf_counter() - t
        latencies = []
        for q in questions:
            t = time.perf_counter()
            qa.ask(q)
            latencies.append((time.perf_counter() - t) * 1000)
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {settings.threads}",
                "documents": cold.documents,
                "chunks": cold.chunks,
                "build_cold_s": round(cold_s, 2),
                "build_unchanged_s": round(unchanged_s, 3),
                "unchanged_embedded_chunks": warm.embedded_chunks,
                "load_and_first_ask_s": round(load_s, 2),
                "questions": len(latencies),
                "ask_ms_p50": round(percentile(latencies, 50), 1),
                "ask_ms_p95": round(percentile(latencies, 95), 1),
                "ask_ms_max": round(max(latencies), 1),
                "peak_rss_mb": round(rss_mb(), 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
