"""Writing an index generation: every file durable before ``CURRENT`` names it, and housekeeping after kills.

A generation is written into a fresh ``gen-*`` folder beside the live one; only when every file in it has been
fsynced does ``CURRENT`` move to it (``os.replace``), so a build killed at any moment leaves the previous index
usable. ``remove_stale_generations`` and ``tidy`` clear what such a kill left, under the build lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tr_qa.analyse import DocAnalysis
from tr_qa.files import atomic_open, atomic_write_text, atomic_write_with, fsync_dir
from tr_qa.index.layout import (
    CURRENT,
    FAISS,
    SENTENCES,
    VECTORS,
    build_lock,
    chunk_row,
    document_row,
    file_digest,
)
from tr_qa.index.lexical import BM25_DIR, Lexical, save_lexical
from tr_qa.index.vectors import VectorIndex
from tr_qa.types import Chunk, Document


@dataclass(frozen=True)
class Generation:
    """A complete index generation in memory, ready to be written (``sentences`` 8-bit for a large index)."""

    manifest: dict[str, Any]
    documents: tuple[Document, ...]
    analyses: dict[str, DocAnalysis]
    chunks: tuple[Chunk, ...]
    vectors: np.ndarray
    sentences: np.ndarray
    vector_index: VectorIndex
    lexical: Lexical


def write_generation(index_dir: Path, generation: Generation) -> Path:
    """Write a complete new generation beside the live one, durably, then point ``CURRENT`` at it."""
    import faiss

    faiss_index = generation.vector_index.index
    gen = Path(tempfile.mkdtemp(dir=index_dir, prefix=f"gen-{time.strftime('%Y%m%d-%H%M%S')}-"))
    try:
        # Each file is fsynced as it is closed (tr_qa.files), so the pointer below never names a torn file.
        atomic_write_with(gen / FAISS, lambda fh: fh.write(faiss.serialize_index(faiss_index).tobytes()))
        atomic_write_with(gen / VECTORS, lambda fh: np.save(fh, generation.vectors, allow_pickle=False))
        atomic_write_with(gen / SENTENCES, lambda fh: np.save(fh, generation.sentences, allow_pickle=False))
        save_lexical(generation.lexical, gen / BM25_DIR)
        files = {}
        for f in sorted((gen / BM25_DIR).iterdir()):
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
            files[f"{BM25_DIR}/{f.name}"] = {"bytes": f.stat().st_size, "blake2b": file_digest(f)}
        fsync_dir(gen / BM25_DIR)
        with atomic_open(gen / "documents.jsonl") as fh:
            for d in generation.documents:
                fh.write(json.dumps(document_row(d, generation.analyses[d.id]), ensure_ascii=False) + "\n")
        with atomic_open(gen / "chunks.jsonl") as fh:
            for c in generation.chunks:
                fh.write(json.dumps(chunk_row(c), ensure_ascii=False) + "\n")
        manifest = {**generation.manifest, "files": files}
        atomic_write_text(gen / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        # Temporary files and folders are private to their owner; a server running as another user reads these.
        for f in gen.rglob("*"):
            os.chmod(f, 0o755 if f.is_dir() else 0o644)
        os.chmod(gen, 0o755)
        fsync_dir(gen)
        atomic_write_text(index_dir / CURRENT, gen.name + "\n")
        fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    return gen


def remove_stale_generations(index_dir: Path, keep: str) -> None:
    """Remove every generation but ``keep``, and temporary files a killed build left; call with the lock held."""
    for entry in index_dir.iterdir():
        if entry.name == keep:
            continue
        if entry.name.startswith("gen-") and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f".{CURRENT}.") and entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()


def tidy(index_dir: Path, keep: str) -> None:
    """Best effort: clean up after killed builds, unless the folder is read-only or a build is running."""
    with contextlib.suppress(OSError), build_lock(index_dir, wait=False) as locked:
        if locked:
            remove_stale_generations(index_dir, keep)
