"""The span reader at query time: a MiniLM-L6 encoder with a start/end head, loaded once.

Windows and span decoding live in ``tr_qa.decode``; training and export in ``tr_qa.training`` (nothing here imports
them). Each span comes with the reader's no-answer score (the [CLS] start+end logit, trained on "no answer"
windows), so callers can weigh "this passage answers" against "it does not".
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tr_qa.decode import predict_pairs
from tr_qa.memory import release_free_memory
from tr_qa.types import ReaderSpan

SHIPPED_MODEL_DIR = Path(__file__).parent / "models" / "reader"
WEIGHTS_FILE = "reader_int8.pt"
CONFIG_FILE = "config.json"


class SpanModel(nn.Module):
    """BERT encoder followed by a linear layer giving a start and an end logit per token."""

    def __init__(self, encoder: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits, shape (batch, seq)."""
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        logits = self.qa_outputs(hidden)
        return logits[..., 0], logits[..., 1]


def offline_env() -> None:
    """Keep transformers from looking for a model hub (there is none; weights ship in packages)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_tokenizer(path: Path) -> Any:
    """The fast WordPiece tokenizer in ``path`` (offset mappings are required)."""
    offline_env()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), use_fast=True)
    if not getattr(tok, "is_fast", False):
        raise RuntimeError("a fast tokenizer (offset mapping) is required")
    return tok


def build_model(config_path: Path, state: dict[str, torch.Tensor] | None = None) -> SpanModel:
    """A SpanModel from a BERT config json; weights from ``state`` if given."""
    offline_env()
    from transformers import BertConfig, BertModel

    config = BertConfig.from_json_file(str(config_path))
    model = SpanModel(BertModel(config, add_pooling_layer=False), config.hidden_size)
    if state is not None:
        model.load_state_dict(state)
    return model


def dequantize_rows(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Per-row symmetric int8 back to fp32 (the shipped weight format, see ``tr_qa.training.export``)."""
    return q.float() * scale[:, None]


def dequantized_state(packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A plain fp32 state dict from the shipped int8 file's tensors."""
    out: dict[str, torch.Tensor] = {}
    for name, t in packed.items():
        if name.endswith(".int8"):
            base = name[: -len(".int8")]
            out[base] = dequantize_rows(t, packed[base + ".scale"])
        elif not name.endswith(".scale"):
            out[name] = t
    return out


def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (AMX or AVX512-BF16), so bf16 autocast is fast."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(amx_bf16|avx512_bf16)\b", flags))


