"""The span reader at query time: a MiniLM-L6 encoder with a start/end head, loaded once, decoding answer spans.

Training and export live in ``tr_qa.training``; nothing here imports them. Each span comes with the reader's
no-answer score (the [CLS] start+end logit, trained on "no answer" windows), so callers can weigh "this passage
answers" against "it does not".
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

from tr_qa.memory import release_free_memory
from tr_qa.types import ReaderSpan

SHIPPED_MODEL_DIR = Path(__file__).parent / "models" / "reader"
WEIGHTS_FILE = "reader_int8.pt"
CONFIG_FILE = "config.json"

# Questions longer than this many word pieces are cut so that a window always keeps room for the context.
MAX_QUESTION_TOKENS = 64
# Score given to a context that has no token at all (empty or whitespace only): finite so it serialises to JSON.
NO_SPAN_SCORE = -1.0e4
# Edge characters that are never part of an answer.
_EDGE_PUNCT = ",;:!?\u2026\u00b7|/\\"
_OPENERS = "\"'(\u201c\u2018[{\u00ab"
_CLOSERS = "\"')\u201d\u2019]}\u00bb"
# A final full stop belongs to the span only when it closes an abbreviation ("U.S.", "a.m.", "Inc.").
_ABBREV_END = re.compile(
    r"(?:\b\w\.\w\.|\b(?:Inc|Ltd|Co|Corp|Jr|Sr|St|Dr|Mr|Mrs|Ms|Prof|Gen|Col|Lt|etc|vs|No|Bros|Mt|Ft)\.)$"
)
_PAIRS = {"(": ")", "[": "]", "{": "}", "\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb", '"': '"', "'": "'"}


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


def cut_question(tokenizer: Any, question: str) -> str:
    """The question, cut to MAX_QUESTION_TOKENS word pieces (so windows keep room for the context)."""
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    offs = enc["offset_mapping"]
    if len(offs) <= MAX_QUESTION_TOKENS:
        return question
    return question[: offs[MAX_QUESTION_TOKENS - 1][1]]


def encode_pairs(
    tokenizer: Any, questions: Sequence[str], contexts: Sequence[str], max_length: int, stride: int
) -> Any:
    """Windows of (question, context) pairs with offsets; ``overflow_to_sample_mapping`` maps windows to pairs."""
    qs = [cut_question(tokenizer, q) for q in questions]
    # Stride must stay below the room left for the context, or the tokenizer refuses the pair.
    longest_q = max((len(tokenizer(q, add_special_tokens=False)["input_ids"]) for q in qs), default=0)
    room = max_length - longest_q - 3
    eff_stride = max(0, min(stride, room // 2))
    return tokenizer(
        list(qs),
        list(contexts),
        truncation="only_second",
        max_length=max_length,
        stride=eff_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )


# --------------------------------------------------------------------------------------------------------------
# Decoding


def _trim(context: str, start: int, end: int) -> tuple[int, int]:
    """Shrink ``[start, end)`` past whitespace and stray punctuation at its edges (never to nothing)."""
    s, e = start, end
    while s < e and context[s].isspace():
        s += 1
    while e > s and context[e - 1].isspace():
        e -= 1
    base = (s, e)
    changed = True
    while changed and s < e:
        changed = False
        seg = context[s:e]
        if seg[0] in _EDGE_PUNCT or seg[0] in ".":
            s, changed = s + 1, True
        elif seg[-1] in _EDGE_PUNCT:
            e, changed = e - 1, True
        elif seg[-1] == "." and not _ABBREV_END.search(seg):
            # A final full stop is sentence punctuation unless it closes an abbreviation (U.S., Inc., a.m.).
            e, changed = e - 1, True
        elif seg[0] in _OPENERS and (len(seg) == 1 or _PAIRS[seg[0]] not in seg[1:]):
            s, changed = s + 1, True
        elif seg[-1] in _CLOSERS and not any(o in seg[:-1] for o, c in _PAIRS.items() if c == seg[-1]):
            e, changed = e - 1, True
        while s < e and context[s].isspace():
            s += 1
        while e > s and context[e - 1].isspace():
            e -= 1
    if s >= e:
        return base
    return s, e


def _best_in_window(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    ctx_mask: torch.Tensor,
    max_answer_tokens: int,
) -> tuple[int, int, float, float, float]:
    """Best (start_tok, end_tok, score, null_score, prob) of one window; tensors of length seq (unpadded)."""
    s, e = start_logits.float(), end_logits.float()
    null = float(s[0] + e[0])
    neg = torch.finfo(torch.float32).min / 4
    # Probabilities are normalised over the context tokens plus [CLS] of this window.
    allowed = ctx_mask.clone()
    allowed[0] = True
    ps = torch.softmax(s.masked_fill(~allowed, neg), dim=0)
    pe = torch.softmax(e.masked_fill(~allowed, neg), dim=0)
    sm = s.masked_fill(~ctx_mask, neg)
    em = e.masked_fill(~ctx_mask, neg)
    n = s.shape[0]
    scores = sm[:, None] + em[None, :]
    idx = torch.arange(n)
    band = (idx[None, :] >= idx[:, None]) & (idx[None, :] - idx[:, None] < max_answer_tokens)
    scores = scores.masked_fill(~band, neg)
    flat = int(torch.argmax(scores))
    i, j = divmod(flat, n)
    return i, j, float(s[i] + e[j]), null, float(ps[i] * pe[j])


# Padded width of a batch of windows is a multiple of this (bounded shapes; see ``predict_pairs``).
PAD_TO = 32


def predict_pairs(
    model: nn.Module,
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    max_answer_tokens: int = 30,
    max_length: int = 384,
    stride: int = 128,
    batch_windows: int = 32,
) -> list[ReaderSpan]:
    """Best span for each (question, context) pair with ``model``; windows are batched with dynamic padding."""
    n = len(contexts)
    results: list[ReaderSpan | None] = [None] * n
    live = [i for i in range(n) if contexts[i].strip()]
    for i in set(range(n)) - set(live):
        results[i] = ReaderSpan(0, 0, "", NO_SPAN_SCORE, 0.0, 0.0)
    if live:
        enc = encode_pairs(tokenizer, [questions[i] for i in live], [contexts[i] for i in live], max_length, stride)
        owners = [live[k] for k in enc["overflow_to_sample_mapping"]]
        nwin = len(owners)
        order = sorted(range(nwin), key=lambda w: len(enc["input_ids"][w]))
        best: dict[int, tuple[float, int, int, float, float]] = {}
        nulls: dict[int, float] = {}
        pad_id = tokenizer.pad_token_id or 0
        # A model being trained on a GPU is read there; the shipped inference model has no parameters and runs on CPU.
        first = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
        dev = first.device if first is not None else torch.device("cpu")
        with torch.inference_mode():
            for b0 in range(0, nwin, batch_windows):
                wins = order[b0 : b0 + batch_windows]
                # Widths rounded up to a multiple of PAD_TO: oneDNN caches a kernel per input shape, and with one
                # width per question a server's memory grew by hundreds of MB over a few hundred questions.
                longest = max(len(enc["input_ids"][w]) for w in wins)
                width = min(max(max_length, longest), -(-longest // PAD_TO) * PAD_TO)
                ids = torch.full((len(wins), width), pad_id, dtype=torch.long)
                tt = torch.zeros((len(wins), width), dtype=torch.long)
                am = torch.zeros((len(wins), width), dtype=torch.long)
                for r, w in enumerate(wins):
                    L = len(enc["input_ids"][w])
                    ids[r, :L] = torch.tensor(enc["input_ids"][w])
                    tt[r, :L] = torch.tensor(enc["token_type_ids"][w])
                    am[r, :L] = 1
                start_logits, end_logits = model(ids.to(dev), am.to(dev), tt.to(dev))
                start_logits, end_logits = start_logits.float().cpu(), end_logits.float().cpu()
                for r, w in enumerate(wins):
                    L = len(enc["input_ids"][w])
                    seq_ids = enc.sequence_ids(w)
                    offs = enc["offset_mapping"][w]
                    ctx_mask = torch.tensor(
                        [sid == 1 and offs[t][1] > offs[t][0] for t, sid in enumerate(seq_ids)], dtype=torch.bool
                    )
                    if not bool(ctx_mask.any()):
                        continue
                    i, j, score, null, prob = _best_in_window(
                        start_logits[r, :L], end_logits[r, :L], ctx_mask, max_answer_tokens
                    )
                    owner = owners[w]
                    # A long context is read in windows: the best span over all of them, and the lowest
                    # no-answer score (the window most sure that it holds the answer), as the SQuAD 2.0 decoders do.
                    null = min(null, nulls.get(owner, null))
                    nulls[owner] = null
                    if owner not in best or score > best[owner][0]:
                        best[owner] = (score, offs[i][0], offs[j][1], null, prob)
        for i in live:
            if i not in best:
                results[i] = ReaderSpan(0, 0, "", NO_SPAN_SCORE, 0.0, 0.0)
                continue
            score, cs, ce, _, prob = best[i]
            null = nulls[i]
            s, e = _trim(contexts[i], cs, ce)
            results[i] = ReaderSpan(s, e, contexts[i][s:e], score, null, prob)
    return [r for r in results if r is not None]


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
