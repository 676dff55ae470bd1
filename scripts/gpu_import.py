"""Turn a run packed by scripts/gpu_pick.py (int8 pieces + summary.json) into the shipped reader folder (issue 8).

The pieces are joined and checked, written as a checkpoint folder (dequantised weights, the run's metadata with the
training file path of this machine) and exported with ``tr_qa.training.export`` as any CPU run is: int8 weights
(re-quantising dequantised rows gives the same integers), config, tokenizer, held-out figures measured here, card.

Usage: .venv/bin/python scripts/gpu_import.py DIR RUN --train ../shared/bench/squad-v1.1-train/….xz [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from pathlib import Path

import torch

from tr_qa.files import atomic_write_text, sha256_file
from tr_qa.reader import CONFIG_FILE, SHIPPED_MODEL_DIR, WEIGHTS_FILE, build_model, dequantized_state, load_tokenizer
from tr_qa.training.export import export
from tr_qa.training.train import CHECKPOINT_FILE, META_FILE


def main() -> None:
    """Join, check, write the checkpoint folder, export."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir", type=Path, help="folder with reader-RUN.pt.partN and summary.json")
    ap.add_argument("run", help="run name, e.g. ck-B")
    ap.add_argument("--train", type=Path, required=True, help="the SQuAD v1.1 training file on this machine")
    ap.add_argument("--out", type=Path, default=SHIPPED_MODEL_DIR)
    ap.add_argument("--heldout-limit", type=int)
    ap.add_argument("--init-sha", help="sha256 of the reader the run started from [default: the one shipped now]")
    ap.add_argument("--extra", type=Path, help="JSON object of figures measured after export, kept in metrics.json")
    args = ap.parse_args()
    parts = sorted(args.dir.glob(f"reader-{args.run}.pt.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    if not parts:
        raise SystemExit(f"no pieces reader-{args.run}.pt.part* in {args.dir}")
    packed = torch.load(io.BytesIO(b"".join(p.read_bytes() for p in parts)), map_location="cpu", weights_only=True)
    meta = json.loads((args.dir / "summary.json").read_text(encoding="utf-8"))["runs"][args.run]
    meta.pop("log", None)
    meta["train_file"] = str(args.train.resolve())
    state = dequantized_state(packed)
    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(tmp)
        init = Path(meta["params"]["init_from"]).name
        shipped = SHIPPED_MODEL_DIR if init == SHIPPED_MODEL_DIR.name else Path(meta["params"]["init_from"])
        build_model(shipped / CONFIG_FILE, state)  # the weights fit the architecture
        (ck / CONFIG_FILE).write_text((shipped / CONFIG_FILE).read_text(encoding="utf-8"), encoding="utf-8")
        load_tokenizer(shipped).save_pretrained(str(ck / "tokenizer"))
        ckpt = {"model": state, "step": meta["steps_done"], "params": meta["params"], "elapsed": meta["train_seconds"]}
        torch.save(ckpt, ck / CHECKPOINT_FILE)
        # The shipped reader this run started from is about to be replaced: record it by hash; the path as run.
        meta["init_from_sha256"] = args.init_sha or sha256_file(shipped / WEIGHTS_FILE)
        meta["params"]["init_from"] = "src/tr_qa/models/reader"
        atomic_write_text(ck / META_FILE, json.dumps(meta, indent=2))
        extra = json.loads(args.extra.read_text(encoding="utf-8")) if args.extra else None
        out = export(
            ck,
            args.out,
            command=f"scripts/train_gpu.sh, run {args.run}; scripts/gpu_import.py",
            heldout_limit=args.heldout_limit,
            extra_metrics=extra,
        )
    print(f"exported {args.run} to {out}")


if __name__ == "__main__":
    main()
