#!/usr/bin/env bash
# Issue 6's latency target on a 100-hour archive: renders 100 h of synthetic multi-voice speech
# (espeak-ng and flite; scripts/setup.sh installs them), indexes it with the shipped tokenizer,
# then runs the in-process query benchmark (benches/benches/query_latency.rs: 3 s excerpts of
# indexed files, played 5% faster and 3 dB louder, tokenized and searched; p50/p90/p99).
# Each step is skipped when its output exists, so an interrupted run resumes (the indexer itself
# resumes by content). About 11 GB of WAV under WORK.
#
# TOKENIZER=vq indexes with vq-v1 instead of the default (pairalign-v3) into WORK/db-vq, for the
# side-by-side figures; PAIRALIGN_LATENCY_VIEW sets the queries' view (default: issue 6's).
#
#   scripts/latency-100h.sh [WORK]   (default WORK: ./latency-data)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-latency-data}
hours=${HOURS:-100}
mkdir -p "$work"
cargo build --release --locked -q
bin=${CARGO_TARGET_DIR:-target}/release/pairalign
if [ ! -f "$work/synth/manifest.jsonl" ]; then
    $bin synth --out "$work/synth" --hours "$hours" --seed 21 --json > "$work/synth.json"
fi
tag=${TOKENIZER:+-$TOKENIZER}
db=$work/db$tag
$bin index "$work/synth/wav" --db "$db" --jobs 0 --json ${TOKENIZER:+--tokenizer "$TOKENIZER"} \
    > "$work/index$tag.json" || true
$bin report --db "$db" --json > "$work/report$tag.json"
PAIRALIGN_LATENCY_DB="$db" PAIRALIGN_LATENCY_QUERIES=${QUERIES:-300} \
    cargo bench -q -p pairalign-benches --bench query_latency | tee "$work/latency$tag.txt"
