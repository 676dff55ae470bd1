"""Evaluation: question files and SQuAD files → per-question records → metrics (pure functions) → reports."""

from __future__ import annotations

import json
import re
import string
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tr_qa.errors import InputError
from tr_qa.types import Result

METRICS = (
    "n",
    "recall@1",
    "recall@5",
    "mrr@10",
    "highlight_hit",
    "em",
    "f1",
    "unanswerable_abstained",
    "answerable_answered",
    "latency_ms_p50",
    "latency_ms_p95",
)
EVAL_K = 10


@dataclass(frozen=True)
class EvalItem:
    """One question with its gold answers (empty when the documents do not answer it)."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc: str | None
    type: str = "other"

    @property
    def answerable(self) -> bool:
        """Whether the documents hold an answer."""
        return bool(self.answers)


@dataclass(frozen=True)
class Record:
    """What the system did for one question: enough to compute every metric without asking again."""

    id: str
    type: str
    question: str
    answers: tuple[str, ...]
    doc: str | None
    ranked_hits: tuple[bool, ...]  # per returned passage: from the gold doc and holding a gold answer
    highlight_hit: bool
    prediction: str
    confidence: float
    latency_ms: float
    top_doc: str | None = None
    top_sentence: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- SQuAD normalisation and scores (pure functions)

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)  # exactly the official SQuAD script's set, so figures compare with published ones


def normalize_answer(text: str) -> str:
    """Official SQuAD normalisation: lower case, no ASCII punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer."""
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1, the maximum over the gold answers."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        ref = normalize_answer(gold).split()
        common = Counter(pred) & Counter(ref)
        same = sum(common.values())
        if not pred or not ref:
            best = max(best, float(pred == ref))
        elif same:
            precision, recall = same / len(pred), same / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(text: str, golds: Sequence[str]) -> bool:
    """Whether any gold answer occurs in the text (case-insensitive, whitespace-insensitive)."""
    hay = " ".join(text.lower().split())
    return any(" ".join(g.lower().split()) in hay for g in golds if g.strip())


def recall_at_k(ranked_hits: Sequence[bool], k: int) -> float:
    """1.0 if a relevant passage is within the top k."""
    return float(any(ranked_hits[:k]))


def reciprocal_rank(ranked_hits: Sequence[bool], k: int = 10) -> float:
    """1/rank of the first relevant passage within the top k, else 0."""
    for i, hit in enumerate(ranked_hits[:k], 1):
        if hit:
            return 1.0 / i
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


def metrics(records: Sequence[Record], threshold: float) -> dict[str, float]:
    """All metrics over the records, abstaining where confidence < threshold (records are not changed)."""
    answerable = [r for r in records if r.answers]
    unanswerable = [r for r in records if not r.answers]

    def answered(r: Record) -> bool:
        return bool(r.prediction) and r.confidence >= threshold

    def em(r: Record) -> float:
        return exact_match(r.prediction, r.answers) if answered(r) else 0.0

    def f1(r: Record) -> float:
        return token_f1(r.prediction, r.answers) if answered(r) else 0.0

    latencies = [r.latency_ms for r in records]
    return {
        "n": len(records),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "recall@1": _mean(recall_at_k(r.ranked_hits, 1) for r in answerable),
        "recall@5": _mean(recall_at_k(r.ranked_hits, 5) for r in answerable),
        "mrr@10": _mean(reciprocal_rank(r.ranked_hits, 10) for r in answerable),
        "highlight_hit": _mean(float(r.highlight_hit) for r in answerable),
        "em": _mean(em(r) for r in answerable),
        "f1": _mean(f1(r) for r in answerable),
        "f1_if_answered": _mean(token_f1(r.prediction, r.answers) for r in answerable),
        "unanswerable_abstained": _mean(float(not answered(r)) for r in unanswerable),
        "answerable_answered": _mean(float(answered(r)) for r in answerable),
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95),
        "abstain_threshold": threshold,
    }


def correct(record: Record) -> bool:
    """An answer counts as right when its sentence holds a gold answer or its short answer overlaps one well."""
    return record.highlight_hit or token_f1(record.prediction, record.answers) >= 0.5


def fit_threshold(records: Sequence[Record]) -> tuple[float, float]:
    """The threshold maximising answered-and-right plus correctly-abstained; returns (threshold, that share)."""
    if not records:
        return 0.0, 0.0
    candidates = sorted({0.0, *(r.confidence for r in records)})
    best = (0.0, -1.0)
    for i, t in enumerate(candidates):
        # Put the threshold halfway to the next confidence so that near-ties do not flip on rounding.
        t = (t + candidates[i - 1]) / 2 if i else t
        good = sum((r.confidence >= t and correct(r)) if r.answers else (r.confidence < t) for r in records)
        share = good / len(records)
        if share > best[1]:
            best = (round(t, 4), share)
    return best


# ---------------------------------------------------------------- inputs


def load_qa_file(path: Path) -> list[EvalItem]:
    """Read a question file (one JSON object a line); InputError names the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"question file does not exist: {path}")
    items: list[EvalItem] = []
    seen: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n}: expected a JSON object")
        qid, question, answers, doc = row.get("id"), row.get("question"), row.get("answers"), row.get("doc")
        if not isinstance(qid, str) or not qid:
            raise InputError(f"{path}:{n}: 'id' must be a non-empty string")
        if qid in seen:
            raise InputError(f"{path}:{n}: duplicate id {qid!r}")
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"{path}:{n}: 'question' must be a non-empty string")
        if not isinstance(answers, list) or not all(isinstance(a, str) and a for a in answers):
            raise InputError(f"{path}:{n}: 'answers' must be a list of non-empty strings")
        if answers and not isinstance(doc, str):
            raise InputError(f"{path}:{n}: 'doc' must name the document holding the answers")
        seen.add(qid)
        items.append(EvalItem(qid, question, tuple(answers), doc if answers else None, str(row.get("type", "other"))))
    if not items:
        raise InputError(f"{path} holds no questions")
    return items


