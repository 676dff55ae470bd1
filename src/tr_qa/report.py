"""Evaluation reports: the plain-text table, report.json, summary.md and the plots (per type, risk-coverage,
reliability), and the comparison of two runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tr_qa import metrics as mt
from tr_qa.evaluate import METRICS, Record
from tr_qa.files import atomic_write_text


def cell(name: str, value: float) -> str:
    """One metric's value as printed in tables."""
    if name in ("n", "n_answerable", "n_unanswerable"):
        return f"{int(value)}"
    if name.startswith("latency"):
        return f"{value:.1f}"
    return f"{value:.3f}"


def table(
    rows: dict[str, dict[str, float]],
    columns: Sequence[str] = METRICS,
    intervals: dict[str, list[float]] | None = None,
) -> str:
    """A plain-text table: one row per name, one column per metric; intervals (for the first row) beside values."""
    width = max([len(name) for name in rows] + [8])
    col = 22 if intervals else 14
    lines = [f"{'':<{width}}  " + "  ".join(f"{c:>{col}}" for c in columns)]
    for r, (name, values) in enumerate(rows.items()):
        cells = []
        for c in columns:
            text = cell(c, values.get(c, float("nan")))
            if intervals and r == 0 and c in intervals:
                lo, hi = intervals[c]
                text += f" [{cell(c, lo)}, {cell(c, hi)}]".replace("0.", ".")
            cells.append(f"{text:>{col}}")
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def failures(records: Sequence[Record], threshold: float) -> list[dict[str, Any]]:
    """Questions the system got wrong (a wrong or missing answer, or an answer where there is none)."""
    out = []
    for r in records:
        if mt.question_ok(r, threshold):
            continue
        answered = bool(r.prediction) and r.confidence >= threshold
        out.append(
            {
                "id": r.id,
                "type": r.type,
                "question": r.question,
                "gold": list(r.answers),
                "doc": r.doc,
                "predicted": r.prediction if answered else "(abstained)",
                "confidence": round(r.confidence, 3),
                "top_doc": r.top_doc,
                "top_sentence": r.top_sentence,
            }
        )
    return out


def record_rows(records: Sequence[Record], threshold: float) -> list[dict[str, Any]]:
    """Per-question rows for report.json: the record plus whether the app did right by it (``ok``)."""
    return [{**asdict(r), "ok": mt.question_ok(r, threshold)} for r in records]


def compare_text(diff: dict[str, Any]) -> str:
    """The comparison with an old run as text: metric changes, then newly failed and newly fixed questions."""
    lines = ["metric                      old        new     change  outside old interval"]
    for name, row in diff["metrics"].items():
        flag = "YES" if row["outside_old_interval"] else ""
        lines.append(
            f"{name:<22} {cell(name, row['old']):>10} {cell(name, row['new']):>10} {row['change']:>+10.3f}  {flag}"
        )
    lines.append(f"\nnewly failed ({len(diff['newly_failed'])}):")
    lines += [f"  {q['id']}: {q['question']}" for q in diff["newly_failed"]]
    lines.append(f"newly fixed ({len(diff['newly_fixed'])}):")
    lines += [f"  {q['id']}: {q['question']}" for q in diff["newly_fixed"]]
    return "\n".join(lines)


