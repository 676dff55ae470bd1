"""Reader training: label alignment, negatives, int8 packing, and a tiny seeded run that resumes exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tr_qa import squad
from tr_qa.reader import WEIGHTS_FILE, Reader, dequantize_rows, dequantized_state, load_tokenizer
from tr_qa.training.card import CARD_FILE
from tr_qa.training.config import TrainConfig
from tr_qa.training.data import char_to_token_span
from tr_qa.training.examples import read_prepared, write_prepared
from tr_qa.training.export import export, quantize_rows, quantized_state
from tr_qa.training.negatives import (
    ArticleBM25,
    cut_paragraphs,
    entity_swaps,
    hard_paragraphs,
    noun_swaps,
    sentence_spans,
    with_negatives,
)
from tr_qa.training.train import CHECKPOINT_FILE, base_model_path, train

LOVELACE = "Ada Lovelace was born in London in 1815. She worked with Charles Babbage on the Analytical Engine."
WEATHER = "The winter of that year was cold in the north, and the harvest in the valley was poor."
QAS = [
    ("Where was Ada Lovelace born?", "London"),
    ("When was Ada Lovelace born?", "1815"),
    ("Who did Ada Lovelace work with?", "Charles Babbage"),
    ("On what did she work?", "the Analytical Engine"),
]


def tiny_squad(path: Path, articles: int = 3) -> Path:
    data = []
    for a in range(articles):
        qas = [
            {"id": f"{a}_{i}", "question": q, "answers": [{"text": t, "answer_start": LOVELACE.index(t)}]}
            for i, (q, t) in enumerate(QAS)
        ]
        paras = [{"context": LOVELACE, "qas": qas}, {"context": WEATHER, "qas": []}]
        data.append({"title": f"Article {a}", "paragraphs": paras})
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return path


def test_int8_round_trip_is_within_half_a_step() -> None:
    torch.manual_seed(0)
    w = torch.randn(7, 33) * torch.linspace(0.01, 3.0, 7)[:, None]
    w[3] = 0.0  # an all-zero row must not divide by zero
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and scale.dtype == torch.float32 and scale.shape == (7,)
    assert int(q.abs().max()) <= 127
    back = dequantize_rows(q, scale)
    assert torch.all((back - w).abs() <= scale[:, None] / 2 + 1e-7)
    assert torch.equal(back[3], torch.zeros(33))
    state = dequantized_state(quantized_state({"a.weight": w, "a.bias": torch.ones(7), "ids": torch.arange(3)}))
    assert set(state) == {"a.weight", "a.bias", "ids"}
    assert torch.equal(state["a.bias"], torch.ones(7)) and torch.equal(state["ids"], torch.arange(3))


@pytest.mark.integration
def test_answer_labels_align_with_word_pieces() -> None:
    tok = load_tokenizer(base_model_path())
    context = "The Eiffel Tower stands in Paris, the capital of France."
    enc = tok("Where is it?", context, return_offsets_mapping=True)
    offsets, seq_ids = enc["offset_mapping"], enc.sequence_ids()
    start = context.index("Paris")
    s, e = char_to_token_span(offsets, seq_ids, start, start + len("Paris"))
    assert tok.convert_ids_to_tokens(enc["input_ids"][s : e + 1]) == ["paris"]
    start = context.index("capital of France")
    s, e = char_to_token_span(offsets, seq_ids, start, start + len("capital of France"))
    assert tok.decode(enc["input_ids"][s : e + 1]) == "capital of france"
    # An answer outside this window (here: past the end of the context) is labelled [CLS].
    assert char_to_token_span(offsets, seq_ids, len(context) + 5, len(context) + 9) == (0, 0)
    short = tok("Where is it?", context, truncation="only_second", max_length=10, return_offsets_mapping=True)
    assert char_to_token_span(short["offset_mapping"], short.sequence_ids(), start, start + 7) == (0, 0)


def test_bm25_ranks_the_paragraph_sharing_rare_words_first() -> None:
    bm25 = ArticleBM25(["the cat sat on the mat", "a treaty was signed in Utrecht", "dogs and cats"])
    scores = bm25.scores("Where was the treaty signed?")
    assert scores.index(max(scores)) == 1 and scores[0] == 0.0


def test_hard_negative_is_another_paragraph_without_the_answer(tmp_path: Path) -> None:
    articles = squad.read_articles(tiny_squad(tmp_path / "t.json", 1))
    exs = squad.examples(articles)
    hard = hard_paragraphs(exs, articles)
    assert set(hard) == {ex.qid for ex in exs} and set(hard.values()) == {1}
    mixed = with_negatives(exs, articles, hard_rate=1.0, perturbed_rate=0.0, seed=1)
    negs = [m for m in mixed if not m.answerable]
    assert len(negs) == len(exs) and all(n.context == WEATHER and n.qid.endswith("#hard") for n in negs)
    assert with_negatives(exs, articles, hard_rate=1.0, perturbed_rate=0.0, seed=1) == mixed  # seeded


class _Ent:
    def __init__(self, text: str, label: str, start: int) -> None:
        self.text, self.label_, self.start_char, self.end_char = text, label, start, start + len(text)


class _FakeNLP:
    """Stands in for spaCy: tags every capitalised name from a fixed list as PERSON."""

    NAMES = ("Ada Lovelace", "Charles Babbage", "Alan Turing")

    def select_pipes(self, enable: list[str]):
        import contextlib

        return contextlib.nullcontext()

    def pipe(self, texts: list[str], batch_size: int = 0):
        for t in texts:
            doc = type("Doc", (), {})()
            doc.ents = [_Ent(n, "PERSON", t.index(n)) for n in self.NAMES if n in t]
            yield doc


def test_entity_swap_asks_about_someone_the_paragraph_never_mentions() -> None:
    ex = [
        squad.SquadExample("a", "Who did Ada Lovelace work with?", LOVELACE, ("Charles Babbage",), 0, 0, 0),
        squad.SquadExample("b", "What did Alan Turing break?", "Turing broke codes.", ("codes",), 0, 0, 1),
    ]
    swaps = entity_swaps(ex, _FakeNLP(), seed=3)
    # "Ada Lovelace" is in her paragraph, "Alan Turing" is not: the swap asks about him instead.
    assert swaps["a"] == "Who did Alan Turing work with?"
    assert "b" not in swaps  # "Alan Turing" does not occur verbatim in its own paragraph: not anchored


def test_sentence_spans_cover_each_sentence_once() -> None:
    text = 'It rained. "Then it stopped!" she said. (Later) it snowed again in 1999.'
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "It rained.",
        '"Then it stopped!" she said.',
        "(Later) it snowed again in 1999.",
    ]


def test_cut_paragraph_drops_the_answer_sentence_and_keeps_the_rest() -> None:
    context = LOVELACE + " Her notes on the engine were published in a journal in the following decades."
    ex = squad.SquadExample("a", "Where was Ada Lovelace born?", context, ("London",), context.index("London"))
    cut = cut_paragraphs([ex], min_chars=40)["a"]
    assert "London" not in cut and cut.startswith("She worked with Charles Babbage")
    # An answer that also occurs outside its sentence would still be in the passage: no negative is made.
    twice = squad.SquadExample("b", "Who?", context + " Babbage died in London.", ("London",), context.index("London"))
    assert "b" not in cut_paragraphs([twice], min_chars=40)
    # Too little left to read is no example either.
    assert cut_paragraphs([ex], min_chars=1000) == {}


class _Tok:
    def __init__(self, text: str, idx: int, pos: str, tag: str) -> None:
        self.text, self.idx, self.pos_, self.tag_ = text, idx, pos, tag
        self.lower_, self.ent_type_, self.is_alpha = text.lower(), "", text.isalpha()


class _FakeTagger:
    """Stands in for spaCy's tagger: the listed words are singular nouns, everything else is not a noun."""

    NOUNS = ("engine", "bridge", "year", "notes")

    def select_pipes(self, enable: list[str]):
        import contextlib

        return contextlib.nullcontext()

    def pipe(self, texts: list[str], batch_size: int = 0):
        import re

        for t in texts:
            yield [
                _Tok(m.group(), m.start(), "NOUN" if m.group().lower() in self.NOUNS else "X", "NN")
                for m in re.finditer(r"\w+", t)
            ]


