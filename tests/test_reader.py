"""Tests of the extractive span reader: the shipped model's behaviour, int8 packing, labels and training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tr_qa import reader as rd
from tr_qa.reader import Reader, ReaderSpan

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
    card = (folder / rd.CARD_FILE).read_text(encoding="utf-8")
    assert "Apache-2.0" in card and "CC BY-SA 4.0" in card
    assert rd._sha256(folder / rd.WEIGHTS_FILE) in card
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
    json.dumps([s.__dict__ for s in spans])  # finite numbers only


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


def test_spans_are_frozen(reader: Reader) -> None:
    (span,) = reader.predict("Who wrote Hamlet?", [SHAKESPEARE])
    with pytest.raises(AttributeError):
        span.start = 3  # type: ignore[misc]


def test_int8_round_trip() -> None:
    torch.manual_seed(0)
    w = torch.randn(7, 33) * torch.linspace(0.01, 3.0, 7)[:, None]
    w[3] = 0.0  # an all-zero row must not divide by zero
    q, scale = rd.quantize_rows(w)
    assert q.dtype == torch.int8 and scale.dtype == torch.float32 and scale.shape == (7,)
    assert int(q.abs().max()) <= 127
    back = rd.dequantize_rows(q, scale)
    assert torch.all((back - w).abs() <= scale[:, None] / 2 + 1e-7)
    assert torch.equal(back[3], torch.zeros(33))
    packed = rd._quantized_state({"a.weight": w, "a.bias": torch.ones(7), "ids": torch.arange(3)})
    state = rd._dequantized_state(packed)
    assert set(state) == {"a.weight", "a.bias", "ids"}
    assert torch.equal(state["a.bias"], torch.ones(7)) and torch.equal(state["ids"], torch.arange(3))


def test_label_alignment() -> None:
    tok = rd._load_tokenizer(rd.base_model_path())
    context = "The Eiffel Tower stands in Paris, the capital of France."
    enc = tok("Where is it?", context, return_offsets_mapping=True)
    offsets, seq_ids = enc["offset_mapping"], enc.sequence_ids()
    start = context.index("Paris")
    s, e = rd.char_to_token_span(offsets, seq_ids, start, start + len("Paris"))
    assert tok.convert_ids_to_tokens(enc["input_ids"][s : e + 1]) == ["paris"]
    start = context.index("capital of France")
    s, e = rd.char_to_token_span(offsets, seq_ids, start, start + len("capital of France"))
    assert tok.decode(enc["input_ids"][s : e + 1]) == "capital of france"
    # An answer outside this window (here: past the end of the context) is labelled [CLS].
    assert rd.char_to_token_span(offsets, seq_ids, len(context) + 5, len(context) + 9) == (0, 0)
    # A window cut before the answer: labelled [CLS] as well.
    short = tok("Where is it?", context, truncation="only_second", max_length=10, return_offsets_mapping=True)
    assert rd.char_to_token_span(short["offset_mapping"], short.sequence_ids(), start, start + 7) == (0, 0)


def test_trim_edges() -> None:
    ctx = 'He said "hello, world". Then (in 1999) left the U.S. today.'
    s = ctx.index('"hello')
    assert ctx[slice(*rd._trim(ctx, s, s + len('"hello,')))] == "hello"
    s = ctx.index("(in")
    assert ctx[slice(*rd._trim(ctx, s, s + len("(in 1999) ")))] == "(in 1999)"
    s = ctx.index("U.S.")
    assert ctx[slice(*rd._trim(ctx, s, s + 4))] == "U.S."
    s = ctx.index("today")
    assert ctx[slice(*rd._trim(ctx, s, s + 6))] == "today"
    assert rd._trim(ctx, 0, 0) == (0, 0)


def test_squad_metrics() -> None:
    assert rd.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"  # SQuAD drops hyphens
    em, f1 = rd.squad_scores("the Eiffel Tower", ["Eiffel Tower", "tower"])
    assert (em, f1) == (1.0, 1.0)
    em, f1 = rd.squad_scores("Paris France", ["Paris"])
    assert em == 0.0 and f1 == pytest.approx(2 / 3)


def _tiny_squad(path: Path) -> Path:
    ctx = "Ada Lovelace was born in London in 1815. She worked with Charles Babbage on the Analytical Engine."
    qas = [
        ("Where was Ada Lovelace born?", "London"),
        ("When was Ada Lovelace born?", "1815"),
        ("Who did she work with?", "Charles Babbage"),
        ("On what did she work?", "the Analytical Engine"),
    ]
    articles = []
    for a in range(3):
        paras = [
            {
                "context": ctx,
                "qas": [
                    {"id": f"{a}_{i}", "question": q, "answers": [{"text": t, "answer_start": ctx.index(t)}]}
                    for i, (q, t) in enumerate(qas)
                ],
            }
        ]
        articles.append({"title": f"Article {a}", "paragraphs": paras})
    path.write_text(json.dumps({"version": "1.1", "data": articles}), encoding="utf-8")
    return path


def test_train_resume_and_export(tmp_path: Path) -> None:
    data = _tiny_squad(tmp_path / "tiny.json")
    kw = {
        "max_questions": 8,
        "batch_size": 4,
        "max_length": 48,
        "stride": 16,
        "holdout_articles": 1,
        "progress": False,
        "bf16": False,
    }
    full = rd.train(data, tmp_path / "full", **kw)
    assert full["steps_done"] == full["total_steps"] == 2
    assert set(full["heldout_fp32"]) == {"exact_match", "f1", "n"} and full["heldout_fp32"]["n"] == 4
    part = rd.train(data, tmp_path / "part", stop_after_steps=1, **kw)
    assert part["steps_done"] == 1 and part["stopped_early"]
    resumed = rd.train(data, tmp_path / "part", **kw)
    assert resumed["steps_done"] == 2 and not resumed["stopped_early"]
    a = torch.load(tmp_path / "full" / rd.CHECKPOINT_FILE, weights_only=False)["model"]
    b = torch.load(tmp_path / "part" / rd.CHECKPOINT_FILE, weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # resuming is exact
    with pytest.raises(ValueError):
        rd.train(data, tmp_path / "part", **{**kw, "lr": 1e-3})

    # Running behind: stop, then resume with an earlier end of the learning-rate schedule.
    kw2 = {**kw, "batch_size": 2}
    rd.train(data, tmp_path / "late", stop_after_steps=1, **kw2)
    late = rd.train(data, tmp_path / "late", schedule_end_step=3, **kw2)
    assert late["total_steps"] == 4 and late["steps_done"] == 3 and late["reschedules"] == [[1, 3]]
    ck = torch.load(tmp_path / "late" / rd.CHECKPOINT_FILE, weights_only=False)
    assert ck["scheduler"]["_last_lr"] == [0.0, 0.0]

    out = rd.export(tmp_path / "full", tmp_path / "model", command="pytest", heldout_eval=False)
    assert (out / rd.CARD_FILE).exists() and (out / "vocab.txt").exists()
    context = "Ada was born in London."
    (span,) = Reader(out).predict("Where was Ada Lovelace born?", [context])
    assert span.text == context[span.start : span.end]


def test_compute_modes_agree() -> None:
    spans = {mode: Reader(compute=mode).predict("Who wrote Hamlet?", [SHAKESPEARE])[0] for mode in ("fp32", "bf16")}
    assert spans["fp32"].text == spans["bf16"].text
    assert spans["fp32"].score == pytest.approx(spans["bf16"].score, abs=0.5)
    with pytest.raises(ValueError):
        Reader(compute="fp8")
