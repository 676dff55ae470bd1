"""Retrieval benchmark: tr-qa's dense, BM25 and hybrid retrievers beside txtai's hybrid, on the same chunks.

Not part of the package: txtai is a peer to compare against, installed here only (pip install txtai==9.14.0).
Usage: .venv/bin/python scripts/bench_retrieval.py SQUAD.json[.xz] [--articles N] [--alphas 0.3,0.5,0.7]
Choose settings on training data (e.g. the SQuAD train file) and only report on the evaluation files.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import tr_qa  # noqa: F401 - sets the offline environment before torch loads
from tr_qa import evaluate as ev
from tr_qa import metrics as mt
from tr_qa import report as rp
from tr_qa.config import Settings
from tr_qa.embed import Embedder, model_path
from tr_qa.index import build, load
from tr_qa.retrieve import Retriever
from tr_qa.squad import read_articles


def read_squad(path: Path, articles: int | None) -> Path:
    """A (possibly xz-compressed) SQuAD file, cut to its first N articles, as a temporary JSON file."""
    data = read_articles(path)
    if articles:
        data = data[:articles]
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    out.write_text(json.dumps({"data": data}), encoding="utf-8")
    return out


def scores(ranked: list[list[bool]]) -> dict[str, float]:
    """recall@1, recall@5 and mrr@10 over ranked relevance lists."""
    n = max(len(ranked), 1)
    return {
        "recall@1": sum(mt.recall_at_k(r, 1) for r in ranked) / n,
        "recall@5": sum(mt.recall_at_k(r, 5) for r in ranked) / n,
        "mrr@10": sum(mt.reciprocal_rank(r, 10) for r in ranked) / n,
    }


def main() -> None:
    """Run every retriever on one SQuAD file and print a table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("squad", type=Path)
    parser.add_argument("--articles", type=int)
    parser.add_argument("--alphas", default="0.5")
    parser.add_argument("--sentence-weights", default="0.0")
    parser.add_argument("--no-txtai", action="store_true")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument("--index", type=Path, help="Keep the built index here and reuse it on the next run.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        items = [i for i in ev.squad_corpus(read_squad(args.squad, args.articles), Path(tmp) / "c") if i.answers]
        settings = Settings(corpus_dir=Path(tmp) / "c", index_dir=args.index or Path(tmp) / "i")
        embedder = Embedder()
        if not (settings.index_dir / "CURRENT").exists():
            build(settings, embedder=embedder, progress=False)
        data = load(settings.index_dir)
        chunks = data.chunks
        vectors = embedder.encode([i.question for i in items], batch_size=64)

        def relevant(item: ev.EvalItem, chunk_ids: list[int]) -> list[bool]:
            return [
                chunks[c].doc_id == item.doc and mt.contains_answer(chunks[c].text, item.answers) for c in chunk_ids
            ]

        rows: dict[str, dict[str, float]] = {}
        weights = [float(b) for b in args.sentence_weights.split(",")]
        runs = [(f"dense s={b}", "dense", 0.5, b) for b in weights] + [("bm25", "bm25", 0.5, 0.0)]
        runs += [(f"hybrid a={a} s={b}", "hybrid", float(a), b) for a in args.alphas.split(",") for b in weights]
        for name, method, alpha, sentence_weight in runs:
            retriever = Retriever(data, alpha, sentence_weight)
            started = time.perf_counter()
            ranked = [
                relevant(item, [h.chunk for h in retriever.search(item.question, vec, method, 10)])
                for item, vec in zip(items, vectors, strict=True)
            ]
            rows[f"tr-qa {name}"] = {
                **scores(ranked),
                "ms_per_query": 1000 * (time.perf_counter() - started) / len(items),
            }

        if not args.no_txtai:
            from txtai import Embeddings

            txt = Embeddings(path=str(model_path()), hybrid=True, content=False)
            txt.index([(i, c.text, None) for i, c in enumerate(chunks)])
            started = time.perf_counter()
            ranked = [relevant(item, [int(uid) for uid, _ in txt.search(item.question, 10)]) for item in items]
            rows["txtai hybrid (default)"] = {
                **scores(ranked),
                "ms_per_query": 1000 * (time.perf_counter() - started) / len(items),
            }

    print(f"{args.squad.name}: {len(items)} answerable questions, {len(chunks)} chunks")
    print(rp.table(rows, ("recall@1", "recall@5", "mrr@10", "ms_per_query")).replace("ms_per_query", "ms/query"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
