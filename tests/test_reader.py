"""The shipped span reader at query time: offsets, windows, batching, the no-answer score, compute modes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tr_qa import reader as rd
from tr_qa.files import sha256_file
from tr_qa.reader import Reader
from tr_qa.training.card import CARD_FILE
from tr_qa.types import ReaderSpan

pytestmark = pytest.mark.integration

SHAKESPEARE = (
    "Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601. "
    "It is Shakespeare's longest play, with 29,551 words."
)
UNICODE_CTX = (
    "The new library in Zürich opened on 3\u00a0March 2015. It cost \u00a342\u00a0million, "
    "and the architect, \u201cMaría Núñez\u201d, called it \u2018a house for readers\u2019."
)


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader()


def _check_offsets(context: str, span: ReaderSpan) -> None:
    assert 0 <= span.start <= span.end <= len(context)
    assert context[span.start : span.end] == span.text
    assert span.text == span.text.strip()


def test_shipped_model_is_small_and_documented() -> None:
    folder = rd.SHIPPED_MODEL_DIR
    total = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    assert total <= 30_000_000
    card = (folder / CARD_FILE).read_text(encoding="utf-8")
    assert "Apache-2.0" in card and "CC BY-SA 4.0" in card
    assert sha256_file(folder / rd.WEIGHTS_FILE) in card
    # Plain tensors only: the safe loader accepts the file.
    packed = torch.load(folder / rd.WEIGHTS_FILE, weights_only=True)
    assert packed["encoder.embeddings.word_embeddings.weight.int8"].dtype == torch.int8


def test_answers_simple_question(reader: Reader) -> None:
    (span,) = reader.predict("Who wrote Hamlet?", [SHAKESPEARE])
    _check_offsets(SHAKESPEARE, span)
    assert "Shakespeare" in span.text
    assert 0.0 < span.prob <= 1.0
    assert math.isfinite(span.score) and math.isfinite(span.null_score)


def test_numbers_and_dates(reader: Reader) -> None:
    (span,) = reader.predict("How many words does Hamlet have?", [SHAKESPEARE])
    _check_offsets(SHAKESPEARE, span)
    assert "29,551" in span.text


def test_non_ascii_context(reader: Reader) -> None:
    questions = ["How much did the library cost?", "Who was the architect?", "When did the library open?"]
    expected = ["42", "Mar", "2015"]
    for q, want in zip(questions, expected, strict=True):
        (span,) = reader.predict(q, [UNICODE_CTX])
        _check_offsets(UNICODE_CTX, span)
        assert want in span.text, (q, span)
    # Curly quotes never dangle alone at the edge of a span.
    (span,) = reader.predict("Who was the architect?", [UNICODE_CTX])
    assert span.text[0] not in "\u201c\u2018" and span.text[-1] not in ",\u201d\u2019"


def test_long_context_uses_windows(reader: Reader) -> None:
    filler = " ".join(f"Sentence number {i} is about the weather in a small town." for i in range(400))
    context = filler + " The treaty was signed in the city of Utrecht in 1713. " + filler
    assert len(context) > 40_000
    (span,) = reader.predict("In which city was the treaty signed?", [context])
    _check_offsets(context, span)
    assert span.text == "Utrecht"
    assert span.start > 20_000


def test_empty_inputs(reader: Reader) -> None:
    assert reader.predict("Who wrote Hamlet?", []) == []
    spans = reader.predict("Who wrote Hamlet?", ["", "   \n ", SHAKESPEARE])
    assert [(s.start, s.end, s.text, s.prob) for s in spans[:2]] == [(0, 0, "", 0.0), (0, 0, "", 0.0)]
    assert "Shakespeare" in spans[2].text
    (span,) = reader.predict("", [SHAKESPEARE])
    _check_offsets(SHAKESPEARE, span)
    (span,) = reader.predict("?" * 5 + " what " * 300, [SHAKESPEARE])  # very long question is cut, not an error
    _check_offsets(SHAKESPEARE, span)
    # Finite numbers only: json.dumps would accept NaN and Infinity, so refuse them explicitly.
    json.dumps([s.__dict__ for s in spans], allow_nan=False)


def test_batch_equals_single(reader: Reader) -> None:
    contexts = [SHAKESPEARE, UNICODE_CTX, "Paris is the capital and most populous city of France."]
    question = "Who wrote Hamlet?"
    batch = reader.predict(question, contexts)
    singles = [reader.predict(question, [c])[0] for c in contexts]
    for b, s, c in zip(batch, singles, contexts, strict=True):
        _check_offsets(c, b)
        assert (b.start, b.end, b.text) == (s.start, s.end, s.text)
        assert b.score == pytest.approx(s.score, abs=0.05)
        assert b.prob == pytest.approx(s.prob, abs=0.01)


@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "fp32"])
def test_the_compact_weights_give_exactly_the_logits_of_the_full_ones(bf16: bool) -> None:
    # 8-bit word embeddings and (under bf16) matrices held as bf16: less memory, not one bit of difference.
    packed = torch.load(rd.SHIPPED_MODEL_DIR / rd.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    state = rd.dequantized_state(packed)
    config = rd.SHIPPED_MODEL_DIR / rd.CONFIG_FILE
    full = rd.FunctionalSpanModel(config, state, bf16=False).eval()
    full.bf16 = bf16  # fp32 tables and matrices, cast by autocast on the way, as before
    compact = rd.FunctionalSpanModel(config, state, bf16=bf16, packed=packed).eval()
    assert compact.weights["embeddings.word_embeddings.int8"].dtype == torch.int8
    assert "embeddings.word_embeddings.weight" not in compact.weights
    qkv = compact.weights["encoder.layer.0.attention.self.qkv.weight"].dtype
    assert qkv == (torch.bfloat16 if bf16 else torch.float32)
    enc = rd.load_tokenizer(rd.SHIPPED_MODEL_DIR)(
        ["Who wrote Hamlet?", "Where is the library?"], [SHAKESPEARE, UNICODE_CTX], padding=True, return_tensors="pt"
    )
    with torch.inference_mode():
        a = full(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        b = compact(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_compute_modes_agree() -> None:
    spans = {mode: Reader(compute=mode).predict("Who wrote Hamlet?", [SHAKESPEARE])[0] for mode in ("fp32", "bf16")}
    assert spans["fp32"].text == spans["bf16"].text
    assert spans["fp32"].score == pytest.approx(spans["bf16"].score, abs=0.5)
    with pytest.raises(ValueError):
        Reader(compute="fp8")


def test_no_answer_score_prefers_the_paragraph_that_answers(reader: Reader) -> None:
    """The reader's margin (span score minus [CLS] score) is higher where the context holds the answer."""
    question = "In which city was the treaty signed?"
    answers = "The treaty was signed in the city of Utrecht in 1713 after long talks."
    unrelated = "The harvest in the valley was poor that year, and the river flooded twice in the spring."
    yes, no = reader.predict(question, [answers, unrelated])
    assert yes.text == "Utrecht"
    assert yes.margin > no.margin


def test_the_plain_torch_reader_gives_transformers_logits() -> None:
    """Inference runs BERT in plain torch (no transformers import); it must match BertModel on padded pairs."""
    packed = torch.load(rd.SHIPPED_MODEL_DIR / rd.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    state = rd.dequantized_state(packed)
    reference = rd.build_model(rd.SHIPPED_MODEL_DIR / rd.CONFIG_FILE, state).eval()
    plain = rd.FunctionalSpanModel(rd.SHIPPED_MODEL_DIR / rd.CONFIG_FILE, state).eval()
    tok = rd.load_tokenizer(rd.SHIPPED_MODEL_DIR)
    batch = tok(
        ["Who runs probation?", "How much was the bail out?"],
        ["The National Probation Service runs probation for high-risk offenders.", "It was £42m in 2016."],
        padding=True,
        return_tensors="pt",
    )
    args = (batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert bool((batch["attention_mask"] == 0).any())  # the batch holds padding, which must change nothing
    with torch.inference_mode():
        for ours, theirs in zip(plain(*args), reference(*args), strict=True):
            real = batch["attention_mask"].bool()
            assert torch.allclose(ours[real], theirs[real], atol=1e-4)
