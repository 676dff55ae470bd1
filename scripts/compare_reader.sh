#!/usr/bin/env bash
# Measure a candidate reader beside the shipped one (issue 8), the way a reader is chosen here: fit its judge on SQuAD
# training articles, then run both on the seed question file's dev split (the choice) and test split, SQuAD v2.0 and
# v1.1 halves given the gold paragraph, and open retrieval over the first 1,000 questions of each half. Writes one
# JSON per run under OUT and prints a side-by-side table; changes nothing in the repository.
#   scripts/compare_reader.sh CANDIDATE_DIR OUT_DIR      (CANDIDATE_DIR: an exported reader, `tr-qa export-reader --out`)
set -euo pipefail
cd "$(dirname "$0")/.."
cand=$(realpath "${1:?usage: scripts/compare_reader.sh CANDIDATE_DIR OUT_DIR}")
out=$(realpath -m "${2:?usage: scripts/compare_reader.sh CANDIDATE_DIR OUT_DIR}")
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE TR_QA_THREADS=${TR_QA_THREADS:-2}
bench=../shared/bench
train=$bench/squad-v1.1-train/squad11_train_rebuilt.json.xz
v2=$bench/squad-v2.0-dev-half/squad-dev-v2.0-part1.json
v11=$bench/squad-v1.1-dev-half/squad-dev-v1.1-part1.json
# LIMIT=N runs only the first N questions of everything (a smoke test of this script, not a measurement).
few=()
[ -n "${LIMIT:-}" ] && few=(--limit "$LIMIT")
[ -f "$out/confidence.json" ] || .venv/bin/python scripts/fit_confidence.py "$train" --reader "$cand" \
  --questions "${LIMIT:-500}" --out "$out/confidence.json" 2>"$out/fit.log"
for who in shipped candidate; do
  opts=()
  [ "$who" = candidate ] && opts=(--reader "$cand" --confidence "$out/confidence.json")
  run() {  # NAME ARGS...: one eval, kept if it already ran
    local name=$1; shift
    [ -s "$out/$who-$name.json" ] || .venv/bin/tr-qa eval "$@" "${opts[@]}" --json >"$out/$who-$name.json" 2>"$out/$who-$name.err"
  }
  run dev --qa eval/qa.jsonl --split dev "${few[@]}"
  run test --qa eval/qa.jsonl --split test "${few[@]}"
  run gold-v2 --squad "$v2" --gold-paragraph "${few[@]}"
  run gold-v11 --squad "$v11" --gold-paragraph "${few[@]}"
  run open-v2 --squad "$v2" --limit "${LIMIT:-1000}" --keep "$out/corpus-v2"
  run open-v11 --squad "$v11" --limit "${LIMIT:-1000}" --keep "$out/corpus-v11"
done
.venv/bin/python - "$out" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
rows = [
    ("dev", ["coverage@acc80", "aurc", "unanswerable_abstained", "answerable_answered", "f1"]),
    ("test", ["coverage@acc80", "aurc", "unanswerable_abstained", "answerable_answered", "f1"]),
    ("open-v2", ["unanswerable_abstained", "answerable_answered", "aurc", "f1"]),
    ("open-v11", ["f1", "em", "highlight_hit", "coverage@acc80", "aurc"]),
    ("gold-v2", ["at_margin_0.f1", "at_margin_0.HasAns_f1", "at_margin_0.NoAns_acc"]),
    ("gold-v11", ["never_abstaining.f1", "never_abstaining.exact"]),
]
print(f"| run | metric | shipped | candidate |\n|---|---|---:|---:|")
for run, names in rows:
    got = {w: json.loads((out / f"{w}-{run}.json").read_text()) for w in ("shipped", "candidate")}
    for name in names:
        vals = []
        for w in ("shipped", "candidate"):
            v = got[w]
            for part in name.split("."):
                v = v[part]
            vals.append(f"{v:.3f}")
        print(f"| {run} | {name} | {vals[0]} | {vals[1]} |")

# The candidate's figures in the model card's form, for `tr-qa export-reader --extra` if it ships.
def flat(d):
    return {k: v for k, v in d.items() if not isinstance(v, (dict, list)) and k not in ("compare", "reader", "source")}

def cand(run):
    return json.loads((out / f"candidate-{run}.json").read_text())

def gold(run):
    note = ("tr-qa eval --squad … --gold-paragraph; measured once after export, never used for training, tuning or "
            "selection")
    return {**{k: v for k, v in cand(run).items() if k != "source"}, "note": note}

card = {
    "squad_v2.0_dev_half_gold_paragraph": gold("gold-v2"),
    "squad_v1.1_dev_half_gold_paragraph": gold("gold-v11"),
    "squad_v2.0_dev_half_open_first_1000": flat(cand("open-v2")),
    "squad_v1.1_dev_half_open_first_1000": flat(cand("open-v11")),
    "eval_qa_dev_split": flat(cand("dev")),
    "eval_qa_test_split": flat(cand("test")),
}
(out / "candidate-card.json").write_text(json.dumps(card, indent=2) + "\n")
print(f"\nthe candidate's figures for its model card: {out / 'candidate-card.json'} (tr-qa export-reader --extra)")
PY
