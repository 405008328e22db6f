#!/usr/bin/env bash
# Query-by-example latency on 100-hour archives, one per tokenizer, built the same way in minutes
# instead of the hours of scripts/latency-100h.sh: the recordings at hand (SOURCES, as
# scripts/scale-bench.sh takes them) indexed with each tokenizer, then grown to 100 h of tokens by
# the scale bench (benches/benches/scale.rs: documents made of 6-18-token pieces of the source's
# strings), the source's catalog carried over and `pairalign repair` giving the made documents
# their entries. Then benches/benches/query_latency.rs runs on each archive (3 s excerpts of the
# source's files, cut, modified by the view, tokenized and searched), the tokenizers alternating,
# ROUNDS (default 2) rounds, both views of issue 6.
#
#   scripts/latency-100h-tokens.sh [WORK]   (default WORK: target/latency-tokens)
#
# TOKENIZERS: default "pairalign-v3 pairalign" (the default and pairalign-v1).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/latency-tokens}
mkdir -p "$work"
cargo build --release --locked -q
bin=${CARGO_TARGET_DIR:-target}/release/pairalign
default_sources="/work/exp/content/synth/wav /work/exp/content/synth-t/wav \
/work/exp/matrix/real-long /work/shared/data/real-speech/librispeech-251"
sources=()
for s in ${SOURCES:-$default_sources}; do
    [ -e "$s" ] && sources+=("$s")
done
[ ${#sources[@]} -gt 0 ] || { echo "no source recordings found; set SOURCES" >&2; exit 1; }
tokenizers=${TOKENIZERS:-pairalign-v3 pairalign}
for t in $tokenizers; do
    $bin index "${sources[@]}" --db "$work/source-$t" --tokenizer "$t" --jobs 0 --json \
        > "$work/source-$t.json"
    PA_SCALE_DIR="$work/scale-$t" PA_SCALE_SOURCE="$work/source-$t" PA_SCALE_HOURS=100 \
        PA_SCALE_KS=0.9 cargo bench -q -p pairalign-benches --bench scale > "$work/scale-$t.txt"
    db="$work/scale-$t/100h"
    if ! $bin check --db "$db" > /dev/null 2>&1; then
        rm -rf "$db/catalog" && cp -r "$work/source-$t/catalog" "$db/catalog"
        $bin repair --db "$db" > /dev/null
        rm -rf "$db"/catalog.damaged-*
    fi
done
for round in $(seq 1 "${ROUNDS:-2}"); do
    for t in $tokenizers; do
        for view in "noise=20,speed=1.05,gain=-6:-6" "speed=1.05,gain=3:3"; do
            echo "== round $round, $t, $view" | tee -a "$work/latency.txt"
            PAIRALIGN_LATENCY_DB="$work/scale-$t/100h" PAIRALIGN_LATENCY_QUERIES=300 \
                PAIRALIGN_LATENCY_VIEW="$view" \
                cargo bench -q -p pairalign-benches --bench query_latency | tee -a "$work/latency.txt"
        done
    done
done
