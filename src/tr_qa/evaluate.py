"""Evaluation: question files and SQuAD files → per-question records → metrics (``tr_qa.metrics``) → reports.

A question file is JSON lines: ``{"id", "question", "answers", "doc", "type", "split"}``. ``split`` is ``dev``
(thresholds, calibrators and weights may be looked at on it) or ``test`` (what the CI gate reads).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tr_qa import metrics as mt
from tr_qa.config import Settings
from tr_qa.errors import InputError
from tr_qa.squad import read_articles
from tr_qa.types import Result

METRICS = ("n", *mt.INTERVAL_METRICS, "latency_ms_p50", "latency_ms_p95")
TYPES = (
    "figure",
    "date",
    "person",
    "organisation",
    "place",
    "why",
    "how",
    "comment",
    "paraphrase",
    "multi_doc",
    "unanswerable",
    "squad",
)
SPLITS = ("dev", "test")
EVAL_K = 10


@dataclass(frozen=True)
class EvalItem:
    """One question with its gold answers (empty when the documents do not answer it)."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc: str | None
    type: str = "other"
    split: str = "test"

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
    split: str = "test"


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
        split = row.get("split", "test")
        if split not in SPLITS:
            raise InputError(f"{path}:{n}: 'split' must be one of {', '.join(SPLITS)}, got {split!r}")
        seen.add(qid)
        items.append(
            EvalItem(qid, question, tuple(answers), doc if answers else None, str(row.get("type", "other")), split)
        )
    if not items:
        raise InputError(f"{path} holds no questions")
    return items


def squad_corpus(path: Path, out_dir: Path) -> list[EvalItem]:
    """Write a SQuAD v1.1/v2.0 file's paragraphs as documents into out_dir and return its questions."""
    path = Path(path)
    data = read_articles(path)
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
    hits = tuple(p.doc_id == item.doc and mt.contains_answer(p.text, item.answers) for p in result.passages)
    top = result.passages[0] if result.passages else None
    sentence = next((h.text for h in top.highlights if h.kind == "sentence"), "") if top else ""
    highlight = bool(top and top.doc_id == item.doc and mt.contains_answer(sentence, item.answers))
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
        split=item.split,
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


def reader_name(settings: Settings) -> str:
    """Which reader and judge answered: "shipped", "none", or the candidate's folder and judge file."""
    if settings.reader_passages == 0:
        return "none"
    if settings.reader_dir is None and settings.confidence_file is None:
        return "shipped"
    return f"{settings.reader_dir or 'shipped'} (judge {settings.confidence_file or 'shipped'})"


def evaluate(
    qa: Any,
    items: Sequence[EvalItem],
    retrievers: Sequence[str],
    threshold: float | None = None,
    progress: bool = True,
    source: str = "",
    intervals: bool = True,
) -> tuple[dict[str, Any], list[Record]]:
    """Run the items once per retriever; the first retriever's records are returned with the summary.

    The summary holds the overall metrics, 95 % bootstrap intervals, per-type and per-split metrics, the
    risk-coverage curve and reliability bins, and the threshold that would have been best on these questions
    (reported for comparison only: the app's thresholds are fitted on training data).
    """
    if threshold is None:
        threshold = qa.judge.strategy.abstain_below
    qa.warm_up()  # load the models and touch every stage before timing
    by_retriever: dict[str, dict[str, float]] = {}
    first: list[Record] = []
    for name in retrievers:
        recs = run(lambda q, name=name: qa.candidates(q, k=EVAL_K, retriever=name), items, progress)
        by_retriever[name] = mt.metrics(recs, threshold)
        if not first:
            first = recs
    scored = mt.score_records(first)
    fitted, share = mt.fit_threshold(first)
    cov, risk, conf = mt.risk_coverage(scored)
    summary = {
        "source": source,
        "retriever": retrievers[0],
        "reader": reader_name(qa.settings),
        "overall": by_retriever[retrievers[0]],
        "intervals": mt.bootstrap_intervals(scored, threshold) if intervals else {},
        "by_type": mt.by_group(first, lambda r: r.type, threshold),
        "by_split": mt.by_group(first, lambda r: r.split, threshold),
        "by_retriever": by_retriever if len(retrievers) > 1 else {},
        "risk_coverage": {"coverage": cov.tolist(), "risk": risk.tolist(), "confidence": conf.tolist()},
        "reliability": mt.reliability(scored),
        "threshold_fit": {
            "threshold": fitted,
            "answered_right_or_abstained": share,
            "metrics_at_fit": mt.metrics(first, fitted),
        },
    }
    return summary, first