def test_noun_swap_asks_about_a_thing_the_paragraph_never_mentions() -> None:
    ex = [
        squad.SquadExample("a", "In what year was the engine designed?", LOVELACE, ("1815",), 0, 0, 0),
        squad.SquadExample("b", "Who built the bridge?", "Engineers built the bridge.", ("Engineers",), 0, 0, 1),
    ]
    swaps = noun_swaps(ex, _FakeTagger(), seed=1)
    # "year" frames the question and is never swapped; "engine" is in its paragraph and "bridge" is not.
    assert swaps["a"] == "In what year was the bridge designed?"
    assert swaps["b"] == "Who built the engine?"
    # The new noun comes from another question about the article: alone, a question has nothing to swap in.
    assert noun_swaps(ex[1:], _FakeTagger(), seed=1) == {}


def test_config_rejects_out_of_range_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hard_negative_rate"):
        TrainConfig(tmp_path, tmp_path, hard_negative_rate=1.5)
    with pytest.raises(ValueError, match="stride"):
        TrainConfig(tmp_path, tmp_path, max_length=48, stride=48)


@pytest.mark.integration
def test_train_resume_and_export(tmp_path: Path) -> None:
    data = tiny_squad(tmp_path / "tiny.json")

    def cfg(out: str, **kw: object) -> TrainConfig:
        base = {
            "max_questions": 8,
            "batch_size": 4,
            "max_length": 48,
            "stride": 16,
            "holdout_articles": 1,
            "progress": False,
            "bf16": False,
            "hard_negative_rate": 1.0,
        }
        return TrainConfig(data, tmp_path / out, **{**base, **kw})  # type: ignore[arg-type]

    full = train(cfg("full"))
    # 8 questions + 8 hard negatives (the weather paragraph), one window each.
    assert full["negatives_hard"] == 8 and full["windows"] == 16
    assert full["steps_done"] == full["total_steps"] == 4
    held = full["heldout_fp32"]["at_margin_0"]
    assert held["n_has_ans"] == 4 and held["n_no_ans"] == full["heldout_negatives"] >= 1
    part = train(cfg("part", stop_after_steps=2))
    assert part["steps_done"] == 2 and part["stopped_early"]
    resumed = train(cfg("part"))
    assert resumed["steps_done"] == 4 and not resumed["stopped_early"]
    a = torch.load(tmp_path / "full" / CHECKPOINT_FILE, weights_only=False)["model"]
    b = torch.load(tmp_path / "part" / CHECKPOINT_FILE, weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # resuming is exact
    with pytest.raises(ValueError, match="other parameters"):
        train(cfg("part", lr=1e-3))

    out = export(tmp_path / "full", tmp_path / "model", command="pytest", heldout_limit=4)
    card = (out / CARD_FILE).read_text(encoding="utf-8")
    assert "8 hard paragraphs" in card and (out / "vocab.txt").exists()
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["heldout_int8"]["at_margin_0"]["n"] == 4
    packed = torch.load(out / WEIGHTS_FILE, weights_only=True)
    assert packed["qa_outputs.weight.int8"].dtype == torch.int8
    (span,) = Reader(out).predict("Where was Ada Lovelace born?", ["Ada was born in London."])
    assert span.text == "Ada was born in London."[span.start : span.end]

    # Figures measured after export join metrics.json and the card; the held-out ones are kept, not re-measured.
    def export_with(extra: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "extra.json").write_text(extra, encoding="utf-8")
        ck = str(tmp_path / "full")
        return _cli("export-reader", "--checkpoints", ck, "--out", str(out), "--extra", str(tmp_path / "extra.json"))

    again = export_with('{"squad_v1.1_dev_half_gold_paragraph": {"f1": 0.5}}')
    assert again.returncode == 0, again.stderr
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["squad_v1.1_dev_half_gold_paragraph"] == {"f1": 0.5}
    assert metrics["heldout_int8"]["at_margin_0"]["n"] == 4
    assert "squad_v1.1_dev_half_gold_paragraph" in (out / CARD_FILE).read_text(encoding="utf-8")
    bad = export_with("[1, 2]")
    assert bad.returncode == 2 and "expected a JSON object, got list" in bad.stderr and "Traceback" not in bad.stderr

    # Examples prepared once (spaCy) and read back by a run elsewhere are the same examples; other settings refused.
    prepared = write_prepared(cfg("prep", cut_negative_rate=1.0), tmp_path / "prep.json.xz")
    again = read_prepared(cfg("prep", cut_negative_rate=1.0, prepared=tmp_path / "prep.json.xz"))
    assert again == prepared and len(again.train) >= 8
    with pytest.raises(ValueError, match="other settings"):
        read_prepared(cfg("prep", prepared=tmp_path / "prep.json.xz"))
    (tmp_path / "junk.json.xz").write_bytes(b"\x00not xz")
    with pytest.raises(ValueError, match="not a prepared examples file"):
        read_prepared(cfg("prep", cut_negative_rate=1.0, prepared=tmp_path / "junk.json.xz"))

    # Starting from an exported reader and leaving out the questions it learned.
    follow = train(cfg("follow", init_from=str(out), skip_questions=4, max_questions=4))
    assert follow["questions"] == 4 and follow["questions_skipped"] == 4


def _train_reader(*args: str) -> subprocess.CompletedProcess[str]:
    return _cli("train-reader", *args)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tr_qa", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TR_QA_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""},
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_train_reader_without_a_gpu_says_so_in_one_line(tmp_path: Path) -> None:
    data = tiny_squad(tmp_path / "tiny.json")
    proc = _train_reader("--train", str(data), "--checkpoints", str(tmp_path / "ck"), "--device", "cuda")
    assert proc.returncode == 2
    assert "sees no CUDA device" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_train_reader_refuses_examples_prepared_with_other_settings(tmp_path: Path) -> None:
    data = tiny_squad(tmp_path / "tiny.json")
    common = ["--train", str(data), "--holdout-articles", "1", "--hard-negatives", "1", "--perturbed-negatives", "0"]
    prep = tmp_path / "prep.json.xz"
    made = _train_reader(*common, "--cut-negatives", "0", "--prepare-only", str(prep))
    assert made.returncode == 0, made.stderr
    assert prep.is_file() and "training and" in made.stdout
    # The file was made without cut paragraphs; the default mix has them, so it must not be used for it.
    proc = _train_reader(*common, "--prepared", str(prep), "--checkpoints", str(tmp_path / "ck"))
    assert proc.returncode == 2 and "prepared with other settings" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "ck" / CHECKPOINT_FILE).exists()
