"""A synthetic corpus of about N chunks: SQuAD v1.1 training paragraphs written as text files, with their questions."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tr_qa.bench.figures import Corpus
from tr_qa.config import project_root
from tr_qa.errors import InputError
from tr_qa.squad import read_articles

SQUAD_TRAIN = Path("../shared/bench/squad-v1.1-train/squad11_train_rebuilt.json.xz")


def default_squad_file() -> Path:
    """The shared SQuAD v1.1 training file, beside the project folder (never copied into it)."""
    return (project_root() / SQUAD_TRAIN).resolve()


def estimated_chunks(length: int, size: int, overlap: int) -> int:
    """How many chunks the splitter makes of a text this long (it may make one more at a sentence boundary)."""
    if length <= size:
        return 1
    return math.ceil((length - overlap) / (size - overlap))


def spread(items: Sequence[str], count: int) -> tuple[str, ...]:
    """``count`` items taken evenly across ``items`` (all of them when there are fewer)."""
    if count >= len(items):
        return tuple(items)
    step = len(items) / count
    return tuple(items[int(i * step)] for i in range(count))


def write_corpus(
    articles: Sequence[dict[str, Any]],
    chunks: int,
    out_dir: Path,
    questions: int,
    size: int = 800,
    overlap: int = 200,
) -> Corpus:
    """Write paragraphs, in file order, as ``AAA_PPP.txt`` until about ``chunks`` chunks; their questions spread out.

    ``metadata.json`` gives each file its article's title, so the index shows real titles.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata: dict[str, dict[str, str]] = {}
    asked: list[str] = []
    written: list[tuple[str, str]] = []  # (title, paragraph) of the first pass, for recombining
    total = 0
    try:
        for a, article in enumerate(articles):
            title = str(article.get("title", f"article {a}")).replace("_", " ")
            for p, para in enumerate(article["paragraphs"]):
                if total >= chunks:
                    break
                context = str(para["context"]).strip()
                if not context:
                    continue
                name = f"{a:03d}_{p:03d}.txt"
                (out_dir / name).write_text(context, encoding="utf-8")
                metadata[name] = {"title": f"{title} ¶{p + 1}"}
                written.append((metadata[name]["title"], context))
                asked.extend(str(q["question"]) for q in para["qas"])
                total += estimated_chunks(len(context), size, overlap)
            if total >= chunks:
                break
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"not a SQuAD article list (missing {exc})") from exc
    if not metadata:
        raise InputError("the SQuAD file has no paragraphs to build a corpus from")
    total += _recombine(written, chunks - total, out_dir, metadata, size, overlap)
    (out_dir / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False), encoding="utf-8")
    return Corpus(out_dir, spread(asked, questions), synthetic=True, paragraphs=len(metadata), target_chunks=chunks)


def _recombine(
    paragraphs: Sequence[tuple[str, str]],
    chunks: int,
    out_dir: Path,
    metadata: dict[str, dict[str, str]],
    size: int,
    overlap: int,
) -> int:
    """Past the file's paragraphs, about ``chunks`` more of recombined text; returns the chunks added.

    Pass r rotates each paragraph's sentences by r and ends it with the first sentence of the paragraph r further
    on, so no chunk repeats an earlier one's text (the builder keeps a repeated chunk only once); no questions.
    """
    total, n = 0, len(paragraphs)
    for r in range(1, 10_000):
        for i, (title, context) in enumerate(paragraphs):
            if total >= chunks:
                return total
            sentences = context.split(". ")
            shift = r % len(sentences)
            extra = paragraphs[(i + r) % n][1].split(". ")[0]
            text = ". ".join([*sentences[shift:], *sentences[:shift], extra])
            name = f"r{r:03d}_{i:06d}.txt"
            (out_dir / name).write_text(text, encoding="utf-8")
            metadata[name] = {"title": f"{title} (recombined {r})"}
            total += estimated_chunks(len(text), size, overlap)
    return total


def synthetic_corpus(
    squad_file: Path, chunks: int, out_dir: Path, questions: int, size: int = 800, overlap: int = 200
) -> Corpus:
    """Read a SQuAD v1.1 file and write a corpus of about ``chunks`` chunks from it into ``out_dir``."""
    return write_corpus(read_articles(squad_file), chunks, out_dir, questions, size, overlap)
