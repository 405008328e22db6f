#!/usr/bin/env bash
# Reproduces the shipped PairAlign tokenizer (models/weights/pairalign-v1) on 2 CPU cores from the
# data the shipped VQ tokenizer was trained on (scripts/train-vq.sh: the same synthesis and the same
# training-voice feature cache; scripts/setup.sh installs espeak-ng and flite): the encoder starts
# from models/weights/vq-v1, 1,000 steps of the config in models/weights/pairalign-v1/train.json
# (about 40 min on 2 cores; the model card gives the measured time), then `eval retrieval` on
# the held-out voices beside VQ. Resumable: run it again after an interruption (or Ctrl-C) and it
# continues from the run's checkpoint.
#
#   scripts/train-pairalign.sh [WORK_DIR]      (default: out/train-pairalign)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-out/train-pairalign}
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
  [ -f "$work/run/model.safetensors" ] || nice -n 5 $bin train pairalign \
    --data "$work/train.feat" --out "$work/run" --resume
else
  nice -n 5 $bin train pairalign --init models/weights/vq-v1 --data "$work/train.feat" \
    --out "$work/run" --config models/weights/pairalign-v1/train.json
fi
$bin eval retrieval --cache "$work/heldout.feat" --tokenizer vq --tokenizer "$work/run" --json \
  | tee "$work/eval.jsonl"
