"""HTTP benchmark of `tr-qa serve`: sequential POST /api/ask latency, then many clients for a fixed time.

Usage: .venv/bin/python scripts/bench_api.py [--index index] [--sequential 50] [--clients 50] [--seconds 60]
Starts the server itself (rate limit off, everything else as configured) on a free port, stops it at the end and
prints one JSON object: throughput, latency percentiles of the answered requests, how many were shed (503) or
limited (429), anything else that went wrong, /healthz latency while loaded, and the server's memory before,
at the peak of, and after the load. Clients honour Retry-After, as a well-behaved client would. Each loaded
question is made unique (a numbered suffix) so the answer cache cannot serve it; --repeat asks the evaluation
questions verbatim instead, which measures the cache.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tr_qa.evaluate import load_qa_file
from tr_qa.metrics import percentile
from tr_qa.web.server import ServeProcess


def ms(values: list[float], q: float) -> float | None:
    """The q-th percentile in ms, rounded; None for no values."""
    return round(percentile(values, q), 1) if values else None


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--sequential", type=int, default=50, help="Sequential calls before the load.")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0, help="How long the clients keep asking.")
    parser.add_argument("--settle", type=float, default=10.0, help="Idle seconds before memory is measured after.")
    parser.add_argument("--log", type=Path, help="Keep the server's output here.")
    parser.add_argument("--repeat", action="store_true", help="Ask the questions verbatim (cache hits allowed).")
    args = parser.parse_args()
    questions = [i.question for i in load_qa_file(Path("eval/qa.jsonl"))]
    server = ServeProcess(["--index", str(args.index)], {"TR_QA_RATE_LIMIT": "0"}, args.log)
    out: dict[str, object] = {}
    try:
        out["startup_to_healthy_s"] = round(server.start(), 1)
        ask_url, health_url = f"{server.url}/api/ask", f"{server.url}/healthz"
        with httpx.Client(timeout=60) as client:
            sequential = []
            for i in range(args.sequential):
                t = time.perf_counter()
                client.post(ask_url, json={"question": questions[i % len(questions)], "k": 5}).raise_for_status()
                sequential.append((time.perf_counter() - t) * 1000)
        out |= {"sequential_calls": len(sequential), "sequential_ms_p50": ms(sequential, 50)}
        out["sequential_ms_p95"] = ms(sequential, 95)
        time.sleep(2)
        out["rss_mb_before_load"] = round(server.rss_mb())

        deadline = time.perf_counter() + args.seconds
        answered: list[float] = []
        codes: Counter[str] = Counter()
        health: list[float] = []
        peak = [server.rss_mb()]
        lock = threading.Lock()

        def one_client(c: int) -> None:
            with httpx.Client(timeout=120) as http:
                j = 0
                while time.perf_counter() < deadline:
                    q = questions[(c * 7919 + j) % len(questions)]
                    q = q if args.repeat else f"{q} ({c}.{j})"
                    j += 1
                    t = time.perf_counter()
                    try:
                        r = http.post(ask_url, json={"question": q, "k": 5})
                    except httpx.HTTPError as exc:
                        with lock:
                            codes[type(exc).__name__] += 1
                        continue
                    elapsed = (time.perf_counter() - t) * 1000
                    with lock:
                        codes[str(r.status_code)] += 1
                        if r.status_code == 200:
                            answered.append(elapsed)
                    if r.status_code in (429, 503):
                        wait = float(r.headers.get("retry-after", "1"))
                        time.sleep(max(0.0, min(wait, deadline - time.perf_counter())))

        def watch() -> None:
            with httpx.Client(timeout=30) as http:
                while time.perf_counter() < deadline:
                    t = time.perf_counter()
                    http.get(health_url).raise_for_status()
                    health.append((time.perf_counter() - t) * 1000)
                    peak.append(server.rss_mb())
                    time.sleep(0.25)

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients + 1) as pool:
            jobs = [pool.submit(one_client, c) for c in range(args.clients)] + [pool.submit(watch)]
            for job in jobs:
                job.result()
        wall = time.perf_counter() - started
        time.sleep(args.settle)
        out |= {
            "clients": args.clients,
            "unique_questions": not args.repeat,
            "seconds": round(wall, 1),
            "requests": sum(codes.values()),
            "answered": len(answered),
            "answered_per_s": round(len(answered) / wall, 1),
            "requests_per_s": round(sum(codes.values()) / wall, 1),
            "status_counts": dict(sorted(codes.items())),
            "errors_other_than_503_429": sum(n for k, n in codes.items() if k not in ("200", "503", "429")),
            "answered_ms_p50": ms(answered, 50),
            "answered_ms_p95": ms(answered, 95),
            "answered_ms_p99": ms(answered, 99),
            "healthz_under_load_ms_p50": ms(health, 50),
            "healthz_under_load_ms_p99": ms(health, 99),
            "healthz_under_load_ms_max": round(max(health), 1) if health else None,
            "rss_mb_peak": round(max(peak)),
            "rss_mb_after_settle": round(server.rss_mb()),
        }
    finally:
        out["server_exit_code"] = server.stop()
        out["server_printed_traceback"] = "Traceback" in server.output()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
