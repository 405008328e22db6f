#!/usr/bin/env bash
# Reproduces the shipped VQ tokenizer (models/weights/vq-v1) and its figures from scratch, on 2
# CPU cores, from data the project generates: 10 h of synthetic multi-voice speech (espeak-ng and
# flite; scripts/setup.sh installs them), a feature cache of the training voices and one of the
# held-out voices, 1,500 training steps (about 70 minutes), then `eval retrieval` on the held-out
# voices. Everything is deterministic from the seeds except for floating-point summation order.
# Resumable: run it again after an interruption and it continues the training from its checkpoint.
#
#   scripts/train-vq.sh [WORK_DIR]      (default: out/train-vq)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-out/train-vq}
cargo build --release --quiet --bin pairalign
bin=${CARGO_TARGET_DIR:-target}/release/pairalign
mkdir -p "$work"
[ -f "$work/synth/manifest.jsonl" ] || $bin synth --out "$work/synth" --hours 10 --seed 5
[ -f "$work/train.feat" ] || $bin features "$work/synth/manifest.jsonl" --layout manifest \
  --split train --out "$work/train.feat" --views 2 --seed 11
[ -f "$work/heldout.feat" ] || $bin features "$work/synth/manifest.jsonl" --layout manifest \
  --split heldout --out "$work/heldout.feat" --views 2 --seed 12 \
  --view-space "noise=10:30,speed=0.9:1.1,gain=6,shift=100"
if [ -f "$work/run/checkpoint/trainer.json" ] || [ -f "$work/run/checkpoint.old/trainer.json" ]; then
  [ -f "$work/run/model.safetensors" ] || $bin train vq --data "$work/train.feat" --out "$work/run" --resume
else
  $bin train vq --data "$work/train.feat" --out "$work/run" --config models/weights/vq-v1/train.json
fi
$bin eval retrieval --cache "$work/heldout.feat" --tokenizer "$work/run" --json | tee "$work/eval.jsonl"
