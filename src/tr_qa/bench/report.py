"""Shaping a bench run: tr-qa's figures as ratios to the peers', the JSON object and the printed table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from tr_qa.bench.figures import AskFigures, BenchResult, BuildFigures, Latency, PeerFigures
from tr_qa.qa import STAGES


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b rounded, or None when either is missing or b is zero."""
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 3)


def peer_ratios(ask: AskFigures, build: BuildFigures | None, peers: Sequence[PeerFigures]) -> dict[str, float | None]:
    """tr-qa's full ask and its retrieval stage (embed + retrieve) over each peer's search, at p50 and p95."""
    out: dict[str, float | None] = {}
    for peer in peers:
        slug = peer.name.split()[0]
        search = peer.search
        ok = peer.error is None and search is not None
        for q in ("p50", "p95"):
            theirs = getattr(search, f"{q}_ms") if ok and search is not None else None
            out[f"ask_{q}_over_{slug}_search_{q}"] = ratio(getattr(ask.end_to_end, f"{q}_ms"), theirs)
            out[f"retrieval_{q}_over_{slug}_search_{q}"] = ratio(getattr(ask.retrieval, f"{q}_ms"), theirs)
        out[f"build_s_over_{slug}_index_s"] = ratio(build.build_wall_s if build else None, peer.index_s if ok else None)
    return out


def to_json(result: BenchResult) -> dict[str, Any]:
    """The whole run as one JSON-ready dict (sections that did not run are null)."""
    return asdict(result)


def dumps(result: BenchResult) -> str:
    """The run as indented JSON text."""
    return json.dumps(to_json(result), indent=2, ensure_ascii=False)


def grid(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned, floats with 1 decimal place."""

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in [list(header), *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _latency_row(name: str, lat: Latency) -> list[object]:
    return [name, lat.n, lat.p50_ms, lat.p95_ms, lat.p99_ms, lat.max_ms]


def text(result: BenchResult) -> str:
    """The run as the table ``tr-qa bench`` prints."""
    m = result.meta
    kind = "synthetic corpus" if m.synthetic else "corpus"
    out = [
        f"tr-qa bench: {kind} {m.corpus}, {m.questions} questions; {m.machine}, {m.cpus} CPUs, torch threads "
        f"{m.torch_threads}, load {m.load_1m_start:.2f} → {m.load_1m_end:.2f}; {m.seconds:.0f} s"
    ]
    if m.skipped:
        out.append(f"skipped: {', '.join(m.skipped)}")
    a = result.ask
    rows = [_latency_row(s, a.stages[s]) for s in STAGES]
    rows += [
        _latency_row("retrieval (embed+retrieve)", a.retrieval),
        _latency_row("ask end to end, no cache", a.end_to_end),
        _latency_row("ask, cached answer", a.cached),
    ]
    out += ["", "warm ask in process (ms)", grid(["", "n", "p50", "p95", "p99", "max"], rows)]
    out.append(f"({a.abstained} of {a.questions} abstained)")
    if result.build is not None:
        b = result.build
        out += ["", f"index build: {b.documents} documents, {b.chunks} chunks"]
        out.append(
            grid(
                ["", "seconds", "chunks/s"],
                [
                    ["tr-qa index (cold process)", b.build_wall_s, b.build_chunks_per_s],
                    ["raw encode, same model+texts", b.encode_s, b.encode_chunks_per_s],
                ],
            )
        )
        out.append(f"build rate / raw encode rate: {b.build_to_encode_rate:.3f}")
    if result.startup is not None:
        s = result.startup
        out += ["", "start-up (s)"]
        out.append(
            grid(
                ["", "seconds"],
                [
                    ["tr-qa serve → /healthz 200", s.serve_healthz_s],
                    ["tr-qa serve → first answer", s.serve_first_answer_s],
                    [f"tr-qa ask process (p50 of {len(s.ask_process_s)})", s.ask_process_p50_s],
                ],
            )
        )
    mem = result.memory
    out += ["", "peak memory (MB)"]
    rows = [["bench process after tr-qa stages", mem.bench_after_ask_mb], ["bench process at end", mem.bench_end_mb]]
    if result.build is not None:
        rows.append(["tr-qa index process", result.build.build_peak_rss_mb])
    rows += [["server after first answer", mem.server_after_first_answer_mb], ["server peak", mem.server_peak_mb]]
    out.append(grid(["", "MB"], rows))
    if result.http is not None:
        header = ["clients", "requests", "answered", "shed", "errors", "ans/s", "p50", "p95", "p99", "healthz max"]
        rows = [
            [
                lv.clients,
                lv.requests,
                lv.answered,
                lv.shed,
                lv.errors,
                lv.answered_per_s,
                lv.latency.p50_ms,
                lv.latency.p95_ms,
                lv.latency.p99_ms,
                lv.healthz_max_ms,
            ]
            for lv in result.http.levels
        ]
        out += ["", "HTTP POST /api/ask on loopback, rate limit off (ms)", grid(header, rows)]
        out.append(f"({result.http.note})")
    if result.peers is not None:
        out += ["", "peers: same chunks, same questions, same model (search ms)"]
        rows = []
        for p in result.peers:
            if p.error is not None or p.search is None:
                out.append(f"{p.name}: not measured ({p.error})")
                continue
            rows.append([f"{p.name} {p.version}", p.index_s, p.search.p50_ms, p.search.p95_ms, p.search.max_ms])
        if rows:
            out.append(grid(["", "index s", "p50", "p95", "max"], rows))
        if result.ratios:
            out += ["", "ratios (tr-qa / peer)"]
            out.append(grid(["", "ratio"], [[k, v] for k, v in result.ratios.items()]))
    if result.vectors is not None:
        out += ["", "vector index at scale (tr_qa.bench.scale)", json.dumps(result.vectors, indent=2)]
    return "\n".join(out)