def _plots(out_dir: Path, summary: dict[str, Any], threshold: float) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    source = summary.get("source", "")
    per_type = summary.get("by_type", {})
    if per_type:
        shown = ("recall@5", "highlight_hit", "f1", "unanswerable_abstained")
        names = list(per_type)
        fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(names) + 3), 4.5))
        width = 0.8 / len(shown)
        for i, metric in enumerate(shown):
            unans = metric == "unanswerable_abstained"
            values = [per_type[t].get(metric, 0) if unans == (t == "unanswerable") else 0 for t in names]
            ax.bar([x + i * width for x in range(len(names))], values, width, label=metric)
        ax.set_xticks([x + width * (len(shown) - 1) / 2 for x in range(len(names))])
        ax.set_xticklabels([f"{t}\n(n={int(per_type[t]['n'])})" for t in names], fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("share of questions")
        ax.set_title(f"tr-qa on {source}: per question type")
        ax.legend(fontsize=8, loc="lower left")
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        paths.append(out_dir / "per_type.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    rc = summary.get("risk_coverage", {})
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    cov, risk, conf = rc.get("coverage", []), rc.get("risk", []), rc.get("confidence", [])
    ax.plot([0, *cov], [0, *risk] if risk else [0], drawstyle="steps-post", label="risk at each cut")
    used = [i for i, c in enumerate(conf) if c >= threshold]
    if used:
        i = used[-1]
        ax.plot([cov[i]], [risk[i]], "o", color="crimson", label=f"threshold in use ({threshold:.3f})")
    for acc, style in ((0.8, ":"), (0.9, "--")):
        ax.axhline(1 - acc, color="grey", linestyle=style, linewidth=1, label=f"{int(acc * 100)} % accuracy")
    o = summary.get("overall", {})
    ax.set_title(
        f"risk-coverage: coverage@acc80 {o.get('coverage@acc80', 0):.2f}, @acc90 {o.get('coverage@acc90', 0):.2f}, "
        f"AURC {o.get('aurc', 0):.3f}",
        fontsize=9,
    )
    ax.set_xlabel("coverage (answers shown / questions asked)")
    ax.set_ylabel("risk (wrong among answers shown)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    paths.append(out_dir / "risk_coverage.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    bins = summary.get("reliability", [])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    full = [b for b in bins if b["n"]]
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    ax.bar(
        [(b["lo"] + b["hi"]) / 2 for b in full],
        [b["accuracy"] for b in full],
        width=0.09,
        alpha=0.7,
        label="observed accuracy",
    )
    ax.plot(
        [b["confidence"] for b in full],
        [b["accuracy"] for b in full],
        "o",
        color="black",
        markersize=3,
        label="mean stated confidence",
    )
    for b in full:
        ax.annotate(f"n={b['n']}", ((b["lo"] + b["hi"]) / 2, min(1.0, b["accuracy"]) + 0.02), ha="center", fontsize=7)
    ax.set_title(f"reliability: ECE {o.get('ece', 0):.3f}", fontsize=9)
    ax.set_xlabel("stated confidence")
    ax.set_ylabel("share of answers that are right (F1 >= 0.5)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    paths.append(out_dir / "reliability.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def write_report(out_dir: Path, summary: dict[str, Any], records: Sequence[Record], threshold: float) -> list[Path]:
    """Write report.json (with every question), summary.md (with the failed questions) and the plots."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fails = failures(records, threshold)
    report = {**summary, "failures": fails, "records": record_rows(records, threshold)}
    json_path = out_dir / "report.json"
    atomic_write_text(json_path, json.dumps(report, indent=2, ensure_ascii=False))

    o = summary["overall"]
    md = [f"# Evaluation of {summary.get('source', '')}", ""]
    md.append(
        f"{int(o['n'])} questions; retriever `{summary.get('retriever')}`; reader {summary.get('reader', 'shipped')}; "
        f"abstention threshold {threshold}. "
        "Brackets: 95 % bootstrap interval (questions resampled 1,000 times)."
    )
    md += ["", "```", table({"overall": o}, intervals=summary.get("intervals")), "```", ""]
    groups = {**{f"split {k}": v for k, v in summary.get("by_split", {}).items()}, **summary.get("by_type", {})}
    md += ["## By split and question type", "", "```", table(groups), "```", ""]
    if summary.get("by_retriever"):
        md += ["## Retrievers side by side", "", "```", table(summary["by_retriever"]), "```", ""]
    md += [
        "## Reliability (stated confidence against observed accuracy)",
        "",
        "| bin | n | confidence | accuracy |",
        "|---|---:|---:|---:|",
    ]
    for b in summary.get("reliability", []):
        if b["n"]:
            md.append(f"| {b['lo']:.1f}-{b['hi']:.1f} | {b['n']} | {b['confidence']:.3f} | {b['accuracy']:.3f} |")
    md += ["", f"## Failed questions ({len(fails)})", ""]
    for f in fails:
        md.append(
            f"- **{f['id']}** ({f['type']}) {f['question']}  \n  gold: {f['gold']} in `{f['doc']}`; "
            f"predicted: {f['predicted']!r} (confidence {f['confidence']}); top passage from `{f['top_doc']}`"
        )
    md_path = out_dir / "summary.md"
    atomic_write_text(md_path, "\n".join(md) + "\n")
    return [json_path, md_path, *_plots(out_dir, summary, threshold)]