def validate_qa_file(path: Path, corpus_dir: Path) -> list[str]:
    """Every problem with a question file, one line each ([] when it is sound); nothing is run."""
    try:
        items = load_qa_file(path)
    except InputError as exc:
        return [str(exc)]
    problems = []
    texts: dict[str, str | None] = {}
    for item in items:
        where = f"{path}: {item.id}"
        if item.type not in TYPES:
            problems.append(f"{where}: unknown type {item.type!r} (known: {', '.join(TYPES)})")
        if not item.answerable:
            if item.type != "unanswerable":
                problems.append(f"{where}: no answers, so its type must be 'unanswerable', not {item.type!r}")
            continue
        if item.type == "unanswerable":
            problems.append(f"{where}: type 'unanswerable' but it has answers")
        assert item.doc is not None
        if item.doc not in texts:
            doc_path = corpus_dir / item.doc
            try:
                texts[item.doc] = doc_path.read_text(encoding="utf-8") if doc_path.is_file() else None
            except (OSError, UnicodeDecodeError):
                texts[item.doc] = None
        text = texts[item.doc]
        if text is None:
            problems.append(f"{where}: document {item.doc!r} does not exist in {corpus_dir} (or is not UTF-8 text)")
            continue
        for answer in item.answers:
            if answer not in text:
                problems.append(f"{where}: answer {answer!r} is not an exact substring of {item.doc}")
    return problems


def squad_eval_dir() -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for a SQuAD corpus and its index (never the project's index/)."""
    return tempfile.TemporaryDirectory(prefix="tr-qa-squad-")


def reader_on_gold(
    squad_file: Path, limit: int | None = None, progress: bool = False, reader_dir: Path | None = None
) -> dict[str, Any]:
    """The reader alone (shipped, or the one in ``reader_dir``), given each question's own paragraph (SQuAD's
    setting; v2.0 unanswerables too).

    Reports SQuAD 2.0 figures when it never abstains, when it answers only above a no-answer margin of 0, and at
    the margin threshold fitted on the reader's held-out *training* articles (from its metrics.json).
    """
    from tr_qa import squad
    from tr_qa.reader import SHIPPED_MODEL_DIR, Reader

    items = squad.examples(read_articles(Path(squad_file)), answerable_only=False)[:limit]
    if not items:
        raise InputError(f"{squad_file} holds no questions")
    folder = Path(reader_dir) if reader_dir is not None else SHIPPED_MODEL_DIR
    reader = Reader(folder)
    started = time.perf_counter()
    outcomes = squad.read_examples(reader.predict_pairs, items, progress=progress)
    seconds = time.perf_counter() - started
    fitted = None
    metrics_file = folder / "metrics.json"
    if metrics_file.is_file():
        held = json.loads(metrics_file.read_text(encoding="utf-8")).get("heldout_int8", {})
        fitted = held.get("at_best_threshold", {}).get("threshold")
    out: dict[str, Any] = {
        "source": str(squad_file),
        "n": len(items),
        "seconds": round(seconds, 1),
        "never_abstaining": squad.v2_metrics(outcomes, None),
        "at_margin_0": squad.v2_metrics(outcomes, 0.0),
    }
    if fitted is not None:
        out["at_heldout_threshold"] = squad.v2_metrics(outcomes, float(fitted))
    return out
