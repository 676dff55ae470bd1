#!/usr/bin/env bash
# Reader training on this machine's CPU (issue 8), for when no GPU is lent: one full pass over every SQuAD v1.1
# training question from the shipped reader, with a cut-paragraph negative for every question that allows one (mix D
# of scripts/train_gpu.sh). Checkpointed every 10 minutes under CKPT (outside the repository); run it again with the
# same arguments and it resumes; `touch CKPT/STOP` ends it early after a checkpoint, still measuring the held-out
# questions. The starting weights are copied beside the checkpoints first (CKPT with "-ckpt" replaced by "-init"), so
# a new shipped reader does not change the run half-way. Then export (tr-qa export-reader), compare, refit the judge.
#   [THREADS=2] scripts/train_cpu.sh [CKPT]     (default CKPT: ~/.cache/tr-qa/reader-e-ckpt)
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=${1:-$HOME/.cache/tr-qa/reader-e-ckpt}
init="${ckpt%-ckpt}-init"  # reader-e-ckpt → reader-e-init
if [ ! -d "$init" ]; then
  mkdir -p "$(dirname "$init")"
  cp -r src/tr_qa/models/reader "$init.tmp" && mv "$init.tmp" "$init"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE TOKENIZERS_PARALLELISM=false
exec nice -n 5 .venv/bin/tr-qa train-reader \
  --train ../shared/bench/squad-v1.1-train/squad11_train_rebuilt.json.xz \
  --checkpoints "$ckpt" --init-from "$init" \
  --hard-negatives 0.5 --perturbed-negatives 0.6 --cut-negatives 1.0 --lr 2e-5 --warmup-ratio 0.05 \
  --batch-size 16 --max-length 384 --stride 128 --seed 15 --threads "${THREADS:-2}" --no-export
