#!/usr/bin/env bash
# PairAlign's ablation table (issue 8): short runs of the shipping recipe
# (models/weights/pairalign-v1/train.json: grid targets, no decoding history, a local decoder)
# with its components switched in turn, each from the shipped VQ encoder on the training voices,
# at the shortened schedule of scripts/pairalign-ablation.json (300 steps; EMA decay 0.99 so
# that a teacher follows the student on that time scale); then retrieval and cross-view
# consistency of every run beside vq-v1 on the held-out voices.
#
# Rows: `shipped` (the recipe as it ships: EMA teacher and anti-bypass off); `cross-paired`,
# `contrast`, `length-control`, `timing` (each switched off from it, `--without`); `vq-targets`
# (the EMA teacher's decodings as targets from the start: scripts/pairalign-ablation-ema.json
# `--without vq-targets`); `ema-teacher` (the EMA teacher switched on, taking over the targets
# from 30% to 60% of the run: scripts/pairalign-ablation-ema.json). Anti-bypass corruption has no
# row: with nothing of the target fed (decode_history false) there is no prefix to corrupt.
#
# The data are scripts/train-pairalign.sh's (run it first, or point WORK_DIR at its folder).
# Resumable: finished runs are kept, an interrupted one continues from its checkpoint.
#
#   scripts/ablation-pairalign.sh [WORK_DIR] [CLIPS]   (default: out/train-pairalign, 500)
#
# Writes WORK_DIR/ablation-grid/<row>/ (the runs) and WORK_DIR/ablation-grid/{retrieval,consistency}.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-out/train-pairalign}
clips=${2:-500}
if [ -z "${PAIRALIGN_BIN:-}" ]; then
  cargo build --release --quiet --bin pairalign
  PAIRALIGN_BIN=${CARGO_TARGET_DIR:-target}/release/pairalign
fi
bin=$PAIRALIGN_BIN
config=$PWD/scripts/pairalign-ablation.json
ema_config=$PWD/scripts/pairalign-ablation-ema.json
for f in train.feat heldout.feat; do
  [ -f "$work/$f" ] || { echo "missing $work/$f: run scripts/train-pairalign.sh first" >&2; exit 2; }
done
rows=(shipped cross-paired contrast length-control timing vq-targets ema-teacher)
mkdir -p "$work/ablation-grid"
for row in "${rows[@]}"; do
  run=$work/ablation-grid/$row
  [ -f "$run/model.safetensors" ] && continue
  if [ -f "$run/checkpoint/trainer.json" ] || [ -f "$run/checkpoint.old/trainer.json" ]; then
    $bin train pairalign --data "$work/train.feat" --out "$run" --resume
    continue
  fi
  case $row in
    shipped) args=(--config "$config") ;;
    ema-teacher) args=(--config "$ema_config") ;;
    vq-targets) args=(--config "$ema_config" --without vq-targets) ;;
    *) args=(--config "$config" --without "$row") ;;
  esac
  $bin train pairalign --init models/weights/vq-v1 --data "$work/train.feat" --out "$run" \
    "${args[@]}"
done
subjects=(--tokenizer vq)
for row in "${rows[@]}"; do subjects+=(--tokenizer "$work/ablation-grid/$row"); done
for protocol in retrieval consistency; do
  $bin eval "$protocol" --cache "$work/heldout.feat" --max-clips "$clips" "${subjects[@]}" \
    --json | tee "$work/ablation-grid/$protocol.jsonl"
done
