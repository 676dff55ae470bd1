"""A BERT encoder's forward pass in plain ``torch.nn.functional``, shared by the embedder and the span reader.

Importing transformers' BertModel costs seconds (it pulls in torch.distributed, dynamo, SciPy, SymPy) for every
``tr-qa ask`` and server start; this forward pass needs only torch. It computes what BertModel computes in eval mode
(post-LayerNorm blocks, gelu, absolute positions), with query, key and value fused into one matrix product; the
tests check it against transformers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class EncoderShape:
    """The BERT encoder's sizes, from a model folder's config.json."""

    hidden: int
    heads: int
    layers: int
    eps: float
    max_positions: int

    @classmethod
    def read(cls, path: Path) -> EncoderShape:
        """Read and check config.json; ValueError naming the file when it is not a BERT encoder we can run."""
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise ValueError(f"{path / CONFIG_FILE}: expected a BERT encoder with gelu, got {config.get('model_type')}")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path / CONFIG_FILE}: only absolute position embeddings are supported")
        shape = cls(
            int(config["hidden_size"]),
            int(config["num_attention_heads"]),
            int(config["num_hidden_layers"]),
            float(config["layer_norm_eps"]),
            int(config["max_position_embeddings"]),
        )
        if shape.hidden % shape.heads:
            raise ValueError(f"{path / CONFIG_FILE}: hidden_size {shape.hidden} is not a multiple of the heads")
        return shape


def fuse_qkv(weights: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """BertModel-named weights (no prefix) with each layer's query, key and value stacked into one ``qkv``."""
    import torch

    w = dict(weights)
    for i in range(layers):
        p = f"encoder.layer.{i}.attention.self."
        w[p + "qkv.weight"] = torch.cat([w.pop(p + n + ".weight") for n in ("query", "key", "value")])
        w[p + "qkv.bias"] = torch.cat([w.pop(p + n + ".bias") for n in ("query", "key", "value")])
    return w


def word_embeddings(w: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """The word-embedding rows of ``ids`` (fp32): from the float table, or from 8-bit rows and a scale each.

    The 8-bit form (``embeddings.word_embeddings.int8`` and ``.scale``, the reader's shipped weights) gives the very
    numbers dequantising the whole table would, at a quarter of the memory: only the looked-up rows are widened.
    """
    import torch.nn.functional as F

    table = w.get("embeddings.word_embeddings.weight")
    if table is not None:
        return F.embedding(ids, table)
    q, scale = w["embeddings.word_embeddings.int8"], w["embeddings.word_embeddings.scale"]
    return q[ids].float() * scale[ids].unsqueeze(-1)


def hidden_states(
    w: dict[str, torch.Tensor],
    s: EncoderShape,
    ids: torch.Tensor,
    mask: torch.Tensor,
    token_types: torch.Tensor | None = None,
) -> torch.Tensor:
    """The last layer's hidden states (batch, length, hidden) for a padded batch; ``w`` from ``fuse_qkv``."""
    import torch.nn.functional as F

    batch, length = ids.shape
    head = s.hidden // s.heads
    types = w["embeddings.token_type_embeddings.weight"]
    x = (
        word_embeddings(w, ids)
        + w["embeddings.position_embeddings.weight"][:length]
        + (types[0] if token_types is None else F.embedding(token_types, types))
    )
    x = F.layer_norm(x, (s.hidden,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], s.eps)
    attend = mask.bool()[:, None, None, :]  # padding is never attended to
    for i in range(s.layers):
        p = f"encoder.layer.{i}."
        qkv = F.linear(x, w[p + "attention.self.qkv.weight"], w[p + "attention.self.qkv.bias"])
        q, k, v = qkv.view(batch, length, 3, s.heads, head).permute(2, 0, 3, 1, 4)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
        ctx = ctx.transpose(1, 2).reshape(batch, length, s.hidden)
        attn = F.linear(ctx, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])
        x = F.layer_norm(
            attn + x,
            (s.hidden,),
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            s.eps,
        )
        inner = F.gelu(F.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))
        out = F.linear(inner, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
        x = F.layer_norm(out + x, (s.hidden,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], s.eps)
    return x
