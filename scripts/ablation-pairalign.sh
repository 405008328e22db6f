#!/usr/bin/env bash
# PairAlign's ablation table (issue 8): short runs of the training recipe with its seven
# components switched off in turn (`train pairalign --without C`), each from the shipped VQ
# encoder on the training voices, at the shortened schedule of scripts/pairalign-ablation.json
# (300 steps; EMA decay 0.99 so that the teacher follows the student on that time scale); then
# retrieval and cross-view consistency of every run beside vq-v1 on the held-out voices.
#
# Rows: `all` (all seven on, the EMA teacher taking over the targets from 30% to 60% of the
# run); `vq-targets` (EMA-teacher targets from the start) and `ema-teacher` (VQ-derived targets
# throughout: the shipped recipe, models/weights/pairalign-v1/train.json); the other five are
# switched off from the shipped recipe, since with the EMA teacher the short runs collapse onto
# a few codes (docs/RESULTS.md, issue 8, ablation).
#
# The data are scripts/train-pairalign.sh's (run it first, or point WORK_DIR at its folder).
# Resumable: finished runs are kept, an interrupted one continues from its checkpoint.
#
#   scripts/ablation-pairalign.sh [WORK_DIR] [CLIPS]   (default: out/train-pairalign, 500)
#
# Writes WORK_DIR/ablation/<row>/ (the runs) and WORK_DIR/ablation/{retrieval,consistency}.jsonl.
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
for f in train.feat heldout.feat; do
  [ -f "$work/$f" ] || { echo "missing $work/$f: run scripts/train-pairalign.sh first" >&2; exit 2; }
done
rows=(all vq-targets ema-teacher cross-paired anti-bypass contrast length-control timing)
mkdir -p "$work/ablation"
for row in "${rows[@]}"; do
  run=$work/ablation/$row
  [ -f "$run/model.safetensors" ] && continue
  if [ -f "$run/checkpoint/trainer.json" ] || [ -f "$run/checkpoint.old/trainer.json" ]; then
    $bin train pairalign --data "$work/train.feat" --out "$run" --resume
    continue
  fi
  case $row in
    all) without=() ;;
    vq-targets | ema-teacher) without=(--without "$row") ;;
    *) without=(--without ema-teacher --without "$row") ;;
  esac
  $bin train pairalign --init models/weights/vq-v1 --data "$work/train.feat" --out "$run" \
    --config "$config" "${without[@]}"
done
subjects=(--tokenizer vq)
for row in "${rows[@]}"; do subjects+=(--tokenizer "$work/ablation/$row"); done
for protocol in retrieval consistency; do
  $bin eval "$protocol" --cache "$work/heldout.feat" --max-clips "$clips" "${subjects[@]}" \
    --json | tee "$work/ablation/$protocol.jsonl"
done