def squad_corpus(path: Path, out_dir: Path) -> list[EvalItem]:
    """Write a SQuAD v1.1/v2.0 file's paragraphs as documents into out_dir and return its questions."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"SQuAD file does not exist: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        if not isinstance(data, list):
            raise TypeError("'data' is not a list")
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a SQuAD JSON file ({type(exc).__name__}: {exc})") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata: dict[str, dict[str, str]] = {}
    items: list[EvalItem] = []
    try:
        for a, article in enumerate(data):
            title = str(article.get("title", f"article {a}")).replace("_", " ")
            for p, para in enumerate(article["paragraphs"]):
                doc_id = f"{a:03d}_{p:03d}.txt"
                context = para["context"]
                (out_dir / doc_id).write_text(context, encoding="utf-8")
                metadata[doc_id] = {"title": f"{title} ¶{p + 1}"}
                for qa in para["qas"]:
                    impossible = bool(qa.get("is_impossible", False))
                    answers = () if impossible else tuple(dict.fromkeys(x["text"] for x in qa["answers"]))
                    kind = "unanswerable" if impossible else "squad"
                    items.append(EvalItem(str(qa["id"]), qa["question"], answers, doc_id if answers else None, kind))
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path} is not a SQuAD JSON file (missing {exc})") from exc
    (out_dir / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False), encoding="utf-8")
    if not items:
        raise InputError(f"{path} holds no questions")
    return items


# ---------------------------------------------------------------- running


def record(item: EvalItem, result: Result, latency_ms: float) -> Record:
    """Judge one candidate result against its gold answers."""
    hits = tuple(p.doc_id == item.doc and contains_answer(p.text, item.answers) for p in result.passages)
    top = result.passages[0] if result.passages else None
    sentence = next((h.text for h in top.highlights if h.kind == "sentence"), "") if top else ""
    highlight = bool(top and top.doc_id == item.doc and contains_answer(sentence, item.answers))
    return Record(
        id=item.id,
        type=item.type,
        question=item.question,
        answers=item.answers,
        doc=item.doc,
        ranked_hits=hits,
        highlight_hit=highlight,
        prediction=result.answer.text if result.answer else "",
        confidence=float(result.confidence),
        latency_ms=latency_ms,
        top_doc=top.doc_id if top else None,
        top_sentence=sentence,
    )


def run(
    ask: Callable[[str], Result],
    items: Sequence[EvalItem],
    progress: bool = True,
) -> list[Record]:
    """Ask every question (warm: the caller loads the model first) and judge the candidate answers."""
    from tqdm import tqdm

    records = []
    for item in tqdm(items, desc="questions", disable=not progress, unit="q"):
        started = time.perf_counter()
        result = ask(item.question)
        records.append(record(item, result, (time.perf_counter() - started) * 1000))
    return records


def by_type(records: Sequence[Record], threshold: float) -> dict[str, dict[str, float]]:
    """Metrics per question type."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.type, []).append(r)
    return {t: metrics(rs, threshold) for t, rs in sorted(groups.items())}


def failures(records: Sequence[Record], threshold: float) -> list[dict[str, Any]]:
    """Questions the system got wrong, for the report."""
    out = []
    for r in records:
        answered = bool(r.prediction) and r.confidence >= threshold
        wrong = answered if not r.answers else not (answered and correct(r))
        if wrong:
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


# ---------------------------------------------------------------- gate and reports


