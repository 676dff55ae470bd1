"""Rank reader training runs on their held-out training articles and pack the best as int8 pieces (issue 8).

The rule, fixed before the runs: the highest SQuAD 2.0-style F1 on the held-out articles (their questions plus
negatives of every kind, at the best threshold for each run), among runs whose never-abstaining HasAns F1 is within
0.01 of the best run's. The shipped reader is measured on the same items as the baseline. The best two runs' weights
are written as ``reader-<run>.pt.partN`` (at most 15 MiB each; concatenated they are a ``reader_int8.pt``), beside
``summary.json`` with every run's figures and training log.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import torch

from tr_qa.reader import CONFIG_FILE, WEIGHTS_FILE, build_model, dequantized_state, load_tokenizer
from tr_qa.training.config import TrainConfig
from tr_qa.training.examples import read_prepared
from tr_qa.training.export import quantized_state
from tr_qa.training.train import CHECKPOINT_FILE, LOG_FILE, META_FILE, heldout_metrics

PIECE = 15 * 1024 * 1024


def score(held: dict) -> tuple[float, float]:
    """(overall F1 at the best threshold, never-abstaining HasAns F1) of one run's held-out figures."""
    return held["at_best_threshold"]["f1"], held["never_abstaining"]["HasAns_f1"]


def main() -> None:
    """Parse, measure the baseline, rank the runs, write the pieces and the summary."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+", type=Path, help="checkpoint folders of the runs")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--baseline", type=Path, help="a shipped reader folder to measure on the same held-out items")
    ap.add_argument("--prepared", type=Path, help="a prepared examples file holding the held-out items")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--keep", type=int, default=2, help="how many of the best runs to pack")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"runs": {}}
    paths = {run.name: run for run in args.runs}
    for run in args.runs:
        meta_path = run / META_FILE
        if not meta_path.is_file():
            summary["runs"][run.name] = {"error": "no train_meta.json"}
            continue
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        log = run / LOG_FILE
        meta["log"] = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()] if log.is_file() else []
        summary["runs"][run.name] = meta
    if args.baseline and args.prepared:
        # The held-out items are the same in every prepared file of a seed; the baseline reads them from one of them.
        first = next(m for m in summary["runs"].values() if "params" in m)
        params = first["params"]
        cfg = TrainConfig(
            train_file=Path(first["train_file"]),
            out_dir=args.out,
            seed=int(params["seed"]),
            skip_questions=int(params["skip_questions"]),
            max_questions=params["max_questions"],
            holdout_articles=int(params["holdout_articles"]),
            hard_negative_rate=float(params["hard_negative_rate"]),
            perturbed_negative_rate=float(params["perturbed_negative_rate"]),
            cut_negative_rate=float(params.get("cut_negative_rate", 0.0)),
            noun_negative_rate=float(params.get("noun_negative_rate", 0.0)),
            prepared=args.prepared,
        )
        data = read_prepared(cfg)
        packed = torch.load(args.baseline / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        model = build_model(args.baseline / CONFIG_FILE, dequantized_state(packed)).to(args.device)
        summary["baseline"] = heldout_metrics(model, load_tokenizer(args.baseline), data.heldout, cfg)
    ranked = [(name, m) for name, m in summary["runs"].items() if "heldout_fp32" in m]
    if ranked:
        best_has = max(score(m["heldout_fp32"])[1] for _, m in ranked)
        eligible = [(n, m) for n, m in ranked if score(m["heldout_fp32"])[1] >= best_has - 0.01]
        order = sorted(eligible, key=lambda nm: -score(nm[1]["heldout_fp32"])[0])
        order += [nm for nm in sorted(ranked, key=lambda nm: -score(nm[1]["heldout_fp32"])[0]) if nm not in order]
        summary["ranking"] = [n for n, _ in order]
        for name, _ in order[: args.keep]:
            ck = torch.load(paths[name] / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
            buf = io.BytesIO()
            torch.save(quantized_state(ck["model"]), buf)
            blob = buf.getvalue()
            for i in range(0, len(blob), PIECE):
                (args.out / f"reader-{name}.pt.part{i // PIECE}").write_bytes(blob[i : i + PIECE])
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    for name, m in summary["runs"].items():
        h = m.get("heldout_fp32")
        print(
            name, m.get("steps_done"), m.get("train_seconds"), "held-out f1@best / HasAns" if h else m, h and score(h)
        )
    if "baseline" in summary:
        print("baseline", score(summary["baseline"]))
    print("ranking", summary.get("ranking"))


if __name__ == "__main__":
    main()
