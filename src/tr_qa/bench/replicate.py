"""An index of N chunks made from a built one by repeating its documents under new ids, for measuring what a
loaded index costs at a size this machine cannot build from text (a million chunks).

What is real and what is not: every document, chunk, sentence analysis and BM25 posting is a real one of the
source index, repeated (copy ``k`` of ``a.txt`` is ``copy03/a.txt``), and BM25 is built over the repeated chunks
as the builder would build it; the chunk vectors are the source's real
embeddings, each copy after the first moved by a little Gaussian noise and renormalised, so the vector index is
trained and searched on a million distinct vectors; the sentence vectors are repeated as they are. The vocabulary
is therefore the source's, smaller than a real collection of that size would have, and exact-duplicate texts make
recall against exact search a weak figure here (``tr_qa.bench.scale vectors`` measures recall on its own).

``python -m tr_qa.bench.replicate INDEX_DIR 1000000 --out DIR`` writes the index under ``DIR/index`` and prints,
as JSON, what building it took and what loading and asking it costs in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tr_qa.config import Settings
from tr_qa.index.layout import CURRENT, FAISS, SENTENCES, VECTORS, file_digest
from tr_qa.index.lexical import BM25_DIR, EMPTY, Lexical, save_lexical, typical_score
from tr_qa.index.vectors import build_vector_index, choose_kind

PLACEHOLDER = "\x00id\x00"  # stands for the id in a row serialised once and written once per copy
NOISE = 0.05  # spread of the noise added to each vector coordinate, times 1/√dims: copies stay near the source


def _copy_id(k: int, doc_id: str) -> str:
    return f"copy{k:02d}/{doc_id}"


def _repeat_rows(source: Path, dest: Path, key: str, copies: int) -> int:
    """Write each line of a JSON-lines file ``copies`` times, its ``key`` field renamed per copy; lines written."""
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = [str(r[key]) for r in rows]
    templates = []
    for r in rows:
        r[key] = PLACEHOLDER
        templates.append(json.dumps(r, ensure_ascii=False))
    marker = json.dumps(PLACEHOLDER)
    with dest.open("w", encoding="utf-8") as fh:
        for k in range(copies):
            for doc_id, template in zip(ids, templates, strict=True):
                fh.write(template.replace(marker, json.dumps(_copy_id(k, doc_id), ensure_ascii=False), 1) + "\n")
    return len(rows) * copies


def replicate_index(source_dir: Path, chunks: int, out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Write ``out_dir`` as an index of at least ``chunks`` chunks repeated from the index in ``source_dir``."""
    import bm25s
    import faiss

    from tr_qa.index.loader import current_generation, load
    from tr_qa.text import terms

    started = time.perf_counter()
    src = current_generation(source_dir)
    manifest = json.loads((src / "manifest.json").read_text(encoding="utf-8"))
    n_src = manifest["counts"]["chunks"]
    copies = max(1, math.ceil(chunks / n_src))
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = out_dir / "gen-replicated"
    (gen / BM25_DIR).mkdir(parents=True, exist_ok=True)

    n_docs = _repeat_rows(src / "documents.jsonl", gen / "documents.jsonl", "id", copies)
    n_chunks = _repeat_rows(src / "chunks.jsonl", gen / "chunks.jsonl", "doc", copies)

    rng = np.random.default_rng(seed)
    base = np.load(src / VECTORS, mmap_mode="r")
    dims = base.shape[1]
    vectors = np.empty((n_chunks, dims), np.float32)
    for k in range(copies):
        block = np.array(base, dtype=np.float32)
        if k:
            block += rng.standard_normal(block.shape, dtype=np.float32) * np.float32(NOISE / math.sqrt(dims))
            block /= np.linalg.norm(block, axis=1, keepdims=True)
        vectors[k * n_src : (k + 1) * n_src] = block
    np.save(gen / VECTORS, vectors, allow_pickle=False)
    sentences = np.load(src / SENTENCES, mmap_mode="r")
    out = np.lib.format.open_memmap(gen / SENTENCES, "w+", sentences.dtype, (len(sentences) * copies, dims))
    for k in range(copies):
        out[k * len(sentences) : (k + 1) * len(sentences)] = sentences
    out.flush()
    del out
    files_seconds = time.perf_counter() - started

    t = time.perf_counter()
    vector_index = build_vector_index(vectors, choose_kind(n_chunks, Settings().large_index_chunks), seed)
    (gen / FAISS).write_bytes(faiss.serialize_index(vector_index.index).tobytes())
    del vectors
    faiss_seconds = time.perf_counter() - t

    # BM25 is built by bm25s over every chunk's terms, as the builder does; a copy shares its source's term lists.
    t = time.perf_counter()
    source = load(source_dir)
    one = [[sys.intern(w) for w in terms(c.text)] or [EMPTY] for c in source.chunks]
    del source
    bm25 = bm25s.BM25()
    bm25.index(one * copies, show_progress=False)
    df = Counter(t for doc_terms in one for t in set(doc_terms))
    typical = typical_score((copies * c for c in df.values()), copies * len(one))
    save_lexical(Lexical(bm25, typical), gen / BM25_DIR)
    manifest["bm25"] = {**manifest["bm25"], "typical_score": typical}
    del bm25, one
    bm25_seconds = time.perf_counter() - t

    listed = manifest["documents"]
    manifest["documents"] = {_copy_id(k, d): entry for k in range(copies) for d, entry in listed.items()}
    counts = manifest["counts"]
    manifest["counts"] = {
        **counts,
        "documents": n_docs,
        "chunks": n_chunks,
        "sentences": counts["sentences"] * copies,
    }
    manifest["vectors"] = vector_index.manifest()
    manifest["built_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    manifest["replicated"] = {"from": str(src.resolve()), "copies": copies, "noise": NOISE, "seed": seed}
    manifest["files"] = {
        f"{BM25_DIR}/{f.name}": {"bytes": f.stat().st_size, "blake2b": file_digest(f)}
        for f in sorted((gen / BM25_DIR).iterdir())
    }
    (gen / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / CURRENT).write_text(gen.name + "\n", encoding="utf-8")
    return {
        "source": str(src.resolve()),
        "copies": copies,
        "documents": n_docs,
        "chunks": n_chunks,
        "seconds": {
            "files": round(files_seconds, 1),
            "faiss": round(faiss_seconds, 1),
            "bm25": round(bm25_seconds, 1),
        },
        "index_bytes": sum(f.stat().st_size for f in gen.rglob("*") if f.is_file()),
        "vectors": vector_index.manifest(),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: replicate an index to N chunks, then load and ask it in a fresh process; prints JSON."""
    from tr_qa.bench.scale import measure_loaded
    from tr_qa.bench.synthetic import default_squad_file, spread
    from tr_qa.squad import read_articles

    parser = argparse.ArgumentParser(prog="python -m tr_qa.bench.replicate", description=__doc__)
    parser.add_argument("source", type=Path, help="a built index folder")
    parser.add_argument("chunks", type=int, help="chunks wanted (rounded up to whole copies)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the new index")
    parser.add_argument("--squad", type=Path, help="SQuAD v1.1 training file the questions come from")
    parser.add_argument("--questions", type=int, default=50)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    made = replicate_index(args.source, args.chunks, args.out / "index")
    articles = read_articles(args.squad or default_squad_file())
    asked = [str(q["question"]) for a in articles for p in a["paragraphs"] for q in p["qas"]]
    result = {**made, **measure_loaded(args.out / "index", list(spread(asked, args.questions)))}
    print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()