def check_gate(values: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    """Each metric below its minimum (or latency above its maximum), as a message; [] when all pass."""
    problems = []
    for name, limit in thresholds.items():
        if name.startswith("_"):
            continue
        if name not in values:
            problems.append(f"{name}: no such metric")
        elif name.startswith("latency"):
            if values[name] > limit:
                problems.append(f"{name} = {values[name]:.1f} is above the maximum {limit}")
        elif values[name] < limit:
            problems.append(f"{name} = {values[name]:.3f} is below the minimum {limit}")
    return problems


def load_thresholds(path: Path) -> dict[str, float]:
    """Read the gate file: {"metric": minimum, ...}; keys starting with "_" are comments."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read thresholds file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"thresholds file {path} must hold a JSON object")
    return {k: float(v) for k, v in data.items() if not k.startswith("_")}


def table(rows: dict[str, dict[str, float]], columns: Sequence[str] = METRICS) -> str:
    """A plain-text table: one row per name, one column per metric."""
    width = max([len(name) for name in rows] + [8])
    head = f"{'':<{width}}  " + "  ".join(f"{c:>14}" for c in columns)
    lines = [head]
    for name, values in rows.items():
        cells = []
        for c in columns:
            v = values.get(c, float("nan"))
            cells.append(f"{int(v):>14d}" if c == "n" else f"{v:>14.1f}" if c.startswith("latency") else f"{v:>14.3f}")
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def write_report(out_dir: Path, summary: dict[str, Any], records: Sequence[Record], threshold: float) -> list[Path]:
    """Write report.json, summary.md (with the failed questions) and per_type.png into out_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fails = failures(records, threshold)
    report = {**summary, "failures": fails, "records": [asdict(r) for r in records]}
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")

    per_type = summary.get("by_type", {})
    md = [f"# Evaluation of {summary.get('source', '')}", ""]
    md.append(
        f"{summary['overall']['n']} questions; retriever `{summary.get('retriever')}`; "
        f"abstention threshold {threshold}."
    )
    md += ["", "```", table({"overall": summary["overall"], **per_type}), "```", ""]
    if summary.get("by_retriever"):
        md += ["## Retrievers side by side", "", "```", table(summary["by_retriever"]), "```", ""]
    md += [f"## Failed questions ({len(fails)})", ""]
    for f in fails:
        md.append(
            f"- **{f['id']}** ({f['type']}) {f['question']}  \n  gold: {f['gold']} in `{f['doc']}`; "
            f"predicted: {f['predicted']!r} (confidence {f['confidence']}); top passage from `{f['top_doc']}`"
        )
    md_path = out_dir / "summary.md"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")

    shown = ("recall@5", "highlight_hit", "f1", "unanswerable_abstained")
    names = list(per_type)
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(names) + 3), 4.5))
    width = 0.8 / len(shown)
    for i, metric in enumerate(shown):
        values = [
            per_type[t].get(metric, 0)
            if (metric != "unanswerable_abstained" or t == "unanswerable")
            and (metric == "unanswerable_abstained" or t != "unanswerable")
            else 0
            for t in names
        ]
        ax.bar([x + i * width for x in range(len(names))], values, width, label=metric)
    ax.set_xticks([x + width * (len(shown) - 1) / 2 for x in range(len(names))])
    ax.set_xticklabels([f"{t}\n(n={per_type[t]['n']})" for t in names], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of questions")
    ax.set_title(f"tr-qa on {summary.get('source', '')}: per question type")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    png_path = out_dir / "per_type.png"
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return [json_path, md_path, png_path]


def evaluate(
    qa: Any,
    items: Sequence[EvalItem],
    retrievers: Sequence[str],
    threshold: float | None = None,
    progress: bool = True,
    source: str = "",
) -> tuple[dict[str, Any], list[Record]]:
    """Run the items once per retriever; the first retriever's records are returned with the summary."""
    if threshold is None:
        threshold = qa.settings.abstain_threshold
    qa.candidates("warm-up question")  # load the model and touch every stage before timing
    by_retriever: dict[str, dict[str, float]] = {}
    first: list[Record] = []
    for name in retrievers:
        recs = run(lambda q, name=name: qa.candidates(q, k=EVAL_K, retriever=name), items, progress)
        by_retriever[name] = metrics(recs, threshold)
        if not first:
            first = recs
    fitted, share = fit_threshold(first)
    summary = {
        "source": source,
        "retriever": retrievers[0],
        "overall": by_retriever[retrievers[0]],
        "by_type": by_type(first, threshold),
        "by_retriever": by_retriever if len(retrievers) > 1 else {},
        "threshold_fit": {
            "threshold": fitted,
            "answered_right_or_abstained": share,
            "metrics_at_fit": metrics(first, fitted),
        },
    }
    return summary, first


def squad_eval_dir() -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for a SQuAD corpus and its index (never the project's index/)."""
    return tempfile.TemporaryDirectory(prefix="tr-qa-squad-")
