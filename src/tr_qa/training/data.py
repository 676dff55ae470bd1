"""Training windows: tokenised (question, context) windows with their answer token targets, batches, padding."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tr_qa.decode import encode_pairs
from tr_qa.squad import SquadExample


@dataclass(frozen=True, slots=True)
class Feature:
    """One window of one example; ``start == end == 0`` ([CLS]) when the window holds no answer."""

    input_ids: list[int]
    token_type_ids: list[int]
    start: int
    end: int
    example: int


def char_to_token_span(
    offsets: Sequence[tuple[int, int]], seq_ids: Sequence[int | None], start_char: int, end_char: int
) -> tuple[int, int]:
    """Token start/end (inclusive) of the answer ``[start_char, end_char)`` in one window; (0, 0) if not inside."""
    ctx = [i for i, s in enumerate(seq_ids) if s == 1]
    if not ctx or end_char <= start_char:
        return 0, 0
    first, last = ctx[0], ctx[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return 0, 0
    start_tok = next((i for i in ctx if offsets[i][1] > start_char), first)
    end_tok = next((i for i in reversed(ctx) if offsets[i][0] < end_char), last)
    if end_tok < start_tok:
        return 0, 0
    return start_tok, end_tok


def features(tokenizer: Any, examples: Sequence[SquadExample], max_length: int, stride: int) -> list[Feature]:
    """Every window of every example, in example order; unanswerable examples target [CLS] in all windows."""
    feats: list[Feature] = []
    step = 256
    for b0 in range(0, len(examples), step):
        batch = examples[b0 : b0 + step]
        enc = encode_pairs(tokenizer, [x.question for x in batch], [x.context for x in batch], max_length, stride)
        for w, k in enumerate(enc["overflow_to_sample_mapping"]):
            ex = batch[k]
            st, et = 0, 0
            if ex.answers:
                s_char = ex.answer_start
                st, et = char_to_token_span(
                    enc["offset_mapping"][w], enc.sequence_ids(w), s_char, s_char + len(ex.answers[0])
                )
            feats.append(Feature(enc["input_ids"][w], enc["token_type_ids"][w], st, et, b0 + k))
    return feats


def batch_plan(lengths: Sequence[int], batch_size: int, seed: int, pool: int = 50) -> list[list[int]]:
    """Length-bucketed batches: sort pools of ``pool`` batches by length, then shuffle the batches (seeded)."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    span = batch_size * pool
    for p0 in range(0, len(order), span):
        chunk = sorted(order[p0 : p0 + span], key=lambda i: lengths[i])
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


@dataclass(frozen=True)
class Batch:
    """Padded tensors of one training batch."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        """The same batch on ``device``."""
        if device.type == "cpu":
            return self
        return Batch(
            *(
                t.to(device, non_blocking=True)
                for t in (self.input_ids, self.attention_mask, self.token_type_ids, self.start, self.end)
            )
        )


def collate(feats: Sequence[Feature], idx: Sequence[int], pad_id: int, multiple: int = 32) -> Batch:
    """Pad the chosen windows to a common width (a multiple of ``multiple``)."""
    # oneDNN builds kernels per shape: a few widths reused across the run cost less than ~5 % extra padding.
    width = -(-max(len(feats[i].input_ids) for i in idx) // multiple) * multiple
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    tt = torch.zeros((len(idx), width), dtype=torch.long)
    am = torch.zeros((len(idx), width), dtype=torch.long)
    for r, i in enumerate(idx):
        n = len(feats[i].input_ids)
        ids[r, :n] = torch.tensor(feats[i].input_ids)
        tt[r, :n] = torch.tensor(feats[i].token_type_ids)
        am[r, :n] = 1
    st = torch.tensor([feats[i].start for i in idx])
    et = torch.tensor([feats[i].end for i in idx])
    return Batch(ids, am, tt, st, et)
