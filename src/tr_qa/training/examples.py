"""A run's examples: split by article, this run's share of the questions, the sampled negatives, prepared files.

Preparing needs spaCy (entity and noun swaps); ``write_prepared`` stores the result as a few-MB xz file that a
machine without spaCy (a leased GPU) trains from, checked against the training file and the data settings.
"""

from __future__ import annotations

import json
import lzma
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tr_qa import squad
from tr_qa.files import atomic_write_with, sha256_file
from tr_qa.training.config import TrainConfig
from tr_qa.training.negatives import with_negatives

# Held-out negatives: each kind for half the questions where one can be made, so NoAns accuracy covers every kind.
HELDOUT_NEGATIVE_RATE = 0.5
PREPARED_FORMAT = 1
# The settings a prepared examples file depends on; a run with other values cannot use it.
_DATA_FIELDS = (
    "skip_questions",
    "max_questions",
    "seed",
    "holdout_articles",
    "hard_negative_rate",
    "perturbed_negative_rate",
    "cut_negative_rate",
    "noun_negative_rate",
)


@dataclass(frozen=True)
class Data:
    """Training examples (with negatives) and held-out examples (with negatives), split by article."""

    train: list[squad.SquadExample]
    heldout: list[squad.SquadExample]
    questions: int
    skipped: int


def heldout_with_negatives(held_articles: list[dict[str, Any]], seed: int) -> list[squad.SquadExample]:
    """The held-out articles' questions, each followed by negatives of every kind (the same for a given seed)."""
    return with_negatives(
        squad.examples(held_articles),
        held_articles,
        hard_rate=HELDOUT_NEGATIVE_RATE,
        perturbed_rate=HELDOUT_NEGATIVE_RATE,
        cut_rate=HELDOUT_NEGATIVE_RATE,
        noun_rate=HELDOUT_NEGATIVE_RATE,
        seed=seed + 1,
    )


def _data_params(cfg: TrainConfig) -> dict[str, Any]:
    return {name: getattr(cfg, name) for name in _DATA_FIELDS}


def _rows(items: list[squad.SquadExample], articles: list[dict[str, Any]]) -> list[list[Any]]:
    # A context equal to its article's paragraph is stored as null: the file stays a few MB.
    out = []
    for ex in items:
        same = articles[ex.article]["paragraphs"][ex.paragraph]["context"] == ex.context
        ctx = None if same else ex.context
        out.append([ex.qid, ex.question, ctx, list(ex.answers), ex.answer_start, ex.article, ex.paragraph])
    return out


def _examples(rows: list[list[Any]], articles: list[dict[str, Any]]) -> list[squad.SquadExample]:
    out = []
    for qid, question, context, answers, start, a, p in rows:
        ctx = articles[a]["paragraphs"][p]["context"] if context is None else context
        out.append(squad.SquadExample(qid, question, ctx, tuple(answers), int(start), int(a), int(p)))
    return out


def write_prepared(cfg: TrainConfig, path: Path) -> Data:
    """Prepare the run's examples (spaCy runs here) and write them to ``path`` (xz JSON) for ``cfg.prepared``."""
    articles = squad.read_articles(cfg.train_file)
    train_articles, held_articles = squad.split_articles(articles, cfg.holdout_articles)
    data = _prepare(cfg, train_articles, held_articles)
    doc = {
        "format": PREPARED_FORMAT,
        "train_file_sha256": sha256_file(Path(cfg.train_file)),
        "data_params": _data_params(cfg),
        "questions": data.questions,
        "skipped": data.skipped,
        "train": _rows(data.train, train_articles),
        "heldout": _rows(data.heldout, held_articles),
    }
    payload = lzma.compress(json.dumps(doc, separators=(",", ":")).encode("utf-8"))
    atomic_write_with(Path(path), lambda fh: fh.write(payload))
    return data


def read_prepared(cfg: TrainConfig) -> Data:
    """The examples of ``cfg.prepared``, checked against this run's training file and data settings."""
    path = Path(cfg.prepared) if cfg.prepared else None
    if path is None or not path.is_file():
        raise ValueError(f"prepared examples file does not exist: {path}")
    try:
        doc = json.loads(lzma.decompress(path.read_bytes()).decode("utf-8"))
    except (lzma.LZMAError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a prepared examples file ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != PREPARED_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{path} has format {found!r}, expected {PREPARED_FORMAT}")
    if doc.get("data_params") != _data_params(cfg):
        raise ValueError(f"{path} was prepared with other settings: {doc.get('data_params')}")
    if doc.get("train_file_sha256") != sha256_file(Path(cfg.train_file)):
        raise ValueError(f"{path} was prepared from another training file")
    articles = squad.read_articles(cfg.train_file)
    train_articles, held_articles = squad.split_articles(articles, cfg.holdout_articles)
    try:
        train = _examples(doc["train"], train_articles)
        held = _examples(doc["heldout"], held_articles)
        return Data(train, held, int(doc["questions"]), int(doc["skipped"]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{path} is damaged ({type(exc).__name__}: {exc})") from exc


def prepare_data(cfg: TrainConfig) -> Data:
    """Split by article, take this run's seeded share of the training questions and add the sampled negatives."""
    if cfg.prepared is not None:
        return read_prepared(cfg)
    articles = squad.read_articles(cfg.train_file)
    return _prepare(cfg, *squad.split_articles(articles, cfg.holdout_articles))


def _prepare(cfg: TrainConfig, train_articles: list[dict[str, Any]], held_articles: list[dict[str, Any]]) -> Data:
    train_ex = squad.examples(train_articles)
    # Questions are shuffled with a fixed seed; the first skip_questions were learned by init_from.
    random.Random(cfg.seed).shuffle(train_ex)
    end = None if cfg.max_questions is None else cfg.skip_questions + cfg.max_questions
    train_ex = train_ex[cfg.skip_questions : end]
    # Negatives are built in article order so that their sampling does not depend on the shuffle.
    train_ex.sort(key=lambda ex: (ex.article, ex.paragraph, ex.qid))
    mixed = with_negatives(
        train_ex,
        train_articles,
        hard_rate=cfg.hard_negative_rate,
        perturbed_rate=cfg.perturbed_negative_rate,
        cut_rate=cfg.cut_negative_rate,
        noun_rate=cfg.noun_negative_rate,
        seed=cfg.seed,
    )
    held = heldout_with_negatives(held_articles, cfg.seed)
    return Data(mixed, held, len(train_ex), cfg.skip_questions)
