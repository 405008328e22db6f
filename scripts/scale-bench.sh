#!/usr/bin/env bash
# Issue 23's scale benchmark on real tokens (benches/benches/scale.rs): indexes the recordings at
# hand into a source database with the release binary and the default tokenizer (pairalign-v3),
# then builds archives of PA_SCALE_HOURS hours (default 50,500,2000) from its strings and measures
# search latency, recall of the exact top 10, open time, memory and bytes per hour on them.
#
#   scripts/scale-bench.sh [WORK]        (default WORK: target/scale-data)
#
# SOURCES: audio folders or files to index (space-separated; default: the corpora of this
#   machine that exist, see below). Indexing resumes: files already in WORK/source are skipped.
# SYNTH_HOURS=H (and SYNTH_SEED, default 23): also render H hours of synthetic speech into
#   WORK/synth with `pairalign synth` (espeak-ng and flite; scripts/setup.sh installs them) and
#   index it: a larger source, more distinct strings to draw pieces from.
# TOKENIZER: index with another shipped tokenizer (`--tokenizer`), into WORK/source-TOKENIZER.
# PA_SCALE_*: the bench's settings (hours, queries, seed, view, budgets, batch size, minimum
#   free disk); see the comment at the top of benches/benches/scale.rs.
#
# Archives are cached in WORK/<hours>h (about 430 KB per hour: 2,000 h is 0.9 GB, 10,000 h
# 4.3 GB) and reused by a rerun; the queries in WORK/queries.json. The output goes to the
# terminal and to WORK/scale-DATE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/scale-data}
mkdir -p "$work"
work=$(cd "$work" && pwd)

default_sources="/work/exp/content/synth/wav /work/exp/content/synth-t/wav \
/work/exp/matrix/real-long /work/shared/data/real-speech/librispeech-251"
sources=()
for s in ${SOURCES:-$default_sources}; do
    if [ -e "$s" ]; then
        sources+=("$s")
    else
        echo "scale-bench: skipping $s (not found)" >&2
    fi
done

nice cargo build --release --locked -q --bin pairalign
bin=${CARGO_TARGET_DIR:-target}/release/pairalign

if [ -n "${SYNTH_HOURS:-}" ]; then
    if [ ! -f "$work/synth/manifest.jsonl" ]; then
        nice "$bin" synth --out "$work/synth" --hours "$SYNTH_HOURS" --seed "${SYNTH_SEED:-23}" \
            --json > "$work/synth.json"
    fi
    sources+=("$work/synth/wav")
fi
if [ ${#sources[@]} -eq 0 ]; then
    echo "scale-bench: no audio to index: set SOURCES to audio folders, or SYNTH_HOURS" >&2
    exit 1
fi

source_db=$work/source${TOKENIZER:+-$TOKENIZER}
echo "indexing ${sources[*]} into $source_db" >&2
start=$(date +%s)
nice "$bin" index "${sources[@]}" --db "$source_db" --json ${TOKENIZER:+--tokenizer "$TOKENIZER"} \
    > "$work/source-index.json"
echo "indexed in $(( $(date +%s) - start )) s: $(cat "$work/source-index.json")" >&2

out=$work/scale-$(date -u +%Y%m%d-%H%M%S).txt
PA_SCALE_DIR=$work PA_SCALE_SOURCE=$source_db \
    nice cargo bench -q -p pairalign-benches --bench scale 2>&1 | tee "$out"
echo "scale-bench: output in $out" >&2
