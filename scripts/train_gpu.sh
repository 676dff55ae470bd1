#!/usr/bin/env bash
# Reader training on a lent GPU (issue 8): negative mixes trained side by side on one GPU, each one epoch from the
# shipped reader; scripts/gpu_pick.py ranks them on held-out training articles and packs the best two as int8 pieces
# small enough to bring back; scripts/gpu_import.py exports one here. Run from the repository root on the GPU machine,
# with .gpu/ (listed in .git/info/exclude, named in the device call's carry) holding the SQuAD v1.1 training file and
# each variant's examples, prepared here first with the variant's rates (spaCy is not needed there):
#   tr-qa train-reader --train .gpu/squad11_train_rebuilt.json.xz --seed 14 --hard-negatives 0.5 \
#     --perturbed-negatives 0.6 --cut-negatives 0 --prepare-only .gpu/prep-A.json.xz    # B: 0.5, D: 1.0, C: 0.5
#     (and --noun-negatives 0.5 for C)
#   MINUTES=6 [VARIANTS="B D"] [LR=3e-5] scripts/train_gpu.sh OUT_DIR
set -uo pipefail
out=${1:?usage: scripts/train_gpu.sh OUT_DIR}
mkdir -p "$out"
export PYTHONPATH=src HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$py -c "import torch, transformers, tokenizers; print(torch.__version__, transformers.__version__, tokenizers.__version__)"

common=(--train .gpu/squad11_train_rebuilt.json.xz --init-from src/tr_qa/models/reader --device "${DEVICE:-cuda}"
  --seed 14 --hard-negatives 0.5 --perturbed-negatives 0.6 --batch-size 32 --lr "${LR:-3e-5}" --warmup-ratio 0.05
  --threads 2 --no-export --max-minutes "${MINUTES:-6}" ${EXTRA:-})
# The mixes (VARIANTS picks some): A as the first pass, B with cut paragraphs (shipped), C with noun swaps too, D with
# a cut paragraph for every question that allows one.
declare -A mix=([A]="--cut-negatives 0" [B]="--cut-negatives 0.5" [C]="--cut-negatives 0.5 --noun-negatives 0.5"
  [D]="--cut-negatives 1.0")
for v in ${VARIANTS:-A B C}; do
  # shellcheck disable=SC2086
  $py -c "from tr_qa.cli import main; main()" train-reader "${common[@]}" ${mix[$v]} \
    --prepared "${PREP_DIR:-.gpu}/prep-$v.json.xz" --checkpoints "${CKPT_ROOT:-/tmp}/ck-$v" >"${CKPT_ROOT:-/tmp}/train-$v.log" 2>&1 &
done
wait
# Each run's log is kept beside its checkpoints (what comes back from a leased machine is a handful of files).
for v in ${VARIANTS:-A B C}; do echo "== $v"; tail -n 20 "${CKPT_ROOT:-/tmp}/train-$v.log" | cut -c1-400; done
cks=()
for v in ${VARIANTS:-A B C}; do cks+=("${CKPT_ROOT:-/tmp}/ck-$v"); done
first=${VARIANTS:-A B C}; first=${first%% *}
$py scripts/gpu_pick.py --out "$out" --baseline src/tr_qa/models/reader --prepared "${PREP_DIR:-.gpu}/prep-$first.json.xz" \
  --device "${DEVICE:-cuda}" "${cks[@]}"
