"""The bench's frozen result records: one per section, each turned into JSON by ``dataclasses.asdict``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tr_qa.errors import InputError
from tr_qa.metrics import percentile

# Parts of a run that ``--skip`` can leave out.
SKIPPABLE = ("build", "serve", "http", "peers")


@dataclass(frozen=True)
class Latency:
    """Percentiles of a set of timings, in milliseconds (zeros when there were none)."""

    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        """Summarise timings given in seconds."""
        ms = [s * 1000 for s in seconds]
        if not ms:
            return cls(0, 0.0, 0.0, 0.0, 0.0)
        return cls(
            len(ms),
            round(percentile(ms, 50), 2),
            round(percentile(ms, 95), 2),
            round(percentile(ms, 99), 2),
            round(max(ms), 2),
        )


@dataclass(frozen=True)
class BenchConfig:
    """What one run measures and how much of it."""

    corpus: Path
    qa_file: Path | None
    synthetic: int | None = None
    squad_file: Path | None = None
    workdir: Path | None = None
    questions: int = 300
    cached_questions: int = 20
    ask_runs: int = 3
    requests: int = 60
    clients: tuple[int, ...] = (1, 10, 50)
    skip: frozenset[str] = frozenset()
    k: int = 5
    vectors: int | None = None

    def __post_init__(self) -> None:
        for name in ("questions", "cached_questions", "ask_runs", "requests", "k"):
            value = getattr(self, name)
            if value < 1:
                raise InputError(f"bench {name.replace('_', '-')} must be at least 1, got {value}")
        if not self.clients or any(c < 1 for c in self.clients):
            raise InputError(f"bench clients must be whole numbers of at least 1, got {list(self.clients)}")
        unknown = sorted(self.skip - set(SKIPPABLE))
        if unknown:
            raise InputError(f"--skip takes {', '.join(SKIPPABLE)}; got {', '.join(unknown)}")
        if self.synthetic is not None and self.synthetic < 1:
            raise InputError(f"--synthetic must be at least 1 chunk, got {self.synthetic}")
        if self.vectors is not None and self.vectors < 1:
            raise InputError(f"--vectors must be at least 1, got {self.vectors}")


@dataclass(frozen=True)
class Corpus:
    """The corpus a run indexes and the questions it asks about it."""

    path: Path
    questions: tuple[str, ...]
    synthetic: bool = False
    # For a synthetic corpus: paragraphs written and the chunk count the generator aimed at.
    paragraphs: int = 0
    target_chunks: int = 0


@dataclass(frozen=True)
class BuildFigures:
    """A cold ``tr-qa index`` build beside the raw encode rate of the same model on the same chunk texts."""

    documents: int
    chunks: int
    build_wall_s: float
    build_chunks_per_s: float
    build_peak_rss_mb: float
    encode_s: float
    encode_chunks_per_s: float
    build_to_encode_rate: float


@dataclass(frozen=True)
class AskFigures:
    """Warm in-process asks: per stage, retrieval (embed + retrieve), end to end without cache, and cached."""

    questions: int
    stages: dict[str, Latency]
    retrieval: Latency
    end_to_end: Latency
    cached: Latency
    abstained: int


@dataclass(frozen=True)
class StartupFigures:
    """Seconds from spawning ``tr-qa serve`` to /healthz 200 and to its first answer; ``tr-qa ask`` wall times."""

    serve_healthz_s: float
    serve_first_answer_s: float
    serve_rss_mb: float
    ask_process_s: tuple[float, ...]
    ask_process_p50_s: float


@dataclass(frozen=True)
class HttpLevel:
    """One load level: N clients sending a bounded number of distinct questions to POST /api/ask."""

    clients: int
    requests: int
    answered: int
    shed: int
    errors: int
    seconds: float
    answered_per_s: float
    latency: Latency
    healthz_max_ms: float
    server_rss_peak_mb: float
    status_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpFigures:
    """Every load level of one run, and how the questions were made distinct."""

    levels: tuple[HttpLevel, ...]
    note: str


@dataclass(frozen=True)
class PeerFigures:
    """A peer library's hybrid search on the same chunks and questions; ``error`` says why it did not run."""

    name: str
    version: str = ""
    index_s: float = 0.0
    search: Latency | None = None
    error: str | None = None


@dataclass(frozen=True)
class MemoryFigures:
    """Peak resident memory in MB: the bench process after its tr-qa stages (before any peer) and the server."""

    bench_after_ask_mb: float
    bench_end_mb: float
    server_after_first_answer_mb: float | None
    server_peak_mb: float | None


@dataclass(frozen=True)
class Meta:
    """Where and on what the run happened."""

    machine: str
    cpus: int
    torch_threads: int
    load_1m_start: float
    load_1m_end: float
    corpus: str
    synthetic: bool
    questions: int
    seconds: float
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class BenchResult:
    """Every section of one run (None where skipped)."""

    meta: Meta
    build: BuildFigures | None
    ask: AskFigures
    memory: MemoryFigures
    startup: StartupFigures | None
    http: HttpFigures | None
    peers: tuple[PeerFigures, ...] | None
    ratios: dict[str, float | None]
    vectors: dict[str, Any] | None = None
