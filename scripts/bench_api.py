"""HTTP benchmark of `tr-qa serve`: POST /api/ask latency over sequential calls, and throughput with many clients.

Usage: .venv/bin/python scripts/bench_api.py [--index index] [--sequential 200] [--clients 20] [--calls 10]
Starts the server itself (rate limit off) on a free port and stops it at the end; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tr_qa.evaluate import load_qa_file
from tr_qa.metrics import percentile


def free_port() -> int:
    """A port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10, help="Calls per concurrent client.")
    args = parser.parse_args()
    questions = [i.question for i in load_qa_file(Path("eval/qa.jsonl"))]
    port = free_port()
    env = {**os.environ, "TR_QA_RATE_LIMIT": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "tr_qa", "serve", "--port", str(port), "--index", str(args.index)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.perf_counter() - started > 180:
                raise SystemExit("server did not start")
            time.sleep(0.5)
        startup_s = time.perf_counter() - started
        with httpx.Client(timeout=60) as client:
            latencies = []
            for i in range(args.sequential):
                t = time.perf_counter()
                r = client.post(f"{base}/api/ask", json={"question": questions[i % len(questions)], "k": 5})
                r.raise_for_status()
                latencies.append((time.perf_counter() - t) * 1000)

        def one_client(c: int) -> list[float]:
            out = []
            with httpx.Client(timeout=120) as client:
                for j in range(args.calls):
                    t = time.perf_counter()
                    q = questions[(c * args.calls + j) % len(questions)]
                    client.post(f"{base}/api/ask", json={"question": q, "k": 5}).raise_for_status()
                    out.append((time.perf_counter() - t) * 1000)
            return out

        t = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            concurrent = [x for xs in pool.map(one_client, range(args.clients)) for x in xs]
        wall = time.perf_counter() - t
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        json.dumps(
            {
                "startup_to_healthy_s": round(startup_s, 1),
                "sequential_calls": len(latencies),
                "sequential_ms_p50": round(percentile(latencies, 50), 1),
                "sequential_ms_p95": round(percentile(latencies, 95), 1),
                "concurrent_clients": args.clients,
                "concurrent_calls": len(concurrent),
                "throughput_rps": round(len(concurrent) / wall, 1),
                "concurrent_ms_p50": round(percentile(concurrent, 50), 1),
                "concurrent_ms_p95": round(percentile(concurrent, 95), 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
