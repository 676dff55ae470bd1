"""In-process measurements: warm ``ask`` per stage and end to end, cached answers, the raw encode rate."""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from dataclasses import replace

from tr_qa.bench.figures import AskFigures, Latency
from tr_qa.embed import Embedder
from tr_qa.qa import QA, STAGES


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports ru_maxrss in KB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure_ask(qa: QA, questions: Sequence[str], cached_questions: int, k: int) -> AskFigures:
    """Per-stage timings from ``QA.candidates``, ``QA.ask`` end to end with the cache off, and cache hits.

    ``qa`` must be warm (``warm_up`` called); its own answer cache is used for the cached figure only.
    """
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    retrieval: list[float] = []
    for q in questions:
        timings: dict[str, float] = {}
        qa.candidates(q, k, timings=timings)
        for stage in STAGES:
            # A stage that did not run (no reader, no passages) took no time, and is counted so.
            per_stage[stage].append(timings.get(stage, 0.0))
        retrieval.append(timings.get("embed", 0.0) + timings.get("retrieve", 0.0))

    # A second QA over the same loaded index and models, with the answer cache off: every ask is computed.
    uncached = QA(qa.data, replace(qa.settings, answer_cache_size=0), qa.embedder, qa.reader)
    end_to_end: list[float] = []
    abstained = 0
    for q in questions:
        started = time.perf_counter()
        result = uncached.ask(q, k)
        end_to_end.append(time.perf_counter() - started)
        abstained += result.abstained

    cached: list[float] = []
    for q in questions[:cached_questions]:
        qa.ask(q, k)  # fills the cache
        started = time.perf_counter()
        qa.ask(q, k)
        cached.append(time.perf_counter() - started)
    return AskFigures(
        questions=len(questions),
        stages={s: Latency.of(v) for s, v in per_stage.items()},
        retrieval=Latency.of(retrieval),
        end_to_end=Latency.of(end_to_end),
        cached=Latency.of(cached),
        abstained=abstained,
    )


def measure_encode(embedder: Embedder, texts: Sequence[str]) -> float:
    """Seconds the (already loaded) embedder takes to encode these texts once, as the index build batches them."""
    embedder.encode(["warm up"])
    started = time.perf_counter()
    embedder.encode(list(texts))
    return time.perf_counter() - started
