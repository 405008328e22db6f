#!/usr/bin/env bash
# The README's main job. It demonstrates the engine on a generated token archive: 20,000
# documents shaped like a tokenizer's output (Zipf symbols over 512, 30 s each at 12.7 tokens/s,
# about 167 hours of audio), imported, searched with noisy copies of 3 s stretches (20% edits),
# inspected with `info`; then the audio front end turns the bundled sample archive into a training
# feature cache, the shipped VQ tokenizer tokenizes and is measured on it, and the sample archive
# is indexed, searched with a modified excerpt and reported on (tokens and bytes per hour against
# VQ, with an SVG plot).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out/demo}
cargo build --release --quiet --bin pairalign
bin=${CARGO_TARGET_DIR:-target}/release/pairalign
rm -rf "$out"
mkdir -p "$out"
$bin synth-tokens --out "$out/data" --docs 20000 --len 381 --vocab 512 --queries 5 --noise 0.2 --seed 7
echo "== import"
time $bin import-tokens --db "$out/db" --vocab 512 --q 3 "$out/data/archive.jsonl"
echo "== search (each query is a noisy copy of 3 s of the document named in its id)"
$bin search --db "$out/db" --tokens-file "$out/data/queries.jsonl" --top 3 --k 0.4
echo "== info"
$bin info --db "$out/db"
echo "== audio front end: the bundled samples (WAV, FLAC, MP3, Ogg) -> log-mel of two views per 3 s clip"
$bin features samples --out "$out/samples.feat" --views 2 --seed 1
echo "== tokenizer: the shipped VQ weights (models/weights/vq-v1) on two sample files"
$bin tokenize samples/short/flite_kal.wav samples/short/espeak-ng_en-us_m4.mp3
echo "== tokenizer figures on the bundled samples (view 1 of each 3 s clip queries view 0 of all)"
$bin eval retrieval --corpus "$out/samples.feat" --tokenizer vq --tokenizer dense
echo "== index the bundled sample archive (20 files) with the shipped tokenizer"
$bin index samples --db "$out/samples.db" --quiet
echo "== query by example: 3 s from 20 s into one long file, played 5% faster and 3 dB louder"
$bin excerpt samples/long/long_espeak-ng_en-us_m3.wav --start 20 --duration 3 \
  --view "speed=1.05,gain=3:3" --out "$out/query.wav"
$bin search --db "$out/samples.db" "$out/query.wav" --top 3
echo "== archive report (against VQ; the archive is VQ itself until PairAlign ships)"
$bin report --db "$out/samples.db" --vs vq --plot "$out/report.svg"
