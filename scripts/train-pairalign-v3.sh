#!/usr/bin/env bash
# Reproduces the shipped pairalign-v3 tokenizer (models/weights/pairalign-v3; issue 22) on 2 CPU
# cores: 1,000 steps warm-started from models/weights/pairalign-v2 on pairalign-v2's training
# clips (the synthetic training voices and the training half of LibriSpeech-251, its real
# speech twice) plus clips of sentences said by two voices, with the config in
# models/weights/pairalign-v3/train.json (the EMA teacher decoding half the window clips'
# targets on the grid, both views cropped to one span). About 45 minutes of data and 30 of
# training on an idle machine; the model card gives the measured times. scripts/setup.sh
# installs espeak-ng and flite. Resumable: run it again after an interruption (or Ctrl-C) and
# it continues from where it stopped. Then `eval retrieval` on the held-out voices beside
# pairalign-v2.
#
#   scripts/train-pairalign-v3.sh [WORK_DIR]      (default: out/train-pairalign-v3)
#
# PAIRALIGN_BIN overrides the binary (default: the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-out/train-pairalign-v3}
if [ -z "${PAIRALIGN_BIN:-}" ]; then
  cargo build --release --quiet --bin pairalign
  PAIRALIGN_BIN=${CARGO_TARGET_DIR:-target}/release/pairalign
fi
bin=$PAIRALIGN_BIN
libri=../shared/data/real-speech/librispeech-251
space="speed=0.9:1.1,pitch=3,noise=0:30,noise-kinds=white+pink+babble,gain=12,shift=100,reverb=0.1:0.6,telephone,8k,p=0.4"
mkdir -p "$work"
work=$(cd "$work" && pwd)
[ -f "$work/synth/manifest.jsonl" ] || $bin synth --out "$work/synth" --hours 10 --seed 5
# pairalign-v2's training folder: the training voices' recordings, and 4 links to each file of
# the training half of LibriSpeech-251 (every second file in name order, from the second).
if [ ! -f "$work/mix/.done" ]; then
  rm -rf "$work/mix"
  mkdir -p "$work/mix/synth" "$work/mix/libri"
  python3 - "$work" "$libri" <<'PY'
import json, os, sys
work, libri = sys.argv[1], os.path.realpath(sys.argv[2])
for line in open(f"{work}/synth/manifest.jsonl"):
    u = json.loads(line)
    if u.get("split") == "train":
        src = os.path.realpath(os.path.join(f"{work}/synth", u["path"]))
        os.symlink(src, f"{work}/mix/synth/{os.path.basename(src)}")
files = sorted(f for f in os.listdir(libri) if f.endswith(".flac"))
for f in files[1::2]:
    for r in range(4):
        os.symlink(f"{libri}/{f}", f"{work}/mix/libri/{f[:-5]}-r{r}.flac")
PY
  touch "$work/mix/.done"
fi
# Sentences in 4 training voices each (none of them in any evaluation set).
[ -f "$work/xv/manifest.jsonl" ] || $bin synth --out "$work/xv" --hours 8 --seed 5 \
  --text-seed 205 --voices-per-sentence 4 --only train
# The cache: voice clips (first view mild, second from the hard library), the training folder,
# and its real speech once more.
[ -f "$work/train.feat" ] || $bin features "$work/xv/manifest.jsonl" --layout manifest \
  --with-folder "$work/mix" --with-folder "$work/mix/libri" --cross-voice --views 2 --seed 31 \
  --view-space "$space" --voice-view-space "gain=12,shift=100,p=0.4" --out "$work/train.feat"
[ -f "$work/heldout.feat" ] || $bin features "$work/synth/manifest.jsonl" --layout manifest \
  --split heldout --out "$work/heldout.feat" --views 2 --seed 12 \
  --view-space "noise=10:30,speed=0.9:1.1,gain=6,shift=100"
if [ -f "$work/run/checkpoint/trainer.json" ] || [ -f "$work/run/checkpoint.old/trainer.json" ]; then
  [ -f "$work/run/model.safetensors" ] || nice -n 5 $bin train pairalign \
    --data "$work/train.feat" --out "$work/run" --resume
else
  nice -n 5 $bin train pairalign --init models/weights/vq-v2 \
    --warm-start models/weights/pairalign-v2 --data "$work/train.feat" --out "$work/run" \
    --config models/weights/pairalign-v3/train.json
fi
$bin eval retrieval --cache "$work/heldout.feat" --tokenizer pairalign-v2 \
  --tokenizer "$work/run" --json | tee "$work/eval.jsonl"
