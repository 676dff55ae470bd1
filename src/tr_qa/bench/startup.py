"""The real ``tr-qa`` processes: a cold ``tr-qa index`` build, ``tr-qa ask`` start to answer, ``tr-qa serve`` start."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tr_qa.errors import TrQaError
from tr_qa.metrics import percentile
from tr_qa.web.server import ServeProcess, rss_mb

# The server's environment during a bench: no rate limit (one client address sends everything), no analytics.
SERVE_ENV = {"TR_QA_RATE_LIMIT": "0", "GRADIO_ANALYTICS_ENABLED": "False"}


def tr_qa_command() -> list[str]:
    """The ``tr-qa`` console script beside this interpreter, else ``python -m tr_qa``."""
    script = Path(sys.executable).with_name("tr-qa")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tr_qa"]


def last_line(text: str) -> str:
    """The last non-blank line of a process's output, for a one-line error."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


@dataclass(frozen=True)
class BuildRun:
    """One cold ``tr-qa index`` process: its wall time and peak memory."""

    wall_s: float
    peak_rss_mb: float


def run_index(corpus: Path, index_dir: Path, timeout: float = 3600) -> BuildRun:
    """Build ``index_dir`` from ``corpus`` with a ``tr-qa index`` process; TrQaError if it fails.

    The peak memory is this process's children's maximum, so the build must be the first child that exits.
    """
    args = [*tr_qa_command(), "index", "--corpus", str(corpus), "--index", str(index_dir), "--no-progress"]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise TrQaError(f"tr-qa index failed ({done.returncode}): {last_line(done.stderr + done.stdout)}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return BuildRun(round(wall, 3), round(peak, 1))


def run_ask_processes(index_dir: Path, questions: Sequence[str], timeout: float = 600) -> tuple[float, ...]:
    """Wall seconds of ``tr-qa ask QUESTION --json`` from spawn to exit, one process per question."""
    times = []
    for q in questions:
        args = [*tr_qa_command(), "ask", q, "--index", str(index_dir), "--json"]
        started = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        times.append(round(time.perf_counter() - started, 3))
        if done.returncode != 0 or not done.stdout.lstrip().startswith("{"):
            raise TrQaError(f"tr-qa ask failed ({done.returncode}): {last_line(done.stderr + done.stdout)}")
    return tuple(times)


def median(values: Sequence[float]) -> float:
    """The 50th percentile, rounded to milliseconds."""
    return round(percentile(values, 50), 3)


def process_tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (a server may run workers), in MB."""
    total, todo, seen = 0.0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            total += rss_mb(p)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, RuntimeError, ValueError):
            continue  # the process ended meanwhile
    return round(total, 1)


@dataclass(frozen=True)
class ServeStart:
    """A started ``tr-qa serve`` and how long it took, from spawn, to answer /healthz and a first question."""

    server: ServeProcess
    healthz_s: float
    first_answer_s: float


def start_server(index_dir: Path, corpus: Path, question: str, log: Path, timeout: float = 300) -> ServeStart:
    """Spawn ``tr-qa serve`` on a free loopback port; wait for /healthz 200, then for a first answered ask.

    A 503 before the first answer (models still loading) is waited out; anything else is a TrQaError.
    """
    server = ServeProcess(["--index", str(index_dir), "--corpus", str(corpus)], SERVE_ENV, log)
    started = time.perf_counter()
    try:
        server.start(timeout)
    except RuntimeError as exc:
        server.stop()
        raise TrQaError(f"tr-qa serve did not start: {exc}; {last_line(server.output())}") from exc
    healthz = time.perf_counter() - started
    with httpx.Client(timeout=timeout) as client:
        while True:
            r = client.post(f"{server.url}/api/ask", json={"question": question})
            if r.status_code == 200:
                break
            if r.status_code != 503 or time.perf_counter() - started > timeout:
                server.stop()
                raise TrQaError(f"tr-qa serve's first POST /api/ask answered {r.status_code}: {r.text[:200]}")
            time.sleep(0.05)
    first = time.perf_counter() - started
    return ServeStart(server, round(healthz, 3), round(first, 3))