class FunctionalSpanModel(nn.Module):
    """The span model for inference in plain torch (``tr_qa.bert``): no transformers import, same logits.

    ``bf16`` runs the encoder under CPU bfloat16 autocast; the 2-logit head always runs in fp32 (bf16 logits keep
    only ~3 digits, which ties passages' scores).
    """

    def __init__(
        self,
        config_path: Path,
        state: dict[str, torch.Tensor],
        bf16: bool = False,
        packed: dict[str, torch.Tensor] | None = None,
    ) -> None:
        from tr_qa.bert import EncoderShape, fuse_qkv

        super().__init__()
        self.shape = EncoderShape.read(config_path.parent)
        prefix = "encoder."
        encoder = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        words = f"{prefix}embeddings.word_embeddings.weight"
        if packed is not None and f"{words}.int8" in packed:
            # The shipped 8-bit table is kept as it is (a quarter of the memory, the same numbers per looked-up row).
            del encoder["embeddings.word_embeddings.weight"]
            encoder["embeddings.word_embeddings.int8"] = packed[f"{words}.int8"]
            encoder["embeddings.word_embeddings.scale"] = packed[f"{words}.scale"]
        self.weights = fuse_qkv(encoder, self.shape.layers)
        if bf16:
            # Autocast would cast these matrices to bf16 on every forward pass; holding them cast gives the very
            # same numbers with half the memory and no casting. Embeddings, LayerNorm and the head stay fp32.
            for name, t in self.weights.items():
                if t.dim() == 2 and name.startswith("encoder.layer.") and "LayerNorm" not in name:
                    self.weights[name] = t.to(torch.bfloat16)
        self.head_weight, self.head_bias = state["qa_outputs.weight"], state["qa_outputs.bias"]
        self.bf16 = bf16

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits in fp32, shape (batch, seq)."""
        from tr_qa.bert import hidden_states

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            hidden = hidden_states(self.weights, self.shape, input_ids, attention_mask, token_type_ids)
        logits = nn.functional.linear(hidden.float(), self.head_weight, self.head_bias)
        return logits[..., 0], logits[..., 1]


COMPUTE_MODES = ("auto", "fp32", "bf16", "int8-dynamic")


class Reader:
    """The shipped int8 span reader, loaded once (under a lock) on first use or by ``warm_up()``.

    ``compute`` picks the arithmetic after the int8 weights are dequantised: "bf16" (autocast; about twice as fast
    as fp32 where the CPU has native bf16, same F1 within 0.03 on 1,000 held-out questions), "fp32", or
    "int8-dynamic" (torch ``quantize_dynamic`` of the Linear layers: faster than fp32 but 4.5 F1 points lower, so
    not the default). "auto" = bf16 when the CPU has native bf16 (AMX / AVX512-BF16), else fp32.
    """

    def __init__(
        self, path: Path | None = None, *, compute: str = "auto", state: dict[str, torch.Tensor] | None = None
    ) -> None:
        if compute not in COMPUTE_MODES:
            raise ValueError(f"compute must be one of {COMPUTE_MODES}, got {compute!r}")
        self.path = Path(path) if path is not None else SHIPPED_MODEL_DIR
        self.compute = ("bf16" if cpu_has_bf16() else "fp32") if compute == "auto" else compute
        self._state = state
        self._model: nn.Module | None = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the weights and tokenizer now and run one pair, so the first question pays nothing extra."""
        self.predict("warm up", ["Load the model once."])

    def _load(self) -> tuple[nn.Module, Any]:
        with self._lock:
            if self._model is None:
                packed: dict[str, torch.Tensor] | None = None
                if self._state is not None:
                    state = self._state
                else:
                    packed = torch.load(self.path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
                    state = dequantized_state(packed)
                model: nn.Module
                if self.compute == "int8-dynamic":
                    # Dynamic quantisation swaps nn.Linear modules, so this mode keeps transformers' BertModel.
                    model = build_model(self.path / CONFIG_FILE, state).eval()
                    model = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
                else:
                    model = FunctionalSpanModel(
                        self.path / CONFIG_FILE, state, bf16=self.compute == "bf16", packed=packed
                    ).eval()
                self._tokenizer = load_tokenizer(self.path)
                self._model = model
                self._state = None
                del state, packed
                release_free_memory()  # the dequantised copies just dropped
        return self._model, self._tokenizer

    def predict(
        self, question: str, contexts: Sequence[str], *, max_answer_tokens: int = 30, max_length: int = 384
    ) -> list[ReaderSpan]:
        """Best answer span in each context (one batched forward pass; long contexts are read in windows)."""
        if not contexts:
            return []
        return self.predict_pairs(
            [question] * len(contexts), contexts, max_answer_tokens=max_answer_tokens, max_length=max_length
        )

    def predict_pairs(
        self, questions: Sequence[str], contexts: Sequence[str], *, max_answer_tokens: int = 30, max_length: int = 384
    ) -> list[ReaderSpan]:
        """Best span for each (question, context) pair, batched."""
        if len(questions) != len(contexts):
            raise ValueError(f"questions and contexts differ in length: {len(questions)} and {len(contexts)}")
        if not contexts:
            return []
        model, tok = self._load()
        return predict_pairs(
            model,
            tok,
            questions,
            contexts,
            max_answer_tokens=max_answer_tokens,
            max_length=max_length,
            stride=min(128, max_length // 3),
            batch_windows=max(32, len(contexts)),
        )
