"""HTTP load on a served app: N concurrent clients, a bounded number of distinct questions, /healthz watched."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from tr_qa.bench.figures import HttpFigures, HttpLevel, Latency

NOTE = (
    "each question is made distinct by a numbered suffix, so the server's answer cache never serves one; "
    "503/429 (shed) are retried after Retry-After (at most 2 s) and not counted as errors"
)
MAX_WAIT_S = 2.0  # cap on a Retry-After wait, so a level cannot stall on one long estimate


def distinct_question(questions: Sequence[str], clients: int, i: int) -> str:
    """The i-th question of a level, made unique to it (the answer cache keys on the question text)."""
    return f"{questions[i % len(questions)]} (bench {clients}.{i})"


class _Level:
    """Shared state of one level's clients: the next request number and what came back."""

    def __init__(self, requests: int) -> None:
        self.requests = requests
        self.lock = threading.Lock()
        self.next = 0
        self.latencies: list[float] = []
        self.codes: Counter[str] = Counter()
        self.done = threading.Event()

    def take(self) -> int | None:
        with self.lock:
            if self.next >= self.requests:
                return None
            self.next += 1
            return self.next - 1


def _client(url: str, questions: Sequence[str], clients: int, level: _Level, timeout: float) -> None:
    with httpx.Client(timeout=timeout) as http:
        while (i := level.take()) is not None:
            body = {"question": distinct_question(questions, clients, i)}
            while True:
                started = time.perf_counter()
                try:
                    r = http.post(f"{url}/api/ask", json=body)
                except httpx.HTTPError as exc:
                    with level.lock:
                        level.codes[type(exc).__name__] += 1
                    break
                elapsed = time.perf_counter() - started
                with level.lock:
                    level.codes[str(r.status_code)] += 1
                    if r.status_code == 200:
                        level.latencies.append(elapsed)
                if r.status_code not in (429, 503):
                    break
                time.sleep(min(MAX_WAIT_S, float(r.headers.get("retry-after", "1") or 1)))


def _watch(url: str, level: _Level, rss: Callable[[], float]) -> tuple[list[float], list[float]]:
    health: list[float] = []
    memory: list[float] = [rss()]
    with httpx.Client(timeout=30) as http:
        while not level.done.is_set():
            started = time.perf_counter()
            try:
                http.get(f"{url}/healthz").raise_for_status()
                health.append(time.perf_counter() - started)
            except httpx.HTTPError:
                with level.lock:
                    level.codes["healthz-failed"] += 1
            memory.append(rss())
            level.done.wait(0.1)
    return health, memory


def run_level(
    url: str, questions: Sequence[str], clients: int, requests: int, rss: Callable[[], float], timeout: float = 300
) -> HttpLevel:
    """``requests`` POST /api/ask (at least one per client) from ``clients`` threads, /healthz polled meanwhile."""
    level = _Level(max(requests, clients))
    with ThreadPoolExecutor(clients + 1) as pool:
        watcher = pool.submit(_watch, url, level, rss)
        started = time.perf_counter()
        jobs = [pool.submit(_client, url, questions, clients, level, timeout) for _ in range(clients)]
        for job in jobs:
            job.result()
        wall = time.perf_counter() - started
        level.done.set()
        health, memory = watcher.result()
    answered = len(level.latencies)
    shed = level.codes["503"] + level.codes["429"]
    errors = sum(n for code, n in level.codes.items() if code not in ("200", "503", "429"))
    return HttpLevel(
        clients=clients,
        requests=level.requests,
        answered=answered,
        shed=shed,
        errors=errors,
        seconds=round(wall, 3),
        answered_per_s=round(answered / wall, 2) if wall > 0 else 0.0,
        latency=Latency.of(level.latencies),
        healthz_max_ms=round(max(health) * 1000, 2) if health else 0.0,
        server_rss_peak_mb=round(max(memory), 1),
        status_counts=dict(sorted(level.codes.items())),
    )


def run_load(
    url: str, questions: Sequence[str], levels: Sequence[int], requests: int, rss: Callable[[], float]
) -> HttpFigures:
    """Every level in turn against one server."""
    return HttpFigures(tuple(run_level(url, questions, n, requests, rss) for n in levels), NOTE)
