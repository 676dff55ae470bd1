"""Export a training checkpoint as the shipped reader: per-row int8 weights, config, tokenizer, metrics, card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tr_qa import squad
from tr_qa.files import atomic_write_text, atomic_write_with, sha256_file
from tr_qa.reader import CONFIG_FILE, SHIPPED_MODEL_DIR, WEIGHTS_FILE, Reader, load_tokenizer
from tr_qa.training.card import CARD_FILE, model_card
from tr_qa.training.examples import heldout_with_negatives
from tr_qa.training.train import CHECKPOINT_FILE, META_FILE

METRICS_FILE = "metrics.json"


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row symmetric int8 quantisation: (int8 values, fp32 scale per row)."""
    w = weight.detach().float()
    amax = w.abs().amax(dim=1).clamp(min=1e-12)
    scale = amax / 127.0
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def quantized_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every 2-D float weight as ``<name>.int8`` + ``<name>.scale``; other tensors as they are (fp32)."""
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        if t.dim() == 2 and t.is_floating_point():
            q, s = quantize_rows(t)
            out[name + ".int8"] = q.contiguous()
            out[name + ".scale"] = s.contiguous()
        elif t.is_floating_point():
            out[name] = t.detach().float().contiguous()
        else:
            out[name] = t.detach().contiguous()
    return out


def heldout_examples(meta: dict[str, Any]) -> list[squad.SquadExample]:
    """The run's held-out articles as answerable questions plus their negatives, exactly as training made them."""
    articles = squad.read_articles(Path(meta["train_file"]))
    _, held = squad.split_articles(articles, int(meta["params"]["holdout_articles"]))
    return heldout_with_negatives(held, int(meta["params"]["seed"]))


def export(
    checkpoint_dir: Path,
    out_dir: Path | None = None,
    *,
    command: str | None = None,
    heldout_eval: bool = True,
    heldout_limit: int | None = None,
    extra_metrics: dict[str, Any] | None = None,
) -> Path:
    """Write the int8 reader (weights, config, tokenizer, metrics, MODEL_CARD.md) from a checkpoint into out_dir."""
    checkpoint_dir = Path(checkpoint_dir)
    out_dir = Path(out_dir) if out_dir is not None else SHIPPED_MODEL_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    ck = torch.load(checkpoint_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
    meta_path = checkpoint_dir / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {"params": ck["params"]}
    meta["steps_exported"] = int(ck["step"])
    meta.setdefault("train_seconds", round(float(ck.get("elapsed", 0.0)), 1))
    init = meta.get("params", {}).get("init_from")
    # A hash recorded by whoever made the checkpoint wins: the path may by now hold other weights.
    if init and "init_from_sha256" not in meta and (Path(init) / WEIGHTS_FILE).is_file():
        meta["init_from_sha256"] = sha256_file(Path(init) / WEIGHTS_FILE)
    packed = quantized_state(ck["model"])
    atomic_write_with(out_dir / WEIGHTS_FILE, lambda fh: torch.save(packed, fh))
    cfg = json.loads((checkpoint_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    atomic_write_text(out_dir / CONFIG_FILE, json.dumps(cfg, indent=2) + "\n")
    tok = load_tokenizer(checkpoint_dir / "tokenizer")
    tok.save_pretrained(str(out_dir))
    if not (out_dir / "vocab.txt").exists():
        # transformers 5 saves only tokenizer.json; vocab.txt is kept so the vocabulary is readable on its own.
        vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
        atomic_write_text(out_dir / "vocab.txt", "".join(f"{word}\n" for word, _ in vocab))
    weights_sha = sha256_file(out_dir / WEIGHTS_FILE)

    metrics: dict[str, Any] = {"weights_sha256": weights_sha}
    metrics_path = out_dir / METRICS_FILE
    if metrics_path.exists():
        old = json.loads(metrics_path.read_text(encoding="utf-8"))
        if old.get("weights_sha256") == weights_sha:
            metrics = old
    if heldout_eval and "heldout_int8" not in metrics and meta.get("train_file"):
        items = heldout_examples(meta)
        items = items[:heldout_limit] if heldout_limit is not None else items
        reader = Reader(out_dir)
        outcomes = squad.read_examples(reader.predict_pairs, items)
        best = squad.best_margin_threshold(outcomes)
        metrics["heldout_int8"] = {
            "compute": reader.compute,
            "never_abstaining": squad.v2_metrics(outcomes, None),
            "at_margin_0": squad.v2_metrics(outcomes, 0.0),
            "at_best_threshold": squad.v2_metrics(outcomes, best),
        }
    if extra_metrics:
        metrics.update(extra_metrics)
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
    atomic_write_text(out_dir / CARD_FILE, model_card(out_dir, meta, metrics, command))
    return out_dir
