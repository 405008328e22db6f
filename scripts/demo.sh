#!/usr/bin/env bash
# The README's main job. It demonstrates the engine on a generated token archive: 20,000
# documents shaped like a tokenizer's output (Zipf symbols over 512, 30 s each at 12.7 tokens/s,
# about 167 hours of audio), imported, searched with noisy copies of 3 s stretches (20% edits),
# inspected with `info`; then the audio front end turns the bundled sample archive into a training
# feature cache, the shipped tokenizers (pairalign-v3, the default, pairalign-v2, pairalign-v1 and
# vq-v1) tokenize and are measured on it, and the sample archive is indexed with pairalign-v3,
# searched with a modified excerpt (issue 6's view: noise at 20 dB SNR, 5% faster, 6 dB quieter) and reported on (tokens
# and bytes per hour against VQ, with an SVG plot).
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
echo "== tokenizer: the shipped PairAlign weights (models/weights/pairalign-v3, the default) on two sample files"
$bin tokenize samples/short/flite_kal.wav samples/short/espeak-ng_en-us_m4.mp3
echo "== tokenizer figures on the bundled samples (view 1 of each 3 s clip queries view 0 of all)"
$bin eval retrieval --corpus "$out/samples.feat" --tokenizer pairalign-v3 --tokenizer pairalign-v2 --tokenizer pairalign --tokenizer vq --tokenizer dense
echo "== index the bundled sample archive (20 files) with the default tokenizer (pairalign-v3)"
$bin index samples --db "$out/samples.db" --quiet
echo "== query by example: 3 s from 20 s into one long file, noise at 20 dB SNR, 5% faster, 6 dB quieter"
$bin excerpt samples/long/long_espeak-ng_en-us_m3.wav --start 20 --duration 3 \
  --view "noise=20,speed=1.05,gain=-6:-6" --out "$out/query.wav"
$bin search --db "$out/samples.db" "$out/query.wav" --top 3
echo "== archive report: the pairalign-v3 archive against the same recordings under vq-v1"
$bin report --db "$out/samples.db" --vs vq --plot "$out/report.svg"
