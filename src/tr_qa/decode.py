"""From (question, passage) pairs to answer spans: the reader's windows in, its logits decoded out.

Kept apart from ``tr_qa.reader`` (which loads the model) because training encodes its examples and measures its
held-out questions with the same windows and the same decoding as the app.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from tr_qa.types import ReaderSpan

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


def trim_span(context: str, start: int, end: int) -> tuple[int, int]:
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


def best_in_window(
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
                    i, j, score, null, prob = best_in_window(
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
            s, e = trim_span(contexts[i], cs, ce)
            results[i] = ReaderSpan(s, e, contexts[i][s:e], score, null, prob)
    return [r for r in results if r is not None]
