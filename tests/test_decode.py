"""Windows and span decoding (tr_qa.decode): edges trimmed, batches padded to a few widths."""

from __future__ import annotations

import pytest
import torch

from tr_qa import decode
from tr_qa.reader import Reader

HAMLET = (
    "Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601. "
    "It is Shakespeare's longest play, with 29,551 words."
)
ZURICH = (
    "The new library in Zürich opened on 3\u00a0March 2015. It cost \u00a342\u00a0million, "
    "and the architect, \u201cMaría Núñez\u201d, called it \u2018a house for readers\u2019."
)


def test_trim_edges() -> None:
    ctx = 'He said "hello, world". Then (in 1999) left the U.S. today.'
    s = ctx.index('"hello')
    assert ctx[slice(*decode.trim_span(ctx, s, s + len('"hello,')))] == "hello"
    s = ctx.index("(in")
    assert ctx[slice(*decode.trim_span(ctx, s, s + len("(in 1999) ")))] == "(in 1999)"
    s = ctx.index("U.S.")
    assert ctx[slice(*decode.trim_span(ctx, s, s + 4))] == "U.S."
    s = ctx.index("today")
    assert ctx[slice(*decode.trim_span(ctx, s, s + 6))] == "today"
    assert decode.trim_span(ctx, 0, 0) == (0, 0)


@pytest.mark.integration
def test_windows_are_padded_to_a_few_widths_without_changing_the_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    # One kernel is cached per input shape: unbounded widths grew a server's memory with every new question.
    model, tokenizer = Reader()._load()
    widths: list[int] = []

    class Recording(torch.nn.Module):
        def forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor):
            widths.append(ids.shape[1])
            return model(ids, mask, types)

    contexts = [HAMLET, ZURICH, "Paris is the capital and most populous city of France.", HAMLET * 9]
    questions = ["Who wrote Hamlet?", "When did the library open?", "What is the capital of France?", "How long?"]
    padded = decode.predict_pairs(Recording(), tokenizer, questions, contexts, batch_windows=2)
    assert widths and all(w % decode.PAD_TO == 0 or w == 384 for w in widths)
    monkeypatch.setattr(decode, "PAD_TO", 1)
    widths.clear()
    exact = decode.predict_pairs(Recording(), tokenizer, questions, contexts, batch_windows=2)
    assert any(w % 32 for w in widths)  # unpadded widths really differ
    for p, e in zip(padded, exact, strict=True):
        assert (p.start, p.end, p.text) == (e.start, e.end, e.text)
        # Under bf16 a different width rounds differently: logits move by hundredths, never the span.
        assert p.score == pytest.approx(e.score, abs=0.1) and p.null_score == pytest.approx(e.null_score, abs=0.1)


def test_best_span_stays_in_the_context_and_within_the_length_limit() -> None:
    # Tokens: [CLS] q q [SEP] c c c c [SEP]; the best start and end logits sit on question tokens and too far apart.
    start = torch.tensor([1.0, 9.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0])
    end = torch.tensor([2.0, 0.0, 9.0, 0.0, 0.0, 1.0, 0.0, 4.0, 0.0])
    ctx = torch.tensor([False, False, False, False, True, True, True, True, False])
    i, j, score, null, prob = decode.best_in_window(start, end, ctx, max_answer_tokens=4)
    assert (i, j) == (4, 7) and score == 9.0 and null == 3.0  # [CLS] start + end is the no-answer score
    assert 0.0 < prob < 1.0
    i, j, score, _, _ = decode.best_in_window(start, end, ctx, max_answer_tokens=2)
    assert (i, j) == (4, 5) and score == 6.0  # 4..7 is four tokens: past the limit
